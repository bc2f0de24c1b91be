import type { Readable } from 'node:stream';

/**
 * Yields the `data:` payload of each Server-Sent Event as a string. llama-server sends one
 * `data: {...}` line per event, so this splits on newlines and skips comments and blank lines,
 * joining multi-line data per the SSE spec.
 */
export async function* sseData(body: Readable): AsyncGenerator<string> {
  let buffer = '';
  let data: string[] = [];
  body.setEncoding('utf8');
  for await (const chunk of body as AsyncIterable<string>) {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) !== -1) {
      let line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (data.length) yield data.join('\n');
        data = [];
      } else if (line.startsWith('data:')) {
        data.push(line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5));
      } else if (line.startsWith('error:')) {
        // llama-server reports a mid-stream failure as an `error:` line.
        data.push(JSON.stringify({ error: safeJson(line.slice(6).trim()) }));
      }
    }
  }
  if (data.length) yield data.join('\n');
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
