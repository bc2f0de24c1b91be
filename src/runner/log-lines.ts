/** llama-server's lines that explain a failure, most telling first (used to tell a client why a load failed). */
const ERROR_PATTERNS = [/failed to load model/i, /error/i, /failed/i, /invalid/i, /unknown argument/i, /exiting/i];

export function explainFailure(lines: string[]): string | undefined {
  for (const pattern of ERROR_PATTERNS) {
    const hit = lines.find((l) => pattern.test(l));
    if (hit) return hit.trim();
  }
  return lines.at(-1)?.trim();
}
