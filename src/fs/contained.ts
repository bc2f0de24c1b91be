import { isAbsolute, relative, resolve, sep } from 'node:path';
import { BadRequest } from '../errors.js';

/** Whether `target` (absolute) lies strictly inside `root` (absolute). */
export function isInside(root: string, target: string): boolean {
  const rel = relative(resolve(root), resolve(target));
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/**
 * `root` joined with path parts taken from a request or a remote answer, refused unless the
 * result stays inside `root`: whatever encoding a name arrived in, the final path is what is checked.
 */
export function containedPath(root: string, ...parts: string[]): string {
  for (const p of parts) {
    if (p.includes('\0')) throw new BadRequest(`invalid path component ${JSON.stringify(p)}`);
  }
  const target = resolve(root, ...parts);
  if (!isInside(root, target)) {
    throw new BadRequest(`refusing a path outside ${resolve(root)}: ${JSON.stringify(parts.join('/'))}`);
  }
  return target;
}

/**
 * One file or directory name from outside (a URL segment, a repository file name): refused when it
 * could name anything but itself, in any encoding that survived decoding once.
 */
export function assertPlainName(name: string, what: string): string {
  if (name === '' || name === '.' || name === '..' || /[/\\\0%]/.test(name) || /^[a-zA-Z]:/.test(name)) {
    throw new BadRequest(`invalid ${what} ${JSON.stringify(name)}`);
  }
  return name;
}
