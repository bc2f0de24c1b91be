import { Transform, type Readable } from 'node:stream';

/** llama-server's last event (or whole non-stream answer) carries `timings` with these counts. */
const PROMPT = /"prompt_n":(\d+)/g;
const PREDICTED = /"predicted_n":(\d+)/g;
const USAGE_PROMPT = /"prompt_tokens":(\d+)/g;
const TAIL_BYTES = 8192;

function lastMatch(re: RegExp, text: string): number | undefined {
  let value: number | undefined;
  for (const m of text.matchAll(re)) value = Number(m[1]);
  return value;
}

/**
 * Passes a byte stream through untouched while noting its first chunk and, at the end, reading token
 * counts from its last few KB. Nothing is parsed per token, so piping stays byte-for-byte. (A Transform
 * rather than a 'data' listener: a listener would start the flow before the reply pipes it.)
 */
export function tapUsage(body: Readable, onFirst: () => void, onUsage: (prompt: number, generated: number) => void): Readable {
  let first = true;
  let tail: Buffer[] = [];
  let tailBytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (first) {
        first = false;
        onFirst();
      }
      tail.push(chunk);
      tailBytes += chunk.length;
      while (tail.length > 1 && tailBytes - tail[0]!.length >= TAIL_BYTES) tailBytes -= tail.shift()!.length;
      cb(null, chunk);
    },
    flush(cb) {
      const text = Buffer.concat(tail).toString('latin1');
      tail = [];
      const predicted = lastMatch(PREDICTED, text);
      const prompt = lastMatch(PROMPT, text) ?? lastMatch(USAGE_PROMPT, text);
      if (prompt !== undefined || predicted !== undefined) onUsage(prompt ?? 0, predicted ?? 0);
      cb();
    },
  });
  body.on('error', (err) => tap.destroy(err));
  tap.on('close', () => {
    if (!body.destroyed) body.destroy();
  });
  return body.pipe(tap);
}
