/** At most one pending restart per model. Timers are unref'd: a pending restart never keeps Corral running. */
export class RestartTimers {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  /** Replaces any pending restart of `name`. */
  set(name: string, delayMs: number, restart: () => void): void {
    this.cancel(name);
    const timer = setTimeout(() => {
      this.timers.delete(name);
      restart();
    }, delayMs);
    timer.unref();
    this.timers.set(name, timer);
  }

  has(name: string): boolean {
    return this.timers.has(name);
  }

  cancel(name: string): void {
    clearTimeout(this.timers.get(name));
    this.timers.delete(name);
  }

  cancelAll(): void {
    for (const name of [...this.timers.keys()]) this.cancel(name);
  }
}
