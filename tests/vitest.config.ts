import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['tests/**/*.test.ts'],
    exclude: ['tests/bench/**', 'node_modules/**', 'dist/**'],
    globalSetup: ['tests/setup/global-setup.ts'],
    // Files run in parallel (2 workers on these 2-core machines); each test file owns its gateways and children.
    maxWorkers: 2,
    // Files in one worker share the modules they import: Corral keeps no module-level state (no
    // singletons; every test builds its own gateways), so each worker loads Fastify, the store and the
    // rest once instead of once per file (import time 30 s → 6 s over the suite).
    isolate: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
  },
});
