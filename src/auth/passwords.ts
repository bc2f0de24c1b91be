// bcrypt is a native addon needed only when someone logs in or a password is set: load it then,
// which keeps it out of an idle gateway's memory.
type Bcrypt = typeof import('bcrypt');
let bcryptModule: Promise<Bcrypt> | undefined;
const loadBcrypt = (): Promise<Bcrypt> =>
  (bcryptModule ??= import('bcrypt').then((m) => (m as Bcrypt & { default?: Bcrypt }).default ?? m));
const bcrypt = {
  hash: async (data: string, cost: number) => (await loadBcrypt()).hash(data, cost),
  compare: async (data: string, hash: string) => (await loadBcrypt()).compare(data, hash),
};

export const DEFAULT_BCRYPT_COST = 12;

export interface Passwords {
  readonly cost: number;
  hash(password: string): Promise<string>;
  verify(password: string, hash: string): Promise<boolean>;
  /** Spends the same time as a real check, so a missing user cannot be told from a wrong password. */
  verifyNobody(password: string): Promise<false>;
}

export const MIN_PASSWORD_LENGTH = 8;

export function validatePassword(password: string): string | undefined {
  if (password.length < MIN_PASSWORD_LENGTH) return `password must be at least ${MIN_PASSWORD_LENGTH} characters`;
  // bcrypt ignores everything after 72 bytes; refuse rather than silently truncate.
  if (Buffer.byteLength(password) > 72) return 'password must be at most 72 bytes';
  return undefined;
}

/** The cost is injectable because cost 12 takes ~250 ms a hash, too slow for most tests. */
export function createPasswords(cost = DEFAULT_BCRYPT_COST): Passwords {
  let dummy: Promise<string> | undefined;
  return {
    cost,
    hash: (password) => bcrypt.hash(password, cost),
    verify: (password, hash) => bcrypt.compare(password, hash),
    async verifyNobody(password) {
      dummy ??= bcrypt.hash('not a real password', cost);
      await bcrypt.compare(password, await dummy);
      return false;
    },
  };
}
