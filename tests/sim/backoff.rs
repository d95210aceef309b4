//! Every strategy against `tests/vectors/backoff.json` (a copy of shared/vectors/backoff.json).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use brokerlab::backoff::{aws_sdk_v2_1_delay_s, delay_ms, Policy, RetryQuota, Strategy};
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
