import { readFileSync } from 'node:fs';
import { packageRoot } from '../admin/context.js';

/** Corral's version from package.json, as nodes report it to each other. */
export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(`${packageRoot()}/package.json`, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
