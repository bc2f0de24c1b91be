import type { CatalogModel } from '../../catalog/catalog.js';
import { BadRequest } from '../../errors.js';
import type { Runner } from '../../runner/runner.js';
import { streamCompletion, type GenerationEvent } from '../../upstream/generation.js';
import { completionSchema } from './format.js';
import { modelTemplateError, renderOllamaPrompt, type PromptMessage } from './go-template.js';
import type { Message } from './schemas.js';

/**
 * The conversation a model sees, as Ollama builds it: its system prompt unless the request has one,
 * then the messages it was created with (MESSAGE), then the request's.
 */
export function conversation(model: CatalogModel, messages: Message[]): Message[] {
  const seeded = [...((model.messages ?? []) as Message[]), ...messages];
  return model.system && !messages.some((m) => m.role === 'system')
    ? [{ role: 'system', content: model.system }, ...seeded]
    : seeded;
}

/**
 * Which way a model's prompt is templated. llama-server applies the GGUF's own Jinja template (or
 * one given at create); a model that has none but carries an Ollama Go template gets its prompt
 * rendered here, and a template that cannot be rendered is a 400 naming the model, never a silent
 * fallback to llama-server's default. Returns the rendered prompt, or undefined for llama-server's way.
 */
export function renderedPrompt(
  model: CatalogModel,
  messages: PromptMessage[],
  tools?: unknown[] | undefined,
  think?: boolean | string | undefined,
): string | undefined {
  if (model.goTemplate === undefined) return undefined;
  if (messages.some((m) => m.images?.length))
    throw new BadRequest(
      `model "${model.name}": images need the model's chat template in llama-server, and this GGUF has none`,
    );
  return renderOllamaPrompt(model.goTemplate, { messages, tools, think }, modelTemplateError(model.name));
}

/** Completes a prompt rendered by renderedPrompt, with the request's sampling and format. */
export function startRendered(
  prompt: string,
  sampling: Record<string, unknown>,
  format: unknown,
  headers: Record<string, string>,
): (runner: Runner, signal: AbortSignal) => AsyncGenerator<GenerationEvent> {
  const body = { prompt, ...sampling, ...completionSchema(format), cache_prompt: true };
  return (runner, signal) => streamCompletion(runner.pool!, body, signal, headers);
}
