import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { raw } from './helpers.js';

let t: TestGateway;
let port: string;
const fixtures = inject('fixtures');
const show = JSON.stringify({ model: 'tiny' });

beforeAll(async () => {
  t = await startGateway({
    server: { allowed_hosts: ['corral.internal', '*.corral.test'], allowed_origins: ['https://chat.example.org'] },
    models: { tiny: { path: fixtures.models.chat } },
  });
  port = new URL(t.url).port;
});
afterAll(async () => t?.close());

describe('Host check while loopback-open (DNS rebinding)', () => {
  it('refuses a request to 127.0.0.1 that names a foreign host', async () => {
    for (const host of [
      `evil.example:${port}`,
      'evil.example',
      `localhost.evil.example:${port}`,
      'corral.internal.evil',
    ]) {
      const res = await raw(t.url, { path: '/api/tags', headers: { host } });
      expect(res.status, host).toBe(403);
      expect(JSON.parse(res.body).error).toContain('not allowed');
    }
    // Nothing reached the model either.
    const post = await raw(t.url, {
      method: 'POST',
      path: '/api/generate',
      headers: { host: `rebind.example:${port}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', prompt: '' }),
    });
    expect(post.status).toBe(403);
    expect(t.gw.scheduler.loaded()).toHaveLength(0);
  });

  it('accepts loopback names, IP addresses and the configured hosts', async () => {
    for (const host of [
      `localhost:${port}`,
      `127.0.0.1:${port}`,
      `[::1]:${port}`,
      `app.localhost:${port}`,
      `corral.internal:${port}`,
      `api.corral.test:${port}`,
      `192.0.2.10:${port}`,
    ]) {
      const res = await raw(t.url, { path: '/api/tags', headers: { host } });
      expect(res.status, host).toBe(200);
    }
  });
});

describe('Origin allow-list', () => {
  it('refuses requests from origins that are not allowed', async () => {
    for (const origin of ['https://evil.example', 'http://localhost.evil.example', 'null', 'chrome-extension://abc']) {
      const get = await raw(t.url, { path: '/api/tags', headers: { origin } });
      expect(get.status, origin).toBe(403);
      expect(get.headers['access-control-allow-origin']).toBeUndefined();
      const post = await raw(t.url, {
        method: 'POST',
        path: '/api/generate',
        headers: { origin, 'content-type': 'text/plain' },
        body: JSON.stringify({ model: 'tiny', prompt: '' }),
      });
      expect(post.status, origin).toBe(403);
    }
    expect(t.gw.scheduler.loaded()).toHaveLength(0);
  });

  it("refuses another site's GET that carries no Origin (<img>, <script>, no-cors fetch), not a link", async () => {
    const from = (site: string, mode: string) => ({ 'sec-fetch-site': site, 'sec-fetch-mode': mode });
    expect((await raw(t.url, { path: '/api/tags', headers: from('cross-site', 'no-cors') })).status).toBe(403);
    expect((await raw(t.url, { path: '/api/ps', headers: from('same-site', 'no-cors') })).status).toBe(403);
    expect((await raw(t.url, { path: '/api/tags', headers: from('cross-site', 'navigate') })).status).toBe(200);
    expect((await raw(t.url, { path: '/api/tags', headers: from('none', 'navigate') })).status).toBe(200);
    expect((await raw(t.url, { path: '/api/tags', headers: from('same-origin', 'cors') })).status).toBe(200);
  });

  it("allows Ollama's default origins and configured ones, with CORS headers", async () => {
    for (const origin of [
      'http://localhost:3000',
      'https://127.0.0.1',
      'http://0.0.0.0:8080',
      'app://obsidian.md',
      'tauri://localhost',
      'vscode-webview://abc123',
      'https://chat.example.org',
    ]) {
      const res = await raw(t.url, { path: '/api/tags', headers: { origin } });
      expect(res.status, origin).toBe(200);
      expect(res.headers['access-control-allow-origin']).toBe(origin);
      expect(res.headers.vary).toContain('Origin');
    }
  });

  it('answers a preflight from an allowed origin, and refuses one from another', async () => {
    const headers = {
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization, content-type, x-stainless-os',
    };
    const ok = await raw(t.url, {
      method: 'OPTIONS',
      path: '/api/chat',
      headers: { ...headers, origin: 'http://localhost:5173' },
    });
    expect(ok.status).toBe(204);
    expect(ok.headers['access-control-allow-origin']).toBe('http://localhost:5173');
    expect(ok.headers['access-control-allow-methods']).toContain('POST');
    expect(ok.headers['access-control-allow-headers']).toBe('authorization, content-type, x-stainless-os');
    const evil = await raw(t.url, {
      method: 'OPTIONS',
      path: '/api/chat',
      headers: { ...headers, origin: 'https://x.io' },
    });
    expect(evil.status).toBe(403);
  });

  it('takes a page of its own origin as same-origin (the admin UI), whatever the scheme', async () => {
    for (const origin of [`http://127.0.0.1:${port}`, `https://127.0.0.1:${port}`]) {
      const res = await raw(t.url, { path: '/api/tags', headers: { origin, host: `127.0.0.1:${port}` } });
      expect(res.status, origin).toBe(200);
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
    }
  });
});

describe('bodies a page can send without a preflight', () => {
  it('are not taken as JSON from another origin, even an allowed one', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await raw(t.url, {
        method: 'POST',
        path: '/api/show',
        headers: { origin: 'http://localhost:3000', 'content-type': type },
        body: show,
      });
      expect(res.status, type).toBe(415);
      expect(JSON.parse(res.body).error).toContain('application/json');
    }
    const json = await raw(t.url, {
      method: 'POST',
      path: '/api/show',
      headers: { origin: 'http://localhost:3000', 'content-type': 'application/json' },
      body: show,
    });
    expect(json.status).toBe(200);
  });

  it('are still read as JSON from curl -d (a form content type, no Origin), as the Ollama README does', async () => {
    for (const type of ['application/x-www-form-urlencoded', 'text/plain', undefined]) {
      const res = await raw(t.url, {
        method: 'POST',
        path: '/api/show',
        headers: type ? { 'content-type': type } : {},
        body: show,
      });
      expect(res.status, String(type)).toBe(200);
      expect(JSON.parse(res.body).details.format).toBe('gguf');
    }
  });
});
