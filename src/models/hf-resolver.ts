import { basename, join } from 'node:path';
import { BadRequest, NotFound, UpstreamError } from '../errors.js';

/** One file to download and where it goes. */
export interface PullFile {
  url: string;
  /** Path relative to the managed models directory. */
  relPath: string;
  sha256?: string | undefined;
  size?: number | undefined;
}

export interface PullSource extends PullFile {
  /** The model name it will be known by: the reference as given, normalised by the catalogue. */
  reference: string;
  /** A vision projector published beside the model; pulled too so images work. */
  projector?: PullFile | undefined;
}

interface HfSibling {
  rfilename: string;
  size?: number;
  lfs?: { sha256?: string; size?: number };
}

const HF_PREFIX = /^(?:https?:\/\/)?(?:hf\.co|huggingface\.co)\//i;

export function isHfReference(ref: string): boolean {
  return HF_PREFIX.test(ref) && !/\.gguf$/i.test(ref.split(/[?#]/)[0]!);
}

export function isUrlReference(ref: string): boolean {
  return /^https?:\/\//i.test(ref) && /\.gguf$/i.test(new URL(ref).pathname);
}

/**
 * The file a quant tag names: `Q4_K_M` matches `model-Q4_K_M.gguf` or `model.Q4_K_M.gguf`, not
 * `model-IQ4_K_M.gguf`. Without a tag Ollama's default (Q4_K_M) wins, else a lone file.
 */
export function pickQuant(files: string[], quant: string | undefined): string | undefined {
  const ggufs = files.filter((f) => /\.gguf$/i.test(f) && !/mmproj/i.test(basename(f)) && !/-\d{5}-of-\d{5}\.gguf$/i.test(f));
  const byTag = (tag: string): string[] => {
    const re = new RegExp(`(^|[-._/])${tag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.gguf$`, 'i');
    return ggufs.filter((f) => re.test(f));
  };
  if (quant && quant.toLowerCase() !== 'latest') return byTag(quant)[0];
  return byTag('Q4_K_M')[0] ?? (ggufs.length === 1 ? ggufs[0] : undefined);
}

/**
 * `hf.co/{user}/{repo}[:{quant}]` → the GGUF file in that Hugging Face repository, with the
 * sha256 and size the Hub publishes for LFS files. `baseUrl` is configurable so tests can serve it.
 */
export async function resolveHf(ref: string, baseUrl: string, signal?: AbortSignal): Promise<PullSource> {
  const rest = ref.replace(HF_PREFIX, '');
  const colon = rest.lastIndexOf(':');
  const repoPath = colon > 0 ? rest.slice(0, colon) : rest;
  const quant = colon > 0 ? rest.slice(colon + 1) : undefined;
  const parts = repoPath.split('/');
  if (parts.length !== 2 || parts.some((p) => !/^[\w.-]+$/.test(p))) {
    throw new BadRequest(`invalid Hugging Face reference "${ref}": expected hf.co/{user}/{repo}[:{quant}]`);
  }
  const base = baseUrl.replace(/\/+$/, '');
  const apiUrl = `${base}/api/models/${repoPath}?blobs=true`;
  let res: Response;
  try {
    res = await fetch(apiUrl, { signal, headers: { accept: 'application/json' } });
  } catch (err) {
    throw new UpstreamError(`cannot reach ${base}: ${(err as Error).message}`, 502, { cause: err });
  }
  if (res.status === 404 || res.status === 401) throw new NotFound(`pull model manifest: repository "${repoPath}" not found on ${base}`);
  if (!res.ok) throw new UpstreamError(`pull model manifest: ${apiUrl} answered ${res.status}`, 502);
  const info = (await res.json()) as { siblings?: HfSibling[] };
  const siblings = info.siblings ?? [];
  const file = pickQuant(siblings.map((s) => s.rfilename), quant);
  if (!file) {
    const available = siblings.map((s) => s.rfilename).filter((f) => /\.gguf$/i.test(f));
    throw new NotFound(`pull model manifest: no GGUF file for "${quant ?? 'Q4_K_M'}" in ${repoPath}${available.length ? ` (available: ${available.join(', ')})` : ''}`);
  }
  const describe = (name: string): PullFile => {
    const sib = siblings.find((s) => s.rfilename === name)!;
    return {
      url: `${base}/${repoPath}/resolve/main/${name.split('/').map(encodeURIComponent).join('/')}`,
      relPath: join('hf.co', ...parts, basename(name)),
      sha256: sib.lfs?.sha256?.toLowerCase(),
      size: sib.lfs?.size ?? sib.size,
    };
  };
  // Several precisions may be published; the smallest-loss common one first.
  const projectors = siblings.map((s) => s.rfilename).filter((f) => /mmproj/i.test(basename(f)) && /\.gguf$/i.test(f));
  const projector = ['f16', 'bf16', 'q8_0', 'f32'].map((p) => projectors.find((f) => f.toLowerCase().includes(p))).find(Boolean) ?? projectors[0];
  return { reference: ref, ...describe(file), projector: projector ? describe(projector) : undefined };
}

/** A plain URL to a .gguf: stored under its host; no published checksum unless the server sends one. */
export function resolveUrl(ref: string): PullSource {
  const u = new URL(ref);
  const segments = u.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  if (segments.some((s) => s === '..' || s.includes('\0'))) throw new BadRequest(`invalid URL "${ref}"`);
  return { reference: ref, url: ref, relPath: join(u.host.replace(/[^\w.-]/g, '_'), ...segments) };
}
