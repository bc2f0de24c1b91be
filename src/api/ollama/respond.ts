import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Runner } from '../../runner/runner.js';
import type { GenerationEvent } from '../../upstream/generation.js';
import type { CatalogModel } from '../../catalog/catalog.js';
import { errorMessage } from '../../errors.js';
import type { ApiDeps } from '../deps.js';
import { clientAbortSignal } from '../client-abort.js';
import { endTogether } from '../coalesce-end.js';
import { leaseAndStart } from '../lease.js';
import { ollamaStats, type OllamaStats } from './timings.js';

type DoneEvent = Extract<GenerationEvent, { kind: 'done' }>;

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
  start(runner: Runner, signal: AbortSignal): AsyncGenerator<GenerationEvent>;
  shape: OllamaShape;
}

/**
 * Acquires a runner, runs the generation and answers as NDJSON (stream) or one JSON object.
 * Errors before the first event become a normal error response with its status code; errors
 * after it become a final `{"error"}` line, so a stream never ends silently or hangs.
 */
export async function serveGeneration(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ApiDeps,
  gen: GenerationRequest,
): Promise<FastifyReply> {
  const startedAt = process.hrtime.bigint();
  const signal = clientAbortSignal(reply);
  const observe = deps.observe;
  // The first event is pulled before anything is answered: upstream refusals keep their status, and a
  // child that died before the request reached it is replaced (see leaseAndStart).
  const { lease, value } = await leaseAndStart(
    deps,
    request,
    gen.model,
    { keepAliveMs: gen.keepAliveMs, numCtx: gen.numCtx, numGpu: gen.numGpu, signal },
    async (runner) => {
      const events = gen.start(runner, signal);
      return { events, first: await events.next() };
    },
  );
  const { events, first } = value;
  let released = false;
  const release = (): void => {
    if (!released) lease.release();
    released = true;
  };
  try {
    if (!gen.stream) {
      const aggregate: Aggregate = { content: '', thinking: '' };
      for (let step = first; !step.done; step = await events.next()) {
        const ev = step.value;
        if (ev.kind === 'delta') {
          if (observe && aggregate.content === '' && aggregate.thinking === '') observe.firstToken?.(request);
          if (ev.content) aggregate.content += ev.content;
          if (ev.thinking) aggregate.thinking += ev.thinking;
        } else {
          release();
          observe?.usage?.(request, ev.timings?.prompt_n ?? 0, ev.timings?.predicted_n ?? 0);
          return reply.send(gen.shape.final(ev, ollamaStats(ev.timings, startedAt, lease.loadDurationMs), aggregate));
        }
      }
      throw new Error('generation ended without a final event');
    }
    observe?.firstToken?.(request);
    // A bare Readable that lines are pushed into: a PassThrough would add a Writable stage per token.
    // Lines are small and come at generation speed, so they are not held back for a slow client.
    const out = new Readable({ read() {} });
    reply.header('content-type', 'application/x-ndjson').send(out);
    void pump(
      first,
      events,
      out,
      gen.shape,
      startedAt,
      lease.loadDurationMs,
      request,
      release,
      observe,
      endTogether(reply.raw),
    );
    return reply;
  } catch (err) {
    release();
    throw err;
  }
}

async function pump(
  first: IteratorResult<GenerationEvent>,
  events: AsyncGenerator<GenerationEvent>,
  out: Readable,
  shape: OllamaShape,
  startedAt: bigint,
  loadDurationMs: number,
  request: FastifyRequest,
  release: () => void,
  observe: ApiDeps['observe'],
  beforeLast: () => void,
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
        line(shape.delta(ev));
      } else {
        release();
        observe?.usage?.(request, ev.timings?.prompt_n ?? 0, ev.timings?.predicted_n ?? 0);
        // The last line and the end, in the same tick, leave in one write (see endTogether).
        beforeLast();
        line(shape.final(ev, ollamaStats(ev.timings, startedAt, loadDurationMs), undefined));
        end();
      }
    }
  } catch (err) {
    if (!out.destroyed) request.log.warn({ err: errorMessage(err) }, 'stream failed mid-way');
    line({ error: errorMessage(err) });
  } finally {
    release();
    end();
  }
}
