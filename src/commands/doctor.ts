import { resolve } from 'node:path';
import { Catalog } from '../catalog/catalog.js';
import { type ConfigError, loadConfig } from '../config/load.js';
import { findLlamaServer, llamaServerVersion, cachedBinaryPath } from '../provision/llama-binary.js';
import { missingMemorySettings } from '../memory-settings.js';
import { deathSignalLauncher } from '../runner/death-signal.js';
import { offloadDevices } from '../runner/devices.js';

/** Prints which llama-server will be used and why, the models found, and any config error. */
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
    const bin = await findLlamaServer({ configured: loaded?.config.llama_server.binary });
    if (bin) {
      out(`llama-server: ${bin.path}`);
      out(`  why:        ${bin.reason}`);
      out(`  version:    ${await llamaServerVersion(bin.path)}`);
      const devices = await offloadDevices(bin.path);
      out(
        `  devices:    ${devices === undefined ? 'unknown (no answer to --list-devices)' : devices.length > 0 ? devices.join('; ') : 'none: CPU only'}`,
      );
      const launcher = await deathSignalLauncher();
      out(
        `  on exit:    ${launcher ? 'children die with the gateway (setpriv --pdeathsig KILL)' : 'setpriv --pdeathsig unavailable: children of a killed gateway live until its next start reaps them'}`,
      );
    } else {
      out(
        `llama-server: not found (config llama_server.binary, CORRAL_LLAMA_SERVER, PATH); the first start builds it into ${cachedBinaryPath()}`,
      );
    }
  } catch (err) {
    ok = false;
    out(`llama-server: ERROR ${(err as Error).message}`);
  }
  const missing = missingMemorySettings();
  out(
    missing.length === 0
      ? 'memory:       node settings of `corral` active'
      : `memory:       started without ${missing.join(' ')} (run \`corral\` or \`npm start\`, not \`node dist/src/cli.js\`): idle RSS about 15–20 MB higher`,
  );
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
