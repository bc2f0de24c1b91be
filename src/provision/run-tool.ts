import { FIXES } from './detect.js';

export interface RunOptions {
  cwd: string;
  env?: Record<string, string | undefined>;
  /** Every line of output, as it arrives. */
  onLine?: (line: string) => void;
}

/** A build step failed; `message` says what to do where the output is recognisable. */
export class ProvisionError extends Error {
  constructor(
    message: string,
    readonly output: string[] = [],
  ) {
    super(message);
    this.name = 'ProvisionError';
  }
}

const KNOWN_FAILURES: [RegExp, string][] = [
  [/Could NOT find Vulkan|glslc/i, `the Vulkan toolkit is missing: ${FIXES.vulkan}`],
  [
    /CUDA Toolkit not found|No CMAKE_CUDA_COMPILER|CMAKE_CUDA_COMPILER-NOTFOUND|CUDA::cublas|no GPU was detected/i,
    `the CUDA toolkit is missing or incomplete: ${FIXES.cuda}`,
  ],
  [/Failed to find ROCm|hip-config\.cmake|HIP_PATH|hipconfig/i, `ROCm is missing: ${FIXES.rocm}`],
  [/No CMAKE_CXX_COMPILER could be found/i, 'no C++ compiler: install one (Debian/Ubuntu: apt install g++)'],
];

/** The user-facing reason for a failed cmake run, from its output; undefined when not recognised. */
export function explainFailure(output: string): string | undefined {
  return KNOWN_FAILURES.find(([pattern]) => pattern.test(output))?.[1];
}

/**
 * Runs one build step, keeping the last lines of its output for the error. Loaded lazily: only a
 * provision needs execa, and the gateway imports the provisioning modules too.
 */
export async function runTool(cmd: string, args: string[], opts: RunOptions): Promise<void> {
  const { execa } = await import('execa');
  const child = execa(cmd, args, {
    cwd: opts.cwd,
    all: true,
    buffer: false,
    stdin: 'ignore',
    ...(opts.env ? { env: opts.env, extendEnv: false } : {}),
  });
  const tail: string[] = [];
  let partial = '';
  child.all?.setEncoding('utf8');
  child.all?.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      tail.push(line);
      if (tail.length > 60) tail.shift();
      opts.onLine?.(line);
    }
  });
  try {
    await child;
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') {
      throw new ProvisionError(`${cmd} is not installed: ${installHint(cmd)}`);
    }
    const why = explainFailure(tail.join('\n'));
    const step = `${cmd} ${args.slice(0, 3).join(' ')}${args.length > 3 ? ' …' : ''}`;
    throw new ProvisionError(why ? `${step} failed: ${why}` : `${step} failed:\n${tail.slice(-30).join('\n')}`, tail);
  }
}

function installHint(cmd: string): string {
  if (cmd === 'cmake' || cmd === 'git') return 'Debian/Ubuntu: apt install cmake g++ git';
  if (cmd === 'npm') return 'npm comes with Node.js';
  return `install ${cmd}`;
}
