import { findPostgresServer } from '../helpers/postgres.js';
import { ensureDebianPackage, provision } from './debian-package.js';

/**
 * The fleet tests run real PostgreSQL servers (tests/helpers/postgres.ts), from Debian's postgresql
 * package; its own cluster service is not started (no init system runs here).
 */
provision('postgresql', async () => {
  const found = await findPostgresServer();
  await ensureDebianPackage({
    binary: found ? `${found}/postgres` : '/usr/lib/postgresql/15/bin/postgres',
    pkg: 'postgresql',
    why: 'PostgreSQL for the fleet tests',
  });
});
