// The only module that imports the wasm package. It owns a run, which is determined by
// (scenario, seed), and folds the engine's trace into a plain view model for the renderer.
// Nothing else in www/ touches the engine.
import init, { Engine, presets as wasmPresets, validateScenario, randomSeed as wasmRandomSeed, traceCodes } from './pkg/brokerlab.js';

// The most events one frame may ask the engine for. A run that needs more per frame stops
// with a message instead of freezing the tab.
export const FRAME_EVENT_BUDGET = 200000;

// Bounded memory for the page, whatever the run: this many ack pulses stay drawable.
const PULSES_MAX = 64;

let ready = null;

/**
 * The trace's codes by name (`C.ReturnReason.LeaseExpired`), once the module is loaded. The
 * fold matches on events' `*_code` fields by these, never on their text, which is for people.
 */
let C = null;

/**
 * Loads and instantiates the wasm module once; later calls share it. `source`, for Node: the
 * module's bytes (the page fetches it next to the package).
 */
export function loadEngine(source) {
  ready ??= init(source === undefined ? undefined : { module_or_path: source }).then(() => { C = traceCodes(); });
  return ready;
}

/** The built-in scenarios: [{id, name, description, json}]. */
export function presets() {
  return wasmPresets();
}

/** Undefined if the scenario text is valid, else "path: reason". */
export function validate(json) {
  return validateScenario(json);
}

/** A fresh seed for "random seed". Never used inside a run. */
export function randomSeed() {
  return wasmRandomSeed();
}

// Bounded memory for the page, whatever the run.
const HISTORY_LINES_MAX = 40;
const HISTORY_MESSAGES_MAX = 2000;
// Seeking: a snapshot of the engine and the view every so many events, thinned to at most
// this many by doubling the spacing, so memory stays bounded on long runs. An engine snapshot
// shares all it has not changed since the one before (src/cow.rs), so they can be dense: a
// seek replays at most CHECKPOINT_EVERY events.
const CHECKPOINT_EVERY = 2000;
const CHECKPOINTS_KEPT = 512;
// Where the beats ahead are: a copy of the run plays at most this many events ahead.
const FORECAST_EVENTS_MAX = 2_000_000;
// Step back remembers this many positions the step button moved from.
const STEP_HISTORY_MAX = 500;

// Per partition, the newest records kept for drawing its tape.
export const TAPE_RECORDS_MAX = 160;
// The lag chart: one sample per group at most this often (simulated ms), this many kept.
const LAG_SAMPLE_MS = 250;
// The newest moments alerts fired, kept for the charts' marks.
const ALERT_MARKS_MAX = 50;
const LAG_SAMPLES_MAX = 400;

/**
 * A time in ms as the engine takes it, to the nearest microsecond: an input made at the
 * cursor carries the engine's time, which may be a hair past the cursor's float.
 */
const microsecond = (ms) => Math.round(ms * 1000) / 1000;

const byPart = (a, b) => {
  const [ta, pa] = a.split(':').map(Number);
  const [tb, pb] = b.split(':').map(Number);
  return ta - tb || pa - pb;
};

/** The engine's flat [calls, failed, …] per dependency, as {calls, failed} each. */
function callPairs(flat) {
  const out = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push({ calls: flat[i], failed: flat[i + 1] });
  return out;
}

/**
 * The run's counters, over queues and consumer groups alike (the engine's `Sim::counters`): a
 * stream record handled twice counts as applied twice, one committed but never processed (or
 * deleted by retention before it was read) as lost. Pure.
 */
export function counters(view) {
  return view.counters;
}

/** The counters that mean something went wrong; the element reports them as `invariant` events. */
/**
 * What a user can do to message `id` at `now`, as live inputs ({label, op}): resubmit a dead
 * letter waiting in its DLQ, as it is or with its payload fixed; or a fault: lose its
 * delivery while it is on its way; deliver it again while its consumer holds it under a
 * lease, as its system would (an SQS duplicate, a Service Bus lock lost, a RabbitMQ
 * connection drop). None for an SQS FIFO queue, an auto-acked message or a crashed consumer.
 */
export function messageFaults(view, id, now) {
  const m = view.messages.get(id);
  // A dead letter waiting in its DLQ: resubmit it to the queue it died in, as it is or fixed
  // (as Service Bus Explorer resubmits one after an edit).
  if (m && view.layout.queues[m.queue]?.role === 'dead_letter' && view.ready[m.queue]?.includes(id)) {
    return [
      { label: `Resubmit m${id} to the queue it died in`, op: { op: 'resubmit', msg: `m${id}` } },
      { label: `Fix m${id}'s payload, then resubmit it`, op: { op: 'resubmit', msg: `m${id}`, edit: true } },
    ];
  }
  if (!m || m.consumer < 0 || m.lost || m.autoAcked || !(m.leaseUntil > 0) || !view.alive[m.consumer]) return [];
  const q = view.layout.queues[m.queue];
  const who = view.layout.consumers[m.consumer].name;
  if (m.state === 'delivering' && now < m.t1) {
    return [{ label: `Lose m${id}'s delivery on its way to ${who}`, op: { op: 'drop_delivery', msg: `m${id}` } }];
  }
  const held = m.state === 'processing' || m.state === 'delivering';
  if (!held || q.fifo) return [];
  const label = q.model === 'rabbitmq' ? `Drop ${who}'s connection: m${id} and its other unacked come back`
    : q.model === 'service_bus' ? `Lose ${who}'s lock on m${id}: it is delivered again`
      : `Deliver m${id} again while ${who} holds it`;
  return [{ label, op: { op: 'duplicate_delivery', msg: `m${id}` } }];
}

export const ALARMS = ['lost', 'applied_twice', 'order_violated', 'lease_expired_mid_processing'];

/** The lag table's rows for one group: every partition of its topics (KC-8). Pure. */
export function lagRows(view, groupLayout, group) {
  const rows = [];
  for (const t of groupLayout.topics) {
    view.topics[t].parts.forEach((part, p) => {
      const key = `${t}:${p}`;
      const committed = group.committed.get(key);
      const owner = group.members.findIndex((m) => m.alive && m.owned.includes(key));
      rows.push({
        topic: t, partition: p, logEnd: part.logEnd, committed,
        lag: committed === undefined ? undefined : part.logEnd - committed, owner,
      });
    });
  }
  return rows;
}

function groupLag(view, groupLayout, group) {
  return lagRows(view, groupLayout, group).reduce((n, r) => n + (r.lag ?? 0), 0);
}

/**
 * One run. `view` is a plain object the renderer reads; only this class writes it.
 *
 * view.messages: Map id -> {id, state, queue, producer, consumer, t0, t1, leaseFrom, leaseUntil,
 *   autoAcked, attempt}, for every message not yet settled. `t0`/`t1` bound the current motion,
 *   delay or processing; `leaseFrom`/`leaseUntil` the lease, for its draining ring.
 * view.ready[q]: visible message ids of queue q (dead letters, in a DLQ).
 * view.jobs[c]: what consumer c is working on, [{id, t0, t1}], even after it lost the lease.
 * view.alive[c]: whether consumer c is up; view.active[c]: whether it takes new messages
 *   (autoscaled instances on standby or draining do not).
 * view.pulses: recent marks [{kind, queue, consumer, exchange, at}] (acked, refused, dead, expired,
 *   lost; unroutable and returned at an exchange).
 * view.messages' `via`: for a routed message, {exchange, binding}: the exchange it was published
 *   to and the binding that took it to its queue, so that its dot travels through both.
 * view.counts: per queue {publishing, …}, and view.stats: the run's counters, from the engine.
 * The inspector's history of each message (`historyOf`) lives outside the view, so snapshots
 * do not copy it: it is appended to in trace order and read up to where the run is.
 * view.topics[t].parts[p]: {logStart, logEnd, tape}: the tape holds the newest records
 *   [{offset, key, tombstone, retained}] (key -1 for none).
 * view.groups[g]: {phase, generation, members, committed, positions, lag, stats}: members
 *   [{alive, inGroup, owned: ["t:p"], current: {topic, partition, offset, key, t0, t1} | null}];
 *   committed and positions map "t:p" to an offset; lag is [{at, lag}] over time.
 */
export class Run {
  /** Where the beats ahead are (`#forecast`), until the inputs change. */
  #ahead = null;

  // long: the view's every field in one place, each with what it holds
  constructor(json, seed) {
    this.engine = new Engine(json, seed);
    this.json = json;
    this.seed = seed;
    this.layout = this.engine.layout();
    const { queues, consumers } = this.layout;
    this.view = {
      layout: this.layout,
      messages: new Map(),
      ready: queues.map(() => []),
      jobs: consumers.map(() => []),
      alive: consumers.map(() => true),
      active: consumers.map((c) => !c.standby),
      /** Per dependency (layout.dependencies): whether it is up now (outages and live inputs), from the engine. */
      dependencyUp: Array.from(this.engine.dependenciesUp(), (x) => x === 1),
      /** Per dependency: whether a live input took it down (and none has brought it up since). */
      dependencyTakenDown: (this.layout.dependencies ?? []).map(() => false),
      /** Per dependency: {calls, failed} so far, from the engine. */
      dependencyCalls: callPairs(this.engine.dependencyCalls()),
      /** Per queue: a DLQ's report {count, oldest_dead_at_ms, mix: [{reason, error, count}]}, else null. */
      deadLetters: this.engine.deadLetters(),
      /** Alerts (layout.alerts): whether each fires now, and the newest moments they fired. */
      alertFiring: (this.layout.alerts ?? []).map(() => false),
      alertFired: [],
      /** Per consumer: its circuit breaker's phase code (0 closed, 1 open, 2 half-open). */
      breakers: consumers.map(() => 0),
      pulses: [],
      /** Per exchange (layout.exchanges): the newest publish it routed, {at, key, bindings}. */
      routes: (this.layout.exchanges ?? []).map(() => null),
      counts: this.engine.counts(),
      stats: this.engine.stats(),
      counters: this.engine.counters(),
      /** Per narrative beat, as the run stands: {at_ms, missed}, at_ms null until reached. */
      beats: this.engine.beats(),
      /** Trace events folded so far: each event's `n` is its place in the trace. */
      traced: 0,
      /** The newest hops, oldest first, for the live sequence diagram: {n, at, msg, from, to, text, style}. */
      sequence: [],
      topics: this.layout.topics.map((t) => ({
        parts: Array.from({ length: t.partitions }, () => ({ logStart: 0, logEnd: 0, tape: [] })),
      })),
      groups: this.layout.groups.map(() => ({
        phase: 'Empty', generation: 0, members: [], committed: new Map(), positions: new Map(), lag: [], stats: null,
      })),
      lastLagSample: -Infinity,
      lastReply: this.layout.request_reply.map(() => undefined),
      firstAt: {},
      metrics: [],
      lastMetricSample: -Infinity,
    };
    if (this.layout.groups.length) this.view.groupStats = this.engine.groups();
    this.hasWorkflows = this.layout.request_reply.length + this.layout.sagas.length > 0;
    /** Per saga block, the saga the user put in focus (C.NONE: none, the default focus). */
    this.sagaFocus = this.layout.sagas.map(() => C.NONE);
    this.view.workflows = this.hasWorkflows ? this.#workflows() : null;
    /** Map id -> [{n, line}], the newest HISTORY_LINES_MAX trace lines about each message. */
    this.history = new Map();
    this.checkpoints = [];
    this.spacing = CHECKPOINT_EVERY;
    this.steps = [];
    /** Live inputs, in order: [{position, time, op}], `op` a JSON script step without time. */
    this.inputs = [];
    this.#ahead = null;
    this.#checkpoint(0);
  }

  /**
   * Applies a live input now (throws with the engine's message if it is not valid). Acting in
   * the past forks the run: the inputs, snapshots and steps of the old future are dropped.
   */
  applyInput(op) {
    const position = this.position;
    const events = JSON.parse(this.engine.input(op));
    this.inputs = this.inputs.filter((i) => i.position < position);
    for (const c of this.checkpoints) if (c.events > position) this.engine.dropCheckpoint(c.id);
    this.checkpoints = this.checkpoints.filter((c) => c.events <= position);
    this.steps = this.steps.filter((st) => st.events <= position);
    this.inputs.push({ position, time: this.engine.nowMs(), op });
    this.#ahead = null;
    // The old future's history goes with it.
    for (const [id, lines] of this.history) {
      const kept = lines.filter((l) => l.n < this.view.traced);
      if (kept.length) this.history.set(id, kept);
      else this.history.delete(id);
    }
    this.#fold(events);
    this.#refresh();
    return events;
  }

  /** Replaces the inputs (from a shared link) before seeking; they apply as the run replays. */
  setInputs(inputs) {
    this.inputs = inputs.map((i) => ({ ...i }));
    this.#ahead = null;
  }

  /** Runs forward from the restored position, applying each input where it happened. */
  #replay(stopAt) {
    let events = [];
    for (const inp of this.inputs) {
      if (inp.position < this.position) continue;
      if (!stopAt(inp)) break;
      events = events.concat(JSON.parse(this.engine.runEvents(inp.position - this.position)));
      this.engine.advanceClock(inp.time);
      events = events.concat(JSON.parse(this.engine.input(inp.op)));
    }
    return events;
  }

  /**
   * The whole trace up to the cursor, from a fresh engine with the same scenario, seed and
   * inputs: `[{kind, at_ms, …, line}]`.
   */
  traceUpTo(cursor) {
    const fresh = new Engine(this.json, this.seed);
    let events = [];
    let position = 0;
    for (const inp of this.inputs) {
      if (inp.time > microsecond(cursor)) break;
      events = events.concat(JSON.parse(fresh.runEvents(inp.position - position)));
      fresh.advanceClock(inp.time);
      events = events.concat(JSON.parse(fresh.input(inp.op)));
      position = inp.position + 1;
    }
    for (;;) {
      const { events: more, stopped } = JSON.parse(fresh.runUntil(cursor, FRAME_EVENT_BUDGET));
      events = events.concat(more);
      if (!stopped) break;
    }
    fresh.free();
    return events;
  }

  /** Events handled since the start: the run's position. */
  get position() {
    return this.engine.eventsProcessed();
  }

  #checkpoint(cursor) {
    const id = this.engine.checkpoint();
    const { layout, ...rest } = this.view;
    this.checkpoints.push({ id, events: this.position, time: this.engine.nowMs(), cursor, view: structuredClone(rest) });
    while (this.checkpoints.length > CHECKPOINTS_KEPT) {
      // Keep the first and every other one after it; the spacing doubles.
      const thinned = this.checkpoints.filter((c, i) => i === 0 || i % 2 === 0);
      for (const c of this.checkpoints) if (!thinned.includes(c)) this.engine.dropCheckpoint(c.id);
      this.checkpoints = thinned;
      this.spacing *= 2;
    }
  }

  #maybeCheckpoint(cursor) {
    if (this.position - this.checkpoints[this.checkpoints.length - 1].events >= this.spacing) this.#checkpoint(cursor);
  }

  /** Back to the newest checkpoint satisfying `ok`: the engine and the view as they were. */
  #restore(ok) {
    let cp = this.checkpoints[0];
    for (const c of this.checkpoints) if (ok(c)) cp = c;
    this.engine.restore(cp.id);
    this.view = { ...structuredClone(cp.view), layout: this.layout };
    return cp;
  }

  /** Reads what the view takes from the engine rather than from the trace. */
  #refresh() {
    const v = this.view;
    v.counts = this.engine.counts();
    v.deadLetters = this.engine.deadLetters();
    v.stats = this.engine.stats();
    v.counters = this.engine.counters();
    if (v.dependencyUp.length) {
      v.dependencyUp = Array.from(this.engine.dependenciesUp(), (x) => x === 1);
      v.dependencyCalls = callPairs(this.engine.dependencyCalls());
    }
    v.beats = this.engine.beats();
    if (this.layout.groups.length) v.groupStats = this.engine.groups();
    if (this.hasWorkflows) v.workflows = this.#workflows();
  }

  /** The workflows' summaries, with the saga the user put in focus in each block. */
  #workflows() {
    return this.engine.workflows(Uint32Array.from(this.sagaFocus));
  }

  /**
   * Puts saga `instance` of block `block` in focus on the canvas (−1: back to the default,
   * the newest news). A view choice, not an input: it changes no run.
   */
  focusSaga(block, instance) {
    const chosen = instance < 0 ? C.NONE : instance;
    if (!(block in this.sagaFocus) || this.sagaFocus[block] === chosen) return;
    this.sagaFocus[block] = chosen;
    if (this.hasWorkflows) this.view.workflows = this.#workflows();
  }

  /**
   * Moves to exactly `k` events from the start (back or forward): restores the nearest
   * snapshot before it and replays from there. Returns the events replayed.
   */
  seekEvents(k) {
    this.#restore((c) => c.events <= k);
    let events = this.#replay((inp) => inp.position < k);
    events = events.concat(JSON.parse(this.engine.runEvents(k - this.position)));
    this.#fold(events);
    this.#refresh();
    return events;
  }

  /** Moves to time `t` (ms), back or forward, the same way. Returns the events replayed. */
  seekTime(t) {
    this.#restore((c) => c.time < t || c.events === 0);
    const replayed = this.#replay((inp) => inp.time <= microsecond(t));
    this.#fold(replayed);
    const { events } = this.advanceTo(t, FRAME_EVENT_BUDGET * 50);
    this.#refresh();
    this.steps = [];
    return replayed.concat(events);
  }

  /**
   * Undoes the last step: back to where it started, cursor and all. Without a step to undo,
   * back one event. Returns {events, cursor}.
   */
  stepBack(cursor) {
    const last = this.steps.pop();
    if (last) return { events: this.seekEvents(last.events), cursor: last.cursor };
    const k = this.position;
    if (k === 0) return { events: [], cursor };
    const events = this.seekEvents(k - 1);
    return { events, cursor: this.engine.nowMs() };
  }

  get nowMs() {
    return this.engine.nowMs();
  }

  /**
   * Every narrative beat: [{index, text, at_ms, missed, reached}]. A beat the run has reached
   * has its moment; for the others a copy of the run, with the same inputs, plays ahead and
   * says where they will be (or that one will not happen, and why).
   */
  beatPlan() {
    this.#ahead ??= this.#forecast();
    return this.layout.markers.map((m, index) => {
      const now = this.view.beats[index];
      const ahead = this.#ahead.beats[index];
      const reached = now?.at_ms !== null && now?.at_ms !== undefined;
      return {
        index, text: m.text, reached,
        at_ms: reached ? now.at_ms : ahead?.at_ms ?? null,
        missed: now?.missed ?? ahead?.missed ?? null,
      };
    });
  }

  /** The newest beat reached, or −1 before the first. */
  get beatIndex() {
    let k = -1;
    this.view.beats.forEach((b, i) => { if (b.at_ms !== null) k = i; });
    return k;
  }

  /** A fresh run with the same scenario, seed and inputs, played ahead without its trace. */
  #forecast() {
    if (this.layout.markers.length === 0) return { beats: [], complete: true };
    const probe = new Engine(this.json, this.seed);
    probe.setRecording(false);
    let position = 0;
    let ahead = { beats: [], complete: false };
    try {
      for (const inp of this.inputs) {
        if (inp.position - position > FORECAST_EVENTS_MAX) return ahead;
        probe.runEvents(inp.position - position);
        probe.advanceClock(inp.time);
        probe.input(inp.op);
        position = inp.position + 1;
      }
      ahead = probe.beatsAhead(FORECAST_EVENTS_MAX);
    } finally {
      probe.free();
    }
    return ahead;
  }

  get durationMs() {
    return this.layout.duration_ms;
  }

  /** Time of the next scheduled event, or undefined when nothing is left. */
  nextEventMs() {
    return this.engine.nextEventMs();
  }

  traceHash() {
    return this.engine.traceHash();
  }

  summary() {
    return this.engine.summary();
  }

  /** The scenario's RabbitMQ topology as a definitions file (JSON text), or undefined. */
  rabbitmqDefinitions() {
    return this.engine.rabbitmqDefinitions();
  }

  /** The broker's record of one message, with its dead-letter metadata. */
  message(id) {
    return this.engine.message(id);
  }

  /**
   * Runs the engine to `tMs` and folds what happened. Returns {events, stopped, beat}:
   * `stopped` is the engine's message when the event budget ran out first (time is then short
   * of `tMs`, and the events up to there are folded all the same). With `atBeats`, the run
   * stops at the end of the instant a narrative beat is reached: `beat` is its index, and
   * the run's time is the beat's moment.
   */
  advanceTo(tMs, budget = FRAME_EVENT_BUDGET, atBeats = false) {
    if (tMs < this.engine.nowMs()) return { events: [], stopped: undefined, beat: undefined };
    // In stretches of at most the checkpoint spacing, so that a long advance leaves snapshots
    // as dense as short ones would; and in time, to the next chart sample, so that the charts
    // have a point every LAG_SAMPLE_MS however far one call goes (a seek, a jump to a beat).
    const events = [];
    let left = budget;
    if (!Number.isFinite(this.view.lastMetricSample)) this.#sampleMetrics(this.engine.nowMs());
    for (;;) {
      const since = this.position - this.checkpoints[this.checkpoints.length - 1].events;
      const stretch = Math.min(left, Math.max(1, this.spacing - since));
      // (Never a stretch that ends where the run already is: each call moves time on.)
      let until = Math.min(tMs, this.#nextSample(tMs));
      if (until <= this.engine.nowMs()) until = tMs;
      const before = this.position;
      const got = JSON.parse(atBeats ? this.engine.runToBeat(until, stretch) : this.engine.runUntil(until, stretch));
      this.#fold(got.events);
      // A beat reached without an event at its moment (a beat by time) still shows.
      if (got.beat !== undefined && got.beat !== null) this.view.beats = this.engine.beats();
      for (const e of got.events) events.push(e);
      left -= this.position - before;
      const now = this.engine.nowMs();
      this.#sampleMetrics(now);
      const beat = got.beat ?? undefined;
      this.#maybeCheckpoint(got.stopped || beat !== undefined ? now : until);
      if (beat !== undefined) return { events, stopped: undefined, beat };
      if (got.stopped && left <= 0) return { events, stopped: got.stopped, beat: undefined };
      if (!got.stopped && until >= tMs) return { events, stopped: undefined, beat: undefined };
    }
  }

  /** When the charts want their next sample: never more than the charts keep before `tMs`. */
  #nextSample(tMs) {
    const last = this.view.lastMetricSample;
    if (!Number.isFinite(last)) return Infinity;
    return Math.max(last + LAG_SAMPLE_MS, tMs - LAG_SAMPLE_MS * LAG_SAMPLES_MAX);
  }


  /** Moves to the next event that shows in the trace, and returns its events. */
  stepEvent(cursor) {
    this.steps.push({ events: this.position, cursor });
    if (this.steps.length > STEP_HISTORY_MAX) this.steps.shift();
    let events = [];
    while (events.length === 0 && this.engine.nextEventMs() !== undefined) {
      events = JSON.parse(this.engine.step());
    }
    this.#fold(events);
    this.#maybeCheckpoint(this.engine.nowMs());
    return events;
  }

  #fold(events) {
    if (events.length === 0) return;
    const v = this.view;
    // The messages published in this batch, for their marks (order key, reply's reader, saga).
    let [firstNew, lastNew] = [-1, -1];
    const batch = { streams: false };
    const hasGroups = this.layout.groups.length > 0;
    this.#sequence(events);
    for (const e of events) {
      const m = e.msg === undefined ? undefined : v.messages.get(e.msg);
      firstMoments(v, e, m);
      if (e.msg !== undefined) this.#remember(e);
      // Lag over time, as the events pass: a long replay (a seek) draws its whole stretch.
      if (hasGroups && e.at_ms - v.lastLagSample >= LAG_SAMPLE_MS - 0.001) this.#sampleLag(e.at_ms);
      if (e.kind === 'published') {
        if (firstNew < 0) firstNew = e.msg;
        lastNew = e.msg;
      }
      // Any other kind (returned, deduplicated, received_nothing, producer_stopped): the
      // events that follow it (or the log) show all there is to show.
      if (!foldQueueEvent(v, e, m)) foldStreamEvent(v, e, this.engine, batch) || foldWorkflowEvent(v, e);
    }
    if (firstNew >= 0) this.#markNew(firstNew, lastNew);
    // The DLQs' reports change only as their counts do (a dead letter in or out moves one).
    const dlqs = (counts) => JSON.stringify(counts.filter((_, i) => this.layout.queues[i]?.role === 'dead_letter'));
    const before = dlqs(v.counts);
    v.counts = this.engine.counts();
    if (dlqs(v.counts) !== before) v.deadLetters = this.engine.deadLetters();
    v.stats = this.engine.stats();
    v.counters = this.engine.counters();
    if (v.dependencyUp.length) {
      v.dependencyUp = Array.from(this.engine.dependenciesUp(), (x) => x === 1);
      v.dependencyCalls = callPairs(this.engine.dependencyCalls());
    }
    if (this.layout.markers.length) v.beats = this.engine.beats();
    if (this.hasWorkflows) v.workflows = this.#workflows();
    this.#sampleMetrics(events[events.length - 1].at_ms);
    if (batch.streams) {
      v.groupStats = this.engine.groups();
      this.#sampleLag(events[events.length - 1].at_ms);
    }
  }

  /** Messages `first..=last`, just published: their order key, reply reader and saga flight. */
  #markNew(first, last) {
    const v = this.view;
    if (this.layout.keyed || this.layout.request_reply.length) {
      const marks = this.engine.messageMarks(first, last + 1);
      for (let id = first; id <= last; id++) {
        const m = v.messages.get(id);
        if (!m) continue;
        const [key, reader] = [marks[2 * (id - first)], marks[2 * (id - first) + 1]];
        m.key = key === C.NONE ? -1 : key;
        m.replyTo = reader === C.NONE ? -1 : reader;
      }
    }
    if (this.layout.sagas.length) {
      // A saga message: its block, its saga, and its flight (name, from, to) in the layout.
      const marks = this.engine.sagaMarks(first, last + 1);
      for (let id = first; id <= last; id++) {
        const m = v.messages.get(id);
        const [block, instance, flight] = marks.slice(3 * (id - first), 3 * (id - first) + 3);
        if (m && block !== C.NONE) m.saga = { block, instance, flight };
      }
    }
  }


  /**
   * Queue depth, in flight, dead letters and acks so far, and the wait and latency totals,
   * over time, for the metrics and latency charts.
   */
  #sampleMetrics(at) {
    const v = this.view;
    // A microsecond's slack: a stretch ends at last + LAG_SAMPLE_MS in floats.
    if (at - v.lastMetricSample < LAG_SAMPLE_MS - 0.001 || this.layout.queues.length === 0) return;
    v.lastMetricSample = at;
    const sum = (f) => v.counts.reduce((n, c) => n + f(c), 0);
    const s = v.stats ?? {};
    v.metrics.push({
      at,
      ready: sum((c) => c.ready),
      inflight: sum((c) => c.delivering + c.buffered + c.processing),
      dlq: sum((c) => c.dead_lettered),
      acked: sum((c) => c.acked),
      // Per alert on a queue: its depth (messages waiting in it; a DLQ's dead letters).
      alerts: (this.layout.alerts ?? []).map((a) => (a.queue === null ? 0 : v.counts[a.queue].ready + v.counts[a.queue].dead_lettered)),
      // The engine's running totals, for the latency chart's means over a window.
      deliveries: s.deliveries ?? 0,
      waitUs: s.wait_total_us ?? 0,
      effects: s.effects_first ?? 0,
      latencyUs: s.latency_total_us ?? 0,
    });
    if (v.metrics.length > LAG_SAMPLES_MAX) v.metrics.shift();
  }

  /** KC-8: per group, the summed log end − committed offset of its committed partitions. */
  #sampleLag(at) {
    const v = this.view;
    if (at - v.lastLagSample < LAG_SAMPLE_MS - 0.001) return;
    v.lastLagSample = at;
    v.groups.forEach((g, gi) => {
      g.lag.push({ at, lag: groupLag(v, this.layout.groups[gi], g) });
      if (g.lag.length > LAG_SAMPLES_MAX) g.lag.shift();
    });
  }

  /** Numbers the events in trace order and keeps the newest hops for the sequence diagram. */
  #sequence(events) {
    const v = this.view;
    const base = v.traced;
    events.forEach((e, i) => { e.n = base + i; });
    v.traced += events.length;
    // Only the newest arrows are kept, so a long replay looks at its tail only.
    const fresh = [];
    for (let i = events.length - 1; i >= 0 && fresh.length < SEQUENCE_ARROWS_MAX; i--) {
      const e = events[i];
      const a = arrowOf(this.layout, e);
      if (a) fresh.push({ n: e.n, at: e.at_ms, msg: e.msg, ...a });
    }
    fresh.reverse();
    v.sequence = v.sequence.concat(fresh).slice(-SEQUENCE_ARROWS_MAX);
  }

  /** Adds an event to its message's history, unless a replay brings it round again. */
  #remember(e) {
    const h = this.history;
    let lines = h.get(e.msg);
    if (!lines) {
      if (h.size >= HISTORY_MESSAGES_MAX) h.delete(h.keys().next().value);
      lines = [];
      h.set(e.msg, lines);
    }
    if (lines.length && lines[lines.length - 1].n >= e.n) return;
    lines.push({ n: e.n, line: e.line });
    if (lines.length > HISTORY_LINES_MAX) lines.shift();
  }

  /** The trace lines about message `id` up to where the run is now, oldest first. */
  historyOf(id) {
    return (this.history.get(id) ?? []).filter((l) => l.n < this.view.traced).map((l) => l.line);
  }
}

// The most messages the exported diagram follows, and the most arrows it draws, so that it
// stays readable; the live diagram keeps the newest SEQUENCE_ARROWS_MAX arrows.
const DIAGRAM_MESSAGES_MAX = 40;
const DIAGRAM_ARROWS_MAX = 400;
export const SEQUENCE_ARROWS_MAX = 40;

/**
 * One trace event as an arrow between two parties, or undefined when it is not a hop:
 * `{from, to, text, style}`, a party being `{id, name, rank}` (rank 0 senders, 1 queues and
 * partitions, 2 consumers and members) and `style` one of send, reply, fail, dead. Pure; the
 * live diagram and the Mermaid export both draw from it.
 */
export function arrowOf(layout, e) {
  const q = (i) => ({ id: `Q${i}`, name: layout.queues[i]?.name ?? '?', rank: 1 });
  const c = (i) => ({ id: `C${i}`, name: layout.consumers[i]?.name ?? '?', rank: 2 });
  const p = (i) => (i < layout.producers.length
    ? { id: `P${i}`, name: layout.producers[i].name, rank: 0 }
    : { id: 'S0', name: 'script or service', rank: 0 });
  const part = (t, n) => ({ id: `T${t}_${n}`, name: `${layout.topics[t]?.name ?? '?'}-${n}`, rank: 1 });
  const mem = (g, m) => ({ id: `G${g}_${m}`, name: `${layout.groups[g]?.name ?? '?'}-${m + 1}`, rank: 2 });
  switch (e.kind) {
    case 'published': return { from: p(e.producer), to: q(e.queue), text: `m${e.msg}`, style: 'send' };
    case 'delivered': return { from: q(e.queue), to: c(e.consumer), text: `m${e.msg} (delivery ${e.receive_count})`, style: 'send' };
    case 'acked': return { from: c(e.consumer), to: q(e.queue), text: `ack m${e.msg}`, style: 'reply' };
    case 'returned': return { from: c(e.consumer), to: q(e.queue), text: `m${e.msg} back: ${e.reason}`, style: 'fail' };
    case 'dead_lettered': return { from: q(e.from), to: q(e.dlq), text: `m${e.msg} dead-lettered: ${e.reason}`, style: 'dead' };
    case 'record_appended': return { from: p(e.producer), to: part(e.topic, e.partition), text: `offset ${e.offset}`, style: 'send' };
    case 'records_fetched': return { from: part(e.topic, e.partition), to: mem(e.group, e.member), text: `${e.count} from ${e.from}`, style: 'send' };
    case 'offset_committed': return { from: mem(e.group, e.member), to: part(e.topic, e.partition), text: `commit ${e.offset}`, style: 'reply' };
    case 'commit_failed': return { from: mem(e.group, e.member), to: part(e.topic, e.partition), text: `commit ${e.offset} refused`, style: 'fail' };
    default: return undefined;
  }
}

const MERMAID_ARROW = { send: '->>', reply: '-->>', fail: '--x', dead: '->>' };

/**
 * The hops of a trace worth a diagram: sends, deliveries, acks, returns and dead letters of the
 * first DIAGRAM_MESSAGES_MAX messages, at most DIAGRAM_ARROWS_MAX of them: `{arrows, untold}`,
 * each arrow as `arrowOf` makes it, with its event's `n` and `msg`. Pure.
 */
export function diagramArrows(layout, events) {
  const followed = new Set();
  const arrows = [];
  let untold = 0;
  events.forEach((e, n) => {
    if (e.msg !== undefined && !followed.has(e.msg)) {
      if (e.kind !== 'published' || followed.size >= DIAGRAM_MESSAGES_MAX) return;
      followed.add(e.msg);
    }
    const a = arrowOf(layout, e);
    if (!a) return;
    if (arrows.length >= DIAGRAM_ARROWS_MAX) untold++;
    else arrows.push({ n, msg: e.msg, ...a });
  });
  return { arrows, untold };
}

/** A Mermaid sequence diagram of a trace: sends, deliveries, acks and dead letters. Pure. */
export function mermaid(layout, events) {
  const lines = ['sequenceDiagram'];
  const said = new Set();
  const who = (party) => {
    if (!said.has(party.id)) {
      said.add(party.id);
      lines.splice(said.size, 0, `  participant ${party.id} as ${String(party.name).replace(/[\n;#]/g, ' ')}`);
    }
    return party.id;
  };
  const { arrows, untold } = diagramArrows(layout, events);
  for (const a of arrows) lines.push(`  ${who(a.from)}${MERMAID_ARROW[a.style]}${who(a.to)}: ${a.text.replace(/[\n;#]/g, ' ')}`);
  if (untold) lines.push(`  Note over ${[...said][0]}: ${untold} more hops not drawn`);
  return `${lines.join('\n')}\n`;
}

// --- The fold, per family: each function changes only the view it is given, and says
// whether the event was its own. ---

function unlist(list, id) {
  const i = list[0] === id ? 0 : list.indexOf(id);
  if (i >= 0) list.splice(i, 1);
}

function unready(v, id) {
  for (const list of v.ready) unlist(list, id);
}

function endJob(v, c, id) {
  const jobs = v.jobs[c];
  const i = jobs.findIndex((j) => j.id === id);
  if (i >= 0) jobs.splice(i, 1);
}

function pulse(v, kind, e) {
  const members = e.group === undefined ? 0 : v.groups[e.group].members.length;
  v.pulses.push({ kind, queue: e.queue ?? e.from ?? -1, consumer: e.consumer ?? -1, group: e.group ?? -1, member: e.member ?? -1, members, exchange: e.exchange, at: e.at_ms });
  if (v.pulses.length > PULSES_MAX) v.pulses.shift();
}

function gone(v, id) {
  unready(v, id);
  v.messages.delete(id);
}

/** The record an event names by topic, partition and offset, if its tape still holds it. */
function tapeRecord(v, e) {
  const tape = v.topics[e.topic].parts[e.partition].tape;
  return tape.length ? tape[e.offset - tape[0].offset] : undefined;
}

function memberOf(v, g, m) {
  const members = v.groups[g].members;
  while (members.length <= m) members.push({ alive: false, inGroup: false, owned: [], current: null });
  return members[m];
}

/**
 * When each badge's counter first moved, so a badge can jump there: by kinds and codes, the
 * same definitions as the engine's counters (`m`: the event's message, before the event).
 */
function firstMoments(v, e, m) {
  const first = (badge) => { if (v.firstAt[badge] === undefined) v.firstAt[badge] = e.at_ms; };
  if ((e.kind === 'dropped' && e.reason_code === C.DropReason.LostAfterAutoAck) || e.kind === 'records_lost') first('lost');
  // A set consumer's repeat of the newest value changes nothing: the engine does not count it.
  if ((e.kind === 'effect_applied' && e.times > 1 && !v.layout.consumers[e.consumer]?.sets)
    || (e.kind === 'record_done' && e.times > 1)) first('applied_twice');
  if (e.kind === 'message_out_of_order' || e.kind === 'order_violated') first('order_violated');
  if (e.kind === 'duplicate_suppressed') first('duplicates_suppressed');
  if (e.kind === 'unroutable') first('unroutable');
  // In a dead-letter queue: not a queue a dead-letter exchange reaches, which is a queue like any other.
  if ((e.kind === 'dead_lettered' && v.layout.queues[e.dlq]?.role === 'dead_letter')
    || (e.kind === 'record_done' && e.outcome_code === C.RecordOutcome.DeadLettered)) first('dead_lettered');
  if (e.kind === 'expired' || (e.kind === 'dead_lettered' && (e.reason_code === C.DeadReason.Expired || e.reason_code === C.DeadReason.TtlExpired))) first('expired');
  // A lease that ran out (SQS, Service Bus) or a consumer timeout (RabbitMQ) while its
  // consumer was still working on the message: what the counter counts.
  if (e.kind === 'returned' && (e.reason_code === C.ReturnReason.LeaseExpired || e.reason_code === C.ReturnReason.ConsumerTimeout)
    && m?.consumer === e.consumer && v.jobs[e.consumer]?.some((j) => j.id === e.msg)) first('lease_expired_mid_processing');
}

/** Queues: where each message is, its consumer's jobs, and the pulses (`m`: its message). */
// long: one case per queue event code
function foldQueueEvent(v, e, m) {
  switch (e.kind) {
    case 'published':
      v.messages.set(e.msg, {
        id: e.msg, state: 'publishing', queue: e.queue, producer: e.producer, consumer: -1,
        t0: e.at_ms, t1: e.arrives_at_ms, leaseFrom: 0, leaseUntil: 0, autoAcked: false, attempt: 0,
        // Republished by a retry loop's consumer into its parking lot: which one.
        parkedBy: e.producer === C.REPUBLISHED ? v.layout.consumers.findIndex((c) => c.park === e.queue) : -1,
      });
      break;
    case 'enqueued':
      Object.assign(m, { state: 'ready', queue: e.queue, consumer: -1, t0: e.at_ms, t1: e.at_ms, leaseUntil: 0 });
      unready(v, e.msg);
      v.ready[e.queue].push(e.msg);
      break;
    case 'delayed':
      unready(v, e.msg);
      Object.assign(m, { state: 'delayed', queue: e.queue, consumer: -1, t0: e.at_ms, t1: e.until_ms, leaseUntil: 0 });
      break;
    case 'delivered':
      unlist(v.ready[e.queue], e.msg);
      Object.assign(m, {
        state: 'delivering', consumer: e.consumer, t0: e.at_ms, t1: e.arrives_at_ms,
        leaseFrom: e.at_ms, leaseUntil: e.lease_until_ms, autoAcked: false, lost: false,
      });
      break;
    case 'delivery_lost':
      // Gone from the wire; the broker still counts it delivered until its lease ends.
      if (m) Object.assign(m, { lost: true, t1: e.at_ms });
      pulse(v, 'lost', e);
      break;
    case 'auto_acked':
      if (m) Object.assign(m, { autoAcked: true, leaseUntil: 0 });
      break;
    case 'processing_started':
      v.jobs[e.consumer].push({ id: e.msg, t0: e.at_ms, t1: e.done_at_ms });
      if (m && m.consumer === e.consumer) Object.assign(m, { state: 'processing', t0: e.at_ms, t1: e.done_at_ms });
      break;
    case 'lease_extended':
      if (m) Object.assign(m, { leaseFrom: e.at_ms, leaseUntil: e.until_ms });
      break;
    case 'failed':
      endJob(v, e.consumer, e.msg);
      if (m) m.attempt = e.attempt;
      break;
    case 'effect_applied':
    case 'duplicate_suppressed':
      endJob(v, e.consumer, e.msg);
      break;
    case 'stale_dropped':
      endJob(v, e.consumer, e.msg);
      pulse(v, 'stale', e);
      break;
    case 'acked':
    case 'processed':
      endJob(v, e.consumer, e.msg);
      gone(v, e.msg);
      pulse(v, 'acked', e);
      break;
    case 'ack_refused':
      pulse(v, 'refused', e);
      break;
    case 'dead_lettered':
      unready(v, e.msg);
      pulse(v, 'dead', e);
      break;
    case 'expired':
      gone(v, e.msg);
      pulse(v, 'expired', e);
      break;
    case 'dropped':
      if (m && m.consumer >= 0) endJob(v, m.consumer, e.msg);
      gone(v, e.msg);
      pulse(v, 'lost', e);
      break;
    case 'redriven':
      gone(v, e.msg);
      break;
    case 'consumer_crashed':
      v.alive[e.consumer] = false;
      v.jobs[e.consumer] = [];
      v.breakers[e.consumer] = 0; // a new process starts with a closed breaker
      pulse(v, 'crashed', e);
      break;
    case 'consumer_restarted':
      v.alive[e.consumer] = true;
      break;
    case 'scaled':
      v.active[e.consumer] = e.active_code === 1;
      break;
    case 'message_out_of_order':
      // Flagged where it was done: at the consumer that just applied it.
      pulse(v, 'order', { ...e, consumer: m && m.consumer >= 0 ? m.consumer : undefined });
      break;
    case 'routed': {
      // The binding it matched lights up on its exchange (and its route, while it travels).
      if (m) m.via = { exchange: e.exchange, binding: e.binding };
      const x = v.layout.bindings?.[e.binding]?.exchange ?? e.exchange;
      for (const at of new Set([e.exchange, x])) {
        if (!(at >= 0 && at < v.routes.length)) continue;
        const last = v.routes[at];
        if (last && last.at === e.at_ms && last.key === e.key) last.bindings.push(e.binding);
        else v.routes[at] = { at: e.at_ms, key: e.key, bindings: [e.binding] };
      }
      break;
    }
    case 'unroutable':
      if (e.exchange >= 0 && e.exchange < v.routes.length) v.routes[e.exchange] = { at: e.at_ms, key: e.key, bindings: [] };
      pulse(v, e.returned_code === 1 ? 'returned' : 'lost', e);
      break;
    case 'dependency_changed':
      // Whether it is up now, outages included, comes from the engine (#refresh).
      v.dependencyTakenDown[e.dependency] = e.up_code === 0;
      break;
    case 'alert_changed':
      v.alertFiring[e.alert] = e.state_code === 1;
      if (e.state_code === 1) {
        v.alertFired.push({ alert: e.alert, at: e.at_ms });
        if (v.alertFired.length > ALERT_MARKS_MAX) v.alertFired.shift();
      }
      break;
    case 'breaker_changed':
      v.breakers[e.consumer] = e.phase_code;
      break;

    default:
      return false;
  }
  return true;
}

/** Streams: tapes, groups, members and their records; `batch.streams` when lag or stats moved. */
// long: one case per stream event code
function foldStreamEvent(v, e, engine, batch) {
  switch (e.kind) {
    case 'record_appended': {
      const part = v.topics[e.topic].parts[e.partition];
      part.logEnd = e.offset + 1;
      part.tape.push({ offset: e.offset, key: e.key === C.NONE ? -1 : e.key, tombstone: e.tombstone_code === 1, retained: part.logStart <= e.offset });
      if (part.tape.length > TAPE_RECORDS_MAX) part.tape.shift();
      batch.streams = true;
      break;
    }
    case 'segments_deleted': {
      const part = v.topics[e.topic].parts[e.partition];
      part.logStart = e.log_start;
      for (const r of part.tape) if (r.offset < e.log_start) r.retained = false;
      break;
    }
    case 'compacted': {
      const part = v.topics[e.topic].parts[e.partition];
      const from = part.tape[0]?.offset ?? 0;
      const kept = engine.retained(e.topic, e.partition, from, part.logEnd);
      for (const r of part.tape) r.retained = kept[r.offset - from] === 1;
      break;
    }
    case 'group_changed':
      Object.assign(v.groups[e.group], { phase: e.phase, generation: e.generation });
      batch.streams = true;
      break;
    case 'member_changed': {
      const mem = memberOf(v, e.group, e.member);
      const change = e.change_code;
      const M = C.MemberChange;
      if (change === M.Joined || change === M.Restarted) Object.assign(mem, { alive: true, inGroup: true });
      else if (change === M.Crashed) Object.assign(mem, { alive: false, current: null });
      else if (change === M.Left) Object.assign(mem, { alive: false, inGroup: false, current: null });
      else Object.assign(mem, { inGroup: false });
      if (change === M.Crashed) pulse(v, 'crashed', e);
      break;
    }
    case 'partition_assigned': {
      const mem = memberOf(v, e.group, e.member);
      const key = `${e.topic}:${e.partition}`;
      if (!mem.owned.includes(key)) mem.owned.push(key);
      mem.owned.sort(byPart);
      v.groups[e.group].positions.set(key, e.offset);
      v.pulses.push({ kind: 'assigned', group: e.group, member: e.member, queue: -1, consumer: -1, at: e.at_ms });
      if (v.pulses.length > PULSES_MAX) v.pulses.shift();
      break;
    }
    case 'partition_revoked': {
      const mem = memberOf(v, e.group, e.member);
      mem.owned = mem.owned.filter((k) => k !== `${e.topic}:${e.partition}`);
      break;
    }
    case 'records_fetched':
      v.groups[e.group].positions.set(`${e.topic}:${e.partition}`, e.from + e.count);
      break;
    case 'record_started': {
      const rec = tapeRecord(v, e);
      memberOf(v, e.group, e.member).current = {
        topic: e.topic, partition: e.partition, offset: e.offset, key: rec?.key ?? -1, t0: e.at_ms, t1: e.done_at_ms,
      };
      break;
    }
    case 'record_done': {
      memberOf(v, e.group, e.member).current = null;
      // A record that failed is marked on its tape: the one a partition waits behind.
      if (e.outcome_code !== C.RecordOutcome.Processed) {
        const rec = tapeRecord(v, e);
        if (rec) rec.failed = true;
      }
      if (e.times > 1) pulse(v, 'twice', e);
      else if (e.outcome_code !== C.RecordOutcome.Processed) pulse(v, 'retried', e);
      batch.streams = true;
      break;
    }
    case 'offset_committed':
    case 'offsets_reset':
      v.groups[e.group].committed.set(`${e.topic}:${e.partition}`, e.offset);
      batch.streams = true;
      break;
    case 'offsets_reset_refused':
      break;
    case 'commit_failed':
      pulse(v, 'uncommitted', e);
      break;
    case 'records_lost':
      pulse(v, 'lost', e);
      break;
    case 'order_violated':
      pulse(v, 'order', e);
      break;
    default:
      return false;
  }
  return true;
}

/** Workflows: the newest reply of each request-reply system. */
function foldWorkflowEvent(v, e) {
  switch (e.kind) {
    case 'reply_matched':
    case 'reply_unmatched':
      v.lastReply[e.system] = e.msg;
      break;
    default:
      return false;
  }
  return true;
}
