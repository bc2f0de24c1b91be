import type { FastifyInstance } from 'fastify';

export interface Session {
  cookie: string;
  csrf: string;
}

/** Loads a page and returns the CSRF cookie and token it hands out, as a browser would keep them. */
export async function session(app: FastifyInstance, headers: Record<string, string> = {}): Promise<Session> {
  const res = await app.inject({ method: 'GET', url: '/admin/login', headers });
  const setCookie = res.headers['set-cookie'];
  const first = (Array.isArray(setCookie) ? setCookie[0] : setCookie) ?? '';
  const cookie = first.split(';')[0] ?? '';
  const csrf = /name="csrf-token" content="([^"]+)"/.exec(res.body)?.[1] ?? '';
  return { cookie, csrf };
}

export function form(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
