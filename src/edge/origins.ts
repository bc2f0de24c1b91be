/**
 * The browser origins allowed to call Corral, as Ollama allows them by default (OLLAMA_ORIGINS):
 * pages on localhost, 127.0.0.1 and 0.0.0.0 on any port, and desktop/editor app schemes. Configured
 * origins are added to these, as OLLAMA_ORIGINS adds to Ollama's.
 */
export const DEFAULT_ALLOWED_ORIGINS: readonly string[] = [
  ...['localhost', '127.0.0.1', '0.0.0.0'].flatMap((host) => [
    `http://${host}`,
    `https://${host}`,
    `http://${host}:*`,
    `https://${host}:*`,
  ]),
  'app://*',
  'file://*',
  'tauri://*',
  'vscode-webview://*',
  'vscode-file://*',
];

const escapeRegExp = (text: string) => text.replace(/[.+?^${}()|[\]\\]/g, '\\$&');

/** `*` stands for any run of characters within one origin (not a path); a lone `*` allows every origin. */
export function createOriginMatcher(configured: readonly string[]): (origin: string) => boolean {
  const patterns = [...DEFAULT_ALLOWED_ORIGINS, ...configured].map((p) => p.trim().replace(/\/+$/, ''));
  if (patterns.includes('*')) return () => true;
  const exact = new Set(patterns.filter((p) => !p.includes('*')).map((p) => p.toLowerCase()));
  const globs = patterns
    .filter((p) => p.includes('*'))
    .map((p) => new RegExp(`^${p.split('*').map(escapeRegExp).join('[^/]*')}$`, 'i'));
  return (origin) => exact.has(origin.toLowerCase()) || globs.some((re) => re.test(origin));
}

/** An Origin naming the host the request was sent to is the page's own origin, whatever the scheme. */
export function isSameOrigin(origin: string, host: string | undefined): boolean {
  if (!host) return false;
  const m = /^[a-z][a-z0-9+.-]*:\/\/(.+)$/i.exec(origin);
  if (!m) return false;
  const originHost = m[1]!.toLowerCase();
  const requestHost = host.toLowerCase();
  return originHost === requestHost || originHost === requestHost.replace(/:(80|443)$/, '');
}
