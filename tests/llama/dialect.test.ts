import { describe, expect, it } from 'vitest';
import type { ChatRequest } from '../../src/llama/client.js';
import {
  chatAsCompletion,
  chatBody,
  completesChat,
  completionBody,
  infillBody,
  withSamplingDefaults,
} from '../../src/llama/dialect.js';

/** llama-server's field names, checked once here; the end-to-end tests check that it accepts them. */
const sampling = { maxTokens: 8, temperature: 0, topK: 5, topP: 0.9, minP: 0.1, seed: 1, keep: 4, stop: ['x'] };
const fields = { n_predict: 8, temperature: 0, top_k: 5, top_p: 0.9, min_p: 0.1, seed: 1, n_keep: 4, stop: ['x'] };

describe('llama-server request bodies', () => {
  it('a chat: OpenAI messages, sampling fields, max_tokens beside n_predict, thinking switches', () => {
    const req: ChatRequest = {
      messages: [
        { role: 'user', content: 'see', images: ['aGk=', 'data:image/jpeg;base64,aGk='] },
        { role: 'assistant', content: '', toolCalls: [{ name: 'f', arguments: { a: 1 } }], thinking: 'hm' },
      ],
      sampling,
      think: false,
    };
    expect(chatBody(req)).toEqual({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'see' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,aGk=' } },
            { type: 'image_url', image_url: { url: 'data:image/jpeg;base64,aGk=' } },
          ],
        },
        {
          role: 'assistant',
          content: '',
          tool_calls: [{ id: 'call_1_0', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }],
          reasoning_content: 'hm',
        },
      ],
      ...fields,
      max_tokens: 8,
      chat_template_kwargs: { enable_thinking: false },
      reasoning_format: 'none',
      cache_prompt: true,
    });
  });

  it('a format without tools or thinking is completed from the templated prompt, images beside it', () => {
    const req: ChatRequest = {
      messages: [{ role: 'user', content: 'x', images: ['data:image/png;base64,QUJD'] }],
      sampling: {},
      format: { json: 'schema', schema: { type: 'object' } },
    };
    expect(completesChat(req)).toBe(true);
    expect(completesChat({ ...req, think: true })).toBe(false);
    // A level reaches the template as reasoning_effort (what gpt-oss's template reads).
    expect(chatBody({ ...req, think: 'high' }).chat_template_kwargs).toEqual({
      enable_thinking: true,
      reasoning_effort: 'high',
    });
    expect(chatBody({ ...req, think: true }).chat_template_kwargs).toEqual({ enable_thinking: true });
    // A thinking level is thinking too: only the chat endpoint parses it.
    expect(completesChat({ ...req, think: 'high' })).toBe(false);
    expect(completesChat({ ...req, think: false })).toBe(true);
    expect(completesChat({ ...req, tools: [{}] })).toBe(false);
    expect(completesChat({ ...req, format: undefined })).toBe(false);
    expect(chatBody({ ...req, tools: [{}] }).response_format).toEqual({
      type: 'json_schema',
      json_schema: { schema: { type: 'object' } },
    });
    expect(completionBody(chatAsCompletion(req, '<user>x'))).toEqual({
      prompt: { prompt_string: '<user>x', multimodal_data: ['QUJD'] },
      json_schema: { type: 'object' },
      cache_prompt: true,
    });
  });

  it('completion and infill: ids followed by text, any-JSON as an object schema, token ids on request', () => {
    expect(
      completionBody({ prompt: [1, 2, 'go'], sampling: { maxTokens: 3 }, format: { json: 'any' }, returnTokens: true }),
    ).toEqual({
      prompt: [1, 2, 'go'],
      n_predict: 3,
      json_schema: { type: 'object' },
      return_tokens: true,
      cache_prompt: true,
    });
    expect(infillBody({ prefix: 'a', suffix: 'b', sampling: {} })).toEqual({
      input_prefix: 'a',
      input_suffix: 'b',
      cache_prompt: true,
    });
  });

  it("a passed-through body keeps its own fields over the model's defaults, its length over a default one", () => {
    expect(withSamplingDefaults({ temperature: 1 }, { temperature: 0.2, topK: 3, maxTokens: 9 })).toEqual({
      temperature: 1,
      top_k: 3,
      n_predict: 9,
    });
    expect(withSamplingDefaults({ max_tokens: 4 }, { maxTokens: 9 })).toEqual({ max_tokens: 4 });
  });
});
