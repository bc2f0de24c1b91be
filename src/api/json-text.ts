import secureJson from 'secure-json-parse';

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const HAS_LONE_SURROGATE = new RegExp(LONE_SURROGATE.source);
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
  if (typeof value === 'string') return value.replace(LONE_SURROGATE, '\uFFFD');
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  // Keys too: the reviver has fixed this object's values, not their names.
  const keys = Object.keys(value);
  if (!keys.some((k) => HAS_LONE_SURROGATE.test(k))) return value;
  return Object.fromEntries(
    keys.map((k) => [k.replace(LONE_SURROGATE, '\uFFFD'), (value as Record<string, unknown>)[k]]),
  );
}
