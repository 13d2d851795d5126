// Line-level mutations of a valid text document for fuzzing parsers:
// delete, duplicate, cut in half or extend one line (the ways a hostile or
// broken peer most often bends a line-oriented format).
export function mutateLine(text: string, i: number, how: number): string {
  const lines = text.split('\n');
  const j = i % lines.length;
  if (how === 0) lines.splice(j, 1);
  else if (how === 1) lines.splice(j, 0, lines[j]!);
  else if (how === 2) lines[j] = lines[j]!.slice(0, Math.floor(lines[j]!.length / 2));
  else lines[j] = `${lines[j]} extra`;
  return lines.join('\n');
}
