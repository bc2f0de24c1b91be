import type { Conversation } from '../store/conversations.js';

/** A file name from a title: ASCII letters, digits and dashes only (safe in a Content-Disposition header). */
export function exportFileName(c: Conversation, ext: 'json' | 'md'): string {
  const slug = c.title
    .normalize('NFKD')
    .replace(/[^\w\s-]/g, '')
    .trim()
    .replace(/[\s_]+/g, '-')
    .slice(0, 60)
    .toLowerCase();
  return `${slug || 'conversation'}.${ext}`;
}

export function conversationJson(c: Conversation): string {
  return `${JSON.stringify(
    {
      id: c.id,
      title: c.title,
      model: c.model,
      system: c.system,
      options: c.options,
      created_at: new Date(c.createdAt).toISOString(),
      updated_at: new Date(c.updatedAt).toISOString(),
      messages: c.messages,
    },
    null,
    2,
  )}\n`;
}

const HEADINGS = { system: 'System', user: 'User', assistant: 'Assistant' } as const;

/** Readable Markdown: one section per message; images are noted, not inlined (they are in the JSON export). */
export function conversationMarkdown(c: Conversation): string {
  const out = [
    `# ${c.title}`,
    '',
    `- Model: \`${c.model}\``,
    `- Created: ${new Date(c.createdAt).toISOString()}, updated: ${new Date(c.updatedAt).toISOString()}`,
  ];
  if (Object.keys(c.options).length) out.push(`- Options: \`${JSON.stringify(c.options)}\``);
  if (c.system) out.push('', '## System', '', c.system);
  for (const m of c.messages) {
    out.push('', `## ${HEADINGS[m.role]}`, '', m.content);
    const n = m.images?.length ?? 0;
    if (n) out.push('', `*(${n} image${n === 1 ? '' : 's'} attached)*`);
  }
  return `${out.join('\n')}\n`;
}
