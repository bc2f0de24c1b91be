// Placeholder with the agreed shapes; replaced by the catalog branch.
export interface GgufInfo {
  architecture: string; name?: string; fileType?: number; quantization: string; parameterCount: number; parameterSize: string;
  contextLength?: number; embeddingLength?: number; blockCount?: number; headCount?: number; headCountKv?: number;
  chatTemplate?: string; hasFim: boolean; tensorBytes: number; metadata: Record<string, unknown>;
}
export interface CatalogModel {
  name: string; path: string; source: 'config' | 'discovered'; aliases: string[]; args: string[]; options: Record<string, unknown>;
  keepAlive?: string | number; ctxSize?: number; parallel?: number; queueSize?: number; pinned: boolean; embedding: boolean;
  mmproj?: string; system?: string; template?: string; size: number; modifiedAt: Date; digest: string; gguf: GgufInfo;
}
export function normalizeModelName(name: string): string {
  const n = name.trim().toLowerCase();
  return n.includes(':') ? n : `${n}:latest`;
}
export function capabilities(model: CatalogModel): string[] {
  return model.embedding ? ['embedding'] : ['completion'];
}
export class Catalog {
  warnings: string[] = [];
  constructor(readonly opts: { config: unknown; baseDir: string; cwd: string }) {}
  async refresh(): Promise<void> {}
  list(): CatalogModel[] { return []; }
  resolve(_name: string): CatalogModel | undefined { return undefined; }
}
