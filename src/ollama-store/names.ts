import { BadRequest } from '../errors.js';

/** A fully qualified Ollama model name (types/model/name.go): host/namespace/model:tag. */
export interface OllamaName {
  host: string;
  namespace: string;
  model: string;
  tag: string;
  /** `http` when the name was written `http://host/...`; the registry's scheme otherwise. */
  scheme?: string | undefined;
}

export const DEFAULT_HOST = 'registry.ollama.ai';
export const DEFAULT_NAMESPACE = 'library';
export const DEFAULT_TAG = 'latest';

type Kind = 'host' | 'namespace' | 'model' | 'tag';

const isWord = (c: string): boolean => /[A-Za-z0-9_]/.test(c);

/** Ollama's isValidPart: what each part may contain, so every part is one plain path segment. */
export function isValidPart(kind: Kind, s: string): boolean {
  if (s.length < 1 || s.length > (kind === 'host' ? 350 : 80)) return false;
  if (!isWord(s[0]!)) return false;
  for (const c of s.slice(1)) {
    if (isWord(c) || c === '_' || c === '-') continue;
    if (c === '.' && kind !== 'namespace') continue;
    if (c === ':' && kind === 'host') continue;
    return false;
  }
  return true;
}

/** ParseName: missing parts take Ollama's defaults; undefined when the result is not fully valid. */
export function parseOllamaName(raw: string): OllamaName | undefined {
  let s = raw.trim();
  let tag = '';
  if (s.lastIndexOf(':') > s.lastIndexOf('/')) {
    tag = s.slice(s.lastIndexOf(':') + 1);
    s = s.slice(0, s.lastIndexOf(':'));
    if (tag === '') return undefined;
  }
  let scheme: string | undefined;
  const schemeAt = s.indexOf('://');
  if (schemeAt >= 0) {
    scheme = s.slice(0, schemeAt).toLowerCase();
    s = s.slice(schemeAt + 3);
  }
  const parts = s.split('/');
  if (parts.length > 3 || parts.some((p) => p === '')) return undefined;
  const [model, namespace, host] = [...parts].reverse();
  const name: OllamaName = {
    host: host ?? DEFAULT_HOST,
    namespace: namespace ?? DEFAULT_NAMESPACE,
    model: model!,
    tag: tag || DEFAULT_TAG,
    scheme,
  };
  const valid =
    isValidPart('host', name.host) &&
    isValidPart('namespace', name.namespace) &&
    isValidPart('model', name.model) &&
    isValidPart('tag', name.tag);
  return valid ? name : undefined;
}

/** parseOllamaName, or 400 in Ollama's wording. */
export function requireOllamaName(raw: string, field = 'model'): OllamaName {
  const n = parseOllamaName(raw);
  if (!n) throw new BadRequest(field === 'model' ? 'invalid model name' : `${field} "${raw}" is invalid`);
  return n;
}

/** DisplayShortest: the name `ollama list` shows (default host and namespace left out, case kept). */
export function displayName(n: OllamaName): string {
  const host = n.host.toLowerCase() === DEFAULT_HOST;
  const ns = n.namespace.toLowerCase() === DEFAULT_NAMESPACE;
  const prefix = !host ? `${n.host}/${n.namespace}/` : !ns ? `${n.namespace}/` : '';
  return `${prefix}${n.model}:${n.tag}`;
}

/** The manifest's place below `manifests/`: one directory per part. */
export function nameSegments(n: OllamaName): [string, string, string, string] {
  return [n.host, n.namespace, n.model, n.tag];
}

/** ParseNameFromFilepath: the four segments of a manifest path, or undefined if any is not a valid part. */
export function nameFromSegments(segments: string[]): OllamaName | undefined {
  if (segments.length !== 4) return undefined;
  const [host, namespace, model, tag] = segments as [string, string, string, string];
  if (
    !isValidPart('host', host) ||
    !isValidPart('namespace', namespace) ||
    !isValidPart('model', model) ||
    !isValidPart('tag', tag)
  )
    return undefined;
  return { host, namespace, model, tag };
}

export function sameName(a: OllamaName, b: OllamaName): boolean {
  return nameSegments(a).every((p, i) => p.toLowerCase() === nameSegments(b)[i]!.toLowerCase());
}

/** `sha256:<64 hex>` or `sha256-<64 hex>` (Ollama's BlobsPath accepts both), as `sha256:<hex>` lowercased. */
export function parseDigest(raw: string): string | undefined {
  const m = /^sha256[:-]([0-9a-fA-F]{64})$/.exec(raw);
  return m ? `sha256:${m[1]!.toLowerCase()}` : undefined;
}
