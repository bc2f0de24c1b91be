import { PassThrough } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { errorMessage } from '../../errors.js';
import type { PullProgress } from '../../models/pull.js';

/**
 * Writes NDJSON progress lines as they come, or only the last one for `stream: false` (errors then
 * keep their status). An error after the stream started is its final `{"error"}` line.
 */
export async function progressReply(
  reply: FastifyReply,
  stream: boolean,
  run: (emit: (p: PullProgress) => void) => Promise<void>,
): Promise<FastifyReply> {
  if (!stream) {
    await run(() => undefined);
    return reply.send({ status: 'success' });
  }
  const out = new PassThrough();
  reply.header('content-type', 'application/x-ndjson').send(out);
  run((p) => out.write(`${JSON.stringify(p)}\n`))
    .catch((err) => out.write(`${JSON.stringify({ error: errorMessage(err) })}\n`))
    .finally(() => out.end());
  return reply;
}
