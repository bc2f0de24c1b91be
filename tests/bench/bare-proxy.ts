import { createServer } from 'node:http';
import { Pool } from 'undici';

/**
 * The floor for any Node gateway: a 20-line reverse proxy with no routing, parsing, auth or metrics,
 * piping llama-server's answer back as Corral does. The bench runs it as its own process so the
 * difference between it and direct llama-server is the price of one more hop on this machine.
 * Usage: node bare-proxy.js <upstream base URL> <port>
 */
const [upstream, port] = process.argv.slice(2);
const pool = new Pool(upstream!, { connections: 512, keepAliveTimeout: 4000 });

createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = chunks.length ? Buffer.concat(chunks) : undefined;
    pool
      .request({
        path: req.url!,
        method: req.method as 'GET',
        headers: { 'content-type': 'application/json' },
        body,
        headersTimeout: 0,
        bodyTimeout: 0,
      })
      .then(
        (up) => {
          res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? 'application/json') });
          up.body.pipe(res);
        },
        (err: Error) => res.writeHead(502).end(err.message),
      );
  });
}).listen(Number(port), '127.0.0.1');
