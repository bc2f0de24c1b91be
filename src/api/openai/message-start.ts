import { randomBytes } from 'node:crypto';
import type { CallOptions, LlamaClient } from '../../llama/client.js';
import type { HeadFix } from './relay.js';

const FIRST_TYPE = /^event:\s*([a-z_]+)/;

/**
 * Anthropic's stream must open with `message_start`, or the SDKs fail ("request ended without sending
 * any chunks"). llama-server (v0.5.0, server-task.cpp to_json_anthropic) emits it only with the result
 * whose n_decoded is 1; a first token that ends inside a UTF-8 character (a byte token of an emoji, of
 * CJK text) is held back and comes with a later result, so that stream starts at content_block_start.
 * This sends the missing event first, as llama-server would have, with the prompt's token count from
 * the same child (its cache split is unknown here, so everything counts as input).
 */
export function messageStartFix(
  client: LlamaClient,
  body: Record<string, unknown>,
  model: string,
  call: CallOptions,
): HeadFix {
  return async (first) => {
    const type = FIRST_TYPE.exec(first.toString('utf8', 0, 64))?.[1];
    if (type === undefined || type === 'message_start' || type === 'error') return undefined;
    const inputTokens = await countTokens(client, body, call).catch(() => 0);
    return Buffer.from(messageStartEvent(model, inputTokens));
  };
}

export function messageStartEvent(model: string, inputTokens: number): string {
  const message = {
    id: `msg_${randomBytes(12).toString('hex')}`,
    type: 'message',
    role: 'assistant',
    content: [],
    model,
    stop_reason: null,
    stop_sequence: null,
    usage: { cache_read_input_tokens: 0, input_tokens: inputTokens, output_tokens: 0 },
  };
  return `event: message_start\ndata: ${JSON.stringify({ type: 'message_start', message })}\n\n`;
}

async function countTokens(client: LlamaClient, body: Record<string, unknown>, call: CallOptions): Promise<number> {
  const { stream: _stream, ...rest } = body;
  const answer = await client.forward({ path: '/v1/messages/count_tokens', body: rest }, call);
  const chunks: Buffer[] = [];
  for await (const chunk of answer.body) chunks.push(chunk as Buffer);
  const counted = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { input_tokens?: unknown };
  return typeof counted.input_tokens === 'number' ? counted.input_tokens : 0;
}
