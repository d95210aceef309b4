//! Workflows: request-reply with correlation ids under both reply designs with a requester
//! killed mid-flight, and sagas, choreographed and orchestrated, with both checkers after
//! every step.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::{load, run_traced};
use brokerlab::trace::{SagaNote, UnmatchedReason};
use brokerlab::workflow::SagaStatus;
use brokerlab::{Scenario, Sim, TraceEvent};

fn run(id: &str) -> (Sim, Vec<TraceEvent>) {
    let scenario = load(id);
    let seed = scenario.seed.expect("presets carry their seed");
    run_traced(scenario, seed)
}

/// A system kills requester-1 at 7.12 s, while it has requests in flight. Per reply design:
/// local tables with per-instance reply queues orphan its replies; a shared store with a shared
/// reply queue lets the other instances match them.
#[test]
fn a_killed_requester_orphans_its_replies_or_others_match_them() {
    let (sim, trace) = run("request-reply");
    let s = sim.request_summaries();
    let (local, shared) = (&s[0].stats, &s[1].stats);
    // In flight at the kill: sent by requester 0 before it, not matched before it.
    let kill = trace.iter().find_map(|e| match *e {
        TraceEvent::RequesterKilled { at, system: 0, .. } => Some(at),
        _ => None,
    });
    let kill = kill.expect("killed");
    let in_flight = |system: u32| {
        let sent: Vec<u32> = trace
            .iter()
            .filter_map(|e| match *e {
                TraceEvent::RequestSent { at, system: s, requester: 0, corr, .. } if s == system && at <= kill => {
                    Some(corr)
                }
                _ => None,
            })
            .collect();
        let answered_before: Vec<u32> = trace
            .iter()
            .filter_map(|e| match *e {
                TraceEvent::ReplyMatched { at, system: s, corr, .. } if s == system && at <= kill => Some(corr),
                _ => None,
            })
            .collect();
        sent.into_iter().filter(|c| !answered_before.contains(c)).collect::<Vec<u32>>()
    };
    let (local_flight, shared_flight) = (in_flight(0), in_flight(1));
    assert!(!local_flight.is_empty() && !shared_flight.is_empty(), "requests were in flight at the kill");
    assert_eq!(local.orphaned, local_flight.len() as u64, "local: every reply to the dead instance is orphaned");
    assert_eq!(local.matched + local.orphaned, local.sent, "local: the rest are matched");
    assert_eq!(shared.orphaned, 0, "shared: nothing is orphaned");
    assert_eq!(shared.matched, shared.sent, "shared: every reply is matched");
    for corr in shared_flight {
        let by = trace.iter().find_map(|e| match *e {
            TraceEvent::ReplyMatched { system: 1, corr: c, requester, .. } if c == corr => Some(requester),
            _ => None,
        });
        assert!(by.is_some_and(|r| r != 0), "shared: corr-{corr} matched by a surviving instance");
    }
    let orphan_reasons: Vec<UnmatchedReason> = trace
        .iter()
        .filter_map(|e| match *e {
            TraceEvent::ReplyUnmatched { system: 0, reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert!(orphan_reasons.iter().all(|r| *r == UnmatchedReason::RequesterDead));
}

/// The two mixed designs: a shared reply queue with local tables lets survivors read the
/// dead instance's replies but not match them; a shared store with per-instance queues
/// leaves them in a queue nobody reads.
#[test]
fn the_mixed_designs_fail_in_their_own_ways() {
    let json = |queue: &str, pending: &str| {
        format!(
            r#"{{"name": "mixed", "duration_ms": 20000,
                "request_reply": [{{"name": "rr", "requesters": 3, "responders": 8, "reply_queue": "{queue}", "pending": "{pending}",
                  "schedule": {{"kind": "fixed_rate", "interval_ms": 250, "count": 60}},
                  "processing": {{"kind": "uniform", "min_ms": 200, "max_ms": 600}}}}],
                "script": [{{"at_ms": 7120, "op": "kill_requester", "system": "rr", "requester": "rr.requester-1"}}]}}"#
        )
    };
    let (sim, trace) = run_traced(Scenario::from_json(&json("shared", "local")).expect("valid"), 4);
    let stats = sim.request_summaries()[0].stats;
    let not_in_table = trace
        .iter()
        .filter(|e| matches!(e, TraceEvent::ReplyUnmatched { reason: UnmatchedReason::NotInTable, .. }))
        .count();
    assert!(
        stats.orphaned > 0 && not_in_table as u64 == stats.orphaned,
        "survivors read replies they cannot match: {stats:?}"
    );
    let (sim, _) = run_traced(Scenario::from_json(&json("per_instance", "shared")).expect("valid"), 4);
    let stats = sim.request_summaries()[0].stats;
    assert!(stats.orphaned > 0, "a dead instance's own reply queue: {stats:?}");
}

/// Timeouts: a request still pending at its timeout is sent again with a fresh correlation id;
/// a reply to the old id is late, never matched.
#[test]
fn a_timed_out_request_is_retried_with_a_fresh_correlation_id() {
    let json = r#"{"name": "timeouts", "duration_ms": 30000,
        "request_reply": [{"name": "rr", "requesters": 2, "responders": 1, "reply_queue": "shared", "pending": "shared",
          "schedule": {"kind": "fixed_rate", "interval_ms": 1000, "count": 10}, "timeout_ms": 1500, "retries": 2,
          "processing": {"kind": "uniform", "min_ms": 500, "max_ms": 2500}}]}"#;
    let (sim, trace) = run_traced(Scenario::from_json(json).expect("valid"), 9);
    let stats = sim.request_summaries()[0].stats;
    assert!(stats.timed_out > 0 && stats.retried > 0 && stats.late > 0, "{stats:?}");
    let corrs: Vec<u32> = trace
        .iter()
        .filter_map(|e| match *e {
            TraceEvent::RequestSent { corr, .. } => Some(corr),
            _ => None,
        })
        .collect();
    let mut unique = corrs.clone();
    unique.dedup();
    assert_eq!(unique.len(), corrs.len(), "every request, retries included, has its own correlation id");
    assert_eq!(stats.sent, stats.matched + stats.timed_out, "each request is answered once or times out: {stats:?}");
}

/// The saga log of one instance, as lines without their time.
fn saga_log(sim: &Sim, trace: &[TraceEvent], saga: u32, instance: u32) -> Vec<String> {
    trace
        .iter()
        .filter(|e| matches!(e, TraceEvent::SagaEvent { saga: s, instance: i, .. } if *s == saga && *i == instance))
        .map(|e| {
            brokerlab::readable::line(e, sim.scenario())
                .to_string()
                .split_once(": ")
                .map(|(_, l)| l.to_string())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn the_happy_path_completes_every_saga_in_order() {
    let (sim, trace) = run("saga-happy-path");
    let block = &sim.workflows().sagas[0];
    assert_eq!(block.stats.started, 12);
    assert_eq!(block.stats.completed, 12);
    assert!(block.instances.iter().all(|s| s.status == SagaStatus::Completed));
    assert_eq!(
        saga_log(&sim, &trace, 0, 0),
        ["started", "order.created", "payment.succeeded", "inventory.reserved", "completed"]
    );
}

/// The seed's choreography example: order.created → payment.succeeded → inventory.failed →
/// payment.refunded → order.cancelled.
#[test]
fn a_failed_inventory_step_is_compensated_newest_first() {
    let (sim, trace) = run("saga-compensation");
    let block = &sim.workflows().sagas[0];
    assert!(block.stats.compensated > 0 && block.stats.completed > 0, "{:?}", block.stats);
    assert_eq!(
        block.stats.completed + block.stats.compensated,
        block.stats.started,
        "every saga ends one way or the other"
    );
    let failed = block.instances.iter().position(|s| s.status == SagaStatus::Compensated).expect("one compensated");
    assert_eq!(
        saga_log(&sim, &trace, 0, u32::try_from(failed).expect("small")),
        [
            "started",
            "order.created",
            "payment.succeeded",
            "inventory.failed",
            "payment.refunded",
            "order.cancelled",
            "fully compensated"
        ]
    );
    let windows = &sim.saga_summaries(&[])[0].windows;
    assert!(windows[1].compensated > 0 && windows[1].longest_ms > 0.0, "charged, not yet refunded: a duration");
}

#[test]
fn a_flaky_compensation_is_retried_and_one_that_never_succeeds_leaves_the_saga_stuck() {
    let (sim, trace) = run("saga-compensation-retry");
    let block = &sim.workflows().sagas[0];
    assert!(block.stats.compensated > 0 && block.stats.stuck > 0, "{:?}", block.stats);
    let retried = trace.iter().filter(|e| matches!(e, TraceEvent::Failed { .. })).count();
    assert!(retried > 10, "compensation attempts failed and were retried: {retried}");
    let stuck = trace.iter().filter(|e| matches!(e, TraceEvent::SagaEvent { note: SagaNote::Stuck, .. })).count();
    let dead = trace.iter().filter(|e| matches!(e, TraceEvent::DeadLettered { .. })).count();
    assert_eq!(stuck as u64, block.stats.stuck);
    assert!(dead >= stuck, "each stuck saga has a message in a DLQ");
    // D3: a refund's backoff keeps it in payment's hands (prefetch 1), so a few sagas are
    // still under way at the end; every saga is in exactly one of the five.
    let summary = &sim.saga_summaries(&[])[0];
    let s = block.stats;
    assert_eq!(s.completed + s.compensated + s.stuck + summary.running + summary.compensating, s.started);
    assert!(summary.running + summary.compensating < s.started / 4, "most sagas finished: {summary:?}");
}

#[test]
fn a_duplicate_event_is_skipped_by_an_idempotent_handler_and_runs_twice_otherwise() {
    let (sim, _) = run("saga-duplicates");
    let (idem, naive) = (&sim.workflows().sagas[0].stats, &sim.workflows().sagas[1].stats);
    assert!(idem.duplicates_sent > 0 && idem.applied_twice == 0, "{idem:?}");
    assert!(naive.duplicates_sent > 0 && naive.applied_twice == naive.duplicates_sent, "{naive:?}");
    assert!(sim.stats().duplicates_suppressed >= idem.duplicates_sent);
}

#[test]
fn orchestration_and_choreography_compensate_the_same_way_and_never_past_the_pivot() {
    let (sim, trace) = run("saga-styles");
    for (b, block) in sim.workflows().sagas.iter().enumerate() {
        assert!(block.stats.compensated > 0 && block.stats.completed > 0, "block {b}: {:?}", block.stats);
        for s in &block.instances {
            assert!(s.steps[3].compensated_at.is_none(), "shipping, after the pivot, is never compensated");
        }
        let compensated = block.instances.iter().position(|s| s.status == SagaStatus::Compensated).expect("one");
        let log = saga_log(&sim, &trace, u32::try_from(b).expect("small"), u32::try_from(compensated).expect("small"));
        assert_eq!(
            log[3..],
            ["inventory.failed", "payment.refunded", "order.cancelled", "fully compensated"],
            "block {b}"
        );
    }
    let orchestrated = trace.iter().filter(|e| matches!(e, TraceEvent::Published { queue, .. } if sim.scenario().queues[(*queue).index()].name == "orch.orchestrator")).count();
    assert!(orchestrated > 24, "every reply goes through the orchestrator");
}

/// Runs preset `id` (its own seed) to its beat `k` and returns the sagas' summaries there.
fn at_beat(id: &str, k: u32) -> (Sim, Vec<brokerlab::workflow::SagaSummary>) {
    let scenario = load(id);
    let (seed, end) = (scenario.seed.expect("presets carry their seed"), scenario.end());
    let mut sim = Sim::new(scenario, seed);
    while let Some(reached) = sim.run_to_beat(end, u64::MAX).expect("runs") {
        if reached == k {
            let summaries = sim.saga_summaries(&[]);
            return (sim, summaries);
        }
    }
    panic!("{id}: beat {k} never reached");
}

fn states(focus: &brokerlab::workflow::FocusView) -> Vec<(&str, &str)> {
    focus.nodes.iter().map(|n| (n.state.as_str(), n.kind)).collect()
}

/// The saga in focus, as the canvas draws it (issue 23): at the beat where payment refunds,
/// the failing saga is in focus, each service holds its local state, and the window of
/// inconsistency (created, not yet cancelled) is open since the order was created. The page
/// shows the same (an e2e test reads the page's view and compares it with the CLI's).
#[test]
fn the_saga_in_focus_shows_each_services_state_and_the_open_window() {
    let (sim, s) = at_beat("saga-compensation", 1);
    let focus = s[0].focus.as_ref().expect("a saga in focus");
    assert_eq!(focus.status, SagaStatus::Compensating);
    assert!(!focus.selected);
    assert_eq!(states(focus), [("created", "done"), ("refunded", "undone"), ("failed", "failed")]);
    assert_eq!(focus.orchestrator, None, "choreography has no orchestrator");
    let window = focus.window.as_ref().expect("open");
    assert_eq!((window.steps.as_slice(), window.text.as_str()), ([0].as_slice(), "created, not yet cancelled"));
    let block = &sim.workflows().sagas[0].instances[focus.instance as usize];
    let done = block.steps[0].done_at.expect("done").as_millis_f64();
    assert!((window.since_ms - done).abs() < 1e-9, "the window opened when the order was created: {window:?}");
    // The others, per status, add up with the one in focus to every saga started.
    let o = s[0].others;
    assert_eq!(o.running + o.compensating + o.completed + o.compensated + o.stuck + 1, s[0].stats.started);
    // The compensation in flight: payment.refunded, from payment back to order.
    let spec = &sim.scenario().sagas[0];
    let refund = spec.flight(brokerlab::workflow::SagaMsg::Undone(1));
    assert_eq!((refund.name.as_str(), refund.from, refund.to, refund.compensation), ("payment.refunded", 1, 0, true));

    // Orchestration: the orchestrator hears inventory.failed and is undoing payment; the window
    // is the charge.
    let (sim, s) = at_beat("saga-styles", 3);
    let focus = s[1].focus.as_ref().expect("a saga in focus");
    assert_eq!(states(focus)[1..3], [("charged", "done"), ("failed", "failed")]);
    assert_eq!(focus.orchestrator.as_deref(), Some("undoing payment"));
    assert_eq!(focus.window.as_ref().map(|w| w.text.as_str()), Some("charged, not yet refunded"));
    let spec = &sim.scenario().sagas[1];
    let failed = spec.flight(brokerlab::workflow::SagaMsg::Failed(2));
    assert_eq!((failed.name.as_str(), failed.to), ("inventory.failed", brokerlab::workflow::orchestrator(4)));
    assert_eq!(spec.flight(brokerlab::workflow::SagaMsg::Undo(1)).name, "undo payment");

    // A saga stuck in a DLQ is pinned first in the list and counted on the node whose
    // compensation (a refund or a cancellation) went there.
    let (_, s) = at_beat("saga-compensation-retry", 3);
    assert_eq!(s[0].recent[0].status, SagaStatus::Stuck, "stuck sagas are pinned at the top");
    assert_eq!(s[0].stuck_on.iter().sum::<u64>(), 1, "{:?}", s[0].stuck_on);
    let held = s[0].stuck_on.iter().position(|&c| c == 1).expect("one");
    assert!(held < 2, "only order and payment compensate: {:?}", s[0].stuck_on);
    let focus = s[0].focus.as_ref().expect("a saga in focus");
    assert!(focus.status == SagaStatus::Stuck && focus.nodes[held].stuck, "the stuck saga is in focus: {focus:?}");
}
