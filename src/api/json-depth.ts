/**
 * Whether a JSON text nests arrays and objects deeper than `max`, found without parsing it: a
 * megabyte of "[" costs JSON.parse a deep structure and every recursive reader after it a stack
 * overflow. Strings are skipped with indexOf, so a long base64 image costs almost nothing.
 */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i = stringEnd(text, i + 1);
      continue;
    }
    if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > max) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    }
    i++;
  }
  return false;
}

/** The index just past the closing quote of a string whose content starts at `from`. */
function stringEnd(text: string, from: number): number {
  let i = from;
  for (;;) {
    const q = text.indexOf('"', i);
    if (q === -1) return text.length;
    let backslashes = 0;
    for (let j = q - 1; j >= from && text.charCodeAt(j) === 0x5c; j--) backslashes++;
    if (backslashes % 2 === 0) return q + 1;
    i = q + 1;
  }
}
