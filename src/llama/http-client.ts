import type {
  CallOptions,
  ChatMessage,
  ChatRequest,
  CompletionRequest,
  EmbeddingResult,
  ForwardRequest,
  GenerationEvent,
  InfillRequest,
  LlamaClient,
  LlamaEndpoint,
  RawAnswer,
  Think,
} from './client.js';
import { applyTemplateBody, chatAsCompletion, chatBody, completesChat, completionBody, infillBody } from './dialect.js';
import { chatEvents, completionEvents } from './events.js';
import { type SendOptions, Transport } from './transport.js';

/** The LlamaClient of one llama-server child, over its private socket (or loopback TCP with a key). */
export class HttpLlamaClient implements LlamaClient {
  private readonly http: Transport;

  constructor(endpoint: LlamaEndpoint) {
    this.http = new Transport(endpoint);
  }

  /**
   * Every Ollama generation is served from a stream, streamed to its client or not: llama-server checks
   * a non-streamed request's connection only after a second in which no result arrived for any request,
   * so while other generations run, one whose client left would go on to its end. A stream stops at the
   * next token after its connection closes.
   */
  async *chat(req: ChatRequest, call?: CallOptions): AsyncGenerator<GenerationEvent> {
    if (!completesChat(req)) {
      yield* chatEvents(await this.stream('/v1/chat/completions', chatBody(req), call));
      return;
    }
    const prompt = await this.applyTemplate(req.messages, { think: req.think }, call);
    const body = completionBody(chatAsCompletion(req, prompt), req.think);
    yield* completionEvents(await this.stream('/completion', body, call), false);
  }

  async *complete(req: CompletionRequest, call?: CallOptions): AsyncGenerator<GenerationEvent> {
    yield* completionEvents(await this.stream('/completion', completionBody(req), call), Boolean(req.returnTokens));
  }

  async *infill(req: InfillRequest, call?: CallOptions): AsyncGenerator<GenerationEvent> {
    yield* completionEvents(await this.stream('/infill', infillBody(req), call), Boolean(req.returnTokens));
  }

  async applyTemplate(messages: ChatMessage[], opts: { think?: Think }, call?: CallOptions): Promise<string> {
    return (await this.json<{ prompt: string }>('/apply-template', applyTemplateBody(messages, opts.think), call))
      .prompt;
  }

  async tokenize(text: string, opts: { addSpecial: boolean }, call?: CallOptions): Promise<number[]> {
    const body = { content: text, add_special: opts.addSpecial };
    return (await this.json<{ tokens: number[] }>('/tokenize', body, call)).tokens;
  }

  async embed(inputs: (string | number[])[], call?: CallOptions): Promise<EmbeddingResult> {
    const answer = await this.json<{
      data: { index: number; embedding: number[] }[];
      usage?: { prompt_tokens?: number };
    }>('/v1/embeddings', { input: inputs }, call);
    const vectors: number[][] = [];
    for (const d of answer.data) vectors[d.index] = d.embedding;
    return { vectors, promptTokens: answer.usage?.prompt_tokens ?? 0 };
  }

  async slotContext(call?: CallOptions): Promise<number> {
    const text = await this.http.text('GET', '/props', undefined, options(call));
    return (
      (JSON.parse(text) as { default_generation_settings?: { n_ctx?: number } }).default_generation_settings?.n_ctx ??
      512
    );
  }

  forward(req: ForwardRequest, call?: CallOptions): Promise<RawAnswer> {
    const body = req.body === undefined || typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
    const stream = (req.body as { stream?: unknown } | undefined)?.stream === true;
    return this.http.send(req.method ?? 'POST', req.path, body, { ...options(call), stream });
  }

  metrics(call?: CallOptions): Promise<string> {
    return this.http.text('GET', '/metrics', undefined, options(call));
  }

  async health(call?: CallOptions): Promise<boolean> {
    try {
      const answer = await this.http.send('GET', '/health', undefined, options(call));
      answer.body.resume();
      return answer.status === 200;
    } catch {
      // Not listening yet, or loading (503).
      return false;
    }
  }

  close(): void {
    this.http.close();
  }

  private async stream(path: string, body: object, call: CallOptions | undefined): Promise<RawAnswer['body']> {
    const answer = await this.http.send('POST', path, JSON.stringify({ ...body, stream: true }), {
      ...options(call),
      stream: true,
    });
    return answer.body;
  }

  private async json<T>(path: string, body: object, call: CallOptions | undefined): Promise<T> {
    return JSON.parse(await this.http.text('POST', path, JSON.stringify(body), options(call))) as T;
  }
}

function options(call: CallOptions | undefined): SendOptions {
  return { signal: call?.signal, headers: call?.requestId ? { 'x-request-id': call.requestId } : undefined };
}
