import pg from 'pg';
import { StoreUnavailable } from '../../errors.js';
import { migratePostgres, type PostgresMigration } from './migrate.js';

export interface PostgresOptions {
  /** Connections this process keeps at most. */
  max?: number;
  connectTimeoutMs?: number;
  /** A query that has not answered by then fails (a stalled server must not hang requests). */
  queryTimeoutMs?: number;
  /** How often an unreachable server is tried again. */
  probeMs?: number;
  /** Called when the server stops or starts answering (with the reason when it stopped). */
  onAvailability?: (available: boolean, reason?: string) => void;
}

/**
 * One PostgreSQL connection pool and what every module with tables needs of it: queries and
 * transactions that turn a lost server into StoreUnavailable (and notice when it is back), and the
 * migration runner. Shared by the store and anything else that keeps tables there (the fleet).
 */
export interface PostgresHandle {
  readonly pool: pg.Pool;
  /** False from a failure to reach the server until a probe reaches it again. */
  readonly available: boolean;
  /** Why the server was last found unreachable. */
  readonly lastError: string | undefined;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    params?: readonly unknown[],
    name?: string,
  ): Promise<pg.QueryResult<R>>;
  /** `fn` inside BEGIN … COMMIT on one connection (ROLLBACK when it throws). */
  transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  /** See migrate.ts: `component` names whose migrations these are ("corral", "fleet", …). */
  migrate(component: string, migrations: readonly PostgresMigration[]): Promise<number[]>;
  close(): Promise<void>;
}

// BIGINT (timestamps in ms, ids, counts) as a JS number: every value Corral stores is below 2^53.
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up or shutting down)
  '53300', // too_many_connections
]);
const UNREACHABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|not queryable/i;

/** Whether `err` says the server cannot be reached (as opposed to a bad statement or a violated constraint). */
export function isUnreachable(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  if (!e) return false;
  if (e.code && (UNREACHABLE_CODES.has(e.code) || e.code.startsWith('08'))) return true;
  return UNREACHABLE_MESSAGES.test(e.message ?? '');
}

/** The URL with its password masked, for logs and messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

export function connectPostgres(url: string, options: PostgresOptions = {}): PostgresHandle {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 3000,
    query_timeout: options.queryTimeoutMs ?? 10_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: 'corral',
    types,
  });
  const health = trackAvailability(pool, options);
  return {
    pool,
    get available() {
      return health.available;
    },
    get lastError() {
      return health.lastError;
    },
    query: (text, params = [], name) =>
      health.guard(() => pool.query(name ? { name, text, values: [...params] } : { text, values: [...params] })),
    transaction: (fn) => health.guard(() => inTransaction(pool, fn)),
    migrate: (component, migrations) => health.guard(() => migratePostgres(pool, component, migrations)),
    async close() {
      health.stop();
      await pool.end();
    },
  };
}

/**
 * Whether the server answers: down at the first failure to reach it (then every call fails at once
 * rather than waiting on a timeout), up again when a probe every `probeMs` reaches it.
 */
function trackAvailability(pool: pg.Pool, options: PostgresOptions) {
  const state = { available: true, lastError: undefined as string | undefined };
  let probe: NodeJS.Timeout | undefined;
  let stopped = false;
  const up = () => {
    if (probe) clearInterval(probe);
    probe = undefined;
    if (state.available) return;
    state.available = true;
    options.onAvailability?.(true);
  };
  const down = (err: unknown) => {
    state.lastError = (err as Error).message || String((err as { code?: string }).code ?? err);
    if (!state.available || stopped) return;
    state.available = false;
    options.onAvailability?.(false, state.lastError);
    probe = setInterval(() => void pool.query('SELECT 1').then(up, () => {}), options.probeMs ?? 1000).unref();
  };
  // An idle connection the server dropped (a restart, a failover) is reported here, not to a query.
  pool.on('error', (err) => {
    if (isUnreachable(err)) down(err);
  });
  return {
    get available() {
      return state.available;
    },
    get lastError() {
      return state.lastError;
    },
    /** Runs `op`; a failure to reach the server marks it down and becomes StoreUnavailable. */
    async guard<T>(op: () => Promise<T>): Promise<T> {
      if (!state.available) throw new StoreUnavailable(`PostgreSQL is unreachable (${state.lastError})`);
      try {
        return await op();
      } catch (err) {
        if (!isUnreachable(err)) throw err;
        down(err);
        throw new StoreUnavailable(`PostgreSQL is unreachable (${state.lastError})`, { cause: err });
      }
    },
    stop() {
      stopped = true;
      if (probe) clearInterval(probe);
    },
  };
}

async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let failure: unknown;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    failure = err;
    if (!isUnreachable(err)) await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    // A connection that failed mid-transaction is discarded rather than handed to the next caller.
    client.release(failure !== undefined && isUnreachable(failure) ? (failure as Error) : undefined);
  }
}
