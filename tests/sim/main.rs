//! Simulation tests: scripted scenarios, determinism and golden trace hashes, checkers after
//! every step. The same binary runs natively (`cargo test`) and on wasm32 in Node
//! (`cargo test --target wasm32-unknown-unknown`), asserting the same golden values.

mod backoff;
mod kernel;
mod scenarios;
mod work_queue;

use brokerlab::check::{check, Ledger};
use brokerlab::message::StateKind;
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
    let end = scenario.end();
    let queues = scenario.queues.len();
    let mut sim = Sim::new(scenario, seed);
    let mut ledger = Ledger::default();
    let apply = |sim: &mut Sim, ledger: &mut Ledger| {
        for event in sim.drain_trace() {
            ledger.apply(&event).unwrap_or_else(|v| panic!("seed {seed}: trace: {v}"));
        }
        check(sim).unwrap_or_else(|v| panic!("seed {seed}: {v}"));
    };
    apply(&mut sim, &mut ledger);
    while sim.next_event_at().is_some_and(|t| t <= end) {
        sim.step();
        apply(&mut sim, &mut ledger);
    }
    // The trace alone accounts for every message the engine does (buffered shows as delivering).
    let from_trace = ledger.counts(queues);
    for (q, traced) in from_trace.iter().enumerate() {
        let engine = sim.counts(u32::try_from(q).expect("a few queues"));
        for kind in StateKind::ALL {
            let want = match kind {
                StateKind::Delivering => engine.get(kind) + engine.get(StateKind::Buffered),
                StateKind::Buffered => 0,
                _ => engine.get(kind),
            };
            assert_eq!(traced.get(kind), want, "seed {seed}: queue {q} {kind:?}: trace and engine disagree");
        }
    }
    sim
}
