import { resolve } from 'node:path';
import { Catalog } from '../catalog/catalog.js';
import { type ConfigError, loadConfig } from '../config/load.js';
import { inspectBackend } from '../provision/backend-status.js';
import { detectMachine, gpuBackends, type Machine } from '../provision/detect.js';
import { cachedBinaryPath, findLlamaServer, findLlamaTool, llamaServerVersion } from '../provision/llama-binary.js';
import { deathSignalLauncher } from '../runner/death-signal.js';

/** The GPUs found and, for each kind, whether a build for it could be made here. */
function printMachine(out: (line: string) => void, machine: Machine): void {
  const gb = (b: number | undefined) => (b ? `, ${(b / 2 ** 30).toFixed(1)} GiB` : '');
  if (machine.gpus.length === 0) out('gpus:         none found (nvidia-smi, rocminfo, vulkaninfo; Apple silicon)');
  for (const g of machine.gpus)
    out(`gpu:          ${g.name} (${g.backend}${g.arch ? ` ${g.arch}` : ''}${gb(g.vramBytes)})`);
  for (const b of gpuBackends(machine)) {
    const t = machine.toolkits[b];
    out(`  ${`${b} build:`.padEnd(12)}${t.ready ? `toolkit found: ${t.detail}` : `${t.detail} (${t.fix})`}`);
  }
}

/** Prints which llama-server will be used and why, what it runs on, the GPUs, the models, and what is wrong. */
export async function doctor(configFile: string): Promise<number> {
  let ok = true;
  const out = (line: string): boolean => process.stdout.write(`${line}\n`);
  let loaded;
  try {
    loaded = await loadConfig(configFile, { optional: true });
    out(`config:       ${loaded.file ?? `${resolve(configFile)} not found — using embedded defaults`}`);
  } catch (err) {
    ok = false;
    out(`config:       INVALID`);
    for (const p of (err as ConfigError).problems ?? [(err as Error).message]) out(`  ${p}`);
  }
  try {
    const configured = loaded?.config.llama_server;
    const bin = await findLlamaServer({ configured: configured?.binary, backend: configured?.backend });
    if (bin) {
      out(`llama-server: ${bin.path}`);
      out(`  why:        ${bin.reason}`);
      out(`  version:    ${await llamaServerVersion(bin.path)}`);
      const { status, machine } = await inspectBackend(bin);
      out(`  runs on:    ${status.description}`);
      if (status.gpuLayers) out(`  offload:    models without -ngl get -ngl ${status.gpuLayers}`);
      const launcher = await deathSignalLauncher();
      out(
        `  on exit:    ${launcher ? 'children die with the gateway (setpriv --pdeathsig KILL)' : 'setpriv --pdeathsig unavailable: children of a killed gateway live until its next start reaps them'}`,
      );
      for (const [tool, label] of [
        ['llama-quantize', 'quantize:'],
        ['rpc-server', 'rpc-server:'],
      ] as const) {
        const path = await findLlamaTool(tool, { backend: configured?.backend });
        out(`  ${label.padEnd(12)}${path ?? 'not provisioned (`corral provision --force` builds it)'}`);
      }
      printMachine(out, machine);
      for (const w of status.warnings) out(`warning:      ${w}`);
    } else {
      out(
        'llama-server: not found (config llama_server.binary, CORRAL_LLAMA_SERVER, PATH); ' +
          `the first start provisions it into ${cachedBinaryPath()}`,
      );
      printMachine(out, await detectMachine());
    }
  } catch (err) {
    ok = false;
    out(`llama-server: ERROR ${(err as Error).message}`);
  }
  if (loaded) {
    const catalog = new Catalog({ config: loaded.config, baseDir: loaded.baseDir, cwd: process.cwd() });
    await catalog.refresh();
    const models = catalog.list();
    out(`models:       ${models.length} (dirs: ${loaded.config.models_dirs.join(', ')})`);
    for (const m of models)
      out(`  ${m.name.padEnd(40)} ${m.gguf.architecture} ${m.gguf.parameterSize} ${m.gguf.quantization}  ${m.path}`);
    for (const w of catalog.warnings) out(`  warning: ${w}`);
  }
  return ok ? 0 : 1;
}
