import { Type } from '@sinclair/typebox';

export interface KeyDocs {
  description: string;
  examples?: unknown[];
}

/** Durations are strings like "5m", "300s", "1h" or plain numbers of seconds (see ./duration.ts). */
export const Duration = (fallback: string | undefined, docs: KeyDocs) =>
  Type.Union([Type.String(), Type.Number()], {
    title: 'duration',
    ...docs,
    ...(fallback === undefined ? {} : { default: fallback }),
  });

/** Bytes, or a size string like "20MB", "16GiB" (see parseSize in ./duration.ts). */
export const Size = (fallback: string, docs: KeyDocs) =>
  Type.Union([Type.Integer({ minimum: 0 }), Type.String()], { title: 'size', ...docs, default: fallback });
