//! Every strategy against `tests/vectors/backoff.json` (a copy of shared/vectors/backoff.json).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use brokerlab::backoff::{aws_sdk_v2_1_delay_s, delay_ms, Policy, RetryQuota, Strategy};
use brokerlab::TraceEvent;
use serde_json::Value;

const VECTORS: &str = include_str!("../vectors/backoff.json");

fn vectors() -> Value {
    serde_json::from_str(VECTORS).expect("backoff.json parses")
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(got: f64, want: f64, what: &str) {
    let tolerance = 1e-9 * want.abs().max(1.0);
    assert!((got - want).abs() <= tolerance, "{what}: got {got}, want {want}");
}

fn blog(strategy: Strategy, base_ms: f64, cap_ms: f64) -> Policy {
    Policy { strategy, base_ms, multiplier: 2.0, cap_ms, attempts_max: 10 }
}

#[test]
fn aws_blog_exponential_full_and_equal_jitter_match_per_attempt() {
    let v = vectors();
    let blog_vectors = &v["aws_architecture_blog_2015"];
    let mut checked = 0;
    for (key, base, cap) in [("vectors_base5_cap2000", 5.0, 2000.0), ("vectors_base100_cap10000", 100.0, 10000.0)] {
        let rows = blog_vectors[key].as_array().expect("rows");
        assert!(rows.len() >= 8, "{key}");
        for row in rows {
            let attempt = u32::try_from(row["attempt"].as_u64().expect("attempt")).expect("small");
            let at = |s: Strategy, u: f64| delay_ms(&blog(s, base, cap), attempt, base, u);
            close(at(Strategy::Exponential, 0.0), num(&row["exponential"]), &format!("{key} exp a{attempt}"));
            for (name, strategy) in [("full_jitter", Strategy::FullJitter), ("equal_jitter", Strategy::EqualJitter)] {
                let case = &row[name];
                close(at(strategy, 0.0), num(&case["min"]), &format!("{key} {name} a{attempt} min"));
                let max = num(&case["max"]);
                let mean = num(&case["mean"]);
                close((at(strategy, 0.0) + max) / 2.0, mean, &format!("{key} {name} a{attempt} mean"));
                for (u, want) in case["at_u"].as_object().expect("at_u") {
                    let u: f64 = u.parse().expect("u");
                    close(at(strategy, u), num(want), &format!("{key} {name} a{attempt} u={u}"));
                    assert!(at(strategy, u) <= max, "{key} {name} a{attempt} within max");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100, "{checked} values checked");
}

#[test]
fn aws_blog_decorrelated_jitter_replays_and_respects_its_envelope() {
    let v = vectors();
    let b = &v["aws_architecture_blog_2015"];
    let p = blog(Strategy::Decorrelated, 5.0, 2000.0);
    let mut previous = p.base_ms;
    for step in b["decorrelated_replay_base5_cap2000"].as_array().expect("replay") {
        let support = step["support"].as_array().expect("support");
        close(num(&support[1]), previous * 3.0, "support upper bound");
        let sleep = delay_ms(&p, 1, previous, num(&step["u"]));
        close(sleep, num(&step["sleep"]), &format!("step {}", step["step"]));
        previous = sleep;
    }
    // BO-2b: the cap applies after the draw, so once 3·previous > cap, `cap` itself is likely:
    // uniform(5, 3000, 0.9) = 2700.5 → 2000. Capping first would give uniform(5, 2000, 0.9).
    assert_eq!(delay_ms(&p, 1, 1000.0, 0.9).to_bits(), 2000f64.to_bits(), "cap after the draw");
    assert_eq!(delay_ms(&p, 1, 1000.0, 0.5).to_bits(), 1502.5f64.to_bits(), "below the cap, untouched");
    // The upper envelope: u → 1 each time.
    let mut previous = p.base_ms;
    for want in b["decorrelated_upper_envelope_base5_cap2000"].as_array().expect("envelope") {
        let sleep = delay_ms(&p, 1, previous, 1.0 - f64::EPSILON);
        assert!((sleep - num(want)).abs() < 1e-9 * num(want) * 10.0, "envelope {sleep} vs {want}");
        previous = num(want);
    }
}

#[test]
fn grpc_connection_backoff_matches_its_sequence() {
    let v = vectors();
    let g = &v["grpc_connection_backoff"];
    let p = Policy { strategy: Strategy::Grpc, base_ms: 1000.0, multiplier: 1.6, cap_ms: 120_000.0, attempts_max: 20 };
    let seq = g["sequence"].as_array().expect("sequence");
    assert!(seq.len() >= 12);
    for row in seq {
        let index = u32::try_from(row["index"].as_u64().expect("index")).expect("small");
        let at = |u: f64| delay_ms(&p, index + 1, 0.0, u) / 1000.0;
        close(at(0.0), num(&row["wait_min_s"]), &format!("grpc {index} min"));
        close(at(0.5), num(&row["backoff_s"]), &format!("grpc {index} centre"));
        for (u, want) in row["wait_at_u"].as_object().expect("at_u") {
            close(at(u.parse().expect("u")), num(want), &format!("grpc {index} u={u}"));
        }
        assert!(at(0.999_999_9) <= num(&row["wait_max_s"]), "grpc {index} max");
    }
}

#[test]
fn aws_sdk_standard_delays_and_quota_match() {
    let v = vectors();
    let sdk = &v["aws_sdk_standard_retry"];
    let p = Policy { strategy: Strategy::AwsSdkStandard, base_ms: 0.0, multiplier: 2.0, cap_ms: 0.0, attempts_max: 3 };
    let rows = sdk["vectors"].as_array().expect("vectors");
    assert!(rows.len() >= 10);
    for row in rows {
        let attempt = u32::try_from(row["attempt"].as_u64().expect("attempt")).expect("small");
        let u = num(&row["u"]);
        close(delay_ms(&p, attempt, 0.0, u) / 1000.0, num(&row["v2_0_delay_s"]), &format!("2.0 a{attempt} u={u}"));
        close(aws_sdk_v2_1_delay_s(attempt, u, false), num(&row["v2_1_non_throttling_s"]), "2.1 non-throttling");
        close(aws_sdk_v2_1_delay_s(attempt, u, true), num(&row["v2_1_throttling_s"]), "2.1 throttling");
    }
    // 102 retryable failures, no success: 100 retries permitted, the 101st denied, 0 left.
    let q = &sdk["quota_vector"];
    let mut quota = RetryQuota::default();
    let mut permitted = 0;
    let mut first_denied = None;
    for i in 1..=102u64 {
        match quota.acquire(false) {
            Some(_) => permitted += 1,
            None => {
                first_denied.get_or_insert(i);
            }
        }
    }
    assert_eq!(permitted, q["retries_permitted"].as_u64().expect("n"));
    assert_eq!(first_denied, q["first_denied_retry_index"].as_u64());
    assert_eq!(u64::from(quota.capacity), q["capacity_after"].as_u64().expect("n"));
    quota.release(Some(RetryQuota::RETRY_COST));
    assert_eq!(quota.capacity, 5, "a success after a retry refunds what it acquired");
}

#[test]
fn immediate_and_fixed_are_what_they_say() {
    let p = blog(Strategy::Fixed, 250.0, 1000.0);
    assert_eq!(delay_ms(&p, 7, 250.0, 0.3).to_bits(), 250f64.to_bits());
    let p = blog(Strategy::Immediate, 250.0, 1000.0);
    assert_eq!(delay_ms(&p, 7, 250.0, 0.3).to_bits(), 0f64.to_bits());
    let p = blog(Strategy::Exponential, 5.0, 2000.0);
    assert_eq!(delay_ms(&p, 1_000_000, 5.0, 0.0).to_bits(), 2000f64.to_bits(), "a huge attempt is capped, fast");
}

/// BO-3's experiment in the engine: `clients` messages at t = 0, each one client's single
/// update of one row under optimistic concurrency (read, then write if the version is
/// unchanged), network hops of |N(10 ms, 2 ms)|, base 5 ms and cap 2 s. Returns (calls, the
/// time of the last successful write in ms): calls are the write attempts the row saw.
fn occ_contention(strategy: &str, clients: u32, seed: u64) -> (u64, f64) {
    let json = format!(
        r#"{{"name": "OCC contention", "seed": 1, "duration_ms": 600000,
            "dependencies": [{{"name": "row", "optimistic": {{"hop": {{"kind": "normal", "mean_ms": 10, "sd_ms": 2}}}}}}],
            "queues": [{{"name": "updates"}}],
            "producers": [{{"name": "clients", "to": "updates", "schedule": {{"kind": "scripted", "at_ms": [{}]}}}}],
            "consumers": [{{"name": "client", "from": "updates", "prefetch": {clients}, "concurrency": {clients},
                           "dependency": "row", "processing": {{"kind": "constant", "ms": 0}},
                           "retry": {{"strategy": "{strategy}", "base_ms": 5, "cap_ms": 2000, "attempts_max": 1000}}}}]}}"#,
        vec!["0"; clients as usize].join(",")
    );
    let scenario = brokerlab::Scenario::from_json(&json).expect("valid");
    let (sim, trace) = crate::run_traced(scenario, seed);
    let (mut calls, mut conflicts, mut done) = (0u64, 0u64, 0.0f64);
    for event in &trace {
        match event {
            TraceEvent::Failed { error: brokerlab::trace::ErrorClass::Conflict, .. } => {
                calls += 1;
                conflicts += 1;
            }
            TraceEvent::EffectApplied { at, .. } => {
                calls += 1;
                done = done.max(at.as_millis_f64());
            }
            _ => {}
        }
    }
    assert_eq!(sim.stats().effects_applied, u64::from(clients), "{strategy}: every client's update lands once");
    assert_eq!(calls - conflicts, u64::from(clients), "{strategy}: one successful write per client");
    (calls, done)
}

/// BO-4, and the table of `simulation_reproduction` (a seeded port of the blog's simulator):
/// with 100 clients, un-jittered exponential backoff does the most work of the backoffs and
/// takes by far the longest; Full and Equal Jitter take about the same number of calls, and
/// Decorrelated more; Equal Jitter is the slowest jitter; no backoff at all is fastest and
/// costs the most calls. Means over 12 seeds, each within 10% of the port's mean of 100 runs:
/// they land within 4%, and leaving out one hop (a conflict's reply) already misses by 26%.
#[test]
#[allow(clippy::print_stdout)]
fn the_aws_contention_experiment_reproduces_the_blogs_findings() {
    let v = vectors();
    let table = v["aws_architecture_blog_2015"]["simulation_reproduction"]["results"].as_array().expect("results");
    let want = |algorithm: &str| {
        let row = table
            .iter()
            .find(|r| r["clients"] == 100 && r["algorithm"] == algorithm)
            .unwrap_or_else(|| panic!("{algorithm} at 100 clients"));
        (num(&row["mean_calls"]), num(&row["mean_completion_time_ms"]))
    };
    let seeds = 12u32;
    let mut got = std::collections::BTreeMap::new();
    for (strategy, algorithm) in [
        ("exponential", "Exponential"),
        ("decorrelated_jitter", "Decorr"),
        ("equal_jitter", "EqualJitter"),
        ("full_jitter", "FullJitter"),
        ("immediate", "None"),
    ] {
        let (mut calls, mut time) = (0.0, 0.0);
        for seed in 0..seeds {
            let (c, t) = occ_contention(strategy, 100, u64::from(seed) + 1);
            #[allow(clippy::cast_precision_loss)]
            let c = c as f64;
            (calls, time) = (calls + c, time + t);
        }
        let (calls, time) = (calls / f64::from(seeds), time / f64::from(seeds));
        let (want_calls, want_time) = want(algorithm);
        println!("{algorithm}: {calls:.0} calls (port {want_calls:.0}), {time:.0} ms (port {want_time:.0})");
        assert!((calls / want_calls - 1.0).abs() < 0.10, "{algorithm}: {calls:.0} calls vs the port's {want_calls:.0}");
        assert!((time / want_time - 1.0).abs() < 0.10, "{algorithm}: {time:.0} ms vs the port's {want_time:.0}");
        got.insert(algorithm, (calls, time));
    }
    let (calls, time) = (|a: &str| got[a].0, |a: &str| got[a].1);
    // BO-4, in the blog's words.
    assert!(calls("Exponential") > 2.0 * calls("FullJitter"), "Full Jitter cut the calls by more than half");
    assert!(time("Exponential") > 5.0 * time("FullJitter"), "and improved the time to completion");
    assert!((calls("FullJitter") / calls("EqualJitter") - 1.0).abs() < 0.1, "Full and Equal: about the same work");
    assert!(calls("Decorr") > calls("FullJitter"), "Decorrelated: more calls");
    assert!(time("EqualJitter") > time("FullJitter") && time("EqualJitter") > time("Decorr"), "Equal: the slow jitter");
    assert!(calls("None") > calls("Exponential") && time("None") < time("FullJitter"), "no backoff: fast, costly");
}

/// OCC's guarantee, read off the trace: the writes that succeed on one row are serial. With a
/// constant hop `h`, a call started at `S` reads at `S + h`, so no other write may land between
/// its read and its own write. Crashes included: one after the effect still wrote the row, and
/// its write had to pass the same check.
#[test]
fn successful_writes_on_an_optimistic_row_never_overlap_a_read_and_its_write() {
    let json = format!(
        r#"{{"name": "OCC with crashes", "seed": 1, "duration_ms": 120000,
            "dependencies": [{{"name": "row", "optimistic": {{"hop": {{"kind": "constant", "ms": 10}}}}}}],
            "queues": [{{"name": "updates", "lease": {{"model": "sqs", "visibility_timeout_ms": 1000}}}}],
            "producers": [{{"name": "clients", "to": "updates", "schedule": {{"kind": "scripted", "at_ms": [{}]}}}}],
            "consumers": [{{"name": "client", "from": "updates", "prefetch": 20, "concurrency": 20, "restart_ms": 50,
                           "dependency": "row", "processing": {{"kind": "uniform", "min_ms": 0, "max_ms": 5}},
                           "outcomes": {{"crash": 0.3}},
                           "retry": {{"strategy": "full_jitter", "base_ms": 5, "cap_ms": 500, "attempts_max": 1000}}}}]}}"#,
        ["0"; 20].join(",")
    );
    let (mut crashed_after_writing, mut writes) = (0, 0);
    for seed in 1..=20 {
        let (_, trace) = crate::run_traced(brokerlab::Scenario::from_json(&json).expect("valid"), seed);
        let mut started = std::collections::BTreeMap::new();
        let mut wrote: Vec<(u64, u64)> = Vec::new(); // (read, write), µs
        for (i, e) in trace.iter().enumerate() {
            match *e {
                TraceEvent::ProcessingStarted { at, msg, .. } => {
                    started.insert(msg, at.as_micros());
                }
                TraceEvent::EffectApplied { at, msg, .. } => {
                    wrote.push((started[&msg] + 10_000, at.as_micros()));
                    let crash = trace[i + 1..].iter().take(3).any(|n| matches!(n, TraceEvent::ConsumerCrashed { .. }));
                    crashed_after_writing += u32::from(crash);
                }
                _ => {}
            }
        }
        for &(read, write) in &wrote {
            let between = wrote.iter().filter(|&&(_, w)| read < w && w < write).count();
            assert_eq!(
                between, 0,
                "seed {seed}: a write landed between a read at {read} µs and its write at {write} µs"
            );
        }
        writes += wrote.len();
    }
    assert!(
        writes >= 400 && crashed_after_writing > 20,
        "{writes} writes, {crashed_after_writing} crashed after writing"
    );
}
