import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** Imitates the two Hugging Face endpoints Corral uses, plus fault switches per file. */
export interface Hub {
  server: Server;
  url: string;
  requests: { path: string; range?: string | undefined }[];
  /** Cut the connection after this many bytes, once, for the next download of a file. */
  cutOnce: Map<string, number>;
  /** Publish a wrong sha256 for these files. */
  lie: Set<string>;
}

export async function startHub(files: Record<string, Buffer>): Promise<Hub> {
  const hub: Hub = {
    server: undefined as unknown as Server,
    url: '',
    requests: [],
    cutOnce: new Map(),
    lie: new Set(),
  };
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  hub.server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent(req.url!.split('?')[0]!);
    hub.requests.push({ path, range: req.headers.range });
    const api = /^\/api\/models\/([^/]+\/[^/]+)$/.exec(path);
    if (api) {
      const repo = api[1]!;
      const siblings = Object.entries(files)
        .filter(([k]) => k.startsWith(`${repo}/`))
        .map(([k, b]) => ({
          rfilename: k.slice(repo.length + 1),
          size: b.length,
          lfs: { sha256: hub.lie.has(k) ? '0'.repeat(64) : sha(b), size: b.length },
        }));
      if (!siblings.length) return void res.writeHead(404).end('{"error":"Repository not found"}');
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ id: repo, siblings: [{ rfilename: 'README.md' }, ...siblings] }));
    }
    const dl = /^\/([^/]+\/[^/]+)\/resolve\/main\/(.+)$/.exec(path) ?? /^\/plain\/(.+)$/.exec(path);
    const key = dl ? (dl[2] ? `${dl[1]}/${dl[2]}` : dl[1]!) : '';
    const body = files[key];
    if (!body) return void res.writeHead(404).end('not found');
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m) start = Number(m[1]);
    const slice = body.subarray(start);
    res.writeHead(m ? 206 : 200, {
      'content-length': String(slice.length),
      'content-type': 'application/octet-stream',
      ...(m ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    });
    const cut = hub.cutOnce.get(key);
    if (cut !== undefined) {
      hub.cutOnce.delete(key);
      res.write(slice.subarray(0, cut), () => res.destroy());
      return;
    }
    res.end(slice);
  });
  await new Promise<void>((r) => hub.server.listen(0, '127.0.0.1', r));
  const addr = hub.server.address() as { port: number };
  hub.url = `http://127.0.0.1:${addr.port}`;
  return hub;
}
