import type { CatalogModel } from '../../catalog/catalog.js';
import { parseSize } from '../../config/duration.js';
import { BadRequest } from '../../errors.js';
import { Manifest, manifestPath, type ManagedEntry } from '../../models/manifest.js';
import type { FetchPolicy } from '../../net/guarded-fetch.js';
import type { Stores } from '../../ollama-store/stores.js';
import type { ApiDeps } from '../deps.js';

/** What the model-management routes share: models.json, the Ollama stores and the pull policy. */
export interface ManageContext {
  /** data_dir/models.json, one instance (and write lock) per file. */
  manifest(): Manifest;
  stores(): Stores;
  policy(insecure: boolean): FetchPolicy;
  /** Free bytes pulls and uploads leave on the disk. */
  reserve(): number;
}

export function manageContext(deps: ApiDeps): ManageContext {
  // data_dir can change on a config reload.
  const manifests = new Map<string, Manifest>();
  return {
    manifest() {
      const file = manifestPath(deps.catalog.dataDir);
      let m = manifests.get(file);
      if (!m) manifests.set(file, (m = new Manifest(file)));
      return m;
    },
    stores: () => deps.catalog.stores,
    policy: (insecure) => ({
      insecure: insecure || deps.config().pull.insecure,
      privateHosts: deps.config().pull.private_hosts,
    }),
    reserve: () => parseSize(deps.config().disk_reserve),
  };
}

export function nameOf(body: { model?: string | undefined; name?: string | undefined }): string {
  const n = body.model ?? body.name;
  if (!n) throw new BadRequest('missing required field "model"');
  return n;
}

/** What a copy or a derived model inherits: everything that defines its behaviour, not its name. */
export function snapshot(m: CatalogModel, kind: ManagedEntry['kind'], source?: string): ManagedEntry {
  return {
    kind,
    path: m.path,
    parent: m.name,
    source,
    system: m.system,
    template: m.template,
    options: { ...m.options },
    embedding: m.embedding,
    mmproj: m.mmproj,
    createdAt: new Date().toISOString(),
  };
}
