import type { IncomingHttpHeaders } from 'node:http';
import { TOKEN_PREFIX } from './tokens.js';

/**
 * What a request presents as an API credential. Ollama's docs and every OpenAI- or Anthropic-SDK
 * example send a placeholder key ("ollama", "sk-..."), so only a value that claims to be a Corral
 * token (its prefix) is one; anything else is `foreign`, ignored where no token is needed.
 */
export type Presented =
  | { kind: 'none' }
  | { kind: 'corral'; secret: string }
  | { kind: 'foreign'; header: 'authorization' | 'x-api-key' };

const BEARER = /^Bearer\s+(\S+)\s*$/i;

function classify(value: string, header: 'authorization' | 'x-api-key'): Presented {
  const bearer = header === 'authorization' ? BEARER.exec(value)?.[1] : value.trim();
  if (bearer?.startsWith(TOKEN_PREFIX)) return { kind: 'corral', secret: bearer };
  // "Token corral_...", "Bearer corral_x y": a Corral token sent wrongly is still a Corral token (and malformed).
  if (value.includes(TOKEN_PREFIX)) return { kind: 'corral', secret: value };
  return { kind: 'foreign', header };
}

/** `Authorization: Bearer <token>` or `x-api-key: <token>` (Anthropic's header); a Corral token wins. */
export function presentedCredential(headers: IncomingHttpHeaders): Presented {
  const found: Presented[] = [];
  if (typeof headers.authorization === 'string') found.push(classify(headers.authorization, 'authorization'));
  const apiKey = headers['x-api-key'];
  if (typeof apiKey === 'string') found.push(classify(apiKey, 'x-api-key'));
  return found.find((p) => p.kind === 'corral') ?? found[0] ?? { kind: 'none' };
}
