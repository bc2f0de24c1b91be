import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CatalogModel } from '../../catalog/catalog.js';
import { errorMessage } from '../../errors.js';
import type { CallOptions, DoneEvent, GenerationEvent, LlamaClient, LlamaTimings } from '../../llama/client.js';
import { clientAbortSignal } from '../client-abort.js';
import { endTogether } from '../coalesce-end.js';
import type { ApiDeps } from '../deps.js';
import { assertTextFits, slotContext } from '../prompt-cap.js';

export interface Aggregate {
  content: string;
  thinking: string;
}

/** How one Ollama endpoint shapes its lines. */
export interface OllamaShape {
  delta(ev: Extract<GenerationEvent, { kind: 'delta' }>): object;
  final(done: DoneEvent, stats: OllamaStats, aggregate: Aggregate | undefined): object;
}

export interface GenerationRequest {
  model: CatalogModel;
  stream: boolean;
  keepAliveMs: number | undefined;
  numCtx: number | undefined;
  numGpu?: number | undefined;
  /** UTF-8 bytes of the prompt's text (messages, system, tools; not images), capped by the context. */
  promptBytes: number;
  /** Starts the generation on the leased child; may run twice (see Scheduler.withLease). */
  start(client: LlamaClient, call: CallOptions): AsyncGenerator<GenerationEvent>;
  shape: OllamaShape;
}

/** Ollama's final-chunk statistics: nanosecond integers. */
export interface OllamaStats {
  total_duration: number;
  load_duration: number;
  prompt_eval_count: number;
  prompt_eval_duration: number;
  eval_count: number;
  eval_duration: number;
}

const NS_PER_MS = 1e6;

export function ollamaStats(timings: LlamaTimings | undefined, startedAt: bigint, loadDurationMs: number): OllamaStats {
  return {
    total_duration: Number(process.hrtime.bigint() - startedAt),
    load_duration: Math.round(loadDurationMs * NS_PER_MS),
    // Ollama counts the whole prompt, cached part included; llama-server's prompt_n leaves the cache out,
    // so a repeated prompt (an image especially) would look like it was never read.
    prompt_eval_count: (timings?.prompt_n ?? 0) + (timings?.cache_n ?? 0),
    prompt_eval_duration: Math.round((timings?.prompt_ms ?? 0) * NS_PER_MS),
    eval_count: timings?.predicted_n ?? 0,
    eval_duration: Math.round((timings?.predicted_ms ?? 0) * NS_PER_MS),
  };
}

/**
 * Leases a child, runs the generation and answers as NDJSON (stream) or one JSON object, holding the
 * slot until the answer is complete. The first event is pulled before anything is answered, so errors
 * before it (an upstream refusal, a load failure) become a normal error response with their status;
 * errors after it become a final `{"error"}` line, so a stream never ends silently or hangs.
 */
export async function serveGeneration(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ApiDeps,
  gen: GenerationRequest,
): Promise<FastifyReply> {
  const startedAt = process.hrtime.bigint();
  const model = gen.model;
  assertTextFits(model, slotContext(model, deps.schedulable(model).ctxSize, gen.numCtx), gen.promptBytes);
  const signal = clientAbortSignal(reply);
  const call = { signal, requestId: request.id };
  const lease = { keepAliveMs: gen.keepAliveMs, numCtx: gen.numCtx, numGpu: gen.numGpu, signal };
  const firstToken = (): void => deps.observe?.firstToken?.(request);
  return deps.scheduler.withLease(deps.schedulable(gen.model), lease, async (client, info) => {
    deps.observe?.leased?.(request, gen.model.name, info);
    const events = gen.start(client, call);
    const first = await events.next();
    const stats = (done: DoneEvent): OllamaStats => ollamaStats(done.timings, startedAt, info.loadDurationMs);
    const finish = (done: DoneEvent): void =>
      deps.observe?.usage?.(request, done.timings?.prompt_n ?? 0, done.timings?.predicted_n ?? 0);
    if (!gen.stream) return reply.send(await whole(first, events, gen.shape, stats, finish, firstToken));
    firstToken();
    // A bare Readable that lines are pushed into: a PassThrough would add a Writable stage per token.
    // Lines are small and come at generation speed, so they are not held back for a slow client.
    const out = new Readable({ read() {} });
    reply.header('content-type', 'application/x-ndjson').send(out);
    await pump(first, events, out, { shape: gen.shape, stats, finish, beforeLast: endTogether(reply.raw), request });
    return reply;
  });
}

/** A non-streamed answer: the deltas joined into the final object. */
async function whole(
  first: IteratorResult<GenerationEvent>,
  events: AsyncGenerator<GenerationEvent>,
  shape: OllamaShape,
  stats: (done: DoneEvent) => OllamaStats,
  finish: (done: DoneEvent) => void,
  firstToken: () => void,
): Promise<object> {
  const aggregate: Aggregate = { content: '', thinking: '' };
  for (let step = first; !step.done; step = await events.next()) {
    const ev = step.value;
    if (ev.kind === 'done') {
      finish(ev);
      return shape.final(ev, stats(ev), aggregate);
    }
    if (aggregate.content === '' && aggregate.thinking === '') firstToken();
    if (ev.content) aggregate.content += ev.content;
    if (ev.thinking) aggregate.thinking += ev.thinking;
  }
  throw new Error('generation ended without a final event');
}

interface PumpContext {
  shape: OllamaShape;
  stats(done: DoneEvent): OllamaStats;
  finish(done: DoneEvent): void;
  /** Called right before the last line, so it and the end leave in one write (see endTogether). */
  beforeLast(): void;
  request: FastifyRequest;
}

async function pump(
  first: IteratorResult<GenerationEvent>,
  events: AsyncGenerator<GenerationEvent>,
  out: Readable,
  ctx: PumpContext,
): Promise<void> {
  // A client that went away has had `out` destroyed; its lines are dropped.
  let ended = false;
  const line = (obj: object): void => {
    if (!out.destroyed && !ended) out.push(`${JSON.stringify(obj)}\n`);
  };
  const end = (): void => {
    if (!out.destroyed && !ended) out.push(null);
    ended = true;
  };
  try {
    for (let step = first; !step.done; step = await events.next()) {
      const ev = step.value;
      if (ev.kind === 'delta') {
        line(ctx.shape.delta(ev));
      } else {
        ctx.finish(ev);
        ctx.beforeLast();
        line(ctx.shape.final(ev, ctx.stats(ev), undefined));
        end();
      }
    }
  } catch (err) {
    if (!out.destroyed) ctx.request.log.warn({ err: errorMessage(err) }, 'stream failed mid-way');
    line({ error: errorMessage(err) });
  } finally {
    end();
  }
}
