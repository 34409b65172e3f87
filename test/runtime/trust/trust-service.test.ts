/**
 * The trust service over a stand-in trust actor (the machine's own fold): what it keeps, the deal path's checks,
 * and which revocations from other nodes it takes.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type TrustContext, type TrustEvent, EMPTY_TRUST, applyTrust } from '../../../machines/trust.machine.ts';
import { ManualClock } from '../../../runtime/clock.ts';
import { HOUR, NOW, type Party, loadTrust, party } from './trust-fixtures.ts';

const svc = (async () => import('../../../runtime/trust/trust-service.ts'))();

/** An actor that applies the trust machine's fold and answers asks at once. */
function standIn() {
  let ctx: TrustContext = EMPTY_TRUST;
  const events: TrustEvent[] = [];
  return {
    events,
    ref: {
      ask: async (e: TrustEvent) => (events.push(e), (ctx = applyTrust(ctx, e)), { ok: true as const }),
      view: async () => ({ id: 'trust', kind: 'trust', status: 'active', value: 'keeping', context: ctx }),
    },
  };
}

async function service(me: Party, clock: ManualClock, requireGrants = false) {
  const { TrustService } = await svc;
  const actor = standIn();
  // the stand-in has the two methods the service uses
  const s = new TrustService({ actor: actor.ref as never, key: me.key, clock, requireGrants: async () => requireGrants });
  await s.start();
  return { s, actor };
}

const test = suite('trust service');
test.before(async () => void (await loadTrust()));

test('grant -> add -> the deal path: the holder carries it, the issuer authorizes it; revoked, it is refused', async () => {
  const clock = new ManualClock(NOW);
  const [p, r] = [await party(), await party()];
  const provider = await service(p, clock);
  const requester = await service(r, clock);
  const g = await provider.s.grant(r.did, ['deploy'], HOUR);
  await requester.s.add(g.token);
  const carried = requester.s.grantsFor('deploy');
  assert.equal(carried, [g.token]);
  assert.equal(requester.s.grantsFor('logs'), [], 'only tokens for the action');
  const ok = provider.s.authorize(carried, r.did, 'deploy');
  assert.ok(ok.ok, JSON.stringify(ok));
  assert.is(provider.s.authorize(carried, (await party()).did, 'deploy').ok, false, 'another DID cannot use it');
  const { notice } = await provider.s.revoke(g.id);
  assert.ok(notice, 'the issuer tells the network');
  const refused = provider.s.authorize(carried, r.did, 'deploy');
  assert.is(!refused.ok && refused.reason, 'revoked');
  assert.not.ok(provider.s.stillHolds(ok.ok ? ok : { ids: [], expiresAt: 0 }), 'a deal under it lapses');
  // the holder hears it from the issuer, and stops carrying it
  assert.equal(await requester.s.revoked(p.did, notice!), { taken: true });
  assert.equal(requester.s.grantsFor('deploy'), []);
});

test("a revocation is taken only from its link's issuer, and only when it could matter here", async () => {
  const clock = new ManualClock(NOW);
  const [me, p, mallory] = [await party(), await party(), await party()];
  const node = await service(me, clock);
  const issuer = await service(p, clock);
  const g = await issuer.s.grant(me.did, ['deploy'], HOUR);
  await node.s.add(g.token);
  const notice = { token: g.token, id: g.id };
  const forged = await node.s.revoked(mallory.did, notice);
  assert.is(forged.taken, false);
  assert.match(forged.why!, /did not issue/);
  // mallory's own chains, rooted at mallory: no anchor here, no token kept here: not taken, nothing kept
  const own = await service(mallory, clock);
  const junk = await own.s.grant(p.did, ['deploy'], HOUR);
  const r = await node.s.revoked(mallory.did, { token: junk.token, id: junk.id });
  assert.is(r.taken, false);
  assert.match(r.why!, /not one of this node's anchors/);
  assert.is(node.actor.events.filter((e) => e.type === 'trust.revoke').length, 0);
  assert.equal(await node.s.revoked(p.did, notice), { taken: true }, 'from the issuer, of a token kept here');
  assert.equal(await node.s.revoked(mallory.did, { token: 'not a token', id: g.id }).then((x) => x.taken), false, 'malformed');
});

test('bad input to the commands is a usage error naming it', async () => {
  const clock = new ManualClock(NOW);
  const me = await party();
  const { s } = await service(me, clock);
  const err = async (p: Promise<unknown>) => (await p.then(() => null, (e: Error) => e))!;
  assert.match((await err(s.grant('did:key:nope', ['deploy']))).message, /not an ed25519 did:key/);
  assert.match((await err(s.grant((await party()).did, ['fly']))).message, /unknown action fly/);
  assert.match((await err(s.grant((await party()).did, ['deploy'], 10))).message, /out of range/);
  assert.match((await err(s.anchor(me.did))).message, /always an anchor/);
  assert.match((await err(s.revoke('short'))).message, /not a token id/);
  assert.is((await err(s.add('!!'))).name, 'TrustUsageError');
});

test.run();
