import { PassThrough, type Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { relay } from '../../src/api/openai/relay.js';

const text = async (out: Readable): Promise<string> => {
  let all = '';
  for await (const chunk of out) all += chunk;
  return all;
};

describe('relay with a look at the first event', () => {
  it('holds the bytes up to the first blank line, across chunks, and sends what the look adds before them', async () => {
    const upstream = new PassThrough();
    const seen: string[] = [];
    const { out } = relay(upstream, undefined, async (first) => {
      seen.push(first.toString());
      return Buffer.from('event: added\n\n');
    });
    const all = text(out);
    upstream.write('event: content_block_start\ndata: {"a"');
    upstream.write(':1}\n\nevent: next\n');
    upstream.end('data: {}\n\n');
    expect(await all).toBe('event: added\n\nevent: content_block_start\ndata: {"a":1}\n\nevent: next\ndata: {}\n\n');
    expect(seen).toEqual(['event: content_block_start\ndata: {"a":1}\n\nevent: next\n']);
  });

  it('passes the bytes unchanged when the look adds nothing or fails, or the stream ends first', async () => {
    for (const head of [async () => undefined, async () => Promise.reject(new Error('no count'))]) {
      const upstream = new PassThrough();
      const { out } = relay(upstream, undefined, head);
      const all = text(out);
      upstream.end('event: message_start\ndata: {}\n\n');
      expect(await all).toBe('event: message_start\ndata: {}\n\n');
    }
    const upstream = new PassThrough();
    const { out } = relay(upstream, undefined, async () => Buffer.from('never'));
    const all = text(out);
    upstream.end('data: {"cut":');
    expect(await all).toBe('data: {"cut":');
  });

  it('ends an interrupted stream with its error event after what it held', async () => {
    const upstream = new PassThrough();
    const { out } = relay(
      upstream,
      (m) => `event: error\ndata: ${m}\n\n`,
      async () => undefined,
    );
    const all = text(out);
    upstream.write('event: partial');
    upstream.destroy(new Error('child died'));
    expect(await all).toBe('event: partialevent: error\ndata: child died\n\n');
  });
});

describe('relay: a whole stream in one chunk while the look takes its time', () => {
  it('ends once, after what the look added', async () => {
    const upstream = new PassThrough();
    let answer: (b: Buffer) => void = () => {};
    const { out } = relay(upstream, undefined, () => new Promise((resolve) => (answer = resolve)));
    const all = text(out);
    upstream.end('event: content_block_start\ndata: {}\n\nevent: message_stop\ndata: {}\n\n');
    await new Promise((resolve) => upstream.once('end', resolve));
    answer(Buffer.from('event: message_start\ndata: {}\n\n'));
    expect(await all).toBe(
      'event: message_start\ndata: {}\n\nevent: content_block_start\ndata: {}\n\nevent: message_stop\ndata: {}\n\n',
    );
  });
});
