import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';

/**
 * A child's log file, written in batches: llama-server prints several lines per request, and one
 * file write per line was a measurable share of the gateway's CPU under many short requests. Lines
 * are collected and written together at most `flushMs` later.
 */
export class LogFile {
  private stream: WriteStream | undefined;
  private pending: string[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly path: string,
    private readonly flushMs = 200,
  ) {}

  write(line: string): void {
    this.pending.push(line);
    this.timer ??= setTimeout(() => this.flush(), this.flushMs).unref();
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    if (!this.stream) {
      mkdirSync(dirname(this.path), { recursive: true });
      this.stream = createWriteStream(this.path, { flags: 'a' });
    }
    this.stream.write(`${this.pending.join('\n')}\n`);
    this.pending = [];
  }

  async close(): Promise<void> {
    this.flush();
    const stream = this.stream;
    this.stream = undefined;
    if (stream) await new Promise<void>((r) => stream.end(r));
  }
}
