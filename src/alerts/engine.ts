import { EventEmitter } from 'node:events';
import { stat } from 'node:fs/promises';
import { coalesced } from '../config/watch.js';
import { parseDuration } from '../config/duration.js';
import type { Config } from '../config/schema.js';
import { freeBytes } from '../fs/free-space.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { FailureRecord } from '../scheduler/supervisor.js';
import type { AlertEpisode } from '../store/alert-history.js';
import type { Store } from '../store/store.js';
import { evaluateRules, type Active, type Observations } from './conditions.js';
import { observeTraffic, trafficWindow } from './traffic.js';
import { createDelivery, severityAtLeast, type DeliveryLog, type Notification, type RetryPolicy } from './webhooks.js';

export interface AlertEngineDeps {
  config(): Config;
  scheduler: Scheduler;
  store: Store;
  /** Directories whose disks are watched (data and model directories). */
  dirs(): string[];
  log: DeliveryLog & { error(obj: object, msg: string): void };
  now?: () => number;
}

export interface AlertEngineEvents {
  /** An alert fired or resolved. */
  change: [];
  /** One evaluation finished (whether or not anything changed). */
  evaluated: [];
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The app's alert engine (firing alerts, history, evaluation events). */
    alerts: AlertEngine;
  }
}

const keyOf = (a: { rule: string; subject: string }): string => `${a.rule}\0${a.subject}`;

/**
 * Evaluates the alert rules on a timer and at once on model failures; keeps one episode per firing
 * alert (so a condition that holds for an hour notifies once), records history in the store and
 * hands "firing" and "resolved" notifications to the webhooks.
 */
export class AlertEngine extends EventEmitter<AlertEngineEvents> {
  private readonly now: () => number;
  private readonly open = new Map<string, AlertEpisode>();
  private readonly failures = new Map<string, { at: number; reason: string }>();
  private readonly crashLoops = new Map<string, { consecutive: number; reason: string }>();
  private readonly delivery;
  private readonly run = coalesced(() => this.evaluate(), 20);
  private timer: NodeJS.Timeout | undefined;
  private last: Observations | undefined;
  /** Whether the episodes still open in the store have been taken over (done before the first evaluation). */
  private restored = false;
  private readonly subscriptions: [string, (...args: never[]) => void][];

  constructor(private readonly deps: AlertEngineDeps) {
    super();
    this.now = deps.now ?? Date.now;
    this.delivery = createDelivery(deps.log);
    const soon = (): void => this.run.schedule();
    this.subscriptions = [
      [
        'failed',
        (name: string, r: FailureRecord) => {
          this.failures.set(name, { at: r.failure.at.getTime(), reason: r.failure.reason });
          soon();
        },
      ],
      [
        'gave-up',
        (name: string, r: FailureRecord) => {
          this.crashLoops.set(name, { consecutive: r.consecutive, reason: r.failure.reason });
          soon();
        },
      ],
      [
        'loaded',
        (name: string) => {
          this.failures.delete(name);
          this.crashLoops.delete(name);
          soon();
        },
      ],
    ];
    for (const [event, fn] of this.subscriptions) deps.scheduler.on(event as 'loaded', fn as never);
  }

  start(): void {
    const tick = (): void => {
      this.run.schedule();
      this.timer = setTimeout(tick, Math.max(50, parseDuration(this.deps.config().alerts.interval)));
      this.timer.unref();
    };
    tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    for (const [event, fn] of this.subscriptions) this.deps.scheduler.off(event as 'loaded', fn as never);
    await this.run.close();
    this.delivery.close();
  }

  /** Alerts firing now, oldest first. */
  firing(): AlertEpisode[] {
    return [...this.open.values()].sort((a, b) => a.startedAt - b.startedAt);
  }

  /** What the last evaluation saw (for /metrics). */
  observations(): Observations | undefined {
    return this.last;
  }

  /** Sends a made-up "info" alert to every webhook, whatever its severity filter; returns how many. */
  sendTest(actor: string): number {
    const config = this.deps.config();
    const episode = {
      id: 0,
      rule: 'test',
      subject: '',
      severity: 'info' as const,
      summary: `A test notification from Corral, sent by ${actor} from the Alerts page.`,
      startedAt: this.now(),
      resolvedAt: undefined,
      notified: true,
    };
    for (const hook of config.alerts.webhooks)
      this.delivery.send(hook, { status: 'firing', episode }, retryPolicy(config));
    return config.alerts.webhooks.length;
  }

  /** Waits until queued webhook deliveries are done. */
  delivered(): Promise<void> {
    return this.delivery.idle();
  }

  async evaluate(): Promise<void> {
    const config = this.deps.config();
    try {
      await this.restore();
      const o = await this.observe(config);
      this.last = o;
      const active = config.alerts.enabled ? evaluateRules(config.alerts.rules, o) : [];
      await this.apply(config, active, o.now);
    } catch (err) {
      this.deps.log.error({ err }, 'alert evaluation failed');
    }
    this.emit('evaluated');
  }

  /**
   * Alerts that were firing when Corral stopped go on firing (no second notification); the first
   * evaluation resolves those whose condition is gone. Done before the first evaluation.
   */
  async restore(): Promise<void> {
    if (this.restored) return;
    for (const e of await this.deps.store.alertHistory.firing()) this.open.set(keyOf(e), e);
    this.restored = true;
  }

  private async apply(config: Config, active: Active[], now: number): Promise<void> {
    const seen = new Set<string>();
    let changed = false;
    // Episodes recorded before a failure (an unreachable store) are announced all the same.
    try {
      for (const a of active) {
        const key = keyOf(a);
        seen.add(key);
        if (this.open.has(key)) continue;
        const last = await this.deps.store.alertHistory.lastNotifiedAt(a.rule, a.subject);
        const cooling =
          last !== undefined && now - last < parseDuration(config.alerts.rules[a.rule].cooldown as string | number);
        const episode = await this.deps.store.alertHistory.open({ ...a, startedAt: now, notified: !cooling });
        this.open.set(key, episode);
        changed = true;
        this.deps.log.info({ rule: a.rule, subject: a.subject, severity: a.severity }, `alert firing: ${a.summary}`);
        if (!cooling) this.notify(config, { status: 'firing', episode });
      }
      for (const [key, episode] of this.open) {
        if (seen.has(key)) continue;
        await this.deps.store.alertHistory.resolve(episode.id, now);
        this.open.delete(key);
        changed = true;
        this.deps.log.info({ rule: episode.rule, subject: episode.subject }, `alert resolved: ${episode.summary}`);
        if (episode.notified) this.notify(config, { status: 'resolved', episode: { ...episode, resolvedAt: now } });
      }
    } finally {
      if (changed) this.emit('change');
    }
  }

  private notify(config: Config, n: Notification): void {
    const { retry, webhooks } = config.alerts;
    const policy = {
      attempts: retry.attempts,
      initialMs: parseDuration(retry.initial),
      maxMs: parseDuration(retry.max),
    };
    for (const hook of webhooks)
      if (severityAtLeast(n.episode.severity, hook.min_severity)) this.delivery.send(hook, n, policy);
  }

  private async observe(config: Config): Promise<Observations> {
    const now = this.now();
    const { scheduler, store } = this.deps;
    const status = scheduler.status();
    // A model whose crash history was forgotten (its config changed) is no longer in a loop.
    for (const name of this.crashLoops.keys())
      if (!status.failures.some((f) => f.name === name && f.gaveUp)) this.crashLoops.delete(name);
    const { rules } = config.alerts;
    const traffic = await observeTraffic(store.requestLog.pages(now - trafficWindow(rules), now + 1), rules, now);
    const limited = (await store.apiTokens.list()).filter((t) => t.tpd && !t.revoked_at);
    const tokens = await Promise.all(
      limited.map(async (t) => ({ name: t.name, used: await store.tokenUsage.get(t.id, now), limit: t.tpd! })),
    );
    return {
      now,
      ...traffic,
      failures: new Map(this.failures),
      crashLoops: new Map(this.crashLoops),
      memory: { usedBytes: status.memoryUsedBytes, budgetBytes: status.memoryBudgetBytes },
      disks: await disks(this.deps.dirs()),
      tokens,
    };
  }
}

function retryPolicy(config: Config): RetryPolicy {
  const { retry } = config.alerts;
  return { attempts: retry.attempts, initialMs: parseDuration(retry.initial), maxMs: parseDuration(retry.max) };
}

/** Free space once per filesystem (the first directory named on it stands for it). */
async function disks(dirs: string[]): Promise<{ path: string; freeBytes: number }[]> {
  const seen = new Set<number>();
  const out: { path: string; freeBytes: number }[] = [];
  for (const path of dirs) {
    const st = await stat(path).catch(() => undefined);
    if (!st || seen.has(st.dev)) continue;
    seen.add(st.dev);
    const free = await freeBytes(path).catch(() => undefined);
    if (free !== undefined) out.push({ path, freeBytes: free });
  }
  return out;
}
