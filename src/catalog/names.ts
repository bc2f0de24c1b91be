/**
 * Ollama model names: `[namespace/]model[:tag]`, tag `latest` by default, compared
 * case-insensitively. `library/` is Ollama's default namespace, so it is dropped.
 */
export function normalizeModelName(name: string): string {
  let n = name.trim().toLowerCase();
  if (n.startsWith('registry.ollama.ai/')) n = n.slice('registry.ollama.ai/'.length);
  if (n.startsWith('library/')) n = n.slice('library/'.length);
  const slash = n.lastIndexOf('/');
  const colon = n.lastIndexOf(':');
  return colon > slash ? n : `${n}:latest`;
}
