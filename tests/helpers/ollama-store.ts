import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface StoreLayer {
  mediaType: string;
  body: Buffer | string;
  from?: string;
}

const digestOf = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/**
 * Writes a model into `root` exactly as Ollama lays it out: each layer and the config as
 * `blobs/sha256-<hex>`, the manifest (Go's json.Encoder output: a trailing newline) at
 * `manifests/<host>/<namespace>/<model>/<tag>`. Returns the manifest bytes and the digests.
 */
export async function writeStoreModel(
  root: string,
  path: [host: string, namespace: string, model: string, tag: string],
  layers: StoreLayer[],
  config: object = { model_format: 'gguf', model_family: 'llama', model_type: '1M', file_type: 'F32' },
  options: { skipBlobs?: string[] } = {},
): Promise<{ manifest: Buffer; digests: string[]; file: string }> {
  await mkdir(join(root, 'blobs'), { recursive: true });
  const put = async (b: Buffer, mediaType: string, from?: string) => {
    const digest = digestOf(b);
    if (!options.skipBlobs?.includes(mediaType)) await writeFile(join(root, 'blobs', digest.replace(':', '-')), b);
    return { mediaType, digest, size: b.length, ...(from ? { from } : {}) };
  };
  const cfg = await put(
    Buffer.from(`${JSON.stringify({ ...config, architecture: 'amd64', os: 'linux' })}\n`),
    'application/vnd.docker.container.image.v1+json',
  );
  const entries = [];
  for (const l of layers) entries.push(await put(Buffer.from(l.body), l.mediaType, l.from));
  const manifest = Buffer.from(
    `${JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: cfg,
      layers: entries,
    })}\n`,
  );
  const dir = join(root, 'manifests', ...path.slice(0, 3));
  await mkdir(dir, { recursive: true });
  const file = join(dir, path[3]);
  await writeFile(file, manifest);
  return { manifest, digests: [cfg.digest, ...entries.map((e) => e.digest)], file };
}

export const storeDigest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
