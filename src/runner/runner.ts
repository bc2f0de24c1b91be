import { EventEmitter } from 'node:events';
import { closeSync } from 'node:fs';
import { ModelLoadFailed } from '../errors.js';
import { createPool, type UpstreamPool } from '../upstream/pool.js';
import { spawnChild, type Child } from './child.js';
import { followFile } from './follow-file.js';
import { freePort } from './free-port.js';
import { lastLines, openChildLog, trimLog } from './log-file.js';
import { describeExit, explainFailure } from './log-lines.js';
import { signalGroup } from './signal-group.js';

export type RunnerState = 'stopped' | 'starting' | 'ready' | 'stopping' | 'failed';

export interface RunnerSpec {
  /** Model name, for messages and logs. */
  model: string;
  binary: string;
  /** Everything after the binary except --host/--port, which the runner chooses. */
  args: string[];
  /** The child's stdout and stderr go here, appended; the gateway reads it back only on demand. */
  logFile: string;
  /** The log file is kept under this many bytes (0 or unset: unbounded), checked every `logCheckMs`. */
  logMaxBytes?: number | undefined;
  logCheckMs?: number | undefined;
  startupTimeoutMs: number;
  stopTimeoutMs: number;
  env?: NodeJS.ProcessEnv;
  /** Records live children so a gateway killed with -9 can reap them on its next start. */
  pids?: PidRecorder | undefined;
  /** Command that runs the binary in its own place, e.g. `setpriv --pdeathsig KILL --` (death-signal.ts). */
  launcher?: string[] | undefined;
}

export interface PidRecorder {
  add(pid: number, info: { model: string; binary: string }): void;
  remove(pid: number): void;
}

export interface RunnerFailure {
  reason: string;
  exitCode?: number | undefined;
  signal?: string | undefined;
  lastLines: string[];
  at: Date;
}

export interface RunnerEvents {
  state: [state: RunnerState, runner: Runner];
  /** The child exited; `expected` is false for crashes. */
  exit: [info: { code: number | undefined; signal: string | undefined; expected: boolean }, runner: Runner];
  /** The log file reached its size limit and was moved to `<file>.1`. */
  logTrimmed: [runner: Runner];
}

const HOST = '127.0.0.1';
/**
 * llama-server can lose a SIGTERM that arrives just after it starts listening (about 1 in 40 stops
 * right after /health first answers 200, measured with a tiny model) and runs on until SIGKILL;
 * apparently the signal comes before its task loop has started, which then never sees it. A second
 * signal makes it exit at once ("Received second interrupt, terminating immediately"). A normal stop
 * takes 15-25 ms.
 */
const RESIGNAL_MS = 500;
/** Printed by llama-server once the model is loaded and the server accepts requests. */
const READY_LINE = /model loaded|listening on http|all slots are idle/;

/**
 * One supervised llama-server child: stopped → starting → ready → stopping → stopped, or failed.
 * It knows nothing about HTTP routes, users or scheduling policy.
 */
export class Runner extends EventEmitter<RunnerEvents> {
  state: RunnerState = 'stopped';
  port = 0;
  pid: number | undefined;
  startedAt: Date | undefined;
  readyAt: Date | undefined;
  failure: RunnerFailure | undefined;
  /** Connection pool to the child, kept alive between requests; streamed generations take a connection of their own (upstream/stream-post.ts). */
  pool: UpstreamPool | undefined;
  /** Byte offset in the log file where the current (or last) run's output begins. */
  logStart = 0;

  private child: Child | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopping = false;
  private starting: Promise<void> | undefined;

  constructor(readonly spec: RunnerSpec) {
    super();
  }

  get baseUrl(): string {
    return `http://${HOST}:${this.port}`;
  }

  get argv(): string[] {
    return [...this.spec.args, '--host', HOST, '--port', String(this.port)];
  }

  private setState(state: RunnerState): void {
    this.state = state;
    this.emit('state', state, this);
  }

  private fail(failure: Omit<RunnerFailure, 'at'>): void {
    this.failure = { ...failure, at: new Date() };
    this.setState('failed');
  }

  private async keepLogUnder(maxBytes: number): Promise<void> {
    if (!(await trimLog(this.spec.logFile, maxBytes).catch(() => false))) return;
    this.logStart = 0;
    this.emit('logTrimmed', this);
  }

  /** The last `n` lines the current (or last) run wrote. */
  lastLines(n: number): Promise<string[]> {
    return lastLines(this.spec.logFile, this.logStart, n);
  }

  /** Starts the child and resolves when /health answers 200. Concurrent calls share one start. */
  start(): Promise<void> {
    if (this.state === 'ready') return Promise.resolve();
    this.starting ??= this.doStart().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async doStart(): Promise<void> {
    this.stopping = false;
    this.failure = undefined;
    this.port = await freePort(HOST);
    const maxLog = this.spec.logMaxBytes ?? 0;
    let log;
    try {
      log = openChildLog(
        this.spec.logFile,
        `--- ${new Date().toISOString()} starting ${this.spec.binary} ${this.argv.join(' ')}`,
        maxLog,
      );
    } catch (err) {
      const reason = `cannot write its log file (logs_dir): ${(err as Error).message}`;
      this.fail({ reason, lastLines: [] });
      throw new ModelLoadFailed(`model "${this.spec.model}" failed to load: ${reason}`);
    }
    this.logStart = log.start;
    this.setState('starting');
    this.startedAt = new Date();
    this.readyAt = undefined;
    // Its own process group (see spawnChild): a stop signal reaches anything llama-server forks, and a
    // gateway crash leaves a group that the next start can find by its recorded PID and reap.
    let child: Child;
    try {
      const [file, ...args] = [...(this.spec.launcher ?? []), this.spec.binary, ...this.argv];
      child = spawnChild(file!, args, log.fd, this.spec.env);
    } finally {
      closeSync(log.fd);
    }
    this.child = child;
    this.pid = child.pid;
    const pid = child.pid;
    if (pid !== undefined) this.spec.pids?.add(pid, { model: this.spec.model, binary: this.spec.binary });
    const trimmer =
      maxLog > 0
        ? setInterval(() => void this.keepLogUnder(maxLog), this.spec.logCheckMs ?? 10_000).unref()
        : undefined;
    let exitedEarly: ((err: Error) => void) | undefined;
    const earlyExit = new Promise<never>((_, reject) => (exitedEarly = reject));
    earlyExit.catch(() => {});
    this.exited = child.exited.then(async (result) => {
      const code = result.exitCode;
      const signal = result.signal;
      const expected = this.stopping;
      clearInterval(trimmer);
      // Read before anything changes: from here on the exit is handled in one synchronous step, so no
      // one sees a runner without a pid that is still listed as ready.
      const lastLines = expected ? [] : await this.lastLines(20).catch(() => []);
      if (pid !== undefined) this.spec.pids?.remove(pid);
      this.child = undefined;
      this.pid = undefined;
      void this.pool?.destroy().catch(() => {});
      this.pool = undefined;
      if (!expected) {
        const why = describeExit(code, signal, lastLines);
        this.fail({
          reason: `${this.state === 'starting' ? 'failed to load' : 'crashed'}: ${why}`,
          exitCode: code,
          signal,
          lastLines,
        });
        exitedEarly?.(new ModelLoadFailed(`model "${this.spec.model}" failed to load: ${why}`));
      } else {
        this.setState('stopped');
      }
      this.emit('exit', { code, signal, expected }, this);
    });
    // Idle sockets are dropped before llama-server's own 5 s keep-alive timeout closes them under us.
    this.pool = createPool(this.baseUrl, {
      connections: 256,
      pipelining: 1,
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 4_000,
    });
    try {
      await Promise.race([earlyExit, this.waitHealthy(this.pool)]);
    } catch (err) {
      const abandoned = this.stopping;
      if (this.child !== undefined) await this.stop();
      // A start cut short by stop() is a decision, not a failure: supervision must not count it.
      if (abandoned) throw new ModelLoadFailed(`model "${this.spec.model}" was stopped while loading`);
      if (this.state !== 'failed' || !this.failure) {
        this.fail({ reason: (err as Error).message, lastLines: await this.lastLines(20).catch(() => []) });
      }
      throw err instanceof ModelLoadFailed
        ? err
        : new ModelLoadFailed(`model "${this.spec.model}" failed to load: ${(err as Error).message}`);
    }
    this.readyAt = new Date();
    exitedEarly = undefined;
    this.setState('ready');
  }

  /**
   * Polls /health with a short, growing interval: a tiny model is ready in tens of milliseconds.
   * The log line llama-server prints when it becomes ready cuts the current wait short (or skips the
   * next one, if it arrives during a poll), so a long interval late in a big model's load adds no
   * latency to the first request. The log file is followed only for this.
   */
  private async waitHealthy(pool: UpstreamPool): Promise<void> {
    const deadline = Date.now() + this.spec.startupTimeoutMs;
    let delay = 2;
    let wake: (() => void) | undefined;
    let readySeen = false;
    const follower = followFile(this.spec.logFile, this.logStart, (line) => {
      if (!READY_LINE.test(line)) return;
      readySeen = true;
      wake?.();
    });
    try {
      while (Date.now() < deadline) {
        if (this.stopping) throw new Error('stopped while starting');
        try {
          const res = await pool.request({ path: '/health', method: 'GET', headersTimeout: 2000, bodyTimeout: 2000 });
          await res.body.dump();
          if (res.statusCode === 200) return;
        } catch {
          // not listening yet
        }
        if (readySeen) {
          readySeen = false;
          continue;
        }
        await new Promise<void>((r) => {
          const timer = setTimeout(r, delay);
          wake = () => {
            clearTimeout(timer);
            r();
          };
        });
        wake = undefined;
        delay = Math.min(delay * 1.5, 50);
      }
    } finally {
      follower.close();
    }
    const last = await this.lastLines(10).catch(() => []);
    throw new Error(
      `not ready after ${Math.round(this.spec.startupTimeoutMs / 1000)}s (llama_server.startup_timeout); last output: ${explainFailure(last) ?? 'none'}`,
    );
  }

  /**
   * SIGTERM to the process group; SIGTERM again after RESIGNAL_MS; SIGKILL after stopTimeoutMs.
   * Resolves once the child is gone.
   */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.pid === undefined) {
      if (this.state !== 'failed') this.setState('stopped');
      return;
    }
    this.stopping = true;
    this.setState('stopping');
    const pid = child.pid;
    signalGroup(pid, 'SIGTERM');
    const again = setTimeout(() => signalGroup(pid, 'SIGTERM'), Math.min(RESIGNAL_MS, this.spec.stopTimeoutMs / 2));
    const kill = setTimeout(() => signalGroup(pid, 'SIGKILL'), this.spec.stopTimeoutMs);
    try {
      await this.exited;
    } finally {
      clearTimeout(again);
      clearTimeout(kill);
    }
  }
}
