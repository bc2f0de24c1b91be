import { basename, join } from 'node:path';
import { parseSplitName, shardPaths } from '../catalog/split.js';
import { BadRequest, NotFound, UpstreamError } from '../errors.js';
import { assertPlainName } from '../fs/contained.js';
import type { GuardedFetch } from '../net/guarded-fetch.js';

/** One file to download and where it goes. */
export interface PullFile {
  url: string;
  /** Path relative to the managed models directory. */
  relPath: string;
  sha256?: string | undefined;
  size?: number | undefined;
}

export interface PullSource {
  /** The model name it will be known by: the reference as given, normalised by the catalogue. */
  reference: string;
  /** The model's files in shard order: one, or every shard of a split model; llama-server is given the first. */
  files: PullFile[];
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

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The files a quant tag names: `Q4_K_M` matches `model-Q4_K_M.gguf` or `model.Q4_K_M.gguf`, not
 * `model-IQ4_K_M.gguf`; large quants are often published only as a split set
 * (`Q4_K_M/model-Q4_K_M-00001-of-00003.gguf` …), which then stands for the tag with all its shards.
 * A single file wins over a split set of the same tag. Without a tag Ollama's default (Q4_K_M) wins,
 * else a lone model.
 */
export function pickQuantFiles(files: string[], quant: string | undefined): string[] | undefined {
  const ggufs = files.filter((f) => /\.gguf$/i.test(f) && !/mmproj/i.test(basename(f)));
  const singles = ggufs.filter((f) => !parseSplitName(f));
  // A set is named by its first shard; its stem (the name without the shard suffix) carries the tag.
  const firsts = ggufs.filter((f) => parseSplitName(f)?.index === 0);
  const byTag = (tag: string): string[] | undefined => {
    const re = new RegExp(`(^|[-._/])${escapeRe(tag)}$`, 'i');
    const single = singles.find((f) => re.test(f.replace(/\.gguf$/i, '')));
    if (single) return [single];
    const first = firsts.find((f) => re.test(parseSplitName(f)!.prefix));
    return first ? shardPaths(first) : undefined;
  };
  if (quant && quant.toLowerCase() !== 'latest') return byTag(quant);
  const lone = singles.length + firsts.length === 1 ? (singles[0] ? [singles[0]] : shardPaths(firsts[0]!)) : undefined;
  return byTag('Q4_K_M') ?? lone;
}

/** The file llama-server is given for a quant tag (shard 1 of a split set). */
export function pickQuant(files: string[], quant: string | undefined): string | undefined {
  return pickQuantFiles(files, quant)?.[0];
}

/**
 * `hf.co/{user}/{repo}[:{quant}]` → the GGUF file in that Hugging Face repository, with the
 * sha256 and size the Hub publishes for LFS files. `baseUrl` is configurable so tests can serve it.
 */
export async function resolveHf(
  ref: string,
  baseUrl: string,
  http: GuardedFetch,
  signal?: AbortSignal,
): Promise<PullSource> {
  const rest = ref.replace(HF_PREFIX, '');
  const colon = rest.lastIndexOf(':');
  const repoPath = colon > 0 ? rest.slice(0, colon) : rest;
  const quant = colon > 0 ? rest.slice(colon + 1) : undefined;
  const parts = repoPath.split('/');
  if (parts.length !== 2 || parts.some((p) => !/^\w[\w.-]*$/.test(p))) {
    throw new BadRequest(`invalid Hugging Face reference "${ref}": expected hf.co/{user}/{repo}[:{quant}]`);
  }
  const base = baseUrl.replace(/\/+$/, '');
  const apiUrl = `${base}/api/models/${repoPath}?blobs=true`;
  const { response: res } = await http.fetch(apiUrl, { signal, headers: { accept: 'application/json' } });
  if (res.status === 404 || res.status === 401)
    throw new NotFound(`pull model manifest: repository "${repoPath}" not found on ${base}`);
  if (!res.ok) throw new UpstreamError(`pull model manifest: ${apiUrl} answered ${res.status}`, 502);
  const info = (await res.json()) as { siblings?: HfSibling[] };
  const siblings = info.siblings ?? [];
  const chosen = pickQuantFiles(
    siblings.map((s) => s.rfilename),
    quant,
  );
  if (!chosen) {
    const available = siblings.map((s) => s.rfilename).filter((f) => /\.gguf$/i.test(f));
    throw new NotFound(
      `pull model manifest: no GGUF file for "${quant ?? 'Q4_K_M'}" in ${repoPath}${available.length ? ` (available: ${available.join(', ')})` : ''}`,
    );
  }
  // A repository that lists only some shards of a set cannot give a loadable model: say so before downloading.
  const unlisted = chosen.filter((f) => !siblings.some((s) => s.rfilename === f));
  if (unlisted.length)
    throw new NotFound(
      `pull model manifest: split model in ${repoPath} is incomplete: ${unlisted.join(', ')} not published`,
    );
  const describe = (name: string): PullFile => {
    const sib = siblings.find((s) => s.rfilename === name)!;
    for (const segment of name.split('/')) assertPlainName(segment, 'repository file name');
    return {
      url: `${base}/${repoPath}/resolve/main/${name.split('/').map(encodeURIComponent).join('/')}`,
      relPath: join('hf.co', ...parts, basename(name)),
      sha256: sib.lfs?.sha256?.toLowerCase(),
      size: sib.lfs?.size ?? sib.size,
    };
  };
  // Several precisions may be published; the smallest-loss common one first.
  const projectors = siblings.map((s) => s.rfilename).filter((f) => /mmproj/i.test(basename(f)) && /\.gguf$/i.test(f));
  const projector =
    ['f16', 'bf16', 'q8_0', 'f32'].map((p) => projectors.find((f) => f.toLowerCase().includes(p))).find(Boolean) ??
    projectors[0];
  return { reference: ref, files: chosen.map(describe), projector: projector ? describe(projector) : undefined };
}

/**
 * A plain URL to a .gguf: stored under its host; no published checksum unless the server sends one. A URL
 * to shard 1 of a split set brings the other shards from beside it, named as llama-server expects.
 */
export function resolveUrl(ref: string): PullSource {
  const u = new URL(ref);
  let segments: string[];
  try {
    segments = u.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    throw new BadRequest(`invalid URL "${ref}"`);
  }
  // Decoded once, a segment must still be one plain name: `%2E%2E%2F`, `%252E…`, `..\\` and the like are refused.
  for (const s of segments) assertPlainName(s, `path segment in "${ref}"`);
  const host = assertPlainName(u.host.replace(/[^\w.-]/g, '_'), `host in "${ref}"`);
  const local = (name: string): string => join(host, ...segments.slice(0, -1), name);
  const last = segments.at(-1)!;
  const split = parseSplitName(last);
  if (!split) return { reference: ref, files: [{ url: ref, relPath: local(last) }] };
  if (split.index !== 0)
    throw new BadRequest(`"${ref}" is shard ${split.index + 1} of ${split.count} of a split model: pull shard 1`);
  const files = shardPaths(last).map((name, i) => ({
    url: i === 0 ? ref : new URL(encodeURIComponent(name), u).href,
    relPath: local(name),
  }));
  return { reference: ref, files };
}
