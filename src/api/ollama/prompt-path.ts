import type { CatalogModel } from '../../catalog/catalog.js';
import { BadRequest } from '../../errors.js';
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
