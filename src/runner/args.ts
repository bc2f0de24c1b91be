/** What a runner needs to know about a model to build llama-server's command line. */
export interface RunnerModel {
  name: string;
  path: string;
  args: string[];
  embedding: boolean;
  /** Start as a reranker (`--rerank`: embeddings with rank pooling); wins over `embedding`. */
  rerank?: boolean | undefined;
  /** The pooling of an embedding model (default mean). */
  pooling?: 'mean' | 'cls' | 'last' | undefined;
  /** The GGUF's trained context: what a context size of 0 means. */
  contextLength?: number | undefined;
  mmproj?: string | undefined;
  /** llama.cpp RPC workers: "auto" (resolved to the live ones at start) or host:port addresses. */
  rpc?: 'auto' | string[] | undefined;
  /** The workers this start uses (`--rpc`), once resolved. */
  rpcWorkers?: string[] | undefined;
  /** With `rpc`: the model's whole memory need, which its workers share. */
  rpcNeedBytes?: number | undefined;
}

export interface ArgsOptions {
  globalArgs: string[];
  /** Context per slot; llama-server's -c is the total, shared by all slots. */
  ctxSize: number;
  parallel: number;
  /**
   * -ngl for a binary with a GPU device, added when neither the global nor the model's args set it:
   * "auto" lets llama-server fit as many layers as free VRAM holds (its --fit).
   */
  gpuLayers?: string | undefined;
  /** A request's num_gpu (Ollama's layers on the GPU), which wins over all of them. */
  requestGpuLayers?: number | undefined;
}

const GPU_LAYER_FLAGS = ['-ngl', '--gpu-layers', '--n-gpu-layers'];

export function setsGpuLayers(args: readonly string[]): boolean {
  return args.some((a) => GPU_LAYER_FLAGS.some((f) => a === f || a.startsWith(`${f}=`)));
}

/**
 * The llama-server argv for one model (without --host/--port). Global args come first and the
 * model's own last, so a model can override anything (llama-server keeps the last occurrence).
 */
export function runnerArgs(model: RunnerModel, opts: ArgsOptions): string[] {
  const args = ['-m', model.path, '--alias', model.name, '--no-webui', '--metrics', '--slots'];
  if (opts.ctxSize > 0) args.push('-c', String(opts.ctxSize * opts.parallel));
  args.push('-np', String(opts.parallel));
  if (model.rerank) args.push('--rerank');
  else if (model.embedding) args.push('--embeddings', '--pooling', model.pooling ?? 'mean');
  // Each input to embed or rerank must fit one physical batch, which llama-server otherwise caps at
  // 512 tokens whatever the context ("input is too large to process"): one slot's context.
  const batch = opts.ctxSize > 0 ? opts.ctxSize : model.contextLength;
  if ((model.rerank || model.embedding) && batch) args.push('-b', String(batch), '-ub', String(batch));
  if (model.mmproj) args.push('--mmproj', model.mmproj);
  if (model.rpcWorkers?.length) args.push('--rpc', model.rpcWorkers.join(','));
  const offload =
    opts.gpuLayers !== undefined && !setsGpuLayers(opts.globalArgs) && !setsGpuLayers(model.args)
      ? ['-ngl', opts.gpuLayers]
      : [];
  // llama-server keeps the last occurrence of a flag, so the request's num_gpu goes last.
  const requested = opts.requestGpuLayers !== undefined ? ['-ngl', String(opts.requestGpuLayers)] : [];
  return [...args, ...offload, ...opts.globalArgs, ...model.args, ...requested];
}
