// README's command blocks, so tests run the lines users copy rather than
// copies of them that could drift apart.
import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** The ```sh blocks of the README section headed `### <heading>` (up to the next `## ` or `### ` heading). */
export async function readmeBlocks(heading: string): Promise<string[]> {
  const readme = await readFile(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');
  const start = readme.indexOf(`### ${heading}\n`);
  if (start < 0) throw new Error(`README has no section "${heading}"`);
  const next = /\n#{2,3} /g;
  next.lastIndex = start + 1;
  const end = next.exec(readme)?.index;
  const section = readme.slice(start, end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => (m[1] as string).trim());
}
