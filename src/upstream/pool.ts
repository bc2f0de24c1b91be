import { createRequire } from 'node:module';
import type { Pool } from 'undici';

/*
 * undici's package entry loads every dispatcher, fetch, WebSocket, EventSource, the mock and cache layers
 * (about 110 modules) although the gateway only needs a connection pool and its request() method; loading
 * just those two keeps about 6 MB out of the idle gateway's resident memory. These are the files the entry
 * itself wires together (it copies lib/api onto Dispatcher.prototype); undici has no "exports" map, so the
 * paths are reachable, and the runner tests fail at once if an upgrade moves them.
 */
const require = createRequire(import.meta.url);
const UndiciPool = require('undici/lib/dispatcher/pool.js') as typeof Pool;
const request = require('undici/lib/api/api-request.js') as unknown;

/** Gets request() on its own prototype, so undici's shared Dispatcher.prototype is left as it is. */
class RequestPool extends UndiciPool {}
Object.defineProperty(RequestPool.prototype, 'request', { value: request, writable: true, configurable: true });

/** A connection pool to one upstream origin (a llama-server child). */
export function createPool(origin: string, options: Pool.Options): Pool {
  return new RequestPool(origin, options);
}
