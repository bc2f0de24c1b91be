/**
 * Typed errors, mapped in one place (see api/error-handler.ts) to a status code and to Ollama's
 * `{"error": "..."}` body or OpenAI's `{"error": {"message","type","code"}}` body.
 */
export class CorralError extends Error {
  readonly status: number = 500;
  /** OpenAI error `type`. */
  readonly type: string = 'server_error';
  /** Extra response headers, e.g. Retry-After. */
  headers: Record<string, string> = {};
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class BadRequest extends CorralError {
  override readonly status = 400;
  override readonly type = 'invalid_request_error';
}

export class Unauthorized extends CorralError {
  override readonly status = 401;
  override readonly type = 'authentication_error';
}

export class Forbidden extends CorralError {
  override readonly status = 403;
  override readonly type = 'permission_error';
}

export class ModelNotFound extends CorralError {
  override readonly status = 404;
  override readonly type = 'not_found_error';
  /** `why` replaces the pull hint when the catalogue knows better, e.g. shards of a split model are missing. */
  constructor(
    readonly model: string,
    why?: string,
  ) {
    super(why ? `model "${model}" not found: ${why}` : `model "${model}" not found, try pulling it first`);
  }
}

export class NotFound extends CorralError {
  override readonly status = 404;
  override readonly type = 'not_found_error';
}

export class Conflict extends CorralError {
  override readonly status = 409;
  override readonly type = 'invalid_request_error';
}

export class RateLimited extends CorralError {
  override readonly status = 429;
  override readonly type = 'rate_limit_error';
  constructor(message: string, retryAfterSeconds: number) {
    super(message);
    this.headers = { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) };
  }
}

export class NotImplemented extends CorralError {
  override readonly status = 501;
  override readonly type = 'not_implemented';
}

/** A llama-server failed to start or died; the message carries the child's own error line. */
export class ModelLoadFailed extends CorralError {
  override readonly status = 500;
  override readonly type = 'server_error';
}

/**
 * The model's llama-server died while the request waited in Corral's queue for a slot. The request
 * never reached it, so the scheduler acquires once more on a fresh runner before this reaches a client.
 */
export class RunnerCrashed extends ModelLoadFailed {}

/** The upstream llama-server answered with an error or broke the connection. */
export class UpstreamError extends CorralError {
  override readonly status: number = 500;
  override readonly type: string = 'server_error';
  constructor(message: string, status = 500, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
    if (status < 500) this.type = 'invalid_request_error';
  }
}

/** No answer came from llama-server. `delivered` says whether the request had been written to it. */
export class UpstreamUnreachable extends UpstreamError {
  constructor(
    message: string,
    readonly delivered: boolean,
    options?: ErrorOptions,
  ) {
    super(message, 502, options);
  }
}

export class QueueFull extends CorralError {
  override readonly status = 503;
  override readonly type = 'server_error';
  constructor(message: string, retryAfterSeconds = 1) {
    super(message);
    this.headers = { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) };
  }
}

/** A model that can never fit under the configured limits: answering at once beats thrashing. */
export class InsufficientMemory extends CorralError {
  override readonly status = 507;
  override readonly type = 'server_error';
}

/** Not enough disk for a pull; checked before the download starts. */
export class InsufficientStorage extends CorralError {
  override readonly status = 507;
  override readonly type = 'server_error';
}

/** A download whose sha256 differs from what its source published. */
export class ChecksumMismatch extends CorralError {
  override readonly status = 502;
  override readonly type = 'server_error';
}

/**
 * The database (PostgreSQL) does not answer: the request is refused rather than served without the
 * check or record it needed. Clients may retry; the gateway recovers by itself when it answers again.
 */
export class StoreUnavailable extends CorralError {
  override readonly status = 503;
  override readonly type = 'server_error';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.headers = { 'retry-after': '5' };
  }
}

export class ShuttingDown extends CorralError {
  override readonly status = 503;
  override readonly type = 'server_error';
}

/** The client went away; nothing is sent. */
export class ClientGone extends CorralError {
  override readonly status = 499;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class UnsupportedMediaType extends CorralError {
  override readonly status = 415;
  override readonly type = 'invalid_request_error';
}
