import { ROUTE_RULES, type RouteRule } from '../../src/auth/roles.js';

const WHO: Record<RouteRule['access'], string> = {
  public: 'anyone',
  viewer: 'viewer',
  operator: 'operator',
  admin: 'admin',
};

function row(key: string, rule: RouteRule): string {
  const notes = [
    rule.keepAlive ? '`keep_alive` 0 or negative: operator' : '',
    rule.publicIf ? `anyone with \`${rule.publicIf}: true\`` : '',
    rule.audit ? `audited as \`${rule.audit}\`` : '',
  ].filter(Boolean);
  const [method, url] = key.split(' ');
  return `| \`${method} ${url}\` | ${WHO[rule.access]} | ${rule.what}${notes.length ? ` (${notes.join('; ')})` : ''} |`;
}

/** docs/roles.md, generated from the route table so the two cannot disagree (a test compares them). */
export function rolesMarkdown(rules: Readonly<Record<string, RouteRule>> = ROUTE_RULES): string {
  const entries = Object.entries(rules);
  const table = (keep: (key: string) => boolean) => [
    '| Route | Least role | What |',
    '| --- | --- | --- |',
    ...entries.filter(([key]) => keep(key)).map(([key, rule]) => row(key, rule)),
  ];
  const isAdmin = (key: string) => key.split(' ')[1]!.startsWith('/admin');
  return [
    '# Roles',
    '',
    '<!-- Generated from src/auth/roles.ts by `npm run docs`; edit the table there. -->',
    '',
    'Roles nest: an operator may do everything a viewer may, an admin everything an operator may.',
    'API routes take an API token (`Authorization: Bearer corral_…` or `x-api-key: corral_…`); the admin',
    "UI takes a login session, never a token, and its state-changing forms need the session's CSRF token.",
    'A caller that needs no token (a local client in `loopback-open` mode, everyone in `off` mode) acts as',
    'admin. A token limited to some models sees and uses only those models.',
    '',
    '## API',
    '',
    ...table((key) => !isAdmin(key)),
    '',
    '## Admin UI',
    '',
    ...table(isAdmin),
    '',
  ].join('\n');
}
