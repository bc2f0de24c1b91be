import { BadRequest } from '../../errors.js';

/** Ollama `format` ("json" or a JSON schema) → llama-server's OpenAI `response_format`. */
export function responseFormat(format: unknown): Record<string, unknown> | undefined {
  if (format === undefined || format === null || format === '') return undefined;
  if (format === 'json') return { type: 'json_object' };
  if (typeof format === 'object' && !Array.isArray(format))
    return { type: 'json_schema', json_schema: { schema: format } };
  throw new BadRequest(
    `invalid value for "format": expected "json" or a JSON schema object, got ${JSON.stringify(format)}`,
  );
}

/** The same for llama-server's native /completion, which takes a `json_schema` field. */
export function completionSchema(format: unknown): Record<string, unknown> | undefined {
  const rf = responseFormat(format);
  if (!rf) return undefined;
  return {
    json_schema: rf.type === 'json_object' ? { type: 'object' } : (rf.json_schema as { schema: unknown }).schema,
  };
}
