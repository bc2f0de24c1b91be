import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's Chromium (provisioned by tests/setup/provision-browser.ts); browser tests skip without it. */
export const CHROMIUM = '/usr/bin/chromium';

/** Headless Chromium with a fresh profile directory (playwright passes it as --user-data-dir). */
export function launchChromium(
  profile: string,
  opts: { args?: string[]; viewport?: { width: number; height: number } } = {},
): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...(opts.args ?? []),
    ],
    ...(opts.viewport ? { viewport: opts.viewport } : {}),
  });
}
