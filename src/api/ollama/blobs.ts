import type { FastifyInstance } from 'fastify';
import type { Readable } from 'node:stream';
import { BadRequest } from '../../errors.js';
import { writeBlob } from '../../ollama-store/blob-writer.js';
import { parseDigest } from '../../ollama-store/names.js';
import type { ManageContext } from './manage-context.js';

interface DigestParams {
  digest: string;
}

function digestOf(params: DigestParams): string {
  const d = parseDigest(params.digest);
  if (!d) throw new BadRequest('invalid digest format');
  return d;
}

/**
 * HEAD and POST /api/blobs/sha256:<hex>, what `ollama create` uses to upload a local GGUF before
 * naming it in /api/create's `files`. Bodies stream to disk (no size limit but the disk's), and are
 * kept only when their sha256 is the digest in the URL.
 */
export function registerBlobRoutes(app: FastifyInstance, ctx: ManageContext): void {
  void app.register(async (scope) => {
    // The body is the blob itself, in any content type: handed over as the raw stream, not parsed.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

    scope.head<{ Params: DigestParams }>('/api/blobs/:digest', async (request, reply) => {
      const digest = digestOf(request.params);
      for (const store of ctx.stores().all) if (await store.hasBlob(digest)) return reply.code(200).send();
      return reply.code(404).send({ error: `blob "${request.params.digest}" not found` });
    });

    scope.post<{ Params: DigestParams }>('/api/blobs/:digest', async (request, reply) => {
      const digest = digestOf(request.params);
      request.auditTarget = digest;
      const target = ctx.stores().target;
      if (await target.hasBlob(digest)) return reply.code(200).send();
      const length = Number(request.headers['content-length']);
      const body = (request.body as Readable | undefined) ?? request.raw;
      try {
        await writeBlob(target, digest, body, {
          size: Number.isFinite(length) ? length : undefined,
          reserve: ctx.reserve(),
        });
      } catch (err) {
        // A client answers only once its body is sent: the rest is read and dropped, then the connection closed.
        reply.header('connection', 'close');
        request.raw.resume();
        throw err;
      }
      return reply.code(201).send();
    });
  });
}
