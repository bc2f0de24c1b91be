/**
 * Media references in OpenAI-style bodies: chat `image_url` parts ({url}), /v1/responses `input_image`
 * parts (a plain string) and Anthropic /v1/messages `source: {type: "url"}` blocks. The walk is
 * bounded in depth because bodies come from clients.
 */
export function mediaUrls(body: unknown): string[] {
  const out: string[] = [];
  const walk = (v: unknown, depth: number): void => {
    if (depth > 8 || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (const e of v) walk(e, depth + 1);
      return;
    }
    const o = v as Record<string, unknown>;
    const image = o.image_url;
    if (typeof image === 'string') out.push(image);
    else if (image && typeof (image as { url?: unknown }).url === 'string') out.push((image as { url: string }).url);
    const source = o.source as { type?: unknown; url?: unknown } | undefined;
    if (source?.type === 'url' && typeof source.url === 'string') out.push(source.url);
    for (const [k, child] of Object.entries(o)) if (k !== 'image_url') walk(child, depth + 1);
  };
  walk(body, 0);
  return out;
}

/**
 * llama-server downloads http(s) media itself, so a client could make the gateway host fetch internal
 * addresses. Ollama only takes inline images; Corral does the same unless the operator opts in.
 */
export function firstRemoteUrl(urls: string[]): string | undefined {
  return urls.find((u) => /^[a-z][a-z0-9+.-]*:\/\//i.test(u.trimStart()));
}
