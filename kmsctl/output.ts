/**
 * Output formats: `json` prints the API objects as the daemon returned them (lists as arrays),
 * `yaml` the same in YAML, `text` (the default) a yc-style boxed table for lists and YAML for one
 * object. Everything goes through a writer so tests and the binary share it.
 */
import { stringify } from 'yaml';
import { UsageError } from './errors.js';

export type Format = 'text' | 'yaml' | 'json';
export const FORMATS: readonly Format[] = ['text', 'yaml', 'json'];

export function parseFormat(value: string | undefined): Format {
  if (value === undefined) return 'text';
  if ((FORMATS as readonly string[]).includes(value)) return value as Format;
  throw new UsageError(`--format: "${value}" is not one of ${FORMATS.join(', ')}`);
}

/** One column of a text table: its header and how to get the cell from an item. */
export interface Column<T> {
  header: string;
  value: (item: T) => unknown;
}

export interface Writer {
  write(text: string): unknown;
}

function cell(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/** A yc-style table: `+---+` rules, centred headers, left-aligned cells. */
export function table<T>(items: readonly T[], columns: readonly Column<T>[]): string {
  const rows = items.map((item) => columns.map((c) => cell(c.value(item)).replace(/\s+/g, ' ')));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? '').length)));
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+\n`;
  const header = `|${columns
    .map((c, i) => {
      const w = widths[i] ?? 0;
      const left = Math.floor((w - c.header.length) / 2);
      return ` ${' '.repeat(left)}${c.header}${' '.repeat(w - c.header.length - left)} `;
    })
    .join('|')}|\n`;
  const body = rows.map((r) => `|${r.map((v, i) => ` ${v.padEnd(widths[i] ?? 0)} `).join('|')}|\n`).join('');
  return rule + header + rule + body + (rows.length > 0 ? rule : '');
}

export function printList<T>(out: Writer, format: Format, items: readonly T[], columns: readonly Column<T>[]): void {
  if (format === 'json') out.write(`${JSON.stringify(items, null, 2)}\n`);
  else if (format === 'yaml') out.write(items.length === 0 ? '[]\n' : stringify(items));
  else out.write(table(items, columns));
}

export function printObject(out: Writer, format: Format, value: unknown): void {
  if (format === 'json') out.write(`${JSON.stringify(value, null, 2)}\n`);
  else out.write(stringify(value));
}
