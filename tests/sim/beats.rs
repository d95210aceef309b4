//! Narrative beats: anchored to events, resolved by the run, the same however it is driven;
//! a beat that never happens is reported with its path; bad anchors and expects are refused
//! with theirs.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use brokerlab::fields::EVENTS;
use brokerlab::scenario::presets;
use brokerlab::{Scenario, Sim, SimTime, TraceEvent};
use serde_json::json;

/// A poison message (m4) crashes its worker on each receive until SQS dead-letters it; a fix
/// and a redrive follow. Beats by event, by counter and by time, in one narration.
fn poison(markers: serde_json::Value) -> Scenario {
    let doc = json!({
        "name": "poison", "seed": 9, "duration_ms": 40000, "network": { "latency_ms": 80 },
        "queues": [{ "name": "orders", "lease": { "model": "sqs", "visibility_timeout_ms": 3000, "max_receive_count": 3 } }],
        "producers": [{ "name": "checkout", "to": "orders",
                        "schedule": { "kind": "fixed_rate", "interval_ms": 800, "count": 20 }, "poison": [4] }],
        "consumers": [{ "name": "worker", "from": "orders", "restart_ms": 1000,
                        "processing": { "kind": "uniform", "min_ms": 300, "max_ms": 600 } }],
        "script": [{ "at_ms": 25000, "op": "deploy_fix", "consumer": "worker" },
                   { "at_ms": 27000, "op": "redrive", "from": "orders.dlq" }],
        "markers": markers
    });
    Scenario::from_json(&doc.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

fn narration() -> serde_json::Value {
    json!([
        { "on": { "event": "delivered", "msg": "m4" }, "text": "m4 is handed out",
          "expect": { "msg": 4, "state": "delivering" } },
        { "on": { "event": "consumer_crashed", "consumer": "worker", "nth": 2 }, "text": "second crash",
          "expect": { "consumer": "worker", "state": "crashed" } },
        { "on": { "event": "dead_lettered", "queue": "orders" }, "text": "to the DLQ",
          "expect": [{ "queue": "orders.dlq", "dead_lettered_at_least": 1 }, { "counter": "dead_lettered", "at_least": 1 }] },
        { "at_ms": 25000, "text": "the fix" },
        { "on": { "event": "redriven", "to": "orders" }, "text": "redriven",
          "expect": { "queue": "orders.dlq", "dead_lettered_at_most": 0 } }
    ])
}

fn times_of(trace: &[TraceEvent], kind: &str) -> Vec<SimTime> {
    trace.iter().filter(|e| e.kind() == kind).map(TraceEvent::at).collect()
}

#[test]
fn beats_by_event_stop_the_run_at_the_end_of_their_instant() {
    let scenario = poison(narration());
    let end = scenario.end();
    let mut whole = Sim::new(scenario.clone(), 9);
    whole.run_until(end, u64::MAX).expect("runs");
    let trace = whole.drain_trace();
    let crashes = times_of(&trace, "consumer_crashed");
    let want = [
        times_of(&trace, "delivered")[4], // m0..m3 went first
        crashes[1],
        times_of(&trace, "dead_lettered")[0],
        SimTime::from_millis(25_000),
        times_of(&trace, "redriven")[0],
    ];
    let mut sim = Sim::new(scenario.clone(), 9);
    let mut stops = Vec::new();
    while let Some(k) = sim.run_to_beat(end, u64::MAX).expect("runs") {
        assert_eq!(k as usize, stops.len(), "beats come in order");
        stops.push(sim.now());
        // The run stands after every event of the beat's instant, and before any later one.
        assert!(sim.next_event_at().is_none_or(|t| t > sim.now()), "beat {k}: the instant is finished");
        assert_eq!(sim.expect_failures(&sim.scenario().markers[k as usize].expect), Vec::<String>::new());
        // A seek to the same moment (a fresh run to that time) stands exactly there too.
        let mut seek = Sim::new(scenario.clone(), 9);
        seek.run_until(sim.now(), u64::MAX).expect("runs");
        assert_eq!(seek.trace_hash(), sim.trace_hash(), "beat {k}: the same trace so far");
        assert_eq!(seek.beats_reached(), sim.beats_reached(), "beat {k}: the same beats reached");
    }
    assert_eq!(stops, want);
    assert_eq!(sim.trace_hash(), whole.trace_hash(), "stopping at beats changes nothing in the run");
    assert_eq!(whole.beats_reached(), want.map(Some).as_slice(), "a run straight through reaches them too");
    assert!(whole.beats().iter().all(|b| b.missed.is_none()));
}

#[test]
fn only_what_happens_after_the_previous_beat_counts() {
    // The first crash is beat 1; "the next crash" is then the second, not the first again,
    // and a beat on a delivery in the same instant as the dead letter waits for a later one.
    let scenario = poison(json!([
        { "on": { "event": "consumer_crashed" }, "text": "a crash" },
        { "on": { "event": "consumer_crashed" }, "text": "the next crash" },
        { "on": { "event": "dead_lettered" }, "text": "to the DLQ" },
        { "on": { "event": "enqueued", "queue": "orders.dlq" }, "text": "visible in the DLQ" }
    ]));
    let end = scenario.end();
    let mut sim = Sim::new(scenario, 9);
    sim.run_until(end, u64::MAX).expect("runs");
    let trace = sim.drain_trace();
    let crashes = times_of(&trace, "consumer_crashed");
    let reached = sim.beats_reached().to_vec();
    assert_eq!(reached[..2], [Some(crashes[0]), Some(crashes[1])]);
    // The DLQ's enqueue is in the dead letter's instant, and nothing reaches it later.
    assert_eq!(reached.len(), 3);
    let report = sim.beats();
    let missed = report[3].missed.as_deref().expect("reported");
    assert!(
        missed.starts_with("markers[3].on: an enqueued (queue orders.dlq) after beat 3 (12.6 s) never happened"),
        "{missed}"
    );
    assert!(missed.ends_with("in this run (seed 9)"), "{missed}");
}

#[test]
fn a_beat_that_never_happens_is_reported_with_its_path_and_holds_up_the_rest() {
    let scenario = poison(json!([
        { "on": { "event": "expired", "queue": "orders" }, "text": "never: SQS keeps messages 4 days" },
        { "at_ms": 30000, "text": "after it" }
    ]));
    let end = scenario.end();
    let mut sim = Sim::new(scenario, 3);
    // Before the end it is only not yet reached.
    sim.run_until(SimTime::from_millis(20_000), u64::MAX).expect("runs");
    assert_eq!(sim.beats()[0].missed, None);
    sim.run_until(end, u64::MAX).expect("runs");
    let report = sim.beats();
    assert_eq!(
        report[0].missed.as_deref(),
        Some("markers[0].on: an expired (queue orders) never happened in this run (seed 3)")
    );
    assert_eq!(report[1].missed.as_deref(), Some("markers[1]: not reached, because markers[0] never happened"));
}

#[test]
fn a_beat_by_time_before_the_beat_before_it_is_skipped_and_reported() {
    let scenario = poison(json!([
        { "on": { "event": "dead_lettered" }, "text": "to the DLQ (12.6 s)" },
        { "at_ms": 10000, "text": "too early for its place" },
        { "at_ms": 30000, "text": "still reached" }
    ]));
    let end = scenario.end();
    let mut sim = Sim::new(scenario, 9);
    let mut stops = Vec::new();
    while let Some(k) = sim.run_to_beat(end, u64::MAX).expect("runs") {
        stops.push((k, sim.now().as_millis_f64()));
    }
    assert_eq!(stops.len(), 2);
    assert_eq!(stops[1], (2, 30_000.0));
    let report = sim.beats();
    assert_eq!(
        report[1].missed.as_deref(),
        Some("markers[1].at_ms: 10.0 s comes before beat 1, which this run reached at 12.6 s")
    );
}

#[test]
fn a_counter_beat_resolves_when_the_counter_moves() {
    let scenario = poison(json!([
        { "on": { "counter": "dead_lettered" }, "text": "the DLQ counter moves" },
        { "on": { "counter": "dead_lettered" }, "text": "and never again (redriven)" }
    ]));
    let end = scenario.end();
    let mut sim = Sim::new(scenario, 9);
    let first = sim.run_to_beat(end, u64::MAX).expect("runs");
    assert_eq!(first, Some(0));
    assert_eq!(sim.counters().dead_lettered, 1);
    let dead_at = sim.now();
    assert_eq!(sim.run_to_beat(end, u64::MAX).expect("runs"), None);
    assert_eq!(sim.beats_reached(), [Some(dead_at)]);
    let missed = sim.beats()[1].missed.clone().expect("reported");
    assert!(missed.starts_with("markers[1].on: dead_lettered never moved to at least 1 after beat 1"), "{missed}");
}

#[test]
fn an_expect_that_does_not_hold_says_what_it_found() {
    let scenario = poison(json!([
        { "on": { "event": "consumer_crashed" }, "text": "a crash",
          "expect": [{ "consumer": "worker", "state": "busy" }, { "queue": "orders", "acked_at_least": 1000 },
                     { "counter": "lost", "at_most": 0 }] }
    ]));
    let end = scenario.end();
    let mut sim = Sim::new(scenario, 9);
    let beats = sim.run_checking_beats(end, u64::MAX).expect("runs");
    assert_eq!(
        beats[0].failed,
        ["markers[0].expect[0].state: is crashed", "markers[0].expect[1].acked_at_least: is 4, not at least 1000"]
    );
}

#[test]
fn the_event_table_is_what_the_events_serialize_to() {
    let mut seen = std::collections::BTreeSet::new();
    // The presets, and a fault the presets never make: a delivery lost on its way.
    let lost = r#"{"name": "lost", "duration_ms": 10000, "network": {"latency_ms": 100},
        "queues": [{"name": "q"}], "consumers": [{"name": "c", "from": "q"}],
        "producers": [{"name": "p", "to": "q", "schedule": {"kind": "fixed_rate", "interval_ms": 1000, "count": 1}}],
        "script": [{"at_ms": 150, "op": "drop_delivery", "msg": "m0"}]}"#;
    let sources: Vec<&str> = presets().iter().map(|p| p.json).chain([lost]).collect();
    for source in sources {
        let scenario = Scenario::from_json(source).expect("valid");
        let end = scenario.end().min(SimTime::from_millis(60_000));
        let mut sim = Sim::new(scenario, 1);
        sim.run_until(end, 5_000_000).expect("runs");
        for e in sim.drain_trace() {
            if !seen.insert(e.kind()) {
                continue;
            }
            let json = serde_json::to_value(e).expect("json");
            let keys: Vec<&str> = json
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .filter(|k| *k != "kind" && *k != "at_ms")
                .collect();
            let (_, tag, fields) = EVENTS.iter().find(|(k, _, _)| *k == e.kind()).expect("every kind is listed");
            // A reason's code sits beside its text (`reason_code`), for the page's fold.
            let (codes, keys): (Vec<&str>, Vec<&str>) = keys.into_iter().partition(|k| k.ends_with("_code"));
            for code in codes {
                let field = code.trim_end_matches("_code");
                assert!(keys.contains(&field), "{}: {code} beside no {field}", e.kind());
            }
            let mut listed: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
            listed.sort_unstable();
            let mut keys = keys;
            keys.sort_unstable();
            assert_eq!(keys, listed, "{}", e.kind());
            // The tag is what an anchor compares: an anchor on this kind catches this event.
            let on = json!([{ "on": { "event": e.kind() }, "text": "t" }]);
            let mut doc: serde_json::Value = serde_json::from_str(source).expect("json");
            doc["markers"] = on;
            let anchored = Scenario::from_json(&doc.to_string()).expect("valid");
            let brokerlab::scenario::Anchor::On(a) = &anchored.markers[0].anchor else { panic!("an event anchor") };
            assert_eq!(a.tag, *tag, "{}", e.kind());
        }
    }
    assert_eq!(EVENTS.len(), 54, "one entry per TraceEvent variant");
    assert!(seen.len() > 35 && seen.contains("delivery_lost"), "the runs show most kinds: {}", seen.len());
}

#[test]
fn bad_beats_are_refused_with_their_path() {
    let cases: &[(serde_json::Value, &str)] = &[
        (json!({ "text": "t" }), "markers[0]: needs at_ms (a moment) or on (an event"),
        (json!({ "at_ms": 1, "on": { "event": "acked" }, "text": "t" }), "markers[0]: has both at_ms and on"),
        (json!({ "on": { "event": "ackd" }, "text": "t" }), "markers[0].on.event: must be one of published, enqueued"),
        (json!({ "on": { "queue": "orders" }, "text": "t" }), "markers[0].on.event: is missing"),
        (
            json!({ "on": { "event": "acked", "partition": 1 }, "text": "t" }),
            "markers[0].on.partition: acked has no field partition; it has msg, queue, consumer",
        ),
        (
            json!({ "on": { "event": "acked", "queue": "nope" }, "text": "t" }),
            "markers[0].on.queue: no queue is named \"nope\"",
        ),
        (
            json!({ "on": { "event": "dead_lettered", "reason": "tired" }, "text": "t" }),
            "markers[0].on.reason: must be one of \"rejected\", \"expired\"",
        ),
        (
            json!({ "on": { "event": "acked", "nth": 0 }, "text": "t" }),
            "markers[0].on.nth: must be a whole number from 1",
        ),
        (
            json!({ "on": { "event": "delivered", "lease_until_ms": 5 }, "text": "t" }),
            "markers[0].on.lease_until_ms: is a time",
        ),
        (
            json!({ "on": { "counter": "lots" }, "text": "t" }),
            "markers[0].on.counter: must be one of lost, applied_twice",
        ),
        (
            json!({ "on": { "counter": "lost", "nth": 2 }, "text": "t" }),
            "markers[0].on.nth: a counter anchor takes only counter and at_least",
        ),
        (json!({ "at_ms": 1, "text": "t", "expect": 3 }), "markers[0].expect: must be an object such as"),
        (
            json!({ "at_ms": 1, "text": "t", "expect": { "at_least": 1 } }),
            "markers[0].expect: must name exactly one of counter",
        ),
        (
            json!({ "at_ms": 1, "text": "t", "expect": { "queue": "orders", "counter": "lost" } }),
            "markers[0].expect: must name exactly one of",
        ),
        (
            json!({ "at_ms": 1, "text": "t", "expect": { "queue": "nope", "ready_at_least": 1 } }),
            "markers[0].expect.queue: must name a queue",
        ),
        (
            json!({ "at_ms": 1, "text": "t", "expect": { "queue": "orders", "happy": true } }),
            "markers[0].expect.happy: is not something a queue has; it takes publishing_at_least",
        ),
        (
            json!({ "at_ms": 1, "text": "t", "expect": { "consumer": "worker", "state": "sleepy" } }),
            "markers[0].expect.state: must be one of crashed, up, busy, idle, standby",
        ),
        (
            json!({ "at_ms": 1, "text": "t", "expect": { "queue": "orders" } }),
            "markers[0].expect: says nothing about its queue",
        ),
        (json!({ "at_ms": 1, "text": "t", "expect": [] }), "markers[0].expect: must have 1 to 8 entries"),
        (
            json!({ "at_ms": 1, "text": "t", "expect": { "counter": "lost", "at_least": -1 } }),
            "markers[0].expect.at_least: must be a whole number from 0",
        ),
    ];
    for (marker, want) in cases {
        let mut doc: serde_json::Value = serde_json::from_str(
            &json!({
                "name": "t", "duration_ms": 1000, "queues": [{ "name": "orders" }],
                "producers": [{ "name": "p", "to": "orders", "schedule": { "kind": "fixed_rate", "interval_ms": 100 } }],
                "consumers": [{ "name": "worker", "from": "orders", "processing": { "kind": "constant", "ms": 5 } }]
            })
            .to_string(),
        )
        .expect("json");
        doc["markers"] = json!([marker]);
        let got = Scenario::from_json(&doc.to_string()).map(|_| ()).map_err(|e| e.to_string());
        assert!(got.as_ref().is_err_and(|e| e.starts_with(want)), "{marker}: got {got:?}\n want {want}…");
    }
}

/// Beats resolve to the same microsecond natively, in Node and in Chromium (tests/browser.rs):
/// every preset's beats for seeds 1 to 5, by family. Regenerate with
/// `cargo run --release -- beats > tests/golden/preset-beats.txt` when a preset's narration or
/// the engine's behaviour changes, and say why in the commit.
const GOLDEN_BEATS: &str = include_str!("../golden/preset-beats.txt");

fn check_family(family: fn(&Scenario) -> bool, presets_at_least: usize) {
    match brokerlab::golden::check_preset_beats(GOLDEN_BEATS, family) {
        Ok(n) => assert!(n >= presets_at_least * 5, "{n} runs checked"),
        Err(wrong) => panic!("{} runs differ, first: {:#?}", wrong.len(), &wrong[..wrong.len().min(5)]),
    }
}

#[test]
fn queue_beats_resolve_to_the_golden_moments() {
    check_family(brokerlab::scenario::Family::Queues.test(), 15);
}

#[test]
fn stream_beats_resolve_to_the_golden_moments() {
    check_family(brokerlab::scenario::Family::Streams.test(), 8);
}

#[test]
fn workflow_beats_resolve_to_the_golden_moments() {
    check_family(brokerlab::scenario::Family::Workflows.test(), 6);
}

/// Shortening a run does not make its later beats an error: they are reported as past the end.
#[test]
fn a_beat_past_the_end_is_reported_not_refused() {
    let mut scenario = poison(json!([
        { "at_ms": 1000, "text": "early" },
        { "at_ms": 50000, "text": "after the 40 s run" }
    ]));
    let end = scenario.end();
    scenario.seed = Some(9);
    let mut sim = Sim::new(scenario, 9);
    sim.run_until(end, u64::MAX).expect("runs");
    let report = sim.beats();
    assert_eq!(report[0].at_ms, Some(1000.0));
    assert_eq!(report[1].missed.as_deref(), Some("markers[1].at_ms: 50.0 s is past the end of the run"));
}
