import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { chatMessages, ollamaToolCalls } from '../../src/api/ollama/chat.js';
import type { CatalogModel } from '../../src/catalog/catalog.js';
import type { GenerationEvent } from '../../src/llama/client.js';
import { openAiMessages } from '../../src/llama/dialect.js';
import { chatEvents } from '../../src/llama/events.js';

/**
 * llama-server v0.5.0 sends a parsed call in one delta (see tool-calls.test.ts, against a real model);
 * other builds stream the arguments piecewise, alongside reasoning. The stream here has that shape, so
 * the assembly of partial deltas is checked too.
 */
const chunks = [
  { choices: [{ delta: { reasoning_content: 'let me see' } }] },
  {
    choices: [
      {
        delta: {
          tool_calls: [{ index: 0, id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"ci' } }],
        },
      },
    ],
  },
  { choices: [{ delta: { tool_calls: [{ index: 0, function: { arguments: 'ty":"Paris"}' } }] } }] },
  {
    choices: [{ delta: {}, finish_reason: 'tool_calls' }],
    timings: { prompt_n: 5, prompt_ms: 1, predicted_n: 7, predicted_ms: 2 },
  },
];
/** The SSE body as llama-server writes it, cut at arbitrary points as a socket may deliver it. */
const sse = [...chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`), 'data: [DONE]\n\n'].join('');
const body = (): Readable =>
  Readable.from([sse.slice(0, 37), sse.slice(37, 140), sse.slice(140)].map((s) => Buffer.from(s)));
const plain = { mmproj: undefined } as CatalogModel;

describe('tool-call translation', () => {
  it('assembles streamed tool-call deltas and returns arguments as an object', async () => {
    const events: GenerationEvent[] = [];
    for await (const ev of chatEvents(body())) events.push(ev);
    expect(events[0]).toEqual({ kind: 'delta', thinking: 'let me see' });
    const done = events.at(-1) as Extract<GenerationEvent, { kind: 'done' }>;
    expect(done.kind).toBe('done');
    expect(ollamaToolCalls(done.toolCalls)).toEqual([
      { function: { name: 'get_weather', arguments: { city: 'Paris' } } },
    ]);
  });

  it('maps Ollama history (tool_calls objects, role tool) to OpenAI messages', () => {
    const out = openAiMessages(
      chatMessages(
        [
          { role: 'assistant', content: '', tool_calls: [{ function: { name: 'f', arguments: { a: 1 } } }] },
          { role: 'tool', content: '42', tool_name: 'f' },
        ],
        plain,
      ),
    );
    expect(out[0]).toMatchObject({ tool_calls: [{ type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] });
    expect(out[1]).toMatchObject({ role: 'tool', content: '42', name: 'f' });
  });
});
