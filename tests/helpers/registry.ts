import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** A model as the registry serves it: its manifest bytes and the blobs they name. */
export interface RegistryModel {
  manifest: Buffer;
  blobs: Map<string, Buffer>;
}

export const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Builds a model in the registry's exact shapes: layers, a config blob, the manifest JSON. */
export function registryModel(layers: { mediaType: string; body: Buffer | string }[], config: object): RegistryModel {
  const blobs = new Map<string, Buffer>();
  const layer = (mediaType: string, body: Buffer | string) => {
    const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
    blobs.set(sha(b), b);
    return { mediaType, digest: sha(b), size: b.length };
  };
  const cfg = layer('application/vnd.docker.container.image.v1+json', JSON.stringify(config));
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: cfg,
    layers: layers.map((l) => layer(l.mediaType, l.body)),
  };
  return { manifest: Buffer.from(JSON.stringify(manifest)), blobs };
}

export interface Registry {
  url: string;
  /** The blob store ("CDN") that /v2/.../blobs/<digest> redirects to, on another port. */
  cdnUrl: string;
  requests: { server: 'registry' | 'cdn'; path: string; range?: string | undefined }[];
  /** Drop the connection after this many bytes, once per entry, for the next requests of a blob. */
  cutOnce: Map<string, number[]>;
  /** Serve these bytes instead of the blob (a corrupt CDN). */
  corrupt: Map<string, Buffer>;
  /** Redirect blob requests for this digest here instead of the CDN. */
  redirectTo: Map<string, string>;
  /** Hold each blob response until this resolves (to make concurrent pulls overlap). */
  gate: Promise<void> | undefined;
  /**
   * Awaited before a cut connection is dropped, with the bytes the client has been sent in all: a
   * client's stream discards what it received but had not read when the connection breaks, so a test
   * that needs an exact resume offset waits here until the client holds those bytes.
   */
  beforeCut: ((digest: string, sent: number) => Promise<void>) | undefined;
  close(): Promise<void>;
}

/**
 * A stand-in for registry.ollama.ai: the OCI distribution endpoints Ollama uses (manifests by tag,
 * blobs by digest answered with a 307 to a blob store on another host), with Range support and
 * fault switches. `models` maps `namespace/model:tag` to what is served.
 */
export async function startRegistry(models: Map<string, RegistryModel>): Promise<Registry> {
  const reg: Registry = {
    url: '',
    cdnUrl: '',
    requests: [],
    cutOnce: new Map(),
    corrupt: new Map(),
    redirectTo: new Map(),
    gate: undefined,
    beforeCut: undefined,
    close: async () => undefined,
  };
  const blob = (digest: string): Buffer | undefined => {
    for (const m of models.values()) if (m.blobs.has(digest)) return m.blobs.get(digest);
    return undefined;
  };
  const registry = createServer((req, res) => {
    const path = req.url!.split('?')[0]!;
    reg.requests.push({ server: 'registry', path, range: req.headers.range });
    const man = /^\/v2\/([^/]+)\/([^/]+)\/manifests\/([^/]+)$/.exec(path);
    if (man) {
      const m = models.get(`${man[1]}/${man[2]}:${man[3]}`);
      if (!m) return void res.writeHead(404, { 'content-type': 'application/json' }).end(notFound('MANIFEST_UNKNOWN'));
      return void res
        .writeHead(200, { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json' })
        .end(req.method === 'HEAD' ? undefined : m.manifest);
    }
    const b = /^\/v2\/[^/]+\/[^/]+\/blobs\/(sha256:[0-9a-f]{64})$/.exec(path);
    if (b && blob(b[1]!)) {
      const to = reg.redirectTo.get(b[1]!) ?? `${reg.cdnUrl}/blobs/${b[1]}`;
      return void res.writeHead(307, { location: to }).end();
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end(notFound('BLOB_UNKNOWN'));
  });
  const cdn = createServer((req, res) => void serveBlob(reg, blob, req, res));
  await Promise.all([listen(registry), listen(cdn)]);
  reg.url = `http://127.0.0.1:${(registry.address() as { port: number }).port}`;
  reg.cdnUrl = `http://127.0.0.1:${(cdn.address() as { port: number }).port}`;
  reg.close = async () => {
    registry.closeAllConnections();
    cdn.closeAllConnections();
    await Promise.all([new Promise((r) => registry.close(r)), new Promise((r) => cdn.close(r))]);
  };
  return reg;
}

async function serveBlob(
  reg: Registry,
  blob: (digest: string) => Buffer | undefined,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const path = req.url!.split('?')[0]!;
  reg.requests.push({ server: 'cdn', path, range: req.headers.range });
  const digest = /^\/blobs\/(sha256:[0-9a-f]{64})$/.exec(path)?.[1];
  const body = digest ? (reg.corrupt.get(digest) ?? blob(digest)) : undefined;
  if (!body) return void res.writeHead(404).end();
  if (reg.gate) await reg.gate;
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = m ? Number(m[1]) : 0;
  if (start > body.length) return void res.writeHead(416).end();
  const slice = body.subarray(start);
  res.writeHead(m ? 206 : 200, {
    'content-length': String(slice.length),
    'content-type': 'application/octet-stream',
    ...(m ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
  });
  const cuts = reg.cutOnce.get(digest!);
  const cut = cuts?.shift();
  if (cuts && !cuts.length) reg.cutOnce.delete(digest!);
  if (cut !== undefined) {
    res.write(slice.subarray(0, cut));
    await reg.beforeCut?.(digest!, start + cut);
    res.destroy();
    return;
  }
  res.end(slice);
}

function notFound(code: string): string {
  return JSON.stringify({ errors: [{ code, message: 'manifest unknown' }] });
}

function listen(server: Server): Promise<void> {
  return new Promise((r) => server.listen(0, '127.0.0.1', r));
}
