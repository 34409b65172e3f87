/** Kinds of actor as `replay` names them (no machines loaded: the CLI parses its flags with this). */
import { UsageError } from '../errors.ts';

/** The requester's negotiation is the job's actor (`job/<id>`), so it is listed as `job`. */
export const KINDS = ['job', 'provider', 'allocation', 'ensemble', 'node', 'array', 'batch', 'trust'] as const;
const LABEL: Readonly<Record<string, string>> = { requester: 'job' };

/** A registry kind as `replay` shows it. */
export const kindLabel = (kind: string) => LABEL[kind] ?? kind;

/** The `--kind` flag's value (`requester` is taken for `job`). */
export function parseKind(v: string): string {
  const k = kindLabel(v.trim().toLowerCase());
  if (!(KINDS as readonly string[]).includes(k)) throw new UsageError(`--kind "${v}" is not a kind of actor: ${KINDS.join(', ')}`);
  return k;
}
