import { commandHelp, mainHelp } from '../../src/cli/help.js';
import { COMMANDS } from '../../src/cli/spec.js';

const FENCE = '```';

/**
 * docs/cli.md with every help block replaced by what the program prints: the first block is
 * `corral --help`, the block under "## corral NAME" is that command's help. The prose around the
 * blocks stays hand-written; a command without a section gets one before "## Notes".
 */
export function renderCliReference(current: string): string {
  let text = replaceBlockAfter(current, 0, mainHelp());
  for (const spec of COMMANDS) {
    const heading = `## corral ${spec.name}\n`;
    if (!text.includes(heading)) {
      const section = `${heading}\n${FENCE}text\n${FENCE}\n\n`;
      const notes = text.indexOf('## Notes');
      text = notes < 0 ? `${text}\n${section}` : text.slice(0, notes) + section + text.slice(notes);
    }
    text = replaceBlockAfter(text, text.indexOf(heading), commandHelp(spec));
  }
  return text;
}

function replaceBlockAfter(text: string, from: number, body: string): string {
  const open = text.indexOf(`${FENCE}text\n`, from);
  const close = text.indexOf(`${FENCE}\n`, open + 8);
  if (open < 0 || close < 0) throw new Error('docs/cli.md: a help section lacks its ```text block');
  return `${text.slice(0, open + 8)}${body}${text.slice(close)}`;
}
