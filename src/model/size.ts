// The one grammar of sizes (memory, swap, tmpfs and /dev/shm sizes, device rates): a number of
// bytes, or a number with a binary unit as Docker reads it (512m, 2g, 1.5GiB, 64MB, 100b). The
// schema checks a string with SIZE_PATTERN, and parseSize reads it with the same pattern, so
// that what the schema lets through is always a size here (test/unit/size.test.ts holds both to it).

/** A size written as a string; the schema's `pattern` for every size key is this text. */
export const SIZE_PATTERN = '^\\s*[0-9]+(\\.[0-9]+)?\\s*([kKmMgGtT]([iI]?[bB])?|[bB])?\\s*$';

const SIZE = new RegExp(SIZE_PATTERN);
const POWER: Readonly<Record<string, number>> = { k: 1, m: 2, g: 3, t: 4 };

/** 512m, 2g, 1.5GiB, 1024 → bytes. Units are binary, as Docker's. A number is taken as bytes
 * (whole, -1 at least: -1 is unlimited where a key allows it). */
export function parseSize(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= -1 ? v : undefined;
  const m = SIZE.exec(v);
  if (!m) return undefined;
  // The pattern's second group is the unit as written: k, kb, KiB… or b; its first letter tells the power.
  const pow = POWER[(m[2] ?? '').charAt(0).toLowerCase()] ?? 0;
  return Math.round(parseFloat(v) * 1024 ** pow);
}
