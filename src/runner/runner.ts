import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { closeSync, rmSync } from 'node:fs';
import { ModelLoadFailed } from '../errors.js';
import type { LlamaClient, LlamaEndpoint } from '../llama/client.js';
import { spawnChild, type Child } from './child.js';
import { childEnvironment } from './child-env.js';
import { followFile } from './follow-file.js';
import { freePort } from './free-port.js';
import { lastLines, openChildLog, trimLog, type ChildLog } from './log-file.js';
import { describeExit, explainFailure } from './log-lines.js';
import { signalGroup } from './signal-group.js';
import type { SocketDir } from './socket-dir.js';

export type RunnerState = 'stopped' | 'starting' | 'ready' | 'stopping' | 'failed';

export interface RunnerSpec {
  /** Model name, for messages and logs. */
  model: string;
  binary: string;
  /** Everything after the binary except --host/--port, which the runner chooses. */
  args: string[];
  /**
   * Where children listen: a Unix socket in this private directory. Without one, loopback TCP on a free
   * port with a random per-start API key that only the gateway knows (passed in the child's environment,
   * which other users cannot read, unlike its command line).
   */
  socketDir?: SocketDir | undefined;
  /** Makes the client the scheduler hands out for this child; called once per start. */
  connect(endpoint: LlamaEndpoint): LlamaClient;
  /** The child's stdout and stderr go here, appended; the gateway reads it back only on demand. */
  logFile: string;
  /** The log file is kept under this many bytes (0 or unset: unbounded), checked every `logCheckMs`. */
  logMaxBytes?: number | undefined;
  logCheckMs?: number | undefined;
  startupTimeoutMs: number;
  stopTimeoutMs: number;
  /** Variables set for this child on top of what it inherits. */
  env?: NodeJS.ProcessEnv;
  /** The gateway's environment, of which the child gets only what llama-server needs (child-env.ts). */
  inheritEnv?: NodeJS.ProcessEnv | undefined;
  /** More variables to inherit by name, or `PREFIX*` (config `llama_server.pass_env`). */
  passEnv?: readonly string[] | undefined;
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
const READY_LINE = /model loaded|listening on |all slots are idle/;
/** A /health probe that hangs is given up after this long. */
const PROBE_TIMEOUT_MS = 2_000;

/**
 * One supervised llama-server child: stopped → starting → ready → stopping → stopped, or failed.
 * It knows nothing about HTTP routes, users or scheduling policy.
 */
export class Runner extends EventEmitter<RunnerEvents> {
  state: RunnerState = 'stopped';
  /** Where the current (or last) child listens. */
  endpoint: LlamaEndpoint | undefined;
  pid: number | undefined;
  startedAt: Date | undefined;
  readyAt: Date | undefined;
  failure: RunnerFailure | undefined;
  /** The client of the current child; closed (its calls fail as never delivered) once the child exits. */
  client: LlamaClient | undefined;
  /** Byte offset in the log file where the current (or last) run's output begins. */
  logStart = 0;

  private child: Child | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopping = false;
  private starting: Promise<void> | undefined;

  constructor(readonly spec: RunnerSpec) {
    super();
  }

  /** The current (or next) child's command line, for the admin UI. */
  get command(): string[] {
    return [this.spec.binary, ...this.argv];
  }

  get argv(): string[] {
    const ep = this.endpoint;
    if (ep === undefined) return [...this.spec.args, '--host', '<chosen at start>'];
    if ('socketPath' in ep) return [...this.spec.args, '--host', ep.socketPath];
    return [...this.spec.args, '--host', ep.host, '--port', String(ep.port)];
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
    const endpoint = await this.listenAt();
    const log = this.openLog();
    this.setState('starting');
    this.startedAt = new Date();
    this.readyAt = undefined;
    // Its own process group (see spawnChild): a stop signal reaches anything llama-server forks, and a
    // gateway crash leaves a group that the next start can find by its recorded PID and reap.
    let child: Child;
    try {
      const [file, ...args] = [...(this.spec.launcher ?? []), this.spec.binary, ...this.argv];
      child = spawnChild(file!, args, log.fd, this.childEnv(endpoint));
    } finally {
      closeSync(log.fd);
    }
    const watch = this.supervise(child);
    // From here on every failure stops the child: nothing may outlive a start that did not succeed.
    try {
      if (child.pid !== undefined) this.spec.pids?.add(child.pid, { model: this.spec.model, binary: this.spec.binary });
      this.client = this.spec.connect(endpoint);
      await Promise.race([watch.earlyExit, this.waitHealthy(this.client)]);
    } catch (err) {
      throw await this.abandonStart(err);
    }
    watch.ready();
    this.readyAt = new Date();
    this.setState('ready');
  }

  /** A fresh socket path (a stale file left by a killed child would make the bind fail), or a port and key. */
  private async listenAt(): Promise<LlamaEndpoint> {
    const dir = this.spec.socketDir;
    if (dir) {
      const socketPath = dir.socketPath(`${randomBytes(6).toString('hex')}.sock`);
      rmSync(socketPath, { force: true });
      this.endpoint = { socketPath };
    } else {
      this.endpoint = { host: HOST, port: await freePort(HOST), apiKey: randomBytes(24).toString('base64url') };
    }
    return this.endpoint;
  }

  private childEnv(endpoint: LlamaEndpoint): NodeJS.ProcessEnv {
    const env = { ...childEnvironment(this.spec.inheritEnv ?? process.env, this.spec.passEnv), ...this.spec.env };
    // llama-server reads its key from LLAMA_API_KEY: unlike argv, /proc/<pid>/environ is private to the user.
    if ('apiKey' in endpoint) env.LLAMA_API_KEY = endpoint.apiKey;
    return env;
  }

  private openLog(): ChildLog {
    const startLine = `--- ${new Date().toISOString()} starting ${this.command.join(' ')}`;
    try {
      const log = openChildLog(this.spec.logFile, startLine, this.spec.logMaxBytes ?? 0);
      this.logStart = log.start;
      return log;
    } catch (err) {
      const reason = `cannot write its log file (logs_dir): ${(err as Error).message}`;
      this.fail({ reason, lastLines: [] });
      throw new ModelLoadFailed(`model "${this.spec.model}" failed to load: ${reason}`);
    }
  }

  /**
   * Watches the child until it exits: keeps its log under the limit, and on exit forgets its pid, closes
   * its client, removes its socket and reports why. `earlyExit` rejects if the child exits before
   * `ready()` is called, with the child's own error line.
   */
  private supervise(child: Child): { earlyExit: Promise<never>; ready(): void } {
    this.child = child;
    this.pid = child.pid;
    const pid = child.pid;
    const maxLog = this.spec.logMaxBytes ?? 0;
    const trimmer =
      maxLog > 0
        ? setInterval(() => void this.keepLogUnder(maxLog), this.spec.logCheckMs ?? 10_000).unref()
        : undefined;
    let exitedEarly: ((err: Error) => void) | undefined;
    const earlyExit = new Promise<never>((_, reject) => (exitedEarly = reject));
    earlyExit.catch(() => {});
    this.exited = child.exited.then(async ({ exitCode: code, signal }) => {
      const expected = this.stopping;
      clearInterval(trimmer);
      // Read before anything changes: from here on the exit is handled in one synchronous step, so no
      // one sees a runner without a pid that is still listed as ready.
      const lastLines = expected ? [] : await this.lastLines(20).catch(() => []);
      if (pid !== undefined) this.spec.pids?.remove(pid);
      this.child = undefined;
      this.pid = undefined;
      this.client?.close();
      this.client = undefined;
      const ep = this.endpoint;
      if (ep && 'socketPath' in ep) rmSync(ep.socketPath, { force: true });
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
    return { earlyExit, ready: () => (exitedEarly = undefined) };
  }

  /** Stops a child whose start failed or was cut short, and says why as a ModelLoadFailed. */
  private async abandonStart(err: unknown): Promise<ModelLoadFailed> {
    const abandoned = this.stopping;
    if (this.child !== undefined) await this.stop();
    // A start cut short by stop() is a decision, not a failure: supervision must not count it.
    if (abandoned) return new ModelLoadFailed(`model "${this.spec.model}" was stopped while loading`);
    if (this.state !== 'failed' || !this.failure) {
      this.fail({ reason: (err as Error).message, lastLines: await this.lastLines(20).catch(() => []) });
    }
    return err instanceof ModelLoadFailed
      ? err
      : new ModelLoadFailed(`model "${this.spec.model}" failed to load: ${(err as Error).message}`);
  }

  /**
   * Polls /health with a short, growing interval: a tiny model is ready in tens of milliseconds.
   * The log line llama-server prints when it becomes ready cuts the current wait short (or skips the
   * next one, if it arrives during a poll), so a long interval late in a big model's load adds no
   * latency to the first request. The log file is followed only for this.
   */
  private async waitHealthy(client: LlamaClient): Promise<void> {
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
        // false while not listening yet, or loading
        if (await client.health({ signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) })) return;
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
