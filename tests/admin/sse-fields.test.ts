import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { loginAs } from './helpers.js';

let t: TestGateway;
const fixtures = inject('fixtures');
/** A model name that tries to end its line in the live feed and start fields of its own. */
const EVIL = 'evil\revent: pwned\rdata: injected\nid: 666';

beforeAll(async () => {
  t = await startGateway({ models: { [EVIL]: { path: fixtures.models.chat } } });
});
afterAll(async () => t?.close());

/** Parses an event stream as a browser does (CR, LF and CRLF end lines). */
function parseEvents(text: string): { event: string; data: string; id?: string }[] {
  const events: { event: string; data: string; id?: string }[] = [];
  for (const block of text.split(/\r\n\r\n|\r\r|\n\n/)) {
    const e: { event: string; data: string[]; id?: string } = { event: 'message', data: [] };
    for (const line of block.split(/\r\n|\r|\n/)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const [field, value] = [line.slice(0, colon), line.slice(colon + 1).replace(/^ /, '')];
      if (field === 'event') e.event = value;
      else if (field === 'data') e.data.push(value);
      else if (field === 'id') e.id = value;
    }
    if (e.data.length) events.push({ event: e.event, data: e.data.join('\n'), ...(e.id ? { id: e.id } : {}) });
  }
  return events;
}

it('keeps a model name with CR and LF inside the data of the live feed', async () => {
  const admin = await loginAs(t, 'admin');
  const ctrl = new AbortController();
  const res = await fetch(`${t.url}/admin/events`, { headers: { cookie: admin.cookie }, signal: ctrl.signal });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!/event: models[\s\S]*?\n\n/.test(text)) text += decoder.decode((await reader.read()).value, { stream: true });
  ctrl.abort();
  const events = parseEvents(text);
  expect(events.map((e) => e.event)).toEqual(['models']);
  expect(events[0]!.id).toBeUndefined();
  expect(events[0]!.data).toContain('data: injected');
  expect(text).not.toMatch(/\r/);
});
