/** Plain-text columns for the CLI's lists: each column as wide as its widest cell, two spaces apart. */

export function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  return [head, ...rows]
    .map((r) =>
      r
        .map((c, i) => pad(c, widths[i] as number))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
