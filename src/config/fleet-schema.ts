import { Type } from '@sinclair/typebox';

/** Durations are strings like "2s" or numbers of seconds (see ./duration.ts). */
const Duration = (fallback: string, description: string) =>
  Type.Union([Type.String(), Type.Number()], { title: 'duration', description, default: fallback });

/** Several Corral nodes as one endpoint (docs/fleet.md). Off unless `enabled`. */
export const FleetSchema = Type.Object(
  {
    enabled: Type.Boolean({
      default: false,
      description:
        'Join the fleet kept in the PostgreSQL database of `store.url` (required): every node with the same ' +
        '`store.url` and secret serves the models of all as one endpoint, with one set of users and tokens.',
    }),
    node_id: Type.String({
      default: '',
      description:
        "This node's name in the fleet, unique among the nodes (letters, digits, '.', '_', '-'). Empty: the " +
        'host name.',
      examples: ['gpu-a'],
    }),
    advertise_url: Type.String({
      default: '',
      description:
        'The URL other nodes forward requests to (scheme, host and port of this Corral as they reach it). Empty: ' +
        'http://<host name>:<server.port>.',
      examples: ['http://10.0.0.5:11434'],
    }),
    secret: Type.String({
      default: '',
      description:
        'The secret the nodes sign forwarded requests with (at least 32 characters, the same on every node). ' +
        'Required with `enabled`. Empty: the CORRAL_FLEET_SECRET environment variable, which keeps it out of ' +
        'the file.',
    }),
    heartbeat: Duration('2s', 'How often a node reports its models, load and free memory to the database.'),
    expiry: Duration(
      '10s',
      'A node without a heartbeat for this long is gone: requests are no longer forwarded to it and it leaves ' +
        'the fleet listings.',
    ),
    connect_timeout: Duration(
      '3s',
      'How long a forwarded request may wait to connect to another node before the next candidate is tried.',
    ),
  },
  {
    additionalProperties: false,
    default: {},
    description: 'Several Corral nodes as one endpoint, sharing a PostgreSQL database. Changes take effect on restart.',
  },
);

/** `corral worker`: an rpc-server that lends this machine's memory and compute to models on other nodes. */
export const WorkerSchema = Type.Object(
  {
    host: Type.String({
      default: '127.0.0.1',
      description:
        'Address rpc-server listens on. rpc-server has no authentication and runs what it is sent: anyone who ' +
        'reaches its port can use this machine. Beyond loopback, allow only the Corral nodes (firewall, ' +
        'private network).',
    }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 50052, description: 'TCP port of rpc-server.' }),
    advertise: Type.String({
      default: '',
      description: 'host:port the nodes give llama-server to reach this worker. Empty: <host>:<port> as configured.',
      examples: ['10.0.0.7:50052'],
    }),
    device: Type.String({
      default: '',
      description: 'Devices rpc-server offers (its `--device`, comma-separated, e.g. "CUDA0"). Empty: all of them.',
    }),
    threads: Type.Integer({
      minimum: 0,
      default: 0,
      description: "CPU threads rpc-server computes with (its `--threads`). 0: rpc-server's own default.",
    }),
    memory: Type.Union([Type.Integer({ minimum: 0 }), Type.String()], {
      title: 'size',
      default: 0,
      description:
        'Memory this worker lends to models, in bytes or a size like "24GB"; a model using workers has its ' +
        "memory need split across them in proportion. 0: the machine's free memory at start.",
    }),
    cache: Type.Boolean({
      default: false,
      description: "Let rpc-server cache tensors on local disk (its `--cache`), so a model's next load is faster.",
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description: 'The llama.cpp RPC worker `corral worker` runs and registers in the fleet.',
  },
);
