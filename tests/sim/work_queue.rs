//! The work queue with competing consumers: golden traces, determinism and conservation
//! (queueing theory is `queueing.rs`).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::{load, run_checked};
use brokerlab::ids::{ConsumerId, MsgId, QueueId};
use brokerlab::message::{MsgState, StateKind};
use brokerlab::scenario::presets;
use brokerlab::Sim;

/// Golden trace hashes, one per preset at its own seed. The CLI, the wasm build in Node and
/// the page in Chromium must all reach these exact values.
const GOLDEN: &[(&str, u64, &str)] = &[
    ("ack-modes", 4, "8879458efa5e17c6"),
    ("autoscaling", 14, "1a69d4bbf2846d2f"),
    ("backlog", 11, "ce80d3eeda2f60b1"),
    ("dedup-window", 1, "e1e03c599b3c23b7"),
    ("load-shedding", 2, "124a4be67183f6c3"),
    ("competing-consumers", 7, "929b17e78e258e22"),
    ("delivery-guarantees", 8, "83e4815ed2705f4a"),
    ("error-classes", 12, "174ca2cb86b81214"),
    ("fifo-groups", 6, "c7345ea2b89f57bd"),
    ("idempotency", 10, "17f52de76c1da70d"),
    ("lease-models", 1, "9bcb9dd6cbf95289"),
    ("mmc-erlang-c", 1, "c2e65f4159797bd3"),
    ("poison-redrive", 9, "77d7ef283749e145"),
    ("prefetch-hoarding", 3, "b1082a4704a97ee9"),
    ("retry-storm", 2015, "99df805c6ea29930"),
    ("circuit-breaker", 11, "3cfeb0242057c3fc"),
    ("occ-contention", 2015, "614551254e6ca2cf"),
    ("slow-worker", 5, "96f58d9e8648e795"),
    ("ttl-expiry", 3, "289fb84a0f44a741"),
    ("commit-semantics", 8, "c23fc5300c2fc13d"),
    ("compaction", 2, "5aabb45ccbea83ab"),
    ("fan-out", 5, "b4f5245e8cff8c0c"),
    ("hot-partition", 3, "bd71d367d18f3774"),
    ("partition-keys", 21, "c424b9002e53897b"),
    ("pubsub-vs-stream", 9, "81bf8c1f90d1c995"),
    ("rebalancing", 12, "8468efa3dd7a104f"),
    ("request-reply", 4, "ec82141da1bd02e4"),
    ("request-timeouts", 6, "5de66bc2a14bf09b"),
    ("saga-happy-path", 1, "8767f59dc84a2c58"),
    ("saga-compensation", 3, "0990214383e27831"),
    ("saga-compensation-retry", 6, "3040da9390d4bc6c"),
    ("saga-duplicates", 7, "c885fdc0f2320245"),
    ("saga-styles", 11, "60388c7cd220a789"),
    ("poison-blocks-partition", 5, "d6cd9d9c4bcd2317"),
    ("retry-topics", 17, "7a011432870863dd"),
    ("schema-change", 12, "20bb699b355c38a7"),
    ("ordering-fixes", 4, "3ed9566ee2a649e9"),
    ("set-vs-increment", 10, "f9369a9d19aa8699"),
    ("assignors", 3, "fafb513ed051dbd1"),
    ("queue-vs-log", 8, "f69b55e2c8b9f83e"),
    ("retention-loss", 4, "d3f5bff76cef86a7"),
    ("topic-routing", 5, "de8b6e950ffe59b0"),
    ("fanout-vs-direct", 4, "458031aa804a0e14"),
    ("alternate-exchange", 6, "53e20f6a78e52017"),
    ("lock-renewal", 3, "5e8adbf2a21f5dc7"),
    ("dlx-retry-loop", 2, "5cea840ab2f5e818"),
];

#[test]
fn every_preset_matches_its_golden_trace_hash() {
    assert_eq!(GOLDEN.len(), presets().len(), "every preset has a golden hash");
    for &(id, seed, want) in GOLDEN {
        let scenario = load(id);
        assert_eq!(scenario.seed, Some(seed), "{id}: the golden uses the preset's own seed");
        let sim = run_checked(scenario, seed);
        assert_eq!(sim.trace_hash().hex(), want, "{id} seed {seed}");
    }
}

#[test]
fn the_same_seed_gives_the_same_trace_and_another_seed_does_not() {
    for p in presets() {
        let a = run_checked(load(p.id), 99);
        let b = run_checked(load(p.id), 99);
        assert_eq!(a.trace_hash(), b.trace_hash(), "{}", p.id);
        assert_eq!(a.summary(), b.summary(), "{}", p.id);
        let c = run_checked(load(p.id), 100);
        // These have constant times and no random outcomes: the seed cannot matter.
        if !["prefetch-hoarding", "poison-redrive", "pubsub-vs-stream", "dedup-window"].contains(&p.id) {
            assert_ne!(a.trace_hash(), c.trace_hash(), "{}: seed changes nothing", p.id);
        }
    }
}

#[test]
fn checkers_hold_after_every_step_across_seeds() {
    for p in presets() {
        for seed in 0..6 {
            let sim = run_checked(load(p.id), seed);
            assert!(sim.events_processed() > 0, "{} seed {seed} did nothing", p.id);
        }
    }
}

#[test]
fn stepping_one_event_at_a_time_equals_running_in_one_call() {
    let scenario = load("backlog");
    let end = scenario.end();
    let stepped = run_checked(scenario.clone(), 5);
    let mut direct = Sim::new(scenario, 5);
    direct.set_recording(false);
    direct.run_until(end, u64::MAX).expect("runs");
    assert_eq!(stepped.trace_hash(), direct.trace_hash(), "recording does not change the hash");
    assert_eq!(stepped.summary().queues, direct.summary().queues);
}

#[test]
fn a_drained_backlog_acks_every_message_exactly_once() {
    let sim = run_checked(load("backlog"), 11);
    let s = sim.summary();
    assert_eq!(s.stats.published, 120);
    assert_eq!(sim.counts(QueueId(0)).get(StateKind::Acked), 120, "{s:?}");
    assert_eq!(sim.counts(QueueId(0)).get(StateKind::Acked), 120);
    assert!(s.mean_wait_ms > 1000.0, "a backlog means waiting: {}", s.mean_wait_ms);
}

#[test]
fn prefetch_lets_one_consumer_hoard_a_burst() {
    let scenario = load("prefetch-hoarding");
    let mut sim = Sim::new(scenario, 3);
    // Just after the burst is delivered: worker-slow (prefetch 10) holds ten, worker-fast one.
    sim.run_until(brokerlab::SimTime::from_millis(250), 10_000).expect("runs");
    let held = |c: u32| {
        (0..24).filter(|&m| sim.message_state(MsgId(m)).and_then(MsgState::holder) == Some(ConsumerId(c))).count()
    };
    assert_eq!(held(0), 10, "worker-slow hoards its full prefetch");
    assert_eq!(held(1), 1, "worker-fast takes one at a time");
    assert_eq!(sim.counts(QueueId(0)).get(StateKind::Buffered), 9, "nine wait in worker-slow's buffer");
}

#[test]
fn keeping_the_trace_or_not_never_changes_a_run() {
    for &(id, seed, want) in GOLDEN {
        let scenario = load(id);
        let mut sim = Sim::new(scenario.clone(), seed);
        sim.set_recording(false);
        sim.run_until(scenario.end(), u64::MAX).expect("runs");
        assert_eq!(sim.trace_hash().hex(), want, "{id}: the hash without the trace kept");
    }
}

/// A resend is the same business message: applied twice where the broker does not deduplicate
/// it, dropped inside a FIFO queue's window (it inherits the first send's id, SQS-23). A
/// resend of a message no earlier send names is refused with its path.
#[test]
fn a_resend_keeps_its_business_identity_and_its_deduplication_id() {
    let json = |resend: &str| {
        format!(
            r#"{{"name": "r", "duration_ms": 5000,
                "queues": [{{"name": "std", "lease": {{"model": "sqs"}}}}, {{"name": "f", "lease": {{"model": "sqs"}}, "fifo": true}}],
                "consumers": [{{"name": "a", "from": "std"}}, {{"name": "b", "from": "f"}}],
                "script": [{{"at_ms": 0, "op": "send", "to": "std", "message": "x"}},
                           {{"at_ms": 0, "op": "send", "to": "f", "message": "y", "group": 0, "dedup_id": "d"}},
                           {{"at_ms": 1000, "op": "send", "to": "std", "resend": "{resend}"}},
                           {{"at_ms": 1000, "op": "send", "to": "f", "group": 0, "resend": "y"}}]}}"#
        )
    };
    let sim = run_checked(brokerlab::Scenario::from_json(&json("x")).expect("valid"), 1);
    let s = sim.summary();
    assert_eq!((s.stats.published, s.stats.applied_twice), (3, 1), "{:?}", s.stats);
    let e = brokerlab::Scenario::from_json(&json("z")).expect_err("refused");
    assert_eq!(e.path, "script[2].resend", "{e}");
}

/// set-vs-increment's key counters on its own seed and seeds 2 to 5: every repeat on add is
/// applied twice and its order is never checked (an increment commutes); on set a repeat of
/// the newest write is harmless and an older write after a newer one is a stale write.
#[test]
fn an_increment_counts_repeats_and_a_set_counts_stale_writes() {
    let scenario = load("set-vs-increment");
    for seed in [10, 2, 3, 4, 5] {
        let (sim, trace) = crate::run_traced(scenario.clone(), seed);
        let s = sim.summary().stats;
        let out_of_order: Vec<u32> = trace
            .iter()
            .filter_map(|e| match *e {
                brokerlab::TraceEvent::MessageOutOfOrder { queue, .. } => Some(queue.0),
                _ => None,
            })
            .collect();
        assert!(s.applied_twice >= 2 && s.harmless_repeats >= 1 && s.order_violations >= 1, "seed {seed}: {s:?}");
        assert!(out_of_order.iter().all(|&q| q == 1), "seed {seed}: only set's order is checked: {out_of_order:?}");
    }
    let bad = r#"{"name": "x", "duration_ms": 1000, "queues": [{"name": "q"}], "producers": [{"name": "p", "to": "q", "schedule": {"kind": "fixed_rate", "interval_ms": 100}}],
        "consumers": [{"name": "c", "from": "q", "effect": "append"}]}"#;
    assert_eq!(brokerlab::Scenario::from_json(bad).expect_err("refused").path, "consumers[0].effect");
}

/// A consumer with `on_poison: permanent_error` fails a poison message instead of crashing:
/// no retry helps, so it goes straight to the DLQ (reason: permanent error); after the fix and
/// the redrive, every event is processed once (schema-change, its seed and seeds 2 to 5).
#[test]
fn a_payload_the_consumer_cannot_parse_is_a_permanent_error_not_a_crash() {
    use brokerlab::trace::DeadReason;
    let scenario = load("schema-change");
    for seed in [12, 2, 3, 4, 5] {
        let (sim, trace) = crate::run_traced(scenario.clone(), seed);
        assert!(!trace.iter().any(|e| matches!(e, brokerlab::TraceEvent::ConsumerCrashed { .. })), "seed {seed}");
        let reasons: Vec<DeadReason> = trace
            .iter()
            .filter_map(|e| match *e {
                brokerlab::TraceEvent::DeadLettered { reason, .. } => Some(reason),
                _ => None,
            })
            .collect();
        assert!(
            reasons.len() >= 25 && reasons.iter().all(|&r| r == DeadReason::PermanentError),
            "seed {seed}: {reasons:?}"
        );
        let events = sim.summary().queues.into_iter().find(|q| q.name == "events").expect("events");
        assert_eq!(events.messages.get(StateKind::Acked), 100, "seed {seed}");
    }
    let bad = r#"{"name": "x", "duration_ms": 1000, "queues": [{"name": "q"}], "producers": [{"name": "p", "to": "q", "schedule": {"kind": "fixed_rate", "interval_ms": 100}}],
        "consumers": [{"name": "c", "from": "q", "on_poison": "ignore"}]}"#;
    assert_eq!(brokerlab::Scenario::from_json(bad).expect_err("refused").path, "consumers[0].on_poison");
}

/// Item 8 of issue 26: the end-to-end latency runs from a publish to its first effect, and
/// counts what the queue wait does not. On prefetch-hoarding (its own seed and seeds 2 to 5)
/// worker-slow's prefetch of 10 empties the queue at once, so the mean queue wait is lower
/// than with prefetch 1 on both workers, while the latency, which counts the jobs sitting
/// in its buffer, is higher.
#[test]
fn prefetch_hoarding_lowers_the_queue_wait_and_raises_the_end_to_end_latency() {
    let hoarding = load("prefetch-hoarding");
    let mut fair = hoarding.clone();
    fair.consumers[0].prefetch = 1;
    for seed in [3, 2, 3, 4, 5] {
        let (h, f) = (run_checked(hoarding.clone(), seed).summary(), run_checked(fair.clone(), seed).summary());
        assert_eq!((h.stats.effects_first, f.stats.effects_first), (24, 24), "seed {seed}");
        assert!(h.mean_wait_ms < f.mean_wait_ms / 2.0, "seed {seed}: wait {} vs {}", h.mean_wait_ms, f.mean_wait_ms);
        assert!(
            h.mean_latency_ms > f.mean_latency_ms * 1.4,
            "seed {seed}: {} vs {}",
            h.mean_latency_ms,
            f.mean_latency_ms
        );
        assert!(h.mean_latency_ms > h.mean_wait_ms * 4.0, "seed {seed}: the buffer is where they wait");
    }
}

/// The latency total, computed again from the trace: each message's first effect minus the
/// moment its publish was made, where a redriven message keeps its original's. Over every
/// preset that makes no dead-letter-exchange or parking-lot copies (the trace does not say
/// whose copy those are).
#[test]
fn the_end_to_end_latency_is_the_traces_publish_to_first_effect() {
    use brokerlab::trace::{TraceEvent, DEAD_LETTERING, REPUBLISHED};
    let mut checked = Vec::new();
    for p in presets() {
        let scenario = load(p.id);
        let seed = scenario.seed.unwrap_or(1);
        let (sim, trace) = crate::run_traced(scenario, seed);
        let mut born = std::collections::BTreeMap::new();
        let (mut total, mut firsts, mut copies) = (0u64, 0u64, false);
        for e in &trace {
            match *e {
                TraceEvent::Published { producer, .. } if producer == DEAD_LETTERING || producer == REPUBLISHED => {
                    copies = true;
                }
                TraceEvent::Redriven { msg, new_msg, .. } => {
                    born.insert(new_msg, born[&msg]);
                }
                TraceEvent::Published { at, msg, .. } => {
                    born.entry(msg).or_insert(at);
                }
                TraceEvent::EffectApplied { at, msg, times: 1, .. } => {
                    firsts += 1;
                    total += at.since(born[&msg]).as_micros();
                }
                _ => {}
            }
        }
        if copies {
            continue;
        }
        let s = sim.summary().stats;
        assert_eq!((s.effects_first, s.latency_total_us), (firsts, total), "{}", p.id);
        if firsts > 0 {
            checked.push(p.id);
        }
    }
    assert!(checked.len() >= 20 && checked.contains(&"poison-redrive"), "{checked:?}");
}
