import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { FleetListings } from '../api/deps.js';
import type { Catalog, CatalogModel } from '../catalog/catalog.js';
import { parseDuration } from '../config/duration.js';
import type { Config } from '../config/schema.js';
import type { ReadinessCheck } from '../health/checks.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { SchedulableModel } from '../scheduler/types.js';
import { type FleetCredentials, fleetCredentials, MIN_SECRET_LENGTH } from './credentials.js';
import { fleetListings } from './listing.js';
import { FleetMembership } from './membership.js';
import { gatewayReport } from './node-report.js';
import { PgFleetRegistry } from './pg-registry.js';
import type { Store } from '../store/store.js';
import type { FleetRegistry } from './registry.js';

export interface FleetParts {
  config: Config;
  catalog: Catalog;
  scheduler: Scheduler;
  schedulable(model: CatalogModel): SchedulableModel;
  version: string;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  env: NodeJS.ProcessEnv;
  /** The store, whose PostgreSQL database the fleet shares. */
  store: Pick<Store, 'postgres'>;
  /** Tests may hand in another registry; the default is the store's PostgreSQL. */
  registry?: FleetRegistry;
}

/** A gateway's part in a fleet: its membership, the credentials it forwards with, its listings. */
export interface Fleet {
  membership: FleetMembership;
  registry: FleetRegistry;
  expiryMs: number;
  credentials: FleetCredentials;
  listings: FleetListings;
  connectTimeoutMs: number;
  readiness: ReadinessCheck;
  /** Joins once the app listens (the advertised URL defaults to the address it is bound to). */
  joinOnListen(app: FastifyInstance): void;
  leave(): Promise<void>;
}

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** This node's name in the fleet: `fleet.node_id`, else the host name. */
export function fleetNodeId(config: Config): string {
  const id = config.fleet.node_id || hostname();
  if (!NODE_ID.test(id))
    throw new Error(`fleet.node_id "${id}": use letters, digits, ".", "_" and "-" (at most 63 characters)`);
  return id;
}

/** The fleet settings checked once at start; a wrong one stops Corral with a clear message. */
export function fleetSettings(config: Config, env: NodeJS.ProcessEnv = process.env): { id: string; secret: string } {
  const id = fleetNodeId(config);
  const secret = config.fleet.secret || env.CORRAL_FLEET_SECRET || '';
  if (secret.length < MIN_SECRET_LENGTH)
    throw new Error(
      `fleet.secret (or CORRAL_FLEET_SECRET) must be set, at least ${MIN_SECRET_LENGTH} characters, ` +
        'the same on every node',
    );
  return { id, secret };
}

/** The URL peers reach this node at: configured, else the bound address (the host name for a wildcard). */
export function advertisedUrl(config: Config, bound: AddressInfo | undefined): string {
  if (config.fleet.advertise_url) return config.fleet.advertise_url.replace(/\/+$/, '');
  const port = bound?.port ?? config.server.port;
  const address = bound?.address ?? config.server.host;
  const host = address === '0.0.0.0' || address === '::' ? hostname() : address;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function fleetDatabase(store: Pick<Store, 'postgres'>): NonNullable<Store['postgres']> {
  if (!store.postgres)
    throw new Error('fleet.enabled needs store.url: the PostgreSQL database the nodes share (postgres://…)');
  return store.postgres;
}

export function createFleet(p: FleetParts): Fleet {
  const { id, secret } = fleetSettings(p.config, p.env);
  const registry = p.registry ?? new PgFleetRegistry(fleetDatabase(p.store));
  let url = advertisedUrl(p.config, undefined);
  const report = () =>
    gatewayReport({
      id,
      url,
      version: p.version,
      catalog: p.catalog,
      scheduler: p.scheduler,
      schedulable: p.schedulable,
    });
  const membership = new FleetMembership({
    registry,
    selfId: id,
    heartbeatMs: parseDuration(p.config.fleet.heartbeat),
    expiryMs: parseDuration(p.config.fleet.expiry),
    report,
    log: p.log,
  });
  // A load or unload is told to the fleet at once, not at the next heartbeat; after the requests that
  // waited for the load have taken their slots (they settle right after the event).
  const onLoad = (): void => void setImmediate(() => void membership.beat());
  p.scheduler.on('loaded', onLoad);
  p.scheduler.on('unloaded', onLoad);
  let joined = false;
  return {
    membership,
    registry,
    expiryMs: parseDuration(p.config.fleet.expiry),
    credentials: fleetCredentials(id, secret),
    listings: fleetListings(report, () => membership.nodes()),
    connectTimeoutMs: parseDuration(p.config.fleet.connect_timeout),
    readiness: {
      name: 'fleet',
      check() {
        const h = membership.health();
        if (!h.ok) throw new Error(h.detail);
      },
    },
    joinOnListen(app) {
      app.addHook('onListen', async () => {
        url = advertisedUrl(p.config, app.server.address() as AddressInfo);
        joined = true;
        await membership.start();
        p.log.info({ node: id, url, nodes: membership.nodes().map((n) => n.id) }, 'joined the fleet');
      });
    },
    async leave() {
      p.scheduler.off('loaded', onLoad);
      p.scheduler.off('unloaded', onLoad);
      if (joined) await membership.stop();
      else await registry.close();
    },
  };
}
