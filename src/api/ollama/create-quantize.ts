import { mkdir } from 'node:fs/promises';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { NotImplemented } from '../../errors.js';
import { assertSpace } from '../../fs/free-space.js';
import type { ModelLayerStep } from '../../ollama-store/create-model.js';
import type { OllamaStore } from '../../ollama-store/store.js';
import type { Quantizer, QuantizeProgress } from '../../quantize/quantizer.js';
import { assertQuantizable, estimatedBytes, parseQuantizeType, type QuantizeType } from '../../quantize/types.js';
import type { ApiDeps } from '../deps.js';
import type { ManageContext } from './manage-context.js';

/** A quantize that will run, checked before anything is answered so that its errors keep their status. */
export interface QuantizePlan {
  quantizer: Quantizer;
  type: QuantizeType;
  /** The source's file type, upper-cased (F32, F16, BF16). */
  sourceType: string;
  /** The client went away: the run is cancelled. */
  signal: AbortSignal;
}

/** The model GGUF a create would quantize: its file type and its bytes on disk. */
export interface QuantizeSource {
  fileType: string;
  size: number;
}

/**
 * What `quantize` asks for, in Ollama's order of checks: a type it does not know, then a source that
 * is quantized already (400s); a source of that very type needs nothing (undefined). Then what Corral
 * needs to run it: llama-quantize (501 without) and room for the result (507).
 */
export async function planQuantize(
  deps: ApiDeps,
  ctx: ManageContext,
  raw: string | undefined,
  source: QuantizeSource | undefined,
  signal: AbortSignal,
): Promise<QuantizePlan | undefined> {
  if (!raw) return undefined;
  const type = parseQuantizeType(raw);
  const quantizer = deps.quantizer;
  if (!quantizer) throw new NotImplemented('quantizing ("quantize") is not available in this Corral');
  // No model GGUF at all: the create itself says so.
  if (!source) return undefined;
  assertQuantizable(source.fileType);
  const sourceType = source.fileType.toUpperCase();
  if (sourceType === type.type) return undefined;
  await quantizer.tool();
  const blobs = ctx.stores().target.blobsDir;
  await mkdir(blobs, { recursive: true });
  await assertSpace(blobs, estimatedBytes(source.size, sourceType, type.type), ctx.reserve(), 'quantize');
  return { quantizer, type, sourceType, signal };
}

/** Quantizes one GGUF into a blob of `store` (see Quantizer.quantize). */
export function quantizeFile(
  plan: QuantizePlan,
  store: OllamaStore,
  input: { path: string; size: number },
  emit: (p: QuantizeProgress) => void,
): Promise<{ digest: string; size: number }> {
  const { quantizer, type, sourceType, signal } = plan;
  return quantizer.quantize({ input: input.path, size: input.size, sourceType, type, store, emit, signal });
}

/** The createStoreModel step that replaces the model layer by its quantized blob. */
export function quantizeStep(plan: QuantizePlan, store: OllamaStore): ModelLayerStep {
  return async (layer, blob, emit) => {
    const made = await quantizeFile(plan, store, { path: blob, size: layer.size }, emit);
    return { mediaType: layer.mediaType, ...made };
  };
}

/**
 * A closing app cancels running quantizes, then waits until their clients have the last line (the
 * error that says why) before connections are closed, instead of cutting their streams mid-way.
 * Returns what marks a reply as one to wait for.
 */
export function cancelQuantizesOnClose(app: FastifyInstance, quantizer: Quantizer | undefined) {
  const open = new Set<Promise<void>>();
  app.addHook('preClose', async () => {
    await quantizer?.close();
    await Promise.all(open);
  });
  return (reply: FastifyReply): void => {
    const closed = new Promise<void>((resolve) => reply.raw.once('close', () => resolve()));
    open.add(closed);
    void closed.then(() => open.delete(closed));
  };
}
