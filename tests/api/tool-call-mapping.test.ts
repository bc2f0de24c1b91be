import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type UpstreamPool } from '../../src/upstream/pool.js';
import { streamChat, type GenerationEvent } from '../../src/upstream/generation.js';
import { ollamaToolCalls, openAiMessages } from '../../src/api/ollama/chat.js';

/**
 * llama-server v0.5.0 sends a parsed call in one delta (see tool-calls.test.ts, against a real model);
 * other builds stream the arguments piecewise, alongside reasoning. A stand-in speaks that shape so
 * the assembly of partial deltas is checked too.
 */
let server: Server;
let pool: UpstreamPool;

beforeAll(async () => {
  server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const chunks = [
      { choices: [{ delta: { reasoning_content: 'let me see' } }] },
      {
        choices: [
          {
            delta: {
              tool_calls: [
                { index: 0, id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"ci' } },
              ],
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
    for (const c of chunks) res.write(`data: ${JSON.stringify(c)}\n\n`);
    res.end('data: [DONE]\n\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  pool = createPool(`http://127.0.0.1:${(server.address() as { port: number }).port}`, {});
});
afterAll(async () => {
  await pool?.close();
  server?.close();
});

describe('tool-call translation', () => {
  it('assembles streamed tool-call deltas and returns arguments as an object', async () => {
    const events: GenerationEvent[] = [];
    for await (const ev of streamChat(pool, { messages: [] }, new AbortController().signal)) events.push(ev);
    expect(events[0]).toEqual({ kind: 'delta', thinking: 'let me see' });
    const done = events.at(-1) as Extract<GenerationEvent, { kind: 'done' }>;
    expect(done.kind).toBe('done');
    expect(ollamaToolCalls(done.toolCalls)).toEqual([
      { function: { name: 'get_weather', arguments: { city: 'Paris' } } },
    ]);
  });

  it('maps Ollama history (tool_calls objects, role tool) to OpenAI messages', () => {
    const out = openAiMessages(
      [
        { role: 'assistant', content: '', tool_calls: [{ function: { name: 'f', arguments: { a: 1 } } }] },
        { role: 'tool', content: '42', tool_name: 'f' },
      ],
      false,
    );
    expect(out[0]).toMatchObject({ tool_calls: [{ type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] });
    expect(out[1]).toMatchObject({ role: 'tool', content: '42', name: 'f' });
  });
});
