import type { EventEmitter } from 'node:events';
import { ClientGone } from '../errors.js';

/** Waits for a promise the caller does not own (a shared load), giving up when the client goes away. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(new ClientGone('client disconnected'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new ClientGone('client disconnected while the model was loading'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e as Error);
      },
    );
  });
}

/** Resolves at the emitter's next `event`, or after `timeoutMs`, whichever comes first. */
export function nextEvent(emitter: EventEmitter, event: string, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      emitter.off(event, done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    emitter.on(event, done);
  });
}
