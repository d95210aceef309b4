// The page's fold (www/engine.js), tested in Node over real runs of the real wasm build,
// without a browser (issue 24): per family (queues, streams, workflows), what the view says
// is checked against the engine's own counters and state. Run: node --test tests/fold/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { lagRows, loadEngine, presets, Run } from '../../www/engine.js';
import { latencySeries } from '../../www/render.js';

const root = new URL('../../', import.meta.url);
await loadEngine(readFileSync(fileURLToPath(new URL('www/pkg/brokerlab_bg.wasm', root))));
const preset = (id) => presets().find((p) => p.id === id);

/** A run of `json` (its own seed unless given) advanced to `t` ms, or to its end. */
function runTo(json, t, seed) {
  const s = seed ?? JSON.parse(json).seed ?? 1;
  const run = new Run(json, s);
  const end = t ?? run.durationMs;
  for (let guard = 0; run.nowMs < end && guard < 1000; guard++) {
    const { stopped } = run.advanceTo(end, 5_000_000);
    if (stopped) throw new Error(stopped);
    if (run.nextEventMs() === undefined) break;
  }
  return run;
}

const BADGES = ['lost', 'applied_twice', 'order_violated', 'duplicates_suppressed', 'dead_lettered', 'expired', 'lease_expired_mid_processing'];

// Queues (and the badges over every family): each badge's first moment, as the fold finds it
// in the trace, is the moment the engine's counter first moves: 0 a microsecond before, ≥ 1 at it.
test('queues: every badge jumps to the moment its counter first moves, in every preset', () => {
  let checked = 0;
  for (const p of presets()) {
    const run = runTo(p.json);
    for (const badge of BADGES) {
      const at = run.view.firstAt[badge];
      const total = run.view.counters[badge];
      if (at === undefined) {
        assert.equal(total, 0, `${p.id}: ${badge} moved (${total}) but the fold never found when`);
        continue;
      }
      assert.ok(runTo(p.json, at).view.counters[badge] >= 1, `${p.id}: ${badge} is counted at ${at} ms`);
      if (at > 0.001) assert.equal(runTo(p.json, at - 0.001).view.counters[badge], 0, `${p.id}: ${badge} is 0 just before ${at} ms`);
      checked++;
    }
  }
  assert.ok(checked >= 20, `badges checked: ${checked}`);
});

// The bug the codes fixed: RabbitMQ's consumer timeout returns a message with its own reason,
// and the badge missed it when the fold looked for the text "lease expired".
test('queues: a RabbitMQ consumer timeout mid-processing moves its badge', () => {
  const s = JSON.parse(preset('lease-models').json);
  s.queues = s.queues.filter((q) => q.name === 'rabbitmq');
  s.producers = s.producers.filter((p) => p.to === 'rabbitmq');
  s.consumers = s.consumers.filter((c) => c.from === 'rabbitmq');
  s.markers = [];
  const json = JSON.stringify(s);
  const run = runTo(json);
  assert.ok(run.view.counters.lease_expired_mid_processing >= 1, 'the engine counts consumer timeouts mid-processing');
  const at = run.view.firstAt.lease_expired_mid_processing;
  assert.ok(at !== undefined, 'the fold finds the first one');
  assert.equal(runTo(json, at - 0.001).view.counters.lease_expired_mid_processing, 0);
  assert.ok(runTo(json, at).view.counters.lease_expired_mid_processing >= 1);
});

test('queues: a set consumer\'s harmless repeat does not move applied twice, so its badge jumps to add\'s first repeat', () => {
  const json = preset('set-vs-increment').json;
  const run = runTo(json);
  assert.ok(run.view.counters.applied_twice >= 2 && run.view.counters.order_violated >= 1, 'both counters move');
  const at = run.view.firstAt.applied_twice;
  assert.ok(at !== undefined, 'the fold finds the first one');
  assert.equal(runTo(json, at - 0.001).view.counters.applied_twice, 0);
  assert.ok(runTo(json, at).view.counters.applied_twice >= 1);
  // The set side alone repeats too, harmlessly: no applied twice, and no first moment for it.
  const doc = JSON.parse(json);
  doc.queues = doc.queues.filter((q) => q.name === 'set');
  doc.producers = doc.producers.filter((x) => x.to === 'set');
  doc.consumers = doc.consumers.filter((c) => c.from === 'set');
  doc.markers = [];
  const alone = runTo(JSON.stringify(doc));
  assert.ok(alone.engine.summary().stats.harmless_repeats >= 1, 'set repeats');
  assert.equal(alone.view.counters.applied_twice, 0);
  assert.equal(alone.view.firstAt.applied_twice, undefined);
});

test('queues: a dependency is down in its scheduled outage and when taken down by hand, up otherwise', () => {
  const json = preset('retry-storm').json;
  assert.deepEqual(runTo(json, 2500).view.dependencyUp, [false, false, false, false]);
  const run = runTo(json, 6000);
  assert.deepEqual(run.view.dependencyUp, [true, true, true, true]);
  run.applyInput(JSON.stringify({ op: 'dependency_down', dependency: 'payments-b' }));
  assert.deepEqual([run.view.dependencyUp, run.view.dependencyTakenDown], [[true, false, true, true], [false, true, false, false]]);
  run.applyInput(JSON.stringify({ op: 'dependency_up', dependency: 'payments-b' }));
  assert.deepEqual([run.view.dependencyUp, run.view.dependencyTakenDown], [[true, true, true, true], [false, false, false, false]]);
});

test('queues: the latency samples carry the engine\'s totals, and hoarded jobs age where the queue wait does not see', () => {
  const run = runTo(preset('prefetch-hoarding').json, 12000);
  const last = run.view.metrics[run.view.metrics.length - 1];
  const s = run.view.stats;
  assert.deepEqual([last.deliveries, last.waitUs, last.effects, last.latencyUs],
    [s.deliveries, s.wait_total_us, s.effects_first, s.latency_total_us]);
  assert.ok(s.effects_first >= 16 && s.latency_total_us > 1.5 * s.wait_total_us, JSON.stringify(s));
  const { wait, latency } = latencySeries(run.view.metrics);
  assert.equal(wait.length, run.view.metrics.length);
  // Over the last second, worker-slow finished jobs that had sat in its buffer for about ten
  // seconds; none left the queue in it, so the wait line holds the last that did (5.5 s).
  assert.ok(latency.at(-1) > 9 && wait.at(-1) < 6 && latency.at(-1) > wait.at(-1) + 4, `${latency.at(-1)} ${wait.at(-1)}`);
});

test('queues: a circuit breaker\'s phase is folded from its events, and a dependency\'s calls come from the engine', () => {
  const json = preset('circuit-breaker').json;
  const at = (t) => runTo(json, t).view;
  assert.deepEqual(at(3000).breakers, [0, 0], 'closed while inventory is up');
  const open = at(6000);
  assert.deepEqual(open.breakers, [0, 1], 'guarded-worker\'s breaker is open; plain-worker has none');
  assert.deepEqual(open.dependencyCalls.map((c) => c.failed > 0), [true, true]);
  assert.equal(at(8200).breakers[1], 2, 'half-open 3 s after it opened');
  const end = runTo(json);
  assert.equal(end.view.breakers[1], 0, 'closed once inventory is back');
  const calls = end.view.dependencyCalls;
  assert.ok(calls[0].failed >= 80 && calls[1].failed <= 12, JSON.stringify(calls));
});

test('queues and streams: an alert\'s state is folded from its events, and the samples carry a queue alert\'s depth', () => {
  const redrive = preset('poison-redrive').json;
  const mid = runTo(redrive, 20000).view;
  assert.deepEqual(mid.alertFiring, [true], 'DLQ not empty: m4 is in it');
  assert.equal(mid.alertFired.length, 1);
  assert.ok(mid.alertFired[0].at > 5000 && mid.alertFired[0].at < 20000, JSON.stringify(mid.alertFired));
  assert.equal(mid.metrics.at(-1).alerts[0], 1, 'the DLQ\'s depth, sampled');
  assert.deepEqual(runTo(redrive).view.alertFiring, [false], 'resolved by the redrive');
  const blocked = runTo(preset('poison-blocks-partition').json).view;
  assert.ok(blocked.alertFired.length >= 1 && blocked.alertFired.every((f) => f.alert === 0), JSON.stringify(blocked.alertFired));
});

test('streams: an offset reset moves the fold\'s committed offset back, and the lag rows with it', () => {
  const json = JSON.stringify({
    name: 'replay', duration_ms: 20000, topics: [{ name: 't', partitions: 1 }],
    producers: [{ name: 'p', to: 't', schedule: { kind: 'scripted', at_ms: Array(100).fill(0) } }],
    groups: [{ name: 'g', topic: 't', commit: 'after', offset_reset: 'earliest', processing: { kind: 'constant', ms: 10 } }],
    script: [{ at_ms: 6500, op: 'remove_member', group: 'g', member: 'g-1' },
      { at_ms: 8000, op: 'reset_offsets', group: 'g', to: 'earliest' }],
  });
  assert.equal(runTo(json, 7000, 1).view.groups[0].committed.get('0:0'), 100);
  const run = runTo(json, 8500, 1);
  assert.equal(run.view.groups[0].committed.get('0:0'), 0, 'reset to the log start');
  assert.equal(lagRows(run.view, run.layout.groups[0], run.view.groups[0])[0].lag, 100);
});

// Streams: tombstones, null keys and members, from their codes.
test('streams: compaction shows tombstones; members crash and leave by their change codes', () => {
  const compaction = runTo(preset('compaction').json);
  const tape = compaction.view.topics.flatMap((t) => t.parts.flatMap((p) => p.tape));
  assert.ok(tape.some((r) => r.tombstone), 'some records are tombstones');
  assert.ok(tape.some((r) => !r.tombstone), 'and some are values');
  assert.ok(tape.every((r) => r.key === -1 || r.key >= 0), 'keys are ids or -1');

  const json = preset('rebalancing').json;
  const run = new Run(json, JSON.parse(json).seed);
  const seen = new Set();
  for (let t = 500; t <= run.durationMs; t += 500) {
    const { events } = run.advanceTo(t, 5_000_000);
    for (const e of events.filter((x) => x.kind === 'member_changed')) {
      const mem = run.view.groups[e.group].members[e.member];
      seen.add(e.change);
      // The newest change of each member in this batch decides its state.
      const last = events.filter((x) => x.kind === 'member_changed' && x.group === e.group && x.member === e.member).at(-1);
      if (last !== e) continue;
      if (e.change === 'crashed') assert.equal(mem.alive, false, `${e.line}`);
      if (e.change === 'joined' || e.change === 'restarted') assert.ok(mem.alive && mem.inGroup, `${e.line}`);
      if (e.change === 'left the group') assert.ok(!mem.alive && !mem.inGroup, `${e.line}`);
    }
  }
  assert.ok(seen.has('joined') && seen.size >= 2, `member changes seen: ${[...seen]}`);
});

// Workflows: every saga message carries its block, saga and flight; at the beat where payment
// refunds, the refund is a compensation of the saga in focus, named as the canvas names it.
test('workflows: saga messages carry their flight, and the refund belongs to the saga in focus', () => {
  const json = preset('saga-compensation').json;
  const run = new Run(json, JSON.parse(json).seed);
  let beats = 0;
  while (beats < 2) {
    const { beat } = run.advanceTo(run.durationMs, 5_000_000, true);
    assert.ok(beat !== undefined && beat !== null, 'the beat is reached');
    beats = beat + 1;
  }
  const info = run.layout.sagas[0];
  const focus = run.view.workflows.sagas[0].focus;
  const sagaMsgs = [...run.view.messages.values()].filter((m) => m.saga);
  assert.ok(sagaMsgs.length > 0);
  for (const m of sagaMsgs) assert.ok(m.saga.block === 0 && info.flights[m.saga.flight], `m${m.id}: ${JSON.stringify(m.saga)}`);
  const refund = sagaMsgs.find((m) => info.flights[m.saga.flight].name === 'payment.refunded');
  assert.ok(refund, 'payment.refunded is on its way');
  assert.equal(refund.saga.instance, focus.instance);
  assert.ok(info.flights[refund.saga.flight].compensation);
  assert.deepEqual(focus.nodes.map((n) => n.state), ['created', 'refunded', 'failed']);

  // Request-reply: a reply knows the consumer that reads its requester's replies.
  const rj = preset('request-reply').json;
  const rr = new Run(rj, JSON.parse(rj).seed);
  const readers = rr.layout.request_reply.flatMap((s) => s.readers);
  let replies = 0;
  for (let t = 250; t <= 5000; t += 250) {
    const { events } = rr.advanceTo(t, 5_000_000);
    for (const e of events.filter((x) => x.kind === 'published')) {
      const m = rr.view.messages.get(e.msg);
      if (!m || m.replyTo < 0) continue;
      replies++;
      assert.ok(readers.includes(m.replyTo), `m${e.msg} is for a reply reader: ${m.replyTo}`);
    }
  }
  assert.ok(replies > 0, 'replies were published');
});
