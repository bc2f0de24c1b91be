import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { FleetNode, FleetRegistry, NodeReport } from './registry.js';

export interface MembershipOptions {
  registry: FleetRegistry;
  selfId: string;
  heartbeatMs: number;
  expiryMs: number;
  /** This node's report as of now. */
  report(): NodeReport;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  now?: () => number;
}

interface Snapshot {
  nodes: FleetNode[];
  readAt: number;
}

/**
 * This node's membership of the fleet: a heartbeat that publishes its report and reads everyone's back
 * (the picture requests are routed by, so routing costs no query), and what it learned in between:
 * nodes it could not reach are skipped until the expiry has passed. While the database cannot be
 * reached the last picture is kept, each node in it ageing by the local clock until it expires.
 */
export class FleetMembership extends EventEmitter<{ changed: [] }> {
  private snapshot: Snapshot = { nodes: [], readAt: 0 };
  private readonly suspects = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private lastOk = 0;
  private schemaReady = false;
  private clashLogged = false;
  private published = false;
  private readonly instance = randomUUID();
  private lastError: string | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: MembershipOptions) {
    super();
    this.now = opts.now ?? Date.now;
  }

  get selfId(): string {
    return this.opts.selfId;
  }

  /**
   * Reports once and reads the fleet, then beats every `heartbeatMs`. A database that cannot be reached
   * yet is not fatal: the node serves on its own, reports not-ready, and joins once a beat gets through.
   */
  async start(): Promise<void> {
    this.timer = setInterval(() => void this.beat(), this.opts.heartbeatMs);
    this.timer.unref();
    await this.beat();
  }

  /** Publishes this node's report and reads the fleet; concurrent calls share one beat. */
  beat(): Promise<void> {
    this.beating ??= this.beatOnce().finally(() => {
      this.beating = undefined;
    });
    return this.beating;
  }

  private async beatOnce(): Promise<void> {
    try {
      if (!this.schemaReady) {
        await this.opts.registry.ensureSchema();
        this.schemaReady = true;
      }
      const report = { ...this.opts.report(), instance: this.instance };
      const replaced = await this.opts.registry.publish(report);
      this.checkUnique(replaced);
      const nodes = await this.opts.registry.nodes(this.opts.expiryMs);
      const before = this.signature();
      this.snapshot = { nodes, readAt: this.now() };
      this.lastOk = this.now();
      if (this.lastError !== undefined) this.opts.log.info({}, 'fleet database reachable again');
      this.lastError = undefined;
      if (this.signature() !== before) this.emit('changed');
    } catch (err) {
      const message = (err as Error).message;
      if (this.lastError === undefined)
        this.opts.log.warn({ err: message }, 'fleet heartbeat failed; routing with the last known nodes');
      this.lastError = message;
    }
  }

  /**
   * Once this process has reported, a row written by another process in between means two nodes share
   * one `fleet.node_id` (the first report replaces the row of this node's previous run, which is fine).
   */
  private checkUnique(replaced: string | undefined): void {
    const clash = this.published && replaced !== undefined && replaced !== this.instance;
    this.published = true;
    if (clash && !this.clashLogged)
      this.opts.log.warn(
        { node: this.opts.selfId },
        'another process reports under this node id: give every node its own fleet.node_id',
      );
    this.clashLogged = clash;
  }

  private signature(): string {
    return this.nodes()
      .map((n) => `${n.id}:${n.loaded.map((l) => l.name).join(',')}`)
      .join(' ');
  }

  /** The live nodes, this one included, as last read; those past the expiry by now are left out. */
  nodes(): FleetNode[] {
    const elapsed = this.now() - this.snapshot.readAt;
    return this.snapshot.nodes
      .filter((n) => n.ageMs + elapsed < this.opts.expiryMs)
      .map((n) => ({ ...n, ageMs: n.ageMs + elapsed }));
  }

  /** The other gateway nodes requests may be forwarded to (not those found unreachable lately). */
  peers(): FleetNode[] {
    const t = this.now();
    return this.nodes().filter(
      (n) => n.kind === 'gateway' && n.id !== this.opts.selfId && !((this.suspects.get(n.id) ?? 0) > t),
    );
  }

  /** The live rpc-server workers. */
  workers(): FleetNode[] {
    return this.nodes().filter((n) => n.kind === 'worker' && n.worker !== undefined);
  }

  /** A node that refused or dropped a forwarded request: skipped for one expiry period. */
  suspect(id: string): void {
    this.suspects.set(id, this.now() + this.opts.expiryMs);
    this.emit('changed');
  }

  /** Whether the last heartbeat got through within the expiry (for /ready). */
  health(): { ok: boolean; detail: string } {
    const since = this.now() - this.lastOk;
    if (this.lastError === undefined && since < this.opts.expiryMs)
      return { ok: true, detail: `${this.nodes().length} live nodes` };
    return { ok: false, detail: `fleet database unreachable: ${this.lastError ?? 'no heartbeat yet'}` };
  }

  /** Stops beating and leaves the fleet, so the others stop routing here at once. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    try {
      await this.opts.registry.leave(this.opts.selfId);
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'could not leave the fleet; it expires by itself');
    }
    await this.opts.registry.close();
  }
}
