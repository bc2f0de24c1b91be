import type { CatalogModel } from '../catalog/catalog.js';
import { BadRequest } from '../errors.js';

/**
 * How much longer than `context × longest token` a text may be and still fit: tokenizers normalise
 * (NFKC, accents stripped, CRLF), so a token can stand for a little more text than its piece spells.
 */
const SLACK = 4;

/**
 * The UTF-8 bytes beyond which a text cannot be `ctx` tokens of `model`: no token covers more than
 * the longest piece of its vocabulary. A prompt over it is refused before llama-server tokenizes it,
 * which it does on its HTTP thread, with no way to stop: a 50 MB prompt would hold a child for a long
 * time only to be refused for its length.
 */
export function textLimitBytes(model: CatalogModel, ctx: number): number {
  return ctx * Math.max(model.gguf.maxTokenBytes, 16) * SLACK;
}

/** The context one request to `model` can use: its slot context, or the GGUF's when that is 0. */
export function slotContext(model: CatalogModel, planned: number, requested?: number): number {
  const ctx = planned > 0 ? planned : (model.gguf.contextLength ?? 4096);
  return Math.max(ctx, requested ?? 0);
}

export function assertTextFits(model: CatalogModel, ctx: number, bytes: number): void {
  if (bytes > textLimitBytes(model, ctx))
    throw new BadRequest(
      `the prompt is too long: ${bytes} bytes of text cannot fit the ${ctx}-token context of model "${model.name}"`,
    );
}

/** Keys whose strings are media (base64 images, audio) rather than text the tokenizer reads. */
const MEDIA_KEYS = new Set(['images', 'image_url', 'input_image', 'input_audio', 'multimodal_data']);

/** The UTF-8 bytes of every string in a request body but its media. */
export function textBytes(value: unknown, depth = 0): number {
  if (typeof value === 'string') return value.startsWith('data:') ? 0 : Buffer.byteLength(value);
  if (value === null || typeof value !== 'object' || depth > 128) return 0;
  let total = 0;
  if (Array.isArray(value)) {
    for (const item of value) total += textBytes(item, depth + 1);
    return total;
  }
  const o = value as Record<string, unknown>;
  // An Anthropic image block: {type: "image", source: {type: "base64", data}}.
  if (o.type === 'base64' && typeof o.data === 'string') return 0;
  for (const [key, item] of Object.entries(o)) if (!MEDIA_KEYS.has(key)) total += textBytes(item, depth + 1);
  return total;
}
