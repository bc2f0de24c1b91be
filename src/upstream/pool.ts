import { createRequire } from 'node:module';
import type { Dispatcher, Pool } from 'undici';

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

/**
 * A request option: the pool sets `written` once the request is being written to a socket. Until then
 * it never left the gateway, and sending it to another llama-server cannot run it twice; after, the
 * child may have seen it (even if it was still waiting for a slot there).
 */
export const DELIVERY = Symbol('corral.delivery');
export interface Delivery {
  written: boolean;
}
type Handler = Dispatcher.DispatchHandler & { onConnect?: (...args: unknown[]) => unknown };

/** Request options that have the pool record in `delivery` whether the request was written. */
export function tracked<T extends Dispatcher.RequestOptions>(opts: T, delivery: Delivery): T {
  return Object.assign(opts, { [DELIVERY]: delivery });
}

/** A pool to one llama-server, which also says where it is (streams go there on their own connection, see stream-post.ts). */
export interface UpstreamPool extends Pool {
  readonly host: string;
  readonly port: number;
}

/** Gets request() on its own prototype, so undici's shared Dispatcher.prototype is left as it is. */
class RequestPool extends UndiciPool implements UpstreamPool {
  readonly host: string;
  readonly port: number;

  constructor(origin: string, options: Pool.Options) {
    super(origin, options);
    const url = new URL(origin);
    this.host = url.hostname;
    this.port = Number(url.port);
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Handler): boolean {
    const delivery = (opts as { [DELIVERY]?: Delivery })[DELIVERY];
    const onConnect = handler.onConnect;
    // undici calls onConnect right before it writes the request to its socket (client-h1 writeH1).
    // The handler is request()'s own, made for this one request, so it can take an own property.
    if (delivery && onConnect) {
      handler.onConnect = function (this: unknown, ...args: unknown[]) {
        delivery.written = true;
        return onConnect.apply(this, args);
      };
    }
    return super.dispatch(opts, handler);
  }
}
Object.defineProperty(RequestPool.prototype, 'request', { value: request, writable: true, configurable: true });

/** A connection pool to one upstream origin (a llama-server child). */
export function createPool(origin: string, options: Pool.Options): UpstreamPool {
  return new RequestPool(origin, options);
}
