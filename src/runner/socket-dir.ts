import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The private directory the children's Unix sockets live in: mode 0700 (mkdtemp's), so only the
 * gateway's user can reach a child; one per gateway, removed when it closes.
 */
export interface SocketDir {
  path: string;
  /** A fresh socket path inside the directory. */
  socketPath(name: string): string;
  remove(): void;
}

/** sun_path holds 108 bytes with its terminating NUL; a socket path must stay shorter. */
export const MAX_SOCKET_PATH = 107;
/** Room for a socket name (see runner.ts: 12 hex digits and ".sock"). */
const NAME_ROOM = 20;

const prefix = (): string => `corral-${process.getuid?.() ?? 'u'}-`;

/**
 * Creates the directory under $XDG_RUNTIME_DIR (a per-user tmpfs) when there is one, else the system
 * temporary directory, else /tmp: the first whose path leaves room for socket names under the limit.
 * Directories of this user's gateways that are gone (killed with -9) are removed first. Returns
 * undefined when none can be made (the runner then falls back to TCP with a key).
 */
export function createSocketDir(env: NodeJS.ProcessEnv = process.env): SocketDir | undefined {
  const bases = [env.XDG_RUNTIME_DIR, tmpdir(), '/tmp'].filter((b): b is string => Boolean(b));
  for (const base of new Set(bases)) {
    if (Buffer.byteLength(join(base, `${prefix()}${process.pid}-XXXXXX`)) + NAME_ROOM > MAX_SOCKET_PATH) continue;
    removeAbandoned(base);
    try {
      const path = mkdtempSync(join(base, `${prefix()}${process.pid}-`));
      if ((statSync(path).mode & 0o777) !== 0o700) throw new Error(`${path} is not private`);
      return {
        path,
        socketPath: (name) => join(path, name),
        remove: () => rmSync(path, { recursive: true, force: true }),
      };
    } catch {
      // not writable here: try the next base
    }
  }
  return undefined;
}

/** Socket directories of this user's gateways whose process is gone (their children died with them). */
function removeAbandoned(base: string): void {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix())) continue;
    const pid = Number(name.slice(prefix().length).split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || alive(pid)) continue;
    rmSync(join(base, name), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
