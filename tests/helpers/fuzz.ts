import { prng } from '../fixtures/gguf-writer.js';

/** One request the fuzzer sends. */
export interface FuzzRequest {
  method: 'GET' | 'POST' | 'DELETE' | 'HEAD';
  path: string;
  body?: string | Buffer | undefined;
  contentType?: string | undefined;
}

/** A route and a valid body for it: what mutations start from. */
export interface FuzzRoute {
  method: FuzzRequest['method'];
  path: string;
  valid?: Record<string, unknown>;
  /** Values a mutated body must never hold at `model` (a delete of a real model would remove it). */
  forbidModels?: boolean;
  /** Only ever sent with a body that cannot run (a pull would try to download). */
  invalidOnly?: boolean;
}

type Rand = () => number;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Strings that have broken JSON handling somewhere: lone surrogates, NULs, escapes, long runs. */
const NASTY_STRINGS = [
  '\ud800',
  'a\udfffb',
  '\u0000',
  '\u202e',
  '💥🧨',
  '\\',
  '"',
  '{{ .Prompt }}',
  '{% for x in y %}',
  '<|im_start|>',
  '../../etc/passwd',
  '%2E%2E%2F',
  'data:image/png;base64,AAAA',
  'http://169.254.169.254/',
  '-1',
  'NaN',
  '',
  ' ',
];

export class Fuzzer {
  private readonly rand: Rand;

  constructor(seed: number) {
    this.rand = prng(seed);
  }

  int(n: number): number {
    return Math.floor(this.rand() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  chance(p: number): boolean {
    return this.rand() < p;
  }

  string(): string {
    const kind = this.int(6);
    if (kind === 0) return this.pick(NASTY_STRINGS);
    if (kind === 1) return this.pick(NASTY_STRINGS).repeat(1 + this.int(300));
    // Long texts are few: each costs a child tokenizing it where it is not refused first.
    if (kind === 2) return 'x'.repeat(this.chance(0.05) ? 200_000 : 1 + this.int(300));
    let s = '';
    for (let i = this.int(40); i > 0; i--) s += String.fromCharCode(this.int(0x10000));
    return s;
  }

  /** Any JSON value, nested at most `depth` deep. */
  value(depth = 3): unknown {
    const kind = this.int(depth > 0 ? 12 : 8);
    switch (kind) {
      case 0:
        return null;
      case 1:
        return this.chance(0.5);
      case 2:
        return this.pick([0, -1, 1, 2, -2, 1e308, -1e308, 2 ** 53, 0.5, 4096, 65536]);
      case 3:
        return this.int(1000) - 500;
      case 4:
      case 5:
      case 6:
        return this.string();
      case 7:
        return [];
      case 8:
        return [this.value(depth - 1), this.value(depth - 1)];
      case 9:
        return { role: this.pick(['user', 'system', 'assistant', 'tool', 'x']), content: this.value(depth - 1) };
      case 10:
        return Array.from({ length: this.int(4) }, () => this.value(depth - 1));
      default:
        return Object.fromEntries(
          Array.from({ length: this.int(4) }, () => [this.string().slice(0, 20), this.value(depth - 1)]),
        );
    }
  }

  /** `valid` with one to three fields removed, replaced, added or nested deeper. */
  mutate(valid: Record<string, unknown>): unknown {
    const body = structuredClone(valid);
    for (let n = 1 + this.int(3); n > 0; n--) {
      const target = this.descend(body);
      const keys = Object.keys(target);
      const key = keys.length && this.chance(0.8) ? this.pick(keys) : this.string().slice(0, 30);
      const op = this.int(10);
      if (op === 0) delete target[key];
      else if (op === 1) target[key] = [{}];
      else if (this.chance(0.004)) target[key] = this.huge();
      else target[key] = this.value();
    }
    return this.chance(0.05) ? [body] : body;
  }

  /** A prompt or input of megabytes, or thousands of them. */
  huge(): unknown {
    return this.chance(0.5) ? 'hello world '.repeat(250_000) : Array.from({ length: 5000 }, (_, i) => `input ${i}`);
  }

  /** A random object inside `body` (itself, or an object in one of its fields or lists). */
  private descend(body: Record<string, unknown>): Record<string, unknown> {
    let at = body;
    for (let i = 0; i < 3 && this.chance(0.5); i++) {
      const children = Object.values(at).flatMap((v) => (Array.isArray(v) ? v : [v]));
      const objects = children.filter(
        (v): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v),
      );
      if (!objects.length) break;
      at = this.pick(objects);
    }
    return at;
  }

  /** Bytes no JSON parser should accept, or JSON that is not an object. */
  garbage(): string | Buffer {
    switch (this.int(8)) {
      case 0:
        return Buffer.from(Array.from({ length: 1 + this.int(200) }, () => this.int(256)));
      case 1:
        return '{"model": "tiny", "prompt": "unterminated';
      case 2:
        return '['.repeat(1 + this.int(5000)) + ']'.repeat(this.int(2) ? 0 : 5000);
      case 3:
        return `{"a":${'{"a":'.repeat(this.int(200))}1${'}'.repeat(this.int(200))}}`;
      case 4:
        return JSON.stringify(this.value());
      case 5:
        return '{"__proto__": {"admin": true}, "model": "tiny"}';
      case 6:
        return '{"constructor": {"prototype": {"x": 1}}, "model": "tiny"}';
      default:
        return '';
    }
  }

  /** A path segment: percent-encoded text, or broken percent-encoding. */
  pathSegment(): string {
    if (this.chance(0.3)) return this.pick(['%', '%ZZ', '%E0%A4%A', '..%2F..', 'tiny%00', '%C0%AE%C0%AE', '%ED%A0%80']);
    return encodeURIComponent(this.string().slice(0, 200).replace(LONE_SURROGATE, ''));
  }

  contentType(): string | undefined {
    return this.pick([
      'application/json',
      'application/json',
      'application/json',
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/json; charset=latin1',
      undefined,
    ]);
  }
}
