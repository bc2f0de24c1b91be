/** What a runner needs to know about a model to build llama-server's command line. */
export interface RunnerModel {
  name: string;
  path: string;
  args: string[];
  embedding: boolean;
  mmproj?: string | undefined;
}

export interface ArgsOptions {
  globalArgs: string[];
  /** Context per slot; llama-server's -c is the total, shared by all slots. */
  ctxSize: number;
  parallel: number;
}

/**
 * The llama-server argv for one model (without --host/--port). Global args come first and the
 * model's own last, so a model can override anything (llama-server keeps the last occurrence).
 */
export function runnerArgs(model: RunnerModel, opts: ArgsOptions): string[] {
  const args = ['-m', model.path, '--alias', model.name, '--no-webui', '--metrics', '--slots'];
  if (opts.ctxSize > 0) args.push('-c', String(opts.ctxSize * opts.parallel));
  args.push('-np', String(opts.parallel));
  if (model.embedding) args.push('--embeddings', '--pooling', 'mean');
  if (model.mmproj) args.push('--mmproj', model.mmproj);
  return [...args, ...opts.globalArgs, ...model.args];
}
