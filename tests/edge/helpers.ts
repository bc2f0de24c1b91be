import { request } from 'node:http';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * One HTTP request with exactly the headers given (fetch would set Host and Origin itself), as a
 * DNS-rebound page or a hand-written client sends it.
 */
export function raw(
  base: string,
  opts: { method?: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method: opts.method ?? 'GET',
        path: opts.path,
        headers: opts.headers ?? {},
        setHost: opts.headers?.host === undefined,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export interface UploadResult {
  /** Undefined when the connection failed before any response. */
  status?: number;
  body: string;
  /** Milliseconds from the first byte sent to the response head. */
  ms: number;
  /** Bytes handed to the socket when the response came. */
  sentAtResponse: number;
  /** Whether the whole body was accepted (the server read or discarded all of it). */
  completed: boolean;
}

/**
 * POSTs `total` bytes of `fill` in 1 MiB writes, waiting for each to drain, and keeps sending after
 * the response until the body is done or the server closes the connection.
 */
export async function upload(
  base: string,
  path: string,
  total: number,
  opts: { fill?: string; headers?: Record<string, string>; chunked?: boolean } = {},
): Promise<UploadResult> {
  const url = new URL(base);
  const chunk = Buffer.alloc(Math.min(total, 1 << 20), opts.fill ?? '[');
  const headers: Record<string, string | number> = { 'content-type': 'application/json', ...opts.headers };
  if (!opts.chunked) headers['content-length'] = total;
  const result: UploadResult = { body: '', ms: 0, sentAtResponse: 0, completed: false };
  let sent = 0;
  const t0 = performance.now();
  const req = request({ host: url.hostname, port: url.port, method: 'POST', path, headers, agent: false });
  req.on('error', () => {}); // the outcome is read from the result
  req.on('finish', () => (result.completed = true));
  const closed = new Promise<void>((done) => req.once('close', () => done()));
  const answered = new Promise<void>((done) => {
    req.on('close', () => done());
    req.on('response', (res) => {
      result.status = res.statusCode;
      result.ms = performance.now() - t0;
      result.sentAtResponse = sent;
      res.setEncoding('utf8');
      res.on('data', (c: string) => (result.body += c));
      res.on('end', done);
      res.on('error', () => done());
    });
  });
  while (sent < total && !req.destroyed) {
    const ok = req.write(chunk);
    sent += chunk.length;
    if (!ok) await Promise.race([new Promise((done) => req.once('drain', done)), closed]);
  }
  if (!req.destroyed) req.end();
  await Promise.all([answered, closed]);
  return result;
}
