import { ensureDebianPackage, provision } from './debian-package.js';

/**
 * tests/deploy/alert-rules.test.ts checks deploy/prometheus/alerts.yaml with promtool, which comes with
 * Debian's prometheus package (its service is not started: no init system runs here).
 */
provision('promtool', () =>
  ensureDebianPackage({
    binary: '/usr/bin/promtool',
    pkg: 'prometheus',
    why: 'promtool for the alert-rule tests (deploy/prometheus/alerts.yaml)',
  }),
);
