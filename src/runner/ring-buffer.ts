/** Keeps the last `capacity` lines; old ones fall off. Line numbers keep counting so a follower can resume. */
export class LineRing {
  private readonly lines: string[] = [];
  private total = 0;
  constructor(private readonly capacity = 1000) {}

  push(line: string): void {
    this.lines.push(line);
    this.total++;
    if (this.lines.length > this.capacity) this.lines.shift();
  }

  /** The last `n` lines (all kept lines by default). */
  tail(n = this.capacity): string[] {
    return this.lines.slice(-n);
  }

  /** Lines with sequence numbers >= `from`, for a live tail that resumes after a reconnect. */
  since(from: number): { seq: number; line: string }[] {
    const first = this.total - this.lines.length;
    const start = Math.max(from, first);
    return this.lines.slice(start - first).map((line, i) => ({ seq: start + i, line }));
  }

  get count(): number {
    return this.total;
  }
}
