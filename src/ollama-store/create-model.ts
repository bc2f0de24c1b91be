import { readFile, stat } from 'node:fs/promises';
import { GgufError, readGguf, type GgufInfo } from '../catalog/gguf.js';
import { BadRequest } from '../errors.js';
import { blobInTarget, encodeManifest, requireBlob, writeLayer, type NewLayer } from './layer-writer.js';
import { MEDIA, type ModelConfig, type StoreMessage } from './layers.js';
import { parseDigest, type OllamaName } from './names.js';
import { CONFIG_MEDIA_TYPE, manifestDigests, type Layer, type Manifest } from './store.js';
import type { Stores } from './stores.js';

/** A model to create in the write store, in Ollama's create API terms. */
export interface StoreCreateSpec {
  name: OllamaName;
  /** The Ollama-store model it is created from, and the name its layers will cite as `from`. */
  base?: { manifest: Manifest; display: string } | undefined;
  /** File name → digest of an uploaded GGUF (the model, a projector). */
  files?: Record<string, string> | undefined;
  /** File name → digest of an uploaded LoRA GGUF. */
  adapters?: Record<string, string> | undefined;
  template?: string | undefined;
  system?: string | undefined;
  parameters?: Record<string, unknown> | undefined;
  messages?: StoreMessage[] | undefined;
  license?: string[] | undefined;
}

/**
 * A step that may replace the model layer before the manifest is written (quantizing is one): it
 * receives the layer and its blob, and returns the layer to use.
 */
export type ModelLayerStep = (
  layer: Layer,
  blob: string,
  emit: (status: { status: string; digest?: string; total?: number; completed?: number }) => void,
) => Promise<Layer>;

type Emit = Parameters<ModelLayerStep>[2];

/**
 * Ollama's createModel: base layers (from a model or uploaded files), then the template, system,
 * license, parameters and messages layers, a config blob, and the manifest, with Ollama's status
 * lines. Blobs are shared by digest; what an overwritten manifest alone used is removed afterwards.
 */
export async function createStoreModel(
  stores: Stores,
  spec: StoreCreateSpec,
  emit: Emit,
  steps: ModelLayerStep[] = [],
): Promise<void> {
  const target = stores.target;
  const layers: NewLayer[] = [
    ...(await baseLayers(stores, spec)),
    ...(await fileLayers(stores, spec.files, false, emit)),
  ];
  if (!spec.base && !spec.files) throw new BadRequest("neither 'from' or 'files' was specified");
  const adapters = await fileLayers(stores, spec.adapters, true, emit);
  if (adapters.length > 1) throw new BadRequest('only one adapter is currently supported');
  layers.push(...adapters);
  const modelAt = layers.findIndex((l) => l.layer.mediaType === MEDIA.model);
  if (modelAt < 0) throw new BadRequest('no model layer: "files" must include a model GGUF');
  const made: string[] = [];
  try {
    for (const step of steps) {
      const before = layers[modelAt]!.layer;
      const after = await step(before, target.blobFile(before.digest), emit);
      if (after.digest === before.digest) continue;
      made.push(after.digest);
      layers[modelAt] = { layer: after, status: `creating new layer ${after.digest}` };
    }
    await finishModel(stores, spec, layers, modelAt, made.length > 0, emit);
  } catch (err) {
    // A step's blob (a quantized model) that no manifest came to use would stay on disk for nothing.
    if (made.length) await target.removeUnreferenced(made);
    throw err;
  }
}

/** The layers a create sets over the base's, the config blob and the manifest. */
async function finishModel(
  stores: Stores,
  spec: StoreCreateSpec,
  base: NewLayer[],
  modelAt: number,
  modelReplaced: boolean,
  emit: Emit,
): Promise<void> {
  const target = stores.target;
  let layers = base;
  const replace = async (types: string[], content: string | undefined, mediaType: string): Promise<void> => {
    if (content === undefined) return;
    layers = layers.filter((l) => !types.includes(l.layer.mediaType));
    if (content !== '') layers.push(await writeLayer(target, content, mediaType));
  };
  await replace([MEDIA.template, MEDIA.prompt], spec.template, MEDIA.template);
  await replace([MEDIA.system], spec.system, MEDIA.system);
  for (const text of spec.license ?? []) if (text !== '') layers.push(await writeLayer(target, text, MEDIA.license));
  const params = { ...(await existingParams(target.blobFile.bind(target), layers)), ...spec.parameters };
  if (Object.keys(params).length) await replace([MEDIA.params], `${JSON.stringify(params)}\n`, MEDIA.params);
  if (spec.messages?.length) await replace([MEDIA.messages], `${JSON.stringify(spec.messages)}\n`, MEDIA.messages);

  const model = base[modelAt]!.layer;
  const config = await writeLayer(
    target,
    await configFor(stores, spec, target.blobFile(model.digest), modelReplaced),
    CONFIG_MEDIA_TYPE,
  );
  for (const l of layers) emit({ status: l.status });
  emit({ status: 'writing manifest' });
  const previous = await target.read(spec.name).catch(() => undefined);
  await target.writeManifest(
    spec.name,
    encodeManifest(
      config.layer,
      layers.map((l) => l.layer),
    ),
  );
  if (previous) await target.removeUnreferenced(manifestDigests(previous.manifest));
}

async function baseLayers(stores: Stores, spec: StoreCreateSpec): Promise<NewLayer[]> {
  const out: NewLayer[] = [];
  for (const l of spec.base?.manifest.layers ?? []) {
    if (!(await blobInTarget(stores, l.digest)))
      throw new BadRequest(`blob ${l.digest} of ${spec.base!.display} is missing`);
    out.push({ layer: { ...l, from: spec.base!.display }, status: `using existing layer ${l.digest}` });
  }
  return out;
}

/** Ollama's fs.ValidPath: relative, slash-separated, no empty, `.` or `..` element. */
function validFilePath(p: string): boolean {
  if (p === '.') return true;
  return (
    p !== '' &&
    !p.startsWith('/') &&
    !p.includes('\\') &&
    p.split('/').every((e) => e !== '' && e !== '.' && e !== '..')
  );
}

async function fileLayers(
  stores: Stores,
  files: Record<string, string> | undefined,
  adapter: boolean,
  emit: Emit,
): Promise<NewLayer[]> {
  const out: NewLayer[] = [];
  for (const path of Object.keys(files ?? {}).sort()) {
    if (!validFilePath(path)) throw new BadRequest('file path must be relative');
    const raw = files![path];
    const digest = typeof raw === 'string' ? parseDigest(raw) : undefined;
    if (!digest) throw new BadRequest('invalid digest format');
    if (path.endsWith('.safetensors'))
      throw new BadRequest('safetensors files cannot be served by llama-server; convert them to GGUF first');
    emit({ status: 'parsing GGUF' });
    const blob = await requireBlob(stores, digest);
    const gguf = await readGguf(blob).catch((err: unknown) => {
      if (err instanceof GgufError) throw new BadRequest('supplied file was not in GGUF format');
      throw err;
    });
    const mediaType = adapter ? MEDIA.adapter : mediaTypeOf(gguf);
    const { size } = await stat(blob);
    out.push({
      layer: { mediaType, digest, size, from: path },
      status: `using existing layer ${digest}`,
    });
  }
  return out;
}

/** What a GGUF is, as Ollama's ggufLayers decides it. */
function mediaTypeOf(gguf: GgufInfo): string {
  const kind = gguf.metadata['general.type'];
  if (kind === 'adapter') return MEDIA.adapter;
  if (kind === 'projector' || kind === 'mmproj' || gguf.architecture === 'clip') return MEDIA.projector;
  return MEDIA.model;
}

async function existingParams(blobFile: (d: string) => string, layers: NewLayer[]): Promise<Record<string, unknown>> {
  const p = layers.find((l) => l.layer.mediaType === MEDIA.params);
  if (!p) return {};
  const parsed = JSON.parse(await readFile(blobFile(p.layer.digest), 'utf8')) as unknown;
  return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
}

/**
 * model.ConfigV2: the base's own when there is one (with the new file_type when a step replaced the
 * model), else from the GGUF header, in Ollama's field order.
 */
async function configFor(
  stores: Stores,
  spec: StoreCreateSpec,
  modelBlob: string,
  modelReplaced: boolean,
): Promise<string> {
  const cfgDigest = spec.base?.manifest.config.digest;
  const file = cfgDigest && spec.files === undefined ? await blobInTarget(stores, cfgDigest) : undefined;
  if (file && !modelReplaced) return readFile(file, 'utf8');
  const g = await readGguf(modelBlob);
  if (file) {
    const own = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    return `${JSON.stringify({ ...own, file_type: g.quantization })}\n`;
  }
  const config: ModelConfig & { architecture: string; os: string } = {
    model_format: 'gguf',
    model_family: g.architecture,
    model_families: [g.architecture],
    model_type: g.parameterSize,
    file_type: g.quantization,
    architecture: 'amd64',
    os: 'linux',
  };
  return `${JSON.stringify(config)}\n`;
}
