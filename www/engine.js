// The only module that imports the wasm package. It owns a run, which is determined by
// (scenario, seed), and folds the engine's trace into a plain view model for the renderer.
// Nothing else in www/ touches the engine.
import init, { Engine, presets as wasmPresets, validateScenario, randomSeed as wasmRandomSeed } from './pkg/brokerlab.js';

// The most events one frame may ask the engine for. A run that needs more per frame stops
// with a message instead of freezing the tab.
export const FRAME_EVENT_BUDGET = 200000;

// Bounded memory for the page, whatever the run: this many ack pulses stay drawable.
const PULSES_MAX = 64;

let ready = null;

/** Loads and instantiates the wasm module once; later calls share it. */
export function loadEngine() {
  ready ??= init();
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

/**
 * One run. `view` is a plain object the renderer reads; only this class writes it.
 *
 * view.messages: Map id -> {id, state, queue, producer, consumer, t0, t1}, for every message
 *   not yet acked. `t0`/`t1` bound the current motion or processing.
 * view.ready[q]: ready message ids of queue q, oldest first.
 * view.processing[c]: the message id consumer c is processing, or -1.
 * view.pulses: recent acks [{consumer, at}] for the green pulse.
 * view.counts: per queue {publishing, ready, …, acked}, from the engine itself.
 */
export class Run {
  constructor(json, seed) {
    this.engine = new Engine(json, seed);
    this.seed = seed;
    this.layout = this.engine.layout();
    const { queues, consumers } = this.layout;
    this.view = {
      layout: this.layout,
      messages: new Map(),
      ready: queues.map(() => []),
      processing: consumers.map(() => -1),
      pulses: [],
      counts: this.engine.counts(),
    };
  }

  get nowMs() {
    return this.engine.nowMs();
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

  /**
   * Runs the engine to `tMs` and folds what happened. Returns {events, stopped}: `stopped` is
   * the engine's message when the event budget ran out first (time is then short of `tMs`,
   * and the events up to there are folded all the same).
   */
  advanceTo(tMs, budget = FRAME_EVENT_BUDGET) {
    if (tMs < this.engine.nowMs()) return { events: [], stopped: undefined };
    const { events, stopped } = this.engine.runUntil(tMs, budget);
    this.#fold(events);
    return { events, stopped };
  }

  /** Moves to the next event that shows in the trace, and returns its events. */
  stepEvent() {
    let events = [];
    while (events.length === 0 && this.engine.nextEventMs() !== undefined) {
      events = this.engine.step();
    }
    this.#fold(events);
    return events;
  }

  #fold(events) {
    if (events.length === 0) return;
    const v = this.view;
    for (const e of events) {
      switch (e.kind) {
        case 'published':
          v.messages.set(e.msg, {
            id: e.msg, state: 'publishing', queue: e.queue, producer: e.producer, consumer: -1,
            t0: e.at_ms, t1: e.arrives_at_ms,
          });
          break;
        case 'enqueued': {
          const m = v.messages.get(e.msg);
          m.state = 'ready';
          m.t0 = m.t1 = e.at_ms;
          v.ready[e.queue].push(e.msg);
          break;
        }
        case 'delivered': {
          const m = v.messages.get(e.msg);
          Object.assign(m, { state: 'delivering', consumer: e.consumer, t0: e.at_ms, t1: e.arrives_at_ms });
          const list = v.ready[e.queue];
          // Dispatch takes the oldest, so this is almost always the head.
          list.splice(list[0] === e.msg ? 0 : list.indexOf(e.msg), 1);
          break;
        }
        case 'processing_started': {
          const m = v.messages.get(e.msg);
          Object.assign(m, { state: 'processing', t0: e.at_ms, t1: e.done_at_ms });
          v.processing[e.consumer] = e.msg;
          break;
        }
        case 'acked':
          v.messages.delete(e.msg);
          if (v.processing[e.consumer] === e.msg) v.processing[e.consumer] = -1;
          v.pulses.push({ consumer: e.consumer, at: e.at_ms });
          if (v.pulses.length > PULSES_MAX) v.pulses.shift();
          break;
        case 'producer_stopped':
          break;
        default:
          throw new Error(`unknown trace event kind ${e.kind}`);
      }
    }
    v.counts = this.engine.counts();
  }
}
