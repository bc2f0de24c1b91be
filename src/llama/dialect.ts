import type {
  ChatMessage,
  ChatRequest,
  CompletionRequest,
  InfillRequest,
  OutputFormat,
  Sampling,
  Think,
} from './client.js';

/** llama-server's request bodies, built from Corral's neutral requests. Nothing here does I/O. */

type Body = Record<string, unknown>;

/** Corral's sampling names → llama-server's (the same on /completion and /v1/chat/completions). */
const SAMPLING_FIELDS: Record<keyof Omit<Sampling, 'stop'>, string> = {
  maxTokens: 'n_predict',
  temperature: 'temperature',
  topK: 'top_k',
  topP: 'top_p',
  minP: 'min_p',
  typicalP: 'typical_p',
  seed: 'seed',
  repeatPenalty: 'repeat_penalty',
  repeatLastN: 'repeat_last_n',
  presencePenalty: 'presence_penalty',
  frequencyPenalty: 'frequency_penalty',
  mirostat: 'mirostat',
  mirostatTau: 'mirostat_tau',
  mirostatEta: 'mirostat_eta',
  keep: 'n_keep',
  tfsZ: 'tfs_z',
};

export function samplingFields(s: Sampling): Body {
  const out: Body = {};
  for (const [key, field] of Object.entries(SAMPLING_FIELDS)) {
    const value = s[key as keyof typeof SAMPLING_FIELDS];
    if (value !== undefined) out[field] = value;
  }
  if (s.stop !== undefined) out.stop = s.stop;
  return out;
}

/**
 * A model's default sampling under an OpenAI-style body that is passed through: the body's own fields
 * win. llama-server prefers n_predict over max_tokens, so a default length must not shadow the body's.
 */
export function withSamplingDefaults(body: Body, defaults: Sampling): Body {
  const fields = samplingFields(defaults);
  if (body.max_tokens !== undefined || body.max_completion_tokens !== undefined || body.n_predict !== undefined)
    delete fields.n_predict;
  return { ...fields, ...body };
}

/** Whether a request asks for thinking: `true` or a level ("low", "medium", "high"). */
const thinkingOn = (think: Think | undefined): boolean => think !== undefined && think !== false && think !== 'false';

/** Thinking levels a chat template can read as `reasoning_effort` (gpt-oss's templates do). */
const LEVELS = new Set(['low', 'medium', 'high']);

export function thinkFields(think: Think | undefined): Body {
  if (think === undefined) return {};
  const on = thinkingOn(think);
  const level = typeof think === 'string' && LEVELS.has(think) ? { reasoning_effort: think } : {};
  return { chat_template_kwargs: { enable_thinking: on, ...level }, reasoning_format: on ? 'deepseek' : 'none' };
}

/** The OpenAI `response_format` of llama-server's chat endpoint. */
function responseFormat(format: OutputFormat): Body {
  return format.json === 'any'
    ? { type: 'json_object' }
    : { type: 'json_schema', json_schema: { schema: format.schema } };
}

/** The same constraint for /completion and /infill, which take a `json_schema` field. */
function completionSchema(format: OutputFormat | undefined): Body {
  if (!format) return {};
  return { json_schema: format.json === 'any' ? { type: 'object' } : format.schema };
}

const dataUrl = (img: string): string => (img.startsWith('data:') ? img : `data:image/png;base64,${img}`);
/** /completion wants the bare base64 of each image. */
const base64Of = (img: string): string => (img.startsWith('data:') ? img.slice(img.indexOf(',') + 1) : img);

/** Messages in the OpenAI shape llama-server's chat endpoint and /apply-template take. */
export function openAiMessages(messages: ChatMessage[]): Body[] {
  return messages.map((m, i) => {
    const out: Body = { role: m.role, content: m.content };
    if (m.images?.length) {
      out.content = [
        { type: 'text', text: m.content },
        ...m.images.map((img) => ({ type: 'image_url', image_url: { url: dataUrl(img) } })),
      ];
    }
    if (m.toolCalls?.length) {
      out.tool_calls = m.toolCalls.map((tc, j) => ({
        id: `call_${i}_${j}`,
        type: 'function',
        function: {
          name: tc.name,
          arguments: typeof tc.arguments === 'string' ? tc.arguments : JSON.stringify(tc.arguments ?? {}),
        },
      }));
    }
    if (m.role === 'tool' && m.toolName) out.name = m.toolName;
    if (m.thinking && m.role === 'assistant') out.reasoning_content = m.thinking;
    return out;
  });
}

/**
 * Whether a chat goes through the template and /completion instead of the chat endpoint. On its chat
 * endpoint llama-server (v0.5.0) prefixes the response grammar with the generation prompt and prefills
 * it with that prompt's tokens; SPM tokenizers that add a space after special tokens make the prefill
 * fail ("Failed to initialize samplers"). /completion constrains the output alone, so a format without
 * tools or thinking applies the template, then completes. Thinking is parsed, and tool calls are
 * extracted, only by the chat endpoint.
 */
export function completesChat(req: ChatRequest): boolean {
  return req.format !== undefined && !req.tools?.length && !thinkingOn(req.think);
}

export function chatBody(req: ChatRequest): Body {
  const body: Body = {
    messages: openAiMessages(req.messages),
    ...samplingFields(req.sampling),
    ...thinkFields(req.think),
    cache_prompt: true,
  };
  if (req.sampling.maxTokens !== undefined) body.max_tokens = req.sampling.maxTokens;
  if (req.tools?.length) body.tools = req.tools;
  if (req.format) body.response_format = responseFormat(req.format);
  return body;
}

export function applyTemplateBody(messages: ChatMessage[], think: Think | undefined): Body {
  return { messages: openAiMessages(messages), ...thinkFields(think) };
}

/** A chat's templated prompt completed under its format (see completesChat); images travel beside it. */
export function chatAsCompletion(req: ChatRequest, prompt: string): CompletionRequest {
  const images = req.messages.flatMap((m) => m.images ?? []);
  return { prompt, images, sampling: req.sampling, format: req.format };
}

export function completionBody(req: CompletionRequest, think?: Think): Body {
  const prompt =
    req.images?.length && typeof req.prompt === 'string'
      ? { prompt_string: req.prompt, multimodal_data: req.images.map(base64Of) }
      : req.prompt;
  const reasoning = think === undefined ? {} : { reasoning_format: thinkFields(think).reasoning_format };
  return {
    prompt,
    ...samplingFields(req.sampling),
    ...reasoning,
    ...completionSchema(req.format),
    ...(req.returnTokens ? { return_tokens: true } : {}),
    cache_prompt: true,
  };
}

export function infillBody(req: InfillRequest): Body {
  return {
    input_prefix: req.prefix,
    input_suffix: req.suffix,
    ...samplingFields(req.sampling),
    ...completionSchema(req.format),
    ...(req.returnTokens ? { return_tokens: true } : {}),
    cache_prompt: true,
  };
}
