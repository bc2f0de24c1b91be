import type { Readable } from 'node:stream';

/**
 * What Corral asks of one llama-server child. The routes see only this interface (handed out by the
 * scheduler's lease), never a process, a socket or llama-server's field names: what Corral translates
 * has a typed method; what it passes through goes through `forward`. Every call takes a CallOptions so a
 * client that leaves stops the work upstream, and llama-server's log lines carry the gateway's request id.
 *
 * Failures: no answer at all rejects with UpstreamUnreachable (its `delivered` says whether the request
 * reached the child, which decides whether the lease may retry it elsewhere); an answer ≥ 400 rejects
 * with UpstreamError carrying llama-server's own message; an aborted signal rejects with its reason.
 */
export interface LlamaClient {
  /** A chat through the model's own template (tools, thinking, images, output format). */
  chat(req: ChatRequest, call?: CallOptions): AsyncGenerator<GenerationEvent>;
  /** A completion of raw prompt text (or token ids followed by text). */
  complete(req: CompletionRequest, call?: CallOptions): AsyncGenerator<GenerationEvent>;
  /** Fill-in-the-middle for models with FIM tokens. */
  infill(req: InfillRequest, call?: CallOptions): AsyncGenerator<GenerationEvent>;
  /** The model's chat template applied to `messages`, as prompt text. */
  applyTemplate(messages: ChatMessage[], opts: { think?: Think }, call?: CallOptions): Promise<string>;
  tokenize(text: string, opts: { addSpecial: boolean }, call?: CallOptions): Promise<number[]>;
  /** One vector per input (text, or token ids already cut to fit), in input order. */
  embed(inputs: (string | number[])[], call?: CallOptions): Promise<EmbeddingResult>;
  /** The context one request can use (the per-slot context). */
  slotContext(call?: CallOptions): Promise<number>;
  /**
   * Passes a request through as it is and answers with llama-server's own status, headers and body
   * (streamed when the body asks for `stream: true`). For the `/v1` routes and anything Corral does not
   * translate (rerank, tokenize for clients, a peer node's forwarded request).
   */
  forward(req: ForwardRequest, call?: CallOptions): Promise<RawAnswer>;
  /** llama-server's own Prometheus text (`/metrics`). */
  metrics(call?: CallOptions): Promise<string>;
  /** True once the model is loaded and requests are served (`/health` 200). */
  health(call?: CallOptions): Promise<boolean>;
  /** Drops idle connections; later calls reject as never delivered. Called when the child exits. */
  close(): void;
}

export interface CallOptions {
  signal?: AbortSignal | undefined;
  /** Sent as x-request-id so llama-server's log lines can be matched with the gateway's. */
  requestId?: string | undefined;
}

/** Where a child listens: a Unix socket in a private directory, or loopback TCP guarded by a key. */
export type LlamaEndpoint = { socketPath: string } | { host: string; port: number; apiKey: string };

/** Ollama's `think`: on/off, or a level some models take ("low", "medium", "high"). */
export type Think = boolean | string;

/** Sampling settings in Corral's own names; the llama-server field names live in dialect.ts. */
export interface Sampling {
  /** Tokens to generate; -1 = unlimited, -2 = until the context is full. */
  maxTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  typicalP?: number;
  seed?: number;
  repeatPenalty?: number;
  repeatLastN?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  mirostat?: number;
  mirostatTau?: number;
  mirostatEta?: number;
  /** Prompt tokens kept when the context shifts. */
  keep?: number;
  tfsZ?: number;
  stop?: string[];
}

/** Constrained output: any JSON object, or one matching a JSON schema. */
export type OutputFormat = { json: 'any' } | { json: 'schema'; schema: object };

export interface ToolCallRequest {
  name: string;
  /** An object, or JSON text as a model produced it. */
  arguments: unknown;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  /** Base64 data or data: URLs. */
  images?: string[] | undefined;
  toolCalls?: ToolCallRequest[] | undefined;
  /** For role tool: the tool whose result this is. */
  toolName?: string | undefined;
  /** An assistant turn's reasoning, sent back as history. */
  thinking?: string | undefined;
}

export interface ChatRequest {
  messages: ChatMessage[];
  sampling: Sampling;
  /** Tool definitions in the OpenAI shape (Ollama uses the same). */
  tools?: object[] | undefined;
  think?: Think | undefined;
  format?: OutputFormat | undefined;
}

export interface CompletionRequest {
  /** Text, or token ids followed by text (a continuation of an earlier answer). */
  prompt: string | (number | string)[];
  /** Base64 images, matched in order to the media markers a templated prompt holds. */
  images?: string[] | undefined;
  sampling: Sampling;
  format?: OutputFormat | undefined;
  /** Have the final event carry the generated token ids (see GenerationEvent `tokens`). */
  returnTokens?: boolean | undefined;
}

export interface InfillRequest {
  prefix: string;
  suffix: string;
  sampling: Sampling;
  format?: OutputFormat | undefined;
  returnTokens?: boolean | undefined;
}

/** llama-server's timings: milliseconds and counts. */
export interface LlamaTimings {
  prompt_n?: number;
  prompt_ms?: number;
  predicted_n?: number;
  predicted_ms?: number;
  cache_n?: number;
}

export interface ToolCall {
  id?: string;
  name: string;
  /** Raw JSON text of the arguments as the model produced it. */
  arguments: string;
}

/** One step of a generation, independent of which API the client speaks. */
export type GenerationEvent =
  | { kind: 'delta'; content: string; thinking?: undefined }
  | { kind: 'delta'; content?: undefined; thinking: string }
  | DoneEvent;

export interface DoneEvent {
  kind: 'done';
  reason: 'stop' | 'length';
  timings: LlamaTimings | undefined;
  toolCalls: ToolCall[];
  tokens?: number[];
  /** The generated text, set only when `tokens` lacks some of its ids (see events.ts). */
  answer?: string;
}

export interface EmbeddingResult {
  vectors: number[][];
  promptTokens: number;
}

export interface ForwardRequest {
  method?: 'GET' | 'POST';
  path: string;
  /** A JSON body: sent as it is if a string, serialised otherwise. */
  body?: unknown;
}

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Destroying it closes the connection, which stops a generation. */
  body: Readable;
}
