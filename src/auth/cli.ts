import { parseArgs } from 'node:util';
import { parseDuration } from '../config/duration.js';
import { openDatabase, type Store } from '../store/database.js';
import { createAccounts } from './accounts.js';
import { createPasswords, type Passwords } from './passwords.js';
import { isRole, type Role } from './principal.js';
import { createApiToken } from './tokens.js';

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  /** A password from the user: --password, CORRAL_PASSWORD, or the first line of stdin. */
  readPassword(): Promise<string>;
  passwords?: Passwords;
  now?: () => number;
}

export const defaultIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  async readPassword() {
    if (process.env.CORRAL_PASSWORD) return process.env.CORRAL_PASSWORD;
    if (process.stdin.isTTY) process.stderr.write('password: ');
    let text = '';
    for await (const chunk of process.stdin) {
      text += String(chunk);
      if (text.includes('\n')) break;
    }
    return text.split(/\r?\n/)[0] ?? '';
  },
};

const COMMON = { db: { type: 'string', default: 'data/corral.db' } } as const;

function withStore<T>(db: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = openDatabase(db);
  return fn(store).finally(() => store.close());
}

const fmtTime = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());

export async function userCommand(args: string[], io: CliIo = defaultIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...COMMON, role: { type: 'string', default: 'viewer' }, password: { type: 'string' } },
  });
  const [sub, username] = positionals;
  return withStore(values.db, async (store) => {
    const accounts = createAccounts({ store, passwords: io.passwords ?? createPasswords(), now: io.now });
    const password = async () => values.password ?? (await io.readPassword());
    if (sub === 'list') {
      for (const u of accounts.list()) io.out(`${u.username}\t${u.role}\t${fmtTime(u.created_at)}`);
      return 0;
    }
    if (sub === 'unlock' && username) {
      accounts.unlock(username, 'cli');
      io.out(`login throttling of "${username}" lifted`);
      return 0;
    }
    if ((sub === 'add' || sub === 'passwd') && username) {
      if (sub === 'add') {
        if (!isRole(values.role)) throw new Error(`unknown role "${values.role}" (viewer, operator, admin)`);
        await accounts.addUser(username, await password(), values.role, 'cli');
        io.out(`added ${values.role} "${username}"`);
      } else {
        await accounts.setPassword(username, await password(), 'cli');
        io.out(`password of "${username}" changed; its sessions were ended`);
      }
      return 0;
    }
    io.err(
      'usage: corral user add NAME [--role viewer|operator|admin] [--password PW] | passwd NAME | unlock NAME | list' +
        '  [--db PATH]',
    );
    return 2;
  });
}

export async function tokenCommand(args: string[], io: CliIo = defaultIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...COMMON,
      name: { type: 'string' },
      role: { type: 'string', default: 'viewer' },
      models: { type: 'string' },
      expires: { type: 'string' },
      rpm: { type: 'string' },
      tpd: { type: 'string' },
    },
  });
  const [sub, id] = positionals;
  const now = io.now ?? Date.now;
  return withStore(values.db, async (store) => {
    if (sub === 'create' && values.name) {
      const role: Role | undefined = isRole(values.role) ? values.role : undefined;
      if (!role) throw new Error(`unknown role "${values.role}" (viewer, operator, admin)`);
      const positive = (v: string | undefined, what: string) => {
        if (v === undefined) return null;
        const n = Number(v);
        if (!Number.isInteger(n) || n <= 0) throw new Error(`--${what} must be a positive integer`);
        return n;
      };
      const models = values.models
        ?.split(',')
        .map((m) => m.trim())
        .filter(Boolean);
      const ttl = values.expires === undefined ? undefined : parseDuration(values.expires);
      const token = createApiToken(
        store,
        {
          name: values.name,
          role,
          models: models?.length ? models : null,
          rpm: positive(values.rpm, 'rpm'),
          tpd: positive(values.tpd, 'tpd'),
          expiresAt: ttl === undefined || !Number.isFinite(ttl) ? null : now() + ttl,
          createdBy: 'cli',
        },
        now(),
      );
      store.auditLog.write(
        { actor: 'cli', action: 'token.create', target: `${token.id} ${values.name}`, outcome: 'success' },
        now(),
      );
      io.err(`token ${token.id} "${values.name}" (${role}) created; it is shown only now:`);
      io.out(token.secret);
      return 0;
    }
    if (sub === 'list') {
      for (const t of store.apiTokens.list()) {
        const state =
          t.revoked_at !== null ? 'revoked' : t.expires_at !== null && t.expires_at <= now() ? 'expired' : 'active';
        io.out(
          [
            t.id,
            t.name,
            t.role,
            state,
            t.models?.join(',') ?? '*',
            t.rpm ?? '-',
            t.tpd ?? '-',
            fmtTime(t.expires_at),
            fmtTime(t.last_used_at),
          ].join('\t'),
        );
      }
      return 0;
    }
    if (sub === 'revoke' && id) {
      const ok = store.apiTokens.revoke(Number(id), now());
      store.auditLog.write(
        { actor: 'cli', action: 'token.revoke', target: id, outcome: ok ? 'success' : 'failure' },
        now(),
      );
      (ok ? io.out : io.err)(ok ? `token ${id} revoked` : `no active token ${id}`);
      return ok ? 0 : 1;
    }
    io.err(
      'usage: corral token create --name N [--role R] [--models a,b] [--expires 30d] [--rpm N] [--tpd N] | list | revoke ID  [--db PATH]',
    );
    return 2;
  });
}
