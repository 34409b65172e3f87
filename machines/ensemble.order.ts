/**
 * The dependency order of an ensemble's parts and which parts a failure takes down, by recovery strategy.
 * Pure functions over an EnsembleSpec; part names in and out.
 */
import type { EnsembleSpec } from './ensemble.ts';

/** The parts' dependencies contain a cycle, so they have no start order. */
export class DependencyCycleError extends Error {
  override name = 'DependencyCycleError';
  constructor(readonly cycle: readonly string[]) {
    super(`${cycle.join(' -> ')} is a dependency cycle, so none of these parts could ever start; remove one of the dependsOn entries`);
  }
}

/** A part name that is not in the ensemble. */
export class UnknownPartError extends Error {
  override name = 'UnknownPartError';
  constructor(readonly part: string) {
    super(`the ensemble has no part named ${JSON.stringify(part)}`);
  }
}

/** Each part's dependencies that are parts of the ensemble (other names are validateEnsemble's to report). */
function edges(spec: EnsembleSpec): Map<string, string[]> {
  const names = new Set(spec.parts.map((p) => p.name));
  return new Map(spec.parts.map((p) => [p.name, p.dependsOn.filter((d) => names.has(d))]));
}

/**
 * The order parts start in: every part after the parts it depends on, and otherwise in declaration order (of the
 * parts ready to start, the first declared goes first). Throws a DependencyCycleError when there is none.
 */
export function startOrder(spec: EnsembleSpec): string[] {
  const deps = edges(spec);
  const started = new Set<string>();
  const order: string[] = [];
  while (order.length < deps.size) {
    const next = spec.parts.find((p) => !started.has(p.name) && deps.get(p.name)!.every((d) => started.has(d)));
    if (!next) throw new DependencyCycleError(dependencyCycles(spec)[0] ?? []);
    started.add(next.name);
    order.push(next.name);
  }
  return order;
}

/**
 * Every dependency cycle found by a depth-first walk in declaration order, each written from its earliest-declared
 * part back to it (`[a, b, a]`). A part naming itself is a cycle of one (`[a, a]`). Empty when there are none.
 */
export function dependencyCycles(spec: EnsembleSpec): string[][] {
  const deps = edges(spec);
  const rank = new Map(spec.parts.map((p, i) => [p.name, i]));
  const done = new Set<string>();
  const path: string[] = [];
  const cycles: string[][] = [];
  const visit = (name: string): void => {
    path.push(name);
    for (const dep of deps.get(name) ?? []) {
      const at = path.indexOf(dep);
      if (at >= 0) cycles.push(fromEarliest(path.slice(at), rank));
      else if (!done.has(dep)) visit(dep);
    }
    path.pop();
    done.add(name);
  };
  for (const p of spec.parts) if (!done.has(p.name)) visit(p.name);
  return cycles;
}

/** The cycle rotated to start at its earliest-declared part, closed by that part again. */
function fromEarliest(cycle: string[], rank: Map<string, number>): string[] {
  const first = cycle.reduce((best, n, i) => (rank.get(n)! < rank.get(cycle[best]!)! ? i : best), 0);
  const rotated = [...cycle.slice(first), ...cycle.slice(0, first)];
  return [...rotated, rotated[0]!];
}

/** The parts that depend on `part`, directly or through others, in start order (without `part`). */
export function dependentsClosure(spec: EnsembleSpec, part: string): string[] {
  const order = known(spec, part);
  const deps = edges(spec);
  const hit = new Set([part]);
  // In start order every dependency comes before its dependents, so one pass sees the whole closure.
  for (const name of order) if (deps.get(name)!.some((d) => hit.has(d))) hit.add(name);
  return order.filter((n) => n !== part && hit.has(n));
}

/** The parts after `part` in the start order (without `part`): what rest_for_one restarts with it. */
export function startedAfter(spec: EnsembleSpec, part: string): string[] {
  const order = known(spec, part);
  return order.slice(order.indexOf(part) + 1);
}

/** The parts to stop and start again when `failed` fails for good, by the ensemble's `recovery`, in start order. */
export function partsToRestart(spec: EnsembleSpec, failed: string): string[] {
  const order = known(spec, failed);
  switch (spec.recovery) {
    case 'one_for_one':
      return [failed];
    case 'one_for_all':
      return order;
    case 'rest_for_one':
      return [failed, ...startedAfter(spec, failed)];
    default:
      return assertNever(spec.recovery);
  }
}

function known(spec: EnsembleSpec, part: string): string[] {
  if (!spec.parts.some((p) => p.name === part)) throw new UnknownPartError(part);
  return startOrder(spec);
}

function assertNever(x: never): never {
  throw new Error(`unexpected recovery strategy ${JSON.stringify(x)}`);
}
