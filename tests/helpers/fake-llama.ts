import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { ModelLoadFailed, UpstreamUnreachable } from '../../src/errors.js';
import type {
  CallOptions,
  ChatMessage,
  ChatRequest,
  CompletionRequest,
  DoneEvent,
  EmbeddingResult,
  ForwardRequest,
  GenerationEvent,
  InfillRequest,
  LlamaClient,
  RawAnswer,
} from '../../src/llama/client.js';
import type { Runner, RunnerEvents, RunnerFailure, RunnerState } from '../../src/runner/runner.js';
import type { SupervisedRunner } from '../../src/scheduler/types.js';

type Events = Iterable<GenerationEvent> | AsyncIterable<GenerationEvent>;

/**
 * What a scripted llama-server answers. Unscripted generations answer `answer(['a', 'b'])`; unscripted
 * calls otherwise answer plausibly (a templated prompt, a token per character, a 256-token slot).
 */
export interface LlamaScript {
  chat?(req: ChatRequest): Events;
  complete?(req: CompletionRequest): Events;
  infill?(req: InfillRequest): Events;
  applyTemplate?(messages: ChatMessage[]): string;
  tokenize?(text: string, opts: { addSpecial: boolean }): number[];
  embed?(inputs: (string | number[])[]): EmbeddingResult;
  slotContext?(): number;
  forward?(req: ForwardRequest): RawAnswer;
}

/** A generation of the given pieces, then its end with timings that count them. */
export function answer(pieces: string[], done: Partial<DoneEvent> = {}): GenerationEvent[] {
  return [
    ...pieces.map((content): GenerationEvent => ({ kind: 'delta', content })),
    {
      kind: 'done',
      reason: 'stop',
      timings: { prompt_n: 3, prompt_ms: 1.5, predicted_n: pieces.length, predicted_ms: 2.25 },
      toolCalls: [],
      ...done,
    },
  ];
}

/** A LlamaClient that plays a script and records what it was asked, for translation tests without a child. */
export class FakeLlamaClient implements LlamaClient {
  readonly calls: { method: string; args: unknown[] }[] = [];
  closed = false;

  constructor(readonly script: LlamaScript = {}) {}

  chat(req: ChatRequest, call?: CallOptions): AsyncGenerator<GenerationEvent> {
    return this.play('chat', [req], call, () => this.script.chat?.(req));
  }

  complete(req: CompletionRequest, call?: CallOptions): AsyncGenerator<GenerationEvent> {
    return this.play('complete', [req], call, () => this.script.complete?.(req));
  }

  infill(req: InfillRequest, call?: CallOptions): AsyncGenerator<GenerationEvent> {
    return this.play('infill', [req], call, () => this.script.infill?.(req));
  }

  async applyTemplate(messages: ChatMessage[], opts: object): Promise<string> {
    this.record('applyTemplate', [messages, opts]);
    return this.script.applyTemplate?.(messages) ?? messages.map((m) => `<${m.role}>${m.content}`).join('');
  }

  async tokenize(text: string, opts: { addSpecial: boolean }): Promise<number[]> {
    this.record('tokenize', [text, opts]);
    return (
      this.script.tokenize?.(text, opts) ?? [...(opts.addSpecial ? [1] : []), ...[...text].map((c) => c.charCodeAt(0))]
    );
  }

  async embed(inputs: (string | number[])[]): Promise<EmbeddingResult> {
    this.record('embed', [inputs]);
    return this.script.embed?.(inputs) ?? { vectors: inputs.map(() => [3, 4]), promptTokens: inputs.length };
  }

  async slotContext(): Promise<number> {
    this.record('slotContext', []);
    return this.script.slotContext?.() ?? 256;
  }

  async forward(req: ForwardRequest): Promise<RawAnswer> {
    this.record('forward', [req]);
    const scripted = this.script.forward?.(req);
    if (scripted) return scripted;
    return { status: 200, headers: { 'content-type': 'application/json' }, body: Readable.from(['{}']) };
  }

  async metrics(): Promise<string> {
    this.record('metrics', []);
    return '';
  }

  async health(): Promise<boolean> {
    return !this.closed;
  }

  close(): void {
    this.closed = true;
  }

  /** The requests of one method, in order. */
  requests<T>(method: string): T[] {
    return this.calls.filter((c) => c.method === method).map((c) => c.args[0] as T);
  }

  private record(method: string, args: unknown[]): void {
    if (this.closed) throw new UpstreamUnreachable('llama-server is unreachable: its child has exited', false);
    this.calls.push({ method, args });
  }

  private async *play(
    method: string,
    args: unknown[],
    call: CallOptions | undefined,
    scripted: () => Events | undefined,
  ): AsyncGenerator<GenerationEvent> {
    this.record(method, args);
    for await (const ev of scripted() ?? answer(['a', 'b'])) {
      if (call?.signal?.aborted) throw call.signal.reason;
      if (this.closed) throw new Error('llama-server closed the connection before the answer was complete');
      yield ev;
    }
  }
}

let nextPid = 4_000_000;

export interface FakeRunnerOptions {
  /** How long a start takes. */
  startMs?: number;
  /** A start fails with this reason instead. */
  failWith?: string;
}

/**
 * A Runner without a process, for scheduler tests: starts and stops at once (or after `startMs`), hands
 * out a fresh FakeLlamaClient per start, and can be made to crash.
 */
export class FakeRunner extends EventEmitter<RunnerEvents> implements SupervisedRunner {
  state: RunnerState = 'stopped';
  pid: number | undefined;
  readyAt: Date | undefined;
  failure: RunnerFailure | undefined;
  client: FakeLlamaClient | undefined;
  starts = 0;
  readonly command = ['llama-server', '--scripted'];

  constructor(
    readonly model: string,
    private readonly makeClient: () => FakeLlamaClient,
    readonly options: FakeRunnerOptions = {},
  ) {
    super();
  }

  async start(): Promise<void> {
    if (this.state === 'ready') return;
    this.starts++;
    this.set('starting');
    if (this.options.startMs) await new Promise((r) => setTimeout(r, this.options.startMs));
    if (this.options.failWith) {
      this.failure = { reason: this.options.failWith, lastLines: [], at: new Date() };
      this.set('failed');
      throw new ModelLoadFailed(`model "${this.model}" failed to load: ${this.options.failWith}`);
    }
    this.pid = nextPid++;
    this.client = this.makeClient();
    this.readyAt = new Date();
    this.set('ready');
  }

  async stop(): Promise<void> {
    if (this.pid === undefined) {
      if (this.state !== 'failed') this.set('stopped');
      return;
    }
    this.set('stopping');
    this.exit(true, undefined);
  }

  /** The child dies by itself (as with kill -9). */
  crash(): void {
    this.exit(false, 'SIGKILL');
  }

  private exit(expected: boolean, signal: string | undefined): void {
    this.client?.close();
    this.client = undefined;
    this.pid = undefined;
    if (expected) this.set('stopped');
    else {
      this.failure = { reason: `llama-server exited (${signal})`, signal, lastLines: [], at: new Date() };
      this.set('failed');
    }
    this.emit('exit', { code: undefined, signal, expected }, this as unknown as Runner);
  }

  private set(state: RunnerState): void {
    this.state = state;
    this.emit('state', state, this as unknown as Runner);
  }
}

/** A script whose generations run to the requested length, a turn of the event loop per token, like a real child. */
export function generatesAsAsked(): LlamaScript {
  async function* run(req: { sampling: { maxTokens?: number } }): AsyncGenerator<GenerationEvent> {
    const n = req.sampling.maxTokens !== undefined && req.sampling.maxTokens > 0 ? req.sampling.maxTokens : 2;
    for (let i = 0; i < n; i++) {
      await new Promise((r) => setImmediate(r));
      yield { kind: 'delta', content: 't' };
    }
    yield answer([], { reason: 'length', timings: { prompt_n: 1, prompt_ms: 1, predicted_n: n, predicted_ms: n } })[0]!;
  }
  return { chat: run, complete: run };
}
