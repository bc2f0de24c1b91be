import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { OllamaStore } from './store.js';

export interface StoreSettings {
  /** `auto`, `off` or a directory. */
  ollama_store: string;
  ollama_store_writable: boolean;
  data_dir: string;
}

/** The Ollama-layout stores Corral reads, and the one it writes pulls, uploads and created models to. */
export interface Stores {
  /** `<data_dir>/ollama`: created by Corral, always writable. */
  own: OllamaStore;
  /** An existing Ollama install's models directory, when one is configured or found. */
  external?: OllamaStore | undefined;
  /** Where writes go: the external store when it is writable, else Corral's own. */
  target: OllamaStore;
  /** Every store, the write target last (it wins when both hold a name). */
  all: OllamaStore[];
}

/** Where Ollama keeps models (envconfig.Models), then the Linux service's home: the first that exists. */
export function findOllamaModels(env: NodeJS.ProcessEnv, home = homedir()): string | undefined {
  const candidates = [env.OLLAMA_MODELS, join(home, '.ollama', 'models'), '/usr/share/ollama/.ollama/models'];
  return candidates.find((p): p is string => Boolean(p) && existsSync(p!));
}

export function resolveStores(settings: StoreSettings, cwd: string, env: NodeJS.ProcessEnv): Stores {
  const own = new OllamaStore(join(resolve(cwd, settings.data_dir), 'ollama'), true);
  const where =
    settings.ollama_store === 'off'
      ? undefined
      : settings.ollama_store === 'auto'
        ? findOllamaModels(env)
        : resolve(cwd, settings.ollama_store);
  const external =
    where && resolve(where) !== own.root ? new OllamaStore(resolve(where), settings.ollama_store_writable) : undefined;
  const target = external?.writable ? external : own;
  const all = [...(external && external !== target ? [external] : []), ...(target === own ? [] : [own]), target];
  return { own, external, target, all };
}
