import secureJson from 'secure-json-parse';

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** A `\uD800`–`\uDFFF` escape: the only way a JSON text read as UTF-8 can carry a lone surrogate. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/**
 * JSON.parse for request bodies. `__proto__` keys and `constructor.prototype` are refused (as
 * Fastify's own parser does), so no body can reach an object's prototype through a later merge.
 * A lone surrogate (`"\ud800"`) becomes U+FFFD, as Go's decoder does for Ollama: llama-server's
 * parser rejects it with a 500, and no text a user typed contains one.
 */
export function parseJsonBody(text: string): unknown {
  const reviver = SURROGATE_ESCAPE.test(text) ? wellFormed : null;
  return secureJson.parse(text, reviver, { protoAction: 'error', constructorAction: 'error' });
}

function wellFormed(this: unknown, _key: string, value: unknown): unknown {
  return typeof value === 'string' ? value.replace(LONE_SURROGATE, '\uFFFD') : value;
}
