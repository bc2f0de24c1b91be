export type Progress = (line: string) => void;

export function formatDuration(seconds: number): string {
  if (seconds < 60) return 'under a minute';
  const minutes = Math.round(seconds / 60);
  return minutes === 1 ? 'about 1 minute' : `about ${minutes} minutes`;
}

/**
 * Turns cmake's "[ 42%] Building CXX object …" lines into progress with the time left: the up-front
 * estimate at first, then extrapolated from the time taken so far (files differ in cost, so it wanders).
 */
export class BuildProgress {
  private readonly started: number;
  private lastShown = -1;

  constructor(
    private readonly out: Progress,
    private readonly estimateSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
  }

  /** Feeds one line of build output; prints progress lines only, at most once per percent. */
  line(raw: string): void {
    const m = /^\[\s*(\d+)%\]\s*(.*)$/.exec(raw);
    if (!m) return;
    const percent = Number(m[1]);
    if (percent === this.lastShown) return;
    this.lastShown = percent;
    this.out(`[${String(percent).padStart(3)}%] ${m[2]} (${formatDuration(this.secondsLeft(percent))} left)`);
  }

  secondsLeft(percent: number): number {
    const elapsed = (this.now() - this.started) / 1000;
    if (percent >= 100) return 0;
    const extrapolated = percent > 0 ? (elapsed * (100 - percent)) / percent : Number.POSITIVE_INFINITY;
    // The first files (vendored C, small helpers) are the cheapest: until a third is done, the pace so
    // far says too little, and the up-front estimate is the floor.
    if (percent < 33) return Math.max(0, this.estimateSeconds - elapsed, Math.min(extrapolated, this.estimateSeconds));
    return extrapolated;
  }
}
