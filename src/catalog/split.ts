import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { GgufError, humanNumber, readGguf, type GgufInfo, type ReadGgufOptions } from './gguf.js';

/**
 * Split ("sharded") GGUF models: `<prefix>-00001-of-00003.gguf` … `-00003-of-00003.gguf`, as written by
 * llama-gguf-split. llama-server is given shard 1 and derives the other names itself with
 * `llama_split_path` (`%s-%05d-of-%05d.gguf`), so only names of exactly that form are treated as shards:
 * any other spelling (`.GGUF`, 4 digits) would not load as a set anyway.
 */
const SPLIT_NAME = /^(.+)-(\d{5})-of-(\d{5})\.gguf$/;

export interface SplitName {
  /** Everything before `-0000k-of-0000n.gguf`, directory included. */
  prefix: string;
  /** 0-based, like the `split.no` key. */
  index: number;
  count: number;
}

export function parseSplitName(path: string): SplitName | undefined {
  const m = SPLIT_NAME.exec(path);
  if (!m) return undefined;
  const index = Number(m[2]) - 1;
  const count = Number(m[3]);
  return index >= 0 && index < count ? { prefix: m[1]!, index, count } : undefined;
}

/** llama.cpp's `llama_split_path`. */
export function splitPath(prefix: string, index: number, count: number): string {
  const n = (v: number): string => String(v).padStart(5, '0');
  return `${prefix}-${n(index + 1)}-of-${n(count)}.gguf`;
}

/** The model name a file gives: its base name without `.gguf` and, for a shard, without the shard suffix. */
export function modelStem(path: string): string {
  const split = parseSplitName(path);
  return basename(split ? split.prefix : path).replace(/\.gguf$/i, '');
}

/** A shard other than the first was named as the model: llama-server refuses it, so say which file to use. */
export class NotFirstShard extends GgufError {
  override name = 'NotFirstShard';
}

/** Some shards of a set are missing; the model cannot load until they are there. */
export class IncompleteSplit extends GgufError {
  override name = 'IncompleteSplit';
  constructor(
    readonly missing: string[],
    count: number,
  ) {
    super(
      `incomplete split model: ${missing.map((p) => basename(p)).join(', ')} missing (${count - missing.length} of ${count} shards present)`,
    );
  }
}

/** Every file of the model whose (first) file is `path`, in shard order; `[path]` for an ordinary GGUF. */
export function shardPaths(path: string): string[] {
  const split = parseSplitName(path);
  if (!split) return [path];
  if (split.index !== 0)
    throw new NotFirstShard(
      `${path} is shard ${split.index + 1} of ${split.count}: use shard 1, ${basename(splitPath(split.prefix, 0, split.count))}`,
    );
  return Array.from({ length: split.count }, (_, i) => splitPath(split.prefix, i, split.count));
}

export interface ShardStats {
  paths: string[];
  /** Sum over all shards: what the weights take on disk and, mmapped, in memory. */
  size: number;
  /** The newest shard's mtime, so replacing any shard counts as a change of the model. */
  modifiedAt: Date;
}

/** Stats every shard; throws IncompleteSplit naming all missing ones at once. */
export async function statShards(path: string): Promise<ShardStats> {
  const paths = shardPaths(path);
  const stats = await Promise.all(
    paths.map((p) =>
      stat(p).catch((err: NodeJS.ErrnoException) =>
        paths.length > 1 && err.code === 'ENOENT' ? undefined : Promise.reject(err),
      ),
    ),
  );
  const missing = paths.filter((_, i) => !stats[i]);
  if (missing.length) throw new IncompleteSplit(missing, paths.length);
  const present = stats as NonNullable<(typeof stats)[number]>[];
  return {
    paths,
    size: present.reduce((sum, s) => sum + s.size, 0),
    modifiedAt: new Date(Math.max(...present.map((s) => s.mtimeMs))),
  };
}

/**
 * Shard 1 carries every key/value (tokenizer, template, architecture), so metadata comes from it alone.
 * The other shards' headers are small (split keys and tensor infos only) and are read to check they
 * belong to this set and to count their parameters: otherwise a 70B model split in three would show as ~23B.
 */
export async function readGgufShards(paths: string[], opts: ReadGgufOptions = {}): Promise<GgufInfo> {
  const first = await readGguf(paths[0]!, opts);
  if (paths.length === 1) return first;
  checkShard(first, paths[0]!, 0, paths.length);
  const info: GgufInfo = { ...first };
  if (first.tensors) info.tensors = [...first.tensors];
  for (let i = 1; i < paths.length; i++) {
    const part = await readGguf(paths[i]!, opts);
    checkShard(part, paths[i]!, i, paths.length);
    info.parameterCount += part.parameterCount;
    info.tensorBytes += part.tensorBytes;
    info.missingBytes += part.missingBytes;
    info.tensors?.push(...(part.tensors ?? []));
  }
  info.parameterSize = humanNumber(info.parameterCount);
  return info;
}

function checkShard(info: GgufInfo, path: string, index: number, count: number): void {
  const no = info.metadata['split.no'];
  const total = info.metadata['split.count'];
  if (no !== index || total !== count) {
    throw new GgufError(
      `${path}: header says split.no=${String(no)} split.count=${String(total)}, but its name makes it shard ${index + 1} of ${count}`,
    );
  }
}

/**
 * The digest of a split model: sha256 over `sha256:<hex>\n` of each shard, in shard order. It is built
 * from the per-file digests so a changed shard is the only one hashed again (the DigestCache remembers
 * the rest), and it can be checked by hand:
 * `sha256sum model-*-of-00003.gguf | awk '{print "sha256:" $1}' | sha256sum`.
 * A single-file model keeps the plain sha256 of its file, as before.
 */
export function combineDigests(digests: string[]): string {
  if (digests.length === 1) return digests[0]!;
  const hash = createHash('sha256');
  for (const d of digests) hash.update(`${d}\n`);
  return `sha256:${hash.digest('hex')}`;
}
