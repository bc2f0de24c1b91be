import { parseArgs } from 'node:util';
import { findCommand, parseOptions } from '../cli/spec.js';
import { parseDuration } from '../config/duration.js';
import { openStore, storeConfigFor } from '../store/open.js';
import type { Store } from '../store/store.js';
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

const USER_OPTIONS = parseOptions(findCommand('user')!);
const TOKEN_OPTIONS = parseOptions(findCommand('token')!);
type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;
const str = (v: Values[string]): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * The database the server uses: --db (a SQLite file or a postgres:// URL), else the store of the
 * same config the server reads (--config, CORRAL_CONFIG, config/corral.yaml), with paths relative
 * to the working directory as the server resolves them.
 */
async function withStore<T>(values: Values, fn: (store: Store) => Promise<T>): Promise<T> {
  const config = await storeConfigFor(str(values.db), str(values.config));
  const store = await openStore(config, process.cwd(), { startupWaitMs: 0 });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

const fmtTime = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());

export async function userCommand(args: string[], io: CliIo = defaultIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: USER_OPTIONS,
  });
  const [sub, username] = positionals;
  const role = str(values.role) ?? 'viewer';
  const given = str(values.password);
  return withStore(values, async (store) => {
    const accounts = createAccounts({ store, passwords: io.passwords ?? createPasswords(), now: io.now });
    const password = async () => given ?? (await io.readPassword());
    if (sub === 'list') {
      for (const u of await accounts.list()) io.out(`${u.username}\t${u.role}\t${fmtTime(u.created_at)}`);
      return 0;
    }
    if (sub === 'unlock' && username) {
      await accounts.unlock(username, 'cli');
      io.out(`login throttling of "${username}" lifted`);
      return 0;
    }
    if ((sub === 'add' || sub === 'passwd') && username) {
      if (sub === 'add') {
        if (!isRole(role)) throw new Error(`unknown role "${role}" (viewer, operator, admin)`);
        await accounts.addUser(username, await password(), role, 'cli');
        io.out(`added ${role} "${username}"`);
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
    options: TOKEN_OPTIONS,
  });
  const [sub, id] = positionals;
  const now = io.now ?? Date.now;
  const name = str(values.name);
  const roleName = str(values.role) ?? 'viewer';
  return withStore(values, async (store) => {
    if (sub === 'create' && name) {
      const role: Role | undefined = isRole(roleName) ? roleName : undefined;
      if (!role) throw new Error(`unknown role "${roleName}" (viewer, operator, admin)`);
      const positive = (v: string | undefined, what: string) => {
        if (v === undefined) return null;
        const n = Number(v);
        if (!Number.isInteger(n) || n <= 0) throw new Error(`--${what} must be a positive integer`);
        return n;
      };
      const models = str(values.models)
        ?.split(',')
        .map((m) => m.trim())
        .filter(Boolean);
      const expires = str(values.expires);
      const ttl = expires === undefined ? undefined : parseDuration(expires);
      const token = await createApiToken(
        store,
        {
          name,
          role,
          models: models?.length ? models : null,
          rpm: positive(str(values.rpm), 'rpm'),
          tpd: positive(str(values.tpd), 'tpd'),
          expiresAt: ttl === undefined || !Number.isFinite(ttl) ? null : now() + ttl,
          createdBy: 'cli',
        },
        now(),
      );
      await store.auditLog.write(
        { actor: 'cli', action: 'token.create', target: `${token.id} ${name}`, outcome: 'success' },
        now(),
      );
      io.err(`token ${token.id} "${name}" (${role}) created; it is shown only now:`);
      io.out(token.secret);
      return 0;
    }
    if (sub === 'list') {
      for (const t of await store.apiTokens.list()) {
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
      const ok = await store.apiTokens.revoke(Number(id), now());
      await store.auditLog.write(
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
