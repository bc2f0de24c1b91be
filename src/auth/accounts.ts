import { BadRequest, Conflict, NotFound } from '../errors.js';
import type { Store } from '../store/store.js';
import type { UserRow } from '../store/users.js';
import { validatePassword, type Passwords } from './passwords.js';
import { isRole, type Role } from './principal.js';

const USERNAME = /^[A-Za-z0-9_.@-]{1,64}$/;

/** Settings key of the time a user's login throttling was last lifted (read by the running server). */
const unlockKey = (username: string) => `login_unlocked_at:${username.toLowerCase()}`;

export async function unlockedAt(store: Store, username: string): Promise<number> {
  return Number((await store.settings.get(unlockKey(username))) ?? 0);
}

/** User management shared by the CLI, the bootstrap and (later) the admin UI; every change is audited. */
export function createAccounts(deps: { store: Store; passwords: Passwords; now?: () => number }) {
  const { store, passwords } = deps;
  const now = deps.now ?? Date.now;
  const audit = (actor: string, action: string, target: string, outcome: 'success' | 'failure', ip?: string) =>
    store.auditLog.write({ actor, action, target, outcome, ip: ip ?? null }, now());

  const mustFind = async (username: string) => {
    const user = await store.users.findByUsername(username);
    if (!user) throw new NotFound(`no user "${username}"`);
    return user;
  };

  return {
    async addUser(username: string, password: string, role: Role, actor = 'system'): Promise<number> {
      if (!USERNAME.test(username)) throw new BadRequest('username may use letters, digits and _ . @ - (at most 64)');
      if (!isRole(role)) throw new BadRequest(`unknown role "${String(role)}"`);
      const problem = validatePassword(password);
      if (problem) throw new BadRequest(problem);
      if (await store.users.findByUsername(username)) throw new Conflict(`user "${username}" already exists`);
      const id = await store.users.create(username, await passwords.hash(password), role, now());
      await audit(actor, 'user.add', `${username} (${role})`, 'success');
      return id;
    },

    /** Also ends every session of the user: whoever knew the old password is logged out. */
    async setPassword(username: string, password: string, actor = 'system'): Promise<void> {
      const problem = validatePassword(password);
      if (problem) throw new BadRequest(problem);
      const user = await mustFind(username);
      await store.users.setPasswordHash(user.id, await passwords.hash(password), now());
      await store.sessions.revokeAllForUser(user.id, now());
      await store.settings.set(unlockKey(username), String(now()));
      await audit(actor, 'user.passwd', username, 'success');
    },

    async setRole(username: string, role: Role, actor = 'system'): Promise<void> {
      if (!isRole(role)) throw new BadRequest(`unknown role "${String(role)}"`);
      const user = await mustFind(username);
      if (user.role === 'admin' && role !== 'admin' && (await store.users.adminCount()) <= 1) {
        throw new Conflict('cannot demote the last admin');
      }
      await store.users.setRole(user.id, role, now());
      await audit(actor, 'user.role', `${username} (${role})`, 'success');
    },

    /** A disabled user cannot log in and loses every session at once; re-enabling restores the login. */
    async setDisabled(username: string, disabled: boolean, actor = 'system'): Promise<void> {
      const user = await mustFind(username);
      if (disabled && user.role === 'admin' && !user.disabled && (await store.users.adminCount()) <= 1) {
        throw new Conflict('cannot disable the last admin');
      }
      await store.users.setDisabled(user.id, disabled, now());
      if (disabled) await store.sessions.revokeAllForUser(user.id, now());
      await audit(actor, disabled ? 'user.disable' : 'user.enable', username, 'success');
    },

    /** Lifts the login throttling of the user, from every address (e.g. after a password reset). */
    async unlock(username: string, actor = 'system'): Promise<void> {
      await mustFind(username);
      await store.settings.set(unlockKey(username), String(now()));
      await audit(actor, 'user.unlock', username, 'success');
    },

    async deleteUser(username: string, actor = 'system'): Promise<void> {
      const user = await mustFind(username);
      if (user.role === 'admin' && (await store.users.adminCount()) <= 1) {
        throw new Conflict('cannot delete the last admin');
      }
      await store.users.delete(user.id); // sessions go with it (ON DELETE CASCADE)
      await audit(actor, 'user.delete', username, 'success');
    },

    /** The user on a correct password, else null; takes as long for unknown users as for known ones. */
    async authenticate(username: string, password: string): Promise<UserRow | null> {
      const user = await store.users.findByUsername(username);
      if (!user) return passwords.verifyNobody(password).then(() => null);
      // A disabled account answers exactly like a wrong password, after the same bcrypt work.
      return (await passwords.verify(password, user.password_hash)) && !user.disabled ? user : null;
    },

    list: () => store.users.list(),
  };
}

export type Accounts = ReturnType<typeof createAccounts>;
