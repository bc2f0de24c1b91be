import { type RunnerSpec, Runner } from './runner.js';

/** The llama.cpp RPC workers one start of a model uses: taken before the child starts, given back after. */
export interface WorkerLease {
  /** The host:port addresses to pass as `--rpc`; throws (ModelLoadFailed) when they cannot be had. */
  acquire(): Promise<string[]>;
  release(): Promise<void>;
}

/**
 * A runner whose llama-server computes on rpc-server workers. An rpc-server serves one llama-server at a
 * time (a second one waits for the first to disconnect, and would hang in its load), so the workers are
 * taken for the whole life of the child and given back when it exits, however it exits.
 */
export class RpcRunner extends Runner {
  private held = false;

  constructor(
    spec: RunnerSpec,
    /** The argv with these workers as `--rpc`. */
    private readonly argsWith: (workers: string[]) => string[],
    private readonly workers: WorkerLease,
  ) {
    super(spec);
    this.on('exit', ({ expected }) => {
      if (!expected) void this.giveBack();
    });
  }

  override async start(): Promise<void> {
    if (this.state === 'ready') return;
    if (!this.held) {
      const endpoints = await this.workers.acquire();
      this.held = true;
      this.spec.args = this.argsWith(endpoints);
    }
    try {
      await super.start();
    } catch (err) {
      await this.giveBack();
      throw err;
    }
  }

  override async stop(): Promise<void> {
    await super.stop();
    await this.giveBack();
  }

  private async giveBack(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    await this.workers.release().catch(() => {});
  }
}
