/** llama-server's own prefix on each line: elapsed time and a level letter ("0.00.008.127 E "). */
const PREFIX = /^\d+\.\d+\.\d+\.\d+ ([A-Z]) +/;
/** The words of an error printed without a level (before logging starts, or by an older llama-server). */
const ERROR_WORDS = /\berror\b|\bfailed\b|\binvalid\b|unknown argument|\babort/i;

/** A line that reports an error: level E when the line has a level, else one with an error's words. */
function isError(line: string): boolean {
  const level = PREFIX.exec(line)?.[1];
  return level ? level === 'E' : ERROR_WORDS.test(line);
}
/**
 * Lines that only repeat that something failed, printed after the line that says why: the load
 * failure is echoed by every layer on the way out ("failed to load model", "exiting due to …").
 */
const ECHOES = [
  /exiting due to/i,
  /cleaning up before exit/i,
  /failed to load model\s*$/i,
  /failed to load model,? '/i,
  /llama_model_loader: failed to load model from/i,
  /encountered an error while trying to fit params/i,
];

const strip = (line: string): string => line.replace(PREFIX, '').trim();

/**
 * The line that explains why llama-server stopped: the last error line before the exit that is not
 * an echo of an earlier one; else the last error line; else the last line.
 */
export function explainFailure(lines: string[]): string | undefined {
  const errors = lines.filter((l) => l.trim() !== '' && isError(l));
  const telling = errors.filter((l) => !ECHOES.some((p) => p.test(l)));
  const hit = telling.at(-1) ?? errors.at(-1) ?? lines.filter((l) => l.trim() !== '').at(-1);
  return hit === undefined ? undefined : strip(hit);
}

/** How the process ended, in words: "exit code 1", or the signal (and what SIGKILL usually means). */
export function exitStatus(code: number | undefined, signal: string | undefined): string {
  if (signal === 'SIGKILL') return 'killed by SIGKILL, often the out-of-memory killer';
  if (signal) return `killed by ${signal}`;
  return code === undefined ? 'exited' : `exit code ${code}`;
}

/** The reason a failed llama-server shows: its telling line and how it ended. */
export function describeExit(code: number | undefined, signal: string | undefined, lines: string[]): string {
  const why = explainFailure(lines);
  return why
    ? `${why} (${exitStatus(code, signal)})`
    : `llama-server ${exitStatus(code, signal)}; its log has no error line`;
}
