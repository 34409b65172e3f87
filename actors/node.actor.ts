/**
 * The Node actor: the Node machine as a hosted actor kind, and the view of its state that clients see.
 * All its effects are intents (machines/node.messages.ts) that the runtime carries out.
 */
import { answeredFacts, ledgerFacts } from '../machines/indexes.ts';
import { ledgerView } from '../machines/ledger.ts';
import { NODE_MACHINE_VERSION, type NodeContext, nodeMachine } from '../machines/node.machine.ts';
import type { ActorKind } from './hosted-actor.ts';

/** What `info` and the API show of the Node. */
export interface NodeView {
  readonly state: string;
  readonly capability: ReturnType<typeof ledgerView>;
  readonly locks: NodeContext['ledger']['locks'];
  readonly allocations: NodeContext['ledger']['allocations'];
  readonly registration: NodeContext['registration'];
  readonly preferences: NodeContext['preferences'];
  readonly sample: NodeContext['sample'];
  readonly constrained: NodeContext['constrained'];
  /** Whether the disk leaves room for new work: `diskFull` while it is under `minFreeDisk` (bytes). */
  readonly admission: NodeContext['admission'];
  /** Bid requests declined since the Node began, by code. */
  readonly declined: NodeContext['declined'];
  readonly problems: NodeContext['problems'];
}

export function presentNode(context: unknown, value: unknown): NodeView {
  const c = context as NodeContext;
  return {
    state: String(value),
    capability: ledgerView(c.ledger),
    locks: c.ledger.locks,
    allocations: c.ledger.allocations,
    registration: c.registration,
    preferences: c.preferences,
    sample: c.sample,
    constrained: c.constrained,
    admission: c.admission,
    declined: c.declined,
    problems: c.problems,
  };
}

export const nodeActorKind: ActorKind = {
  kind: 'node',
  version: NODE_MACHINE_VERSION,
  logic: nodeMachine,
  present: presentNode,
  facts: (before, after) => {
    const b = before as NodeContext;
    const a = after as NodeContext;
    return [...ledgerFacts(b.ledger, a.ledger), ...answeredFacts(b.answered, a.answered)];
  },
};
