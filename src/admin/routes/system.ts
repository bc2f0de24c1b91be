import { statfs } from 'node:fs/promises';
import { cpus, freemem, hostname, loadavg, platform, release, totalmem, uptime } from 'node:os';
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { llamaServerVersion } from '../../provision/llama-binary.js';
import { runCommand } from '../../runner/command.js';
import type { AdminContext } from '../context.js';
import { formatBytes } from '../view-models.js';

interface Gpu {
  name: string;
  used: string;
  total: string;
  util: string;
}

/** nvidia-smi is optional: absent, or failing, simply means no GPU section. */
async function gpus(): Promise<Gpu[] | undefined> {
  try {
    const r = await runCommand(
      'nvidia-smi',
      ['--query-gpu=name,memory.used,memory.total,utilization.gpu', '--format=csv,noheader,nounits'],
      5000,
    );
    if (r.exitCode !== 0) return undefined;
    return r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [name = '?', used = '0', total = '0', util = '?'] = l.split(',').map((s) => s.trim());
        return {
          name,
          used: formatBytes(Number(used) * 1024 * 1024),
          total: formatBytes(Number(total) * 1024 * 1024),
          util: `${util}%`,
        };
      });
  } catch {
    return undefined;
  }
}

async function disk(path: string): Promise<{ path: string; free: string; total: string; percent: number } | undefined> {
  try {
    const s = await statfs(path);
    const total = s.blocks * s.bsize;
    const free = s.bavail * s.bsize;
    return {
      path,
      free: formatBytes(free),
      total: formatBytes(total),
      percent: total ? Math.round(((total - free) / total) * 100) : 0,
    };
  } catch {
    return undefined;
  }
}

export function registerSystemRoutes(app: FastifyInstance, ctx: AdminContext): void {
  let version: Promise<string> | undefined;
  app.get('/admin/system', async (request, reply) => {
    const { deps } = ctx;
    const config = deps.config();
    const binary = deps.binary;
    if (binary) version ??= llamaServerVersion(binary.path).catch((err: Error) => `unknown (${err.message})`);
    const dirs = [
      ...new Set([resolve(deps.dataDir?.() ?? config.data_dir), ...deps.catalog.modelDirs, resolve(deps.logsDir())]),
    ];
    const c = cpus();
    return ctx.page(request, reply, 'system', 'System', {
      host: {
        name: hostname(),
        os: `${platform()} ${release()}`,
        node: process.version,
        uptime: `${Math.round(uptime() / 3600)} h`,
        gatewayUptime: `${Math.round(process.uptime() / 60)} min`,
      },
      cpu: {
        model: c[0]?.model ?? 'unknown',
        count: c.length,
        load: loadavg()
          .map((l) => l.toFixed(2))
          .join(' '),
      },
      ram: {
        total: formatBytes(totalmem()),
        free: formatBytes(freemem()),
        percent: Math.round(((totalmem() - freemem()) / totalmem()) * 100),
        rss: formatBytes(process.memoryUsage().rss),
      },
      disks: (await Promise.all(dirs.map(disk))).filter((d) => d !== undefined),
      gpus: await gpus(),
      binary: binary
        ? {
            path: binary.path,
            source: binary.source,
            reason: binary.reason,
            version: await version,
            runsOn: deps.backend?.().description,
          }
        : undefined,
    });
  });
}
