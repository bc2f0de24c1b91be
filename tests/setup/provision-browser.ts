import { ensureDebianPackage, provision } from './debian-package.js';

/** The browser tests drive Debian's Chromium (browser downloads do not work on these machines). */
provision('chromium', () =>
  ensureDebianPackage({ binary: '/usr/bin/chromium', pkg: 'chromium', why: 'browser for the admin-UI and edge tests' }),
);
