import { BadRequest } from '../../errors.js';
import type { OutputFormat } from '../../llama/client.js';

/** Ollama `format`: "json" or a JSON schema object. */
export function outputFormat(format: unknown): OutputFormat | undefined {
  if (format === undefined || format === null || format === '') return undefined;
  if (format === 'json') return { json: 'any' };
  if (typeof format === 'object' && !Array.isArray(format)) return { json: 'schema', schema: format };
  throw new BadRequest(
    `invalid value for "format": expected "json" or a JSON schema object, got ${JSON.stringify(format)}`,
  );
}
