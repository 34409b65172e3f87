/**
 * Every rule of an ensemble that needs no I/O, as JobProblems named by the job file's fields
 * (`allocations.kv.healthcheck.http.port`, `maxRestarts.within`). Each part is also held to `validateJob`'s rules
 * for its executor and resources, the ensemble's name, timeout and constraints to the rules of a job's, and health
 * checks, restart policies and maxRestarts to the rules of health.ts and restart-policy.ts.
 */
import {
  addrEnvName,
  constraintsOf,
  ENSEMBLE_LIMITS,
  type EnsemblePart,
  type EnsembleSpec,
  envFragment,
  partJob,
  partNameProblem,
  PORT_NAME_PATTERN,
  portEnvName,
} from './ensemble.ts';
import { dependencyCycles } from './ensemble.order.ts';
import { healthCheckProblems } from './health.ts';
import { type DeploymentWindow, type JobConstraints, type JobProblem, validateJob } from './job.ts';
import { maxRestartsProblems, restartProblems } from './restart-policy.ts';

type Add = (field: string, message: string) => void;

/** Every problem with the ensemble; empty when it is fine. With a window, also refuses a too-close deadline. */
export function validateEnsemble(spec: EnsembleSpec, window?: DeploymentWindow): JobProblem[] {
  const problems: JobProblem[] = [];
  const add: Add = (field, message) => problems.push({ field, message });
  ensembleProblems(spec, add, window);
  const n = spec.parts.length;
  if (n === 0) add('allocations', 'has no parts; name at least one part under allocations');
  if (n > ENSEMBLE_LIMITS.maxParts) add('allocations', `has ${n} parts; an ensemble has at most ${ENSEMBLE_LIMITS.maxParts}`);
  if (n === 0 || n > ENSEMBLE_LIMITS.maxParts) return problems;
  nameProblems(spec.parts, add);
  for (const part of spec.parts) partProblems(spec, part, add);
  dependencyProblems(spec, add);
  return problems;
}

/** A job with nothing wrong but what the ensemble itself brings: its name, timeout and constraints. */
const STAND_IN = { executor: 'process', process: { command: 'true', args: [], env: {} }, resources: { cpu: 1, memory: 1, disk: 0, gpus: 0 } } as const;

function ensembleProblems(spec: EnsembleSpec, add: Add, window: DeploymentWindow | undefined): void {
  for (const p of validateJob({ ...STAND_IN, name: spec.name, timeoutMs: spec.timeoutMs, constraints: spec.constraints }, window)) add(p.field, p.message);
  for (const p of maxRestartsProblems(spec.maxRestarts)) add(p.field, p.message);
}

/** Names are env var fragments, unique once they are (`kv-a` and `kv_a` would both be KV_A). */
function nameProblems(parts: readonly EnsemblePart[], add: Add): void {
  const seen = new Map<string, string>();
  for (const { name } of parts) {
    const bad = partNameProblem(name);
    if (bad) {
      add(`allocations.${name}`, bad);
      continue;
    }
    const other = seen.get(envFragment(name));
    if (other === name) add(`allocations.${name}`, 'is declared twice; give each part its own name');
    else if (other !== undefined) add(`allocations.${name}`, `${other} and ${name} would both be ${envFragment(name)} in env names; rename one`);
    else seen.set(envFragment(name), name);
  }
}

function partProblems(spec: EnsembleSpec, part: EnsemblePart, add: Add): void {
  const at = `allocations.${part.name}`;
  const ownTimeout = part.type === 'task' && part.timeoutMs !== undefined;
  // Held to a job's rules with the ensemble's timeout when the part has none; the part's name has stricter rules.
  const job = { ...partJob(spec, part), timeoutMs: ownTimeout ? part.timeoutMs! : spec.timeoutMs, constraints: part.constraints };
  for (const p of validateJob(job)) {
    if (p.field !== 'name' && (p.field !== 'timeout' || ownTimeout)) add(`${at}.${p.field}`, p.message);
  }
  if (part.type === 'service' && part.timeoutMs !== undefined) add(`${at}.timeout`, 'a service runs until the ensemble ends; give the ensemble a timeout instead, or make the part a task');
  if (ownTimeout && part.timeoutMs! > spec.timeoutMs) add(`${at}.timeout`, `${part.timeoutMs} ms is longer than the ensemble's timeout (${spec.timeoutMs} ms), which would stop the task first`);
  const ruled = [...restartProblems(part, `${at}.restart`), ...(part.healthcheck ? healthCheckProblems(part.healthcheck, part.ports, `${at}.healthcheck`) : [])];
  for (const p of ruled) add(p.field, p.message);
  portProblems(part, at, add);
  mergedConstraintProblems(spec, part, at, add);
}

function portProblems(part: EnsemblePart, at: string, add: Add): void {
  const { ports } = part;
  if (ports.length > ENSEMBLE_LIMITS.maxPortsPerPart) add(`${at}.ports`, `has ${ports.length} ports; a part has at most ${ENSEMBLE_LIMITS.maxPortsPerPart}`);
  const seen = new Map<string, string>();
  ports.forEach((port, i) => {
    if (!PORT_NAME_PATTERN.test(port) || port.length > ENSEMBLE_LIMITS.maxNameLength) {
      add(`${at}.ports.${i}`, `${JSON.stringify(port)} is not a port name; use letters, digits, - and _ (at most ${ENSEMBLE_LIMITS.maxNameLength}), as it becomes part of ${portEnvName('<NAME>')}`);
      return;
    }
    const other = seen.get(envFragment(port));
    if (other === undefined) seen.set(envFragment(port), port);
    else add(`${at}.ports.${i}`, other === port ? `${port} is named twice` : `${other} and ${port} would both be ${portEnvName(port)}; rename one`);
  });
  const section = part.executor === 'wasm' ? part.wasm : part.process;
  for (const port of seen.values()) {
    if (portEnvName(port) in section.env) add(`${at}.${part.executor}.env`, `sets ${portEnvName(port)}, which the provider sets to the port it assigns to ${port}; remove it`);
  }
}

/** The part's constraints and the ensemble's together still leave a provider that could take it. */
function mergedConstraintProblems(spec: EnsembleSpec, part: EnsemblePart, at: string, add: Add): void {
  const outer = spec.constraints;
  const inner = part.constraints;
  const merged = constraintsOf(spec, part);
  if (outer.peers.length > 0 && inner.peers.length > 0 && merged.peers.length === 0) {
    add(`${at}.constraints.peers`, "names none of the ensemble's constraints.peers, and a part runs only on those; no provider could take it");
  } else if (!selfContradicting(outer) && !selfContradicting(inner) && merged.peers.length > 0 && merged.peers.every((p) => merged.excludePeers.includes(p))) {
    add(`${at}.constraints`, `every peer the part may run on (${merged.peers.join(', ')}) is excluded by its or the ensemble's excludePeers; no provider could take it`);
  }
}

/** Constraints validateJob already refuses on their own: a peer both required and excluded. */
function selfContradicting(c: JobConstraints): boolean {
  return c.peers.some((p) => c.excludePeers.includes(p));
}

function dependencyProblems(spec: EnsembleSpec, add: Add): void {
  const byName = new Map(spec.parts.map((p) => [p.name, p]));
  const names = spec.parts.map((p) => p.name).join(', ');
  for (const part of spec.parts) {
    const at = `allocations.${part.name}.dependsOn`;
    const seen = new Set<string>();
    for (const dep of part.dependsOn) {
      if (dep === part.name) add(at, `names the part itself (${dep}); a part cannot wait for itself to start`);
      else if (!byName.has(dep)) add(at, `${JSON.stringify(dep)} is not a part of this ensemble (its parts: ${names})`);
      else if (seen.has(dep)) add(at, `names ${dep} twice`);
      seen.add(dep);
    }
    addressProblems(part, byName, at, add);
  }
  for (const cycle of dependencyCycles(spec)) {
    if (cycle.length > 2) add(`allocations.${cycle[0]}.dependsOn`, `${cycle.join(' -> ')} is a dependency cycle, so none of these parts could ever start; remove one of the dependsOn entries`);
  }
}

/** The DMS_ADDR_<PART>_<PORT> names a part gets are distinct (`a_b`'s port `c` and `a`'s port `b_c` are not). */
function addressProblems(part: EnsemblePart, byName: ReadonlyMap<string, EnsemblePart>, at: string, add: Add): void {
  const seen = new Map<string, string>();
  // the part's own env (its job spec's executor section), not the host's
  const { env } = part.executor === 'wasm' ? part.wasm : part.process;
  for (const dep of new Set(part.dependsOn)) {
    if (dep === part.name) continue;
    for (const port of byName.get(dep)?.ports ?? []) {
      const name = addrEnvName(dep, port);
      const other = seen.get(name);
      if (other !== undefined && other !== `${dep}'s port ${port}`) add(at, `${name} would name both ${other} and ${dep}'s port ${port}; rename a part or a port`);
      seen.set(name, `${dep}'s port ${port}`);
      if (name in env) add(`${at.replace(/dependsOn$/, part.executor)}.env`, `sets ${name}, which the provider sets to the address of ${dep}'s port ${port}; remove it`);
    }
  }
}
