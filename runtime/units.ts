/**
 * Sizes and durations as users write them: bytes or "128MiB" / "1GB"; milliseconds or "30s".
 */
import bytes from 'bytes-iec';
import ms from 'ms';

/** Parses a size; undefined when it is not a non-negative size. */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : bytes.parse(value.trim());
  return n !== null && Number.isFinite(n) && n >= 0 ? Math.floor(n) : undefined;
}

/** Parses a duration in ms; undefined when it is not a positive duration. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : ms(value.trim() as ms.StringValue);
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : undefined;
}
