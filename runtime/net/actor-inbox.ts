/**
 * An inbox that hands remote events to a supervised actor. Only the event types listed (those the actor's
 * machine accepts and a remote peer may send) get through; the router refuses the rest as not-accepted.
 * The actor sees the event with the sender's address and, for requests, the reply inbox.
 */
import type { InboxSpec } from './message-router.ts';

/** What the inbox needs of an actor: `ActorRef.send`. */
export interface EventSink {
  send(event: { readonly type: string }): void;
}

export function actorInbox(name: string, actor: EventSink, accepts: readonly string[]): InboxSpec {
  return {
    name,
    accepts,
    handle(msg) {
      const e = msg.envelope;
      const origin = { from: e.from, id: e.id, exp: e.exp, ...(e.replyTo ? { replyTo: e.replyTo } : {}) };
      actor.send({ ...(e.payload as object), type: e.type, origin } as { readonly type: string });
    },
  };
}
