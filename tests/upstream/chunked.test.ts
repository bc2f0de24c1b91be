import { describe, expect, it } from 'vitest';
import { chunkedDecoder } from '../../src/upstream/chunked.js';

function decode(pieces: Buffer[]): { text: string; ended: number } {
  const out: Buffer[] = [];
  let ended = 0;
  const feed = chunkedDecoder(
    (p) => out.push(Buffer.from(p)),
    () => ended++,
  );
  for (const piece of pieces) feed(piece);
  return { text: Buffer.concat(out).toString('utf8'), ended };
}

const framed = Buffer.from('5\r\nhello\r\n1;ext=1\r\n \r\n10\r\nworld, in 16 b.\n\r\n0\r\n\r\n');

describe('chunkedDecoder', () => {
  it('decodes chunks, extensions and the last chunk, however the bytes are split', () => {
    for (let cut = 1; cut < framed.length; cut++) {
      expect(decode([framed.subarray(0, cut), framed.subarray(cut)])).toEqual({
        text: 'hello world, in 16 b.\n',
        ended: 1,
      });
    }
    expect(decode([...framed].map((b) => Buffer.from([b])))).toEqual({ text: 'hello world, in 16 b.\n', ended: 1 });
  });

  it('keeps multi-byte characters split across chunks intact once joined', () => {
    const bytes = Buffer.from('é€');
    const body = Buffer.concat([
      Buffer.from('1\r\n'),
      bytes.subarray(0, 1),
      Buffer.from('\r\n4\r\n'),
      bytes.subarray(1),
      Buffer.from('\r\n0\r\n\r\n'),
    ]);
    expect(decode([body]).text).toBe('é€');
  });

  it('ignores anything after the last chunk and calls onEnd once', () => {
    expect(decode([Buffer.from('2\r\nok\r\n0\r\n\r\n'), Buffer.from('3\r\nbad\r\n')])).toEqual({
      text: 'ok',
      ended: 1,
    });
  });

  it('throws on a size that is not hex', () => {
    expect(() => decode([Buffer.from('zz\r\nxx\r\n')])).toThrow(/invalid chunked encoding/);
    expect(() => decode([Buffer.from('1'.repeat(2000))])).toThrow(/size line too long/);
  });
});
