//! Simulation tests: scripted scenarios, determinism and golden trace hashes, checkers after
//! every step. The same binary runs natively (`cargo test`) and on wasm32 in Node
//! (`cargo test --target wasm32-unknown-unknown`), asserting the same golden values.

mod backoff;
mod beats;
mod brokers;
mod checkers;
mod determinism;
mod exchanges;
mod kafka;
mod kernel;
mod presets;
mod queueing;
mod scenarios;
mod streams;
mod swarm;
mod work_queue;
mod workflows;

use brokerlab::check::{check, coarse_engine_counts, Ledger};
use brokerlab::ids::{MsgId, QueueId};
use brokerlab::scenario::preset;
use brokerlab::{Scenario, Sim};

/// A preset by id, validated.
pub fn load(id: &str) -> Scenario {
    let p = preset(id).unwrap_or_else(|| panic!("no preset {id}"));
    Scenario::from_json(p.json).unwrap_or_else(|e| panic!("preset {id}: {e}"))
}

/// Runs to the end one event at a time, with both checkers after every step. Panics with the
/// seed on the first violation.
pub fn run_checked(scenario: Scenario, seed: u64) -> Sim {
    run_traced(scenario, seed).0
}

/// `run_checked`, keeping the whole trace.
pub fn run_traced(scenario: Scenario, seed: u64) -> (Sim, Vec<brokerlab::TraceEvent>) {
    let end = scenario.end();
    let queues = scenario.queues.len();
    let mut ledger = Ledger::for_scenario(&scenario);
    let mut sim = Sim::new(scenario, seed);
    let mut trace = Vec::new();
    let mut apply = |sim: &mut Sim, ledger: &mut Ledger| {
        for event in sim.drain_trace() {
            ledger.apply(&event).unwrap_or_else(|v| panic!("seed {seed}: trace: {v}"));
            trace.push(event);
        }
        check(sim).unwrap_or_else(|v| panic!("seed {seed}: {v}"));
    };
    apply(&mut sim, &mut ledger);
    while sim.next_event_at().is_some_and(|t| t <= end) {
        sim.step();
        apply(&mut sim, &mut ledger);
    }
    // The trace alone accounts for every message the engine does.
    assert_eq!(ledger.coarse_counts(queues), coarse_engine_counts(&sim), "seed {seed}: trace and engine disagree");
    (sim, trace)
}

/// Drives a run step by step with both checkers on, and hands back the trace in slices.
#[derive(Debug)]
pub struct Driver {
    pub sim: Sim,
    ledger: Ledger,
}

impl Driver {
    pub fn new(json: &str) -> Driver {
        let scenario = Scenario::from_json(json).unwrap_or_else(|e| panic!("scenario: {e}"));
        Driver { ledger: Ledger::for_scenario(&scenario), sim: Sim::new(scenario, 1) }
    }

    /// Runs every event up to and including `ms`, checking after each; returns their trace.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // whole test times
    pub fn to(&mut self, ms: f64) -> Vec<brokerlab::TraceEvent> {
        let until = brokerlab::SimTime::from_micros((ms * 1000.0) as u64);
        let mut events = Vec::new();
        while self.sim.next_event_at().is_some_and(|t| t <= until) {
            self.sim.step();
            for e in self.sim.drain_trace() {
                self.ledger.apply(&e).unwrap_or_else(|v| panic!("trace: {v}"));
                events.push(e);
            }
            check(&self.sim).unwrap_or_else(|v| panic!("{v}"));
        }
        self.sim.run_until(until, 0).expect("nothing left before `until`");
        events
    }

    pub fn id(&self, name: &str) -> MsgId {
        self.sim.named(name).unwrap_or_else(|| panic!("no message named {name}"))
    }

    pub fn msg(&self, name: &str) -> brokerlab::message::Message {
        self.sim.broker().msg(self.id(name)).clone()
    }

    pub fn extra(&self, name: &str) -> brokerlab::message::Extra {
        self.sim.broker().extra(self.id(name)).clone()
    }

    pub fn queue(&self, name: &str) -> QueueId {
        QueueId(self.sim.scenario().queue_index(name).unwrap_or_else(|| panic!("no queue {name}")))
    }

    /// A live input now, as the page sends it (`{"op": …}`), checked like a step; its trace.
    pub fn input(&mut self, json: &str) -> Vec<brokerlab::TraceEvent> {
        let op = self.sim.scenario().live_op(json).unwrap_or_else(|e| panic!("input {json}: {e}"));
        self.sim.input(op);
        let events = self.sim.drain_trace();
        for e in &events {
            self.ledger.apply(e).unwrap_or_else(|v| panic!("trace: {v}"));
        }
        check(&self.sim).unwrap_or_else(|v| panic!("{v}"));
        events
    }
}
