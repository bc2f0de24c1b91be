import { basename } from 'node:path';
import { parseSplitName } from './split.js';

export function isProjector(file: string): boolean {
  return /mmproj/i.test(basename(file));
}

/** Name stem without extension, quantisation, `mmproj` and punctuation: `mmproj-Qwen2.5-VL-7B-f16` → `qwen25vl7b`. */
function stem(file: string): string {
  return basename(file)
    .replace(/\.gguf$/i, '')
    .replace(/mmproj/gi, '')
    .replace(/[-_.](?:i?q\d\w*|f16|f32|bf16)$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '');
}

function sharedPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/**
 * The projector that belongs to `model`, among the GGUF files of its directory. A projector only
 * works with the model it was trained for (llama-server refuses a width mismatch), so a folder with
 * several models pairs by name (`mmproj-Foo-f16.gguf` ↔ `Foo-Q4_K_M.gguf`); a folder holding one model
 * (a Hugging Face repo, a pulled model) takes its projector whatever it is called (`mmproj-model-f16.gguf`).
 */
export function pairProjector(model: string, siblings: string[]): string | undefined {
  const ggufs = siblings.filter((f) => /\.gguf$/i.test(f));
  const projectors = ggufs.filter(isProjector).sort();
  if (projectors.length === 0) return undefined;
  // A split model's later shards are not models of their own.
  const models = ggufs.filter((f) => !isProjector(f) && (parseSplitName(f)?.index ?? 0) === 0);
  if (models.length <= 1) return projectors[0];
  const want = stem(model);
  let best: { file: string; score: number } | undefined;
  for (const p of projectors) {
    const s = stem(p);
    const score = s.length >= 4 && want.startsWith(s) ? s.length : sharedPrefix(s, want);
    if (score >= Math.min(8, s.length) && score > (best?.score ?? 0)) best = { file: p, score };
  }
  return best?.file;
}
