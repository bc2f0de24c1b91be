import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { freemem, hostname } from 'node:os';
import { isLoopbackHost } from '../auth/client-ip.js';
import { parseSize } from '../config/duration.js';
import type { Config } from '../config/schema.js';
import type { NodeReport } from './registry.js';

export interface WorkerLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** rpc-server's command line from `worker:`; it binds where the config says, loopback by default. */
export function rpcServerArgs(w: Config['worker']): string[] {
  const args = ['--host', w.host, '--port', String(w.port)];
  if (w.device) args.push('--device', w.device);
  if (w.threads > 0) args.push('--threads', String(w.threads));
  if (w.cache) args.push('--cache');
  return args;
}

/** host:port the nodes give llama-server: configured, else the bound address (the host name for a wildcard). */
export function workerEndpoint(w: Config['worker']): string {
  if (w.advertise) return w.advertise;
  const host = w.host === '0.0.0.0' || w.host === '::' ? hostname() : w.host;
  return `${host.includes(':') ? `[${host}]` : host}:${w.port}`;
}

const BACKOFF_MAX_MS = 30_000;

/**
 * Keeps one rpc-server running (restarting it after a crash, with a growing wait) and says what it
 * lends while it runs. rpc-server has no authentication and executes what it is sent, so a bind beyond
 * loopback is logged loudly at every start.
 */
export class RpcServerSupervisor {
  private child: ChildProcess | undefined;
  private running = false;
  private stopped = false;
  private output = '';
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private freeAtStart: number | undefined;

  constructor(
    private readonly binary: string,
    private readonly config: Config['worker'],
    private readonly log: WorkerLog,
  ) {}

  /** Starts rpc-server and resolves once it accepts connections, or rejects if it exits first. */
  async start(): Promise<void> {
    const w = this.config;
    if (!isLoopbackHost(w.host))
      this.log.warn(
        { host: w.host, port: w.port },
        'rpc-server listens beyond loopback and has NO authentication: anyone who reaches this port can run ' +
          'computations on this machine and read what it holds. Allow only the Corral nodes to reach it.',
      );
    const child = spawn(this.binary, rpcServerArgs(w), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.output = '';
    // Its output is block-buffered into a pipe: kept for a crash report, never waited for.
    const collect = (chunk: Buffer): void => void (this.output = (this.output + chunk.toString()).slice(-8_000));
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    const exited = new Promise<never>((_, reject) => {
      child.once('exit', (code, signal) => {
        const wasRunning = this.running;
        this.running = false;
        this.child = undefined;
        if (!wasRunning) reject(new Error(`rpc-server exited (${code ?? signal}) before listening:\n${this.output}`));
        if (this.stopped) return;
        this.log.error({ code, signal, output: this.output.slice(-500) }, 'rpc-server exited; restarting');
        this.scheduleRestart();
      });
    });
    await Promise.race([
      exited,
      accepting(w.host === '0.0.0.0' ? '127.0.0.1' : w.host === '::' ? '::1' : w.host, w.port),
    ]);
    this.running = true;
    this.failures = 0;
    this.log.info({ endpoint: workerEndpoint(w), bytes: this.memoryBytes() }, 'rpc-server is listening');
  }

  private scheduleRestart(): void {
    const wait = Math.min(BACKOFF_MAX_MS, 1000 * 2 ** this.failures++);
    this.restartTimer = setTimeout(() => void this.start().catch(() => {}), wait);
  }

  /** What it lends: `worker.memory`, else the free RAM when rpc-server started. */
  memoryBytes(): number {
    const configured = parseSize(this.config.memory);
    return configured > 0 ? configured : (this.freeAtStart ??= freemem());
  }

  /** This worker's report for the fleet: without `worker` while rpc-server is down, so nobody uses it. */
  report(id: string, version: string): NodeReport {
    const endpoint = workerEndpoint(this.config);
    const memory = this.memoryBytes();
    return {
      id,
      kind: 'worker',
      url: `rpc://${endpoint}`,
      version,
      models: [],
      loaded: [],
      budget: { totalBytes: memory, usedBytes: 0 },
      queueDepth: 0,
      inFlight: 0,
      kvCacheUsage: 0,
      worker: this.running ? { endpoint, memoryBytes: memory, device: this.config.device || 'all' } : undefined,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(kill);
  }
}

/** Resolves once a TCP connection to host:port succeeds (polled: rpc-server prints nothing we can wait on). */
async function accepting(host: string, port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host, port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`rpc-server did not listen on ${host}:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
