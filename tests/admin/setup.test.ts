import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureAdmin } from '../../src/auth/bootstrap.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { form } from './helpers.js';

let t: TestGateway;
beforeAll(async () => {
  t = await startGateway();
});
afterAll(async () => t?.close());

it('the first-run setup URL shows a form that creates the admin and logs them in, once', async () => {
  const silent = { info: () => {}, warn: () => {} };
  const boot = await ensureAdmin(t.gw.store, {}, silent);
  if (boot.status !== 'setup') throw new Error(`expected a setup URL, got ${boot.status}`);
  const page = await fetch(`${t.url}${boot.url}`, { headers: { accept: 'text/html' } });
  expect(page.status).toBe(200);
  const html = await page.text();
  const token = new URL(boot.url, t.url).searchParams.get('token')!;
  expect(html).toContain('action="/admin/setup"');
  expect(html).toContain(`name="token" value="${token}"`);

  const submit = () =>
    fetch(`${t.url}/admin/setup`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form({ token, username: 'root', password: 'a-good-password' }),
    });
  const created = await submit();
  expect(created.status).toBe(303);
  expect(created.headers.get('location')).toBe('/admin');
  const cookie = created.headers.get('set-cookie')!.split(';')[0]!;
  const dashboard = await fetch(`${t.url}/admin`, { headers: { cookie, accept: 'text/html' } });
  expect(dashboard.status).toBe(200);
  expect(await dashboard.text()).toContain('root (admin)');
  expect((await submit()).status).toBe(403);
});
