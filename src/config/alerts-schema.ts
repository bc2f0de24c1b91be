import { Type, type TProperties } from '@sinclair/typebox';

/** Durations are strings like "5m" or numbers of seconds (see ./duration.ts). */
const Duration = (fallback: string, description: string) =>
  Type.Union([Type.String(), Type.Number()], { title: 'duration', description, default: fallback });

const Severity = (fallback: 'info' | 'warning' | 'critical') =>
  Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('critical')], {
    default: fallback,
    description: 'How serious a firing is: "info", "warning" or "critical" (webhooks can filter on it).',
  });

const Percent = (fallback: number, description: string) =>
  Type.Number({ minimum: 0, maximum: 100, default: fallback, description });

/** The fields every rule has; `extra` are its own thresholds. */
function rule<P extends TProperties>(
  what: string,
  defaults: { severity: 'info' | 'warning' | 'critical'; cooldown?: string },
  extra: P = {} as P,
) {
  return Type.Object(
    {
      enabled: Type.Boolean({ default: true, description: 'Whether this rule is evaluated.' }),
      severity: Severity(defaults.severity),
      cooldown: Duration(
        defaults.cooldown ?? '15m',
        'Least time between two "firing" notifications of the same alert (one that resolves and fires again ' +
          'sooner is shown and recorded, but not sent again).',
      ),
      ...extra,
    },
    { additionalProperties: false, default: {}, description: what },
  );
}

const window = (fallback: string) => Duration(fallback, 'The sliding window the rule looks at.');
const minRequests = (fallback: number) =>
  Type.Integer({
    minimum: 1,
    default: fallback,
    description: 'Requests a model needs in the window before the rule judges it (fewer: never fires).',
  });

export const AlertRulesSchema = Type.Object(
  {
    model_failed: rule(
      'A model failed to load or its llama-server crashed (per model; clears on a good load, or once the window ' +
        'passes without a failure).',
      { severity: 'warning' },
      { window: window('10m') },
    ),
    model_crash_loop: rule(
      'A model reached `scheduler.restart_backoff.max_restarts` failures in a row and is no longer restarted.',
      { severity: 'critical' },
    ),
    error_rate: rule(
      "Share of a model's requests answered with a 5xx status (other than 503) over the window.",
      { severity: 'warning' },
      {
        window: window('5m'),
        percent: Percent(10, 'Fires above this percentage of failed requests.'),
        min_requests: minRequests(20),
      },
    ),
    queue_full: rule(
      "Share of a model's requests refused with 503 (queue full, no room to load) over the window.",
      { severity: 'warning' },
      {
        window: window('5m'),
        percent: Percent(5, 'Fires above this percentage of refused requests.'),
        min_requests: minRequests(10),
      },
    ),
    ttft_p95: rule(
      "95th percentile of a model's time to first token over the window.",
      { severity: 'warning' },
      {
        window: window('5m'),
        threshold: Duration('10s', 'Fires when the p95 time to first token is above this.'),
        min_requests: minRequests(10),
      },
    ),
    queue_wait_p95: rule(
      "95th percentile of the time a model's requests waited for a free slot over the window.",
      { severity: 'warning' },
      {
        window: window('5m'),
        threshold: Duration('5s', 'Fires when the p95 queue wait is above this.'),
        min_requests: minRequests(10),
      },
    ),
    memory_budget: rule(
      'Loaded models use more than a share of `scheduler.memory_budget` (never fires without a budget).',
      { severity: 'warning' },
      { percent: Percent(90, 'Fires above this percentage of the budget.') },
    ),
    disk_free: rule(
      'Free space on the disk of `data_dir` or of a `models_dirs` entry.',
      { severity: 'critical' },
      {
        min_free: Type.Union([Type.Integer({ minimum: 0 }), Type.String()], {
          title: 'size',
          default: '5GB',
          description: 'Fires when less than this is free (bytes or a size like "10GB").',
        }),
      },
    ),
    token_quota: rule(
      'An API token has used more than a share of its daily token limit (tokens without a limit never fire).',
      { severity: 'info', cooldown: '12h' },
      { percent: Percent(80, 'Fires above this percentage of the daily limit.') },
    ),
  },
  { additionalProperties: false, default: {}, description: 'The alert rules, each on by default.' },
);

export const WebhookSchema = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      description: 'Where notifications are POSTed. It usually holds a secret: use `${ENV_VAR}` interpolation.',
      examples: ['${SLACK_WEBHOOK_URL}'],
    }),
    format: Type.Union([Type.Literal('json'), Type.Literal('slack'), Type.Literal('ntfy')], {
      default: 'json',
      description:
        'Body shape: "json" (Corral\'s own, see docs/console.md), "slack" (an incoming-webhook `text` message) or ' +
        '"ntfy" (a plain-text message with Title, Priority and Tags headers).',
    }),
    min_severity: Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('critical')], {
      default: 'info',
      description: 'Only alerts at least this severe are sent here.',
    }),
    headers: Type.Record(Type.String(), Type.String(), {
      default: {},
      description: 'Extra request headers, e.g. an Authorization header for ntfy.',
      examples: [{ Authorization: 'Bearer ${NTFY_TOKEN}' }],
    }),
  },
  { additionalProperties: false, description: 'One notification target.' },
);

export const AlertsSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true, description: 'Evaluate the rules at all.' }),
    interval: Duration('15s', 'How often the rules are evaluated (model failures are noticed at once).'),
    webhooks: Type.Array(WebhookSchema, {
      default: [],
      description: 'Targets for "firing" and "resolved" notifications. None: alerts show only in the UI and /metrics.',
    }),
    retry: Type.Object(
      {
        attempts: Type.Integer({
          minimum: 1,
          maximum: 20,
          default: 6,
          description: 'Delivery attempts per notification (a network error, 429 or 5xx answer is retried).',
        }),
        initial: Duration('2s', 'Wait before the first retry; it doubles after each one.'),
        max: Duration('5m', 'Longest wait between two attempts.'),
      },
      { additionalProperties: false, default: {}, description: 'Webhook retries with exponential backoff.' },
    ),
    rules: AlertRulesSchema,
  },
  {
    additionalProperties: false,
    default: {},
    description: 'Threshold alerts: shown as a banner and on the Alerts page, exported on /metrics, sent to webhooks.',
  },
);

const limit = (count: number, per: string, what: string) =>
  Type.Object(
    {
      count: Type.Integer({ minimum: 0, default: count, description: 'Operations allowed per window; 0 = no limit.' }),
      per: Duration(per, 'The window.'),
    },
    { additionalProperties: false, default: {}, description: what },
  );

export const OperationLimitsSchema = Type.Object(
  {
    pull: limit(2, '5m', 'Pulls (`/api/pull` and the Pull page) per user or token.'),
    create: limit(5, '1m', 'Creates and copies (`/api/create`, `/api/copy`, blob uploads count as none).'),
    model: limit(
      5,
      '1m',
      'Loads, unloads and restarts from the admin UI, and unloads or pins by `keep_alive` over the API.',
    ),
  },
  {
    additionalProperties: false,
    default: {},
    description:
      'Rate limits per operation for everyone but admins, per user or token (loopback clients share one ' +
      'budget); beyond them the answer is 429 with Retry-After. Hot-reloaded.',
  },
);
