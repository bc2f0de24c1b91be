import { connect, createServer } from 'node:net';

/**
 * The floor for CPU per streamed token: a TCP forwarder that pipes each client connection's bytes to
 * its own upstream connection and back, parsing nothing. Any HTTP gateway does more than this.
 * Usage: node raw-proxy.js <upstream port> <port>
 */
const [upstreamPort, port] = process.argv.slice(2).map(Number);

createServer((client) => {
  const upstream = connect({ host: '127.0.0.1', port: upstreamPort!, noDelay: true });
  client.setNoDelay(true);
  client.pipe(upstream).pipe(client);
  const close = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
}).listen(port, '127.0.0.1');
