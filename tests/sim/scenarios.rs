//! Scenarios as data: every error names the path and the reason.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use brokerlab::scenario::presets;
use brokerlab::Scenario;

const BASE: &str = r#"{
  "name": "t", "duration_ms": 10000,
  "queues": [{ "name": "q" }], "dependencies": [{ "name": "d" }],
  "producers": [{ "name": "p", "to": "q", "schedule": { "kind": "fixed_rate", "interval_ms": 100 } }],
  "consumers": [{ "name": "c", "from": "q", "processing": { "kind": "constant", "ms": 50 } }]
}"#;

/// BASE with one edit applied at a JSON pointer, then validated; returns the error text.
fn error_after(pointer: &str, value: serde_json::Value) -> String {
    let mut doc: serde_json::Value = serde_json::from_str(BASE).expect("BASE parses");
    match pointer.rsplit_once('/') {
        Some((parent, key)) => {
            let parent = doc.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent}"));
            match parent {
                serde_json::Value::Array(items) => items.push(value),
                serde_json::Value::Object(map) => {
                    map.insert(key.to_string(), value);
                }
                _ => panic!("{pointer} is not in an object or array"),
            }
        }
        None => panic!("bad pointer {pointer}"),
    }
    match Scenario::from_json(&doc.to_string()) {
        Ok(_) => panic!("{pointer} = accepted, expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_base_scenario_and_every_preset_are_valid() {
    Scenario::from_json(BASE).expect("BASE is valid");
    assert!(presets().len() >= 4, "presets: {}", presets().len());
    for p in presets() {
        let s = Scenario::from_json(p.json).unwrap_or_else(|e| panic!("{}: {e}", p.id));
        assert!(!s.description.is_empty(), "{}: a preset says what it teaches", p.id);
    }
}

#[test]
fn prefetch_zero_is_unlimited_on_rabbitmq_and_a_quorum_queue_caps_it_at_2000() {
    // RMQ-3. BASE's queue is RabbitMQ classic.
    let with = |queue: &str, prefetch: u32| {
        let json = BASE
            .replace(r#"{ "name": "q" }"#, queue)
            .replace(r#""from": "q","#, &format!(r#""from": "q", "prefetch": {prefetch},"#));
        Scenario::from_json(&json).map(|s| s.consumers[0].prefetch).map_err(|e| e.to_string())
    };
    let limit = brokerlab::scenario::limits::PREFETCH_MAX;
    assert_eq!(with(r#"{ "name": "q" }"#, 0), Ok(limit), "classic: unlimited, to the engine's limit");
    assert_eq!(with(r#"{ "name": "q" }"#, 5000), Ok(5000));
    let quorum = r#"{ "name": "q", "lease": { "model": "rabbitmq", "queue_type": "quorum" } }"#;
    assert_eq!(with(quorum, 0), Ok(2000), "quorum: unlimited is 2,000");
    assert_eq!(with(quorum, 5000), Ok(2000), "quorum: capped at 2,000");
    assert_eq!(with(quorum, 20), Ok(20));
    let sqs = r#"{ "name": "q", "lease": { "model": "sqs" } }"#;
    assert_eq!(
        with(sqs, 0),
        Err("consumers[0].prefetch: must be at least 1 (0, unlimited, is RabbitMQ's alone)".to_string())
    );
}

#[test]
fn a_rabbitmq_version_picks_the_delivery_limit_rule() {
    // RMQ-16 until 4.2 (the default), RMQ-17 from 4.3.
    use brokerlab::scenario::{LeaseModel, LimitCounts};
    let counts = |version: &str| {
        let json = BASE.replace(
            r#"{ "name": "q" }"#,
            &format!(r#"{{ "name": "q", "lease": {{ "model": "rabbitmq", "queue_type": "quorum"{version} }} }}"#),
        );
        Scenario::from_json(&json).map_err(|e| e.to_string()).map(|s| match s.queues[0].lease {
            LeaseModel::RabbitMq { counts, .. } => counts,
            other => panic!("{other:?}"),
        })
    };
    assert_eq!(counts(""), Ok(LimitCounts::EveryReturn));
    assert_eq!(counts(r#", "version": "4.0""#), Ok(LimitCounts::EveryReturn));
    assert_eq!(counts(r#", "version": "4.3""#), Ok(LimitCounts::FailedDeliveries));
    assert_eq!(counts(r#", "version": "3.10""#), Ok(LimitCounts::EveryReturn));
    assert_eq!(
        counts(r#", "version": "3.13""#),
        Err(r#"queues[0].lease.version: "3.13" is not one of "3.10", "4.0", "4.1", "4.2", "4.3""#.to_string())
    );
    // RMQ-55: 3.10's quorum queues have no default delivery limit; 4.x's is 20 (RMQ-15).
    let limit = |version: &str| {
        let json = BASE.replace(
            r#"{ "name": "q" }"#,
            &format!(r#"{{ "name": "q", "lease": {{ "model": "rabbitmq", "queue_type": "quorum", "version": "{version}" }} }}"#),
        );
        match Scenario::from_json(&json).expect("valid").queues[0].lease {
            LeaseModel::RabbitMq { delivery_limit, .. } => delivery_limit,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!((limit("3.10"), limit("4.0")), (None, Some(20)));
}

#[test]
fn duplicate_detection_is_service_bus_s_from_20_s_to_7_days() {
    // ASB-9; IP-5: SQS FIFO's window is a fixed 5 minutes, RabbitMQ has none.
    let queue = |lease: &str, extra: &str| {
        let json = BASE
            .replace(r#"{ "name": "q" }"#, &format!(r#"{{ "name": "q", "lease": {{ "model": "{lease}" }}{extra} }}"#));
        Scenario::from_json(&json).map(|s| s.queues[0].dedup_window).map_err(|e| e.to_string())
    };
    let window = |ms: u64| Ok(Some(brokerlab::Duration::from_millis(ms)));
    assert_eq!(queue("service_bus", r#", "duplicate_detection_ms": 600000"#), window(600_000));
    assert_eq!(queue("service_bus", r#", "duplicate_detection_ms": 604800000"#), window(604_800_000));
    assert_eq!(queue("service_bus", ""), Ok(None));
    assert_eq!(queue("sqs", r#", "fifo": true"#), window(300_000));
    assert_eq!(
        queue("service_bus", r#", "duplicate_detection_ms": 19999"#),
        Err("queues[0].duplicate_detection_ms: Service Bus's window is from 20 s to 7 days (ASB-9)".to_string())
    );
    assert_eq!(
        queue("rabbitmq", r#", "duplicate_detection_ms": 60000"#),
        Err("queues[0].duplicate_detection_ms: duplicate detection is Service Bus's; SQS FIFO deduplicates for 5 \
             minutes (fifo: true)"
            .to_string())
    );
}

#[test]
fn consumer_priority_is_rabbitmq_s() {
    // RMQ-2: x-priority is an argument of RabbitMQ's basic.consume.
    let with = |queue: &str| {
        let json =
            BASE.replace(r#"{ "name": "q" }"#, queue).replace(r#""from": "q","#, r#""from": "q", "priority": 3,"#);
        Scenario::from_json(&json).map(|s| s.consumers[0].priority).map_err(|e| e.to_string())
    };
    assert_eq!(with(r#"{ "name": "q" }"#), Ok(3));
    assert_eq!(
        with(r#"{ "name": "q", "lease": { "model": "sqs" } }"#),
        Err("consumers[0].priority: consumer priority is RabbitMQ's (x-priority, RMQ-2)".to_string())
    );
}

#[test]
fn sqs_ttl_is_a_retention_period_of_at_least_a_minute_and_never_dead_letters() {
    // SQS-17.
    let queue = |extra: &str| {
        let json = BASE.replace(
            r#"{ "name": "q" }"#,
            &format!(r#"{{ "name": "q", "lease": {{ "model": "sqs" }}, "dead_letter": true{extra} }}"#),
        );
        Scenario::from_json(&json).map(|_| ()).map_err(|e| e.to_string())
    };
    assert_eq!(queue(r#", "ttl_ms": 60000"#), Ok(()));
    assert_eq!(
        queue(r#", "ttl_ms": 59999"#),
        Err("queues[0].ttl_ms: an SQS queue's retention period is at least 60000 ms (SQS-17)".to_string())
    );
    assert_eq!(
        queue(r#", "ttl_ms": 60000, "on_expire": "dead_letter""#),
        Err("queues[0].on_expire: SQS deletes a message past its retention period; it never dead-letters it (SQS-17)"
            .to_string())
    );
    // SQS-13: an SQS DLQ's own retention, with the same floor; no other DLQ has one.
    assert_eq!(queue(r#", "dead_letter_ttl_ms": 60000"#), Ok(()));
    assert_eq!(
        queue(r#", "dead_letter_ttl_ms": 1000"#),
        Err("queues[0].dead_letter_ttl_ms: an SQS queue's retention period is at least 60000 ms (SQS-17)".to_string())
    );
    let other = |lease: &str, extra: &str| {
        let json = BASE.replace(
            r#"{ "name": "q" }"#,
            &format!(r#"{{ "name": "q", "lease": {{ "model": "{lease}" }}, "dead_letter_ttl_ms": 60000{extra} }}"#),
        );
        Scenario::from_json(&json).map(|_| ()).map_err(|e| e.to_string())
    };
    assert_eq!(
        other("service_bus", ""),
        Err("queues[0].dead_letter_ttl_ms: only an SQS dead-letter queue has a retention period of its own \
             (SQS-13); Service Bus's observes no TTL (ASB-6)"
            .to_string())
    );
    assert_eq!(
        other("sqs", ""),
        Err("queues[0].dead_letter_ttl_ms: needs a dead-letter queue (set dead_letter: true)".to_string())
    );
    let send = BASE
        .replace(r#"{ "name": "q" }"#, r#"{ "name": "q", "lease": { "model": "sqs" } }"#)
        .replace(r#""consumers""#, r#""script": [{"at_ms": 0, "op": "send", "to": "q", "ttl_ms": 5000}], "consumers""#);
    assert_eq!(
        Scenario::from_json(&send).map(|_| ()).map_err(|e| e.to_string()),
        Err("script[0].ttl_ms: SQS has no per-message TTL; the queue's retention period applies (SQS-17)".to_string())
    );
}

#[test]
fn errors_name_the_path_and_the_reason() {
    use serde_json::json;
    let cases: &[(&str, serde_json::Value, &str)] = &[
        ("/seed", json!(9_007_199_254_740_992u64), "seed: must be at most 9007199254740991 (2^53 − 1)"),
        ("/seed", json!(-1), "seed: invalid value: integer `-1`, expected a whole number ≥ 0"),
        ("/duration_ms", json!("ten"), "duration_ms: invalid type: string \"ten\", expected a whole number"),
        ("/duration_ms", json!(-5), "duration_ms: must be at least 1"),
        ("/duration_ms", json!(3_153_600_000_000u64), "duration_ms: must be at most 604800000 (7 days)"),
        ("/colour", json!("red"), "colour: unknown field `colour`"),
        ("/queues/0/depth", json!(3), "queues[0].depth: unknown field `depth`, expected one of `name`, `lease`"),
        (
            "/consumers/0/prefetch",
            json!(-1),
            "consumers[0].prefetch: must be at least 1 (0, unlimited, is RabbitMQ's alone)",
        ),
        ("/consumers/0/prefetch", json!(1_000_000), "consumers[0].prefetch: must be at most 10000"),
        ("/consumers/0/from", json!("nope"), "consumers[0].from: no queue is named \"nope\""),
        ("/producers/0/schedule/count", json!(-3), "producers[0].schedule.count: must be at least 1"),
        (
            "/producers/0/schedule/count",
            json!(1_000_000_000_000u64),
            "producers[0].schedule.count: must be at most 2000000",
        ),
        ("/producers/0/schedule/interval_ms", json!(0), "producers[0].schedule.interval_ms: must be at least 0.001"),
        (
            "/producers/0/schedule/interval_ms",
            json!(0.001),
            "producers[0].schedule: would publish about 10000001 messages",
        ),
        ("/producers/0/schedule/kind", json!("fixed_rte"), "producers[0].schedule.kind: unknown variant `fixed_rte`"),
        ("/producers/0/schedule/burst", json!(2), "producers[0].schedule.burst: unknown field `burst`"),
        ("/consumers/0/processing/ms", json!(-1), "consumers[0].processing.ms: must not be negative"),
        (
            "/consumers/0/processing/ms",
            json!("fast"),
            "consumers[0].processing.ms: invalid type: string \"fast\", expected a number",
        ),
        ("/network", json!({ "latency_ms": 1e9 }), "network.latency_ms: must be at most 60000 ms"),
        ("/network", json!({ "latency_ms": 5, "jitter_ms": 1 }), "network.jitter_ms: unknown field `jitter_ms`"),
        (
            "/consumers/1",
            json!({ "name": "c", "from": "q", "processing": { "kind": "constant", "ms": 1 } }),
            "consumers[1].name: \"c\" is already the name of another consumer",
        ),
        (
            "/markers",
            json!([{ "at_ms": 5, "text": "b" }, { "at_ms": 1, "text": "a" }]),
            "markers[1].at_ms: markers must be in time order",
        ),
        ("/markers", json!([{ "at_ms": 5, "text": " " }]), "markers[0].text: must be 1 to 400 characters"),
        (
            "/dependencies",
            json!([{ "name": "row", "optimistic": { "hop": { "kind": "normal", "mean_ms": 10, "sd_ms": -2 } } }]),
            "dependencies[0].optimistic.hop.sd_ms: must not be negative",
        ),
        (
            "/dependencies",
            json!([{ "name": "row", "optimistic": { "hop": { "kind": "gaussian", "mean_ms": 10 } } }]),
            "dependencies[0].optimistic.hop.kind: unknown variant `gaussian`",
        ),
        (
            "/dependencies",
            json!([{ "name": "row", "optimistic": { "delay_ms": 10 } }]),
            "dependencies[0].optimistic.delay_ms: unknown field `delay_ms`",
        ),
        ("/markers", json!([{ "at_ms": 1e12, "text": "late" }]), "markers[0].at_ms: must be at most"),
        (
            "/topics",
            json!([{ "name": "t", "partitions": 65 }]),
            "topics[0].partitions: must be a whole number from 1 to 64",
        ),
        (
            "/alerts",
            json!([{ "name": "a", "queue": "nope", "above": 1 }]),
            "alerts[0].queue: no queue is named \"nope\"",
        ),
        ("/alerts", json!([{ "name": "a", "above": 1 }]), "alerts[0]: must name exactly one of queue, group"),
        (
            "/alerts",
            json!([{ "name": "a", "queue": "q", "above": -1 }]),
            "alerts[0].above: must be a whole number from 0",
        ),
        (
            "/alerts",
            json!([{ "name": "a", "queue": "q", "above": 1 }, { "name": "a", "queue": "q", "above": 2 }]),
            "alerts[1].name: \"a\" is already the name of another alert",
        ),
        (
            "/consumers/0/version_check",
            json!(true),
            "consumers[0].version_check: a version check is on a set: add \"effect\": \"set\"",
        ),
        (
            "/consumers/0/circuit_breaker",
            json!({ "window": 10 }),
            "consumers[0].circuit_breaker: a circuit breaker wraps calls to a dependency; name one",
        ),
        (
            "/consumers/1",
            json!({ "name": "c2", "from": "q", "dependency": "d", "circuit_breaker": { "window": 0 } }),
            "consumers[1].circuit_breaker.window: must be from 1 to 1000",
        ),
        (
            "/consumers/1",
            json!({ "name": "c2", "from": "q", "dependency": "d", "circuit_breaker": { "failure_rate_pct": 101 } }),
            "consumers[1].circuit_breaker.failure_rate_pct: must be from 1 to 100",
        ),
        (
            "/consumers/1",
            json!({ "name": "c2", "from": "q", "dependency": "d", "circuit_breaker": { "wait_open_ms": 0 } }),
            "consumers[1].circuit_breaker.wait_open_ms: must be more than 0",
        ),
        (
            "/consumers/1",
            json!({ "name": "c2", "from": "q", "dependency": "d", "circuit_breaker": { "slow_ms": 10 } }),
            "consumers[1].circuit_breaker.slow_ms: unknown field `slow_ms`",
        ),
        (
            "/sagas",
            json!([{ "name": "s", "style": "choreography", "schedule": { "kind": "fixed_rate", "interval_ms": 100 },
                     "steps": [{ "service": "a", "done": "a.done" }] }]),
            "sagas[0].steps: needs at least 2 entries",
        ),
    ];
    for (pointer, value, want) in cases {
        let got = error_after(pointer, value.clone());
        assert!(got.starts_with(want), "{pointer}: got  {got}\n want {want}…");
    }
}

#[test]
fn absurd_sizes_are_refused() {
    let many = serde_json::json!({ "name": "c", "from": "q", "processing": { "kind": "constant", "ms": 1 } });
    let mut doc: serde_json::Value = serde_json::from_str(BASE).expect("BASE parses");
    doc["consumers"] = serde_json::Value::Array(vec![many; 300]);
    let err = Scenario::from_json(&doc.to_string()).expect_err("300 consumers");
    assert_eq!(err.to_string(), "consumers: has 300 entries; the limit is 256");

    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(2 << 20));
    let err = Scenario::from_json(&huge).expect_err("2 MiB");
    assert_eq!(err.to_string(), "scenario: is 2097164 bytes; the limit is 1048576 bytes");
}

#[test]
fn syntax_errors_and_non_objects_are_located() {
    let err = Scenario::from_json("{\"name\": ").expect_err("truncated");
    assert_eq!(err.to_string(), "name: EOF while parsing a value at line 1 column 9");
    let err = Scenario::from_json("{\"name\": \"x\",, }").expect_err("double comma");
    assert_eq!(err.to_string(), "scenario: key must be a string at line 1 column 14");
    let err = Scenario::from_json("[]").expect_err("array");
    assert_eq!(err.to_string(), "scenario: must be a JSON object, starting with {");
    let err = Scenario::from_json(&BASE.replace(r#"[{ "name": "q" }]"#, "[7]")).expect_err("number queue");
    assert_eq!(err.to_string(), "queues[0]: invalid type: integer `7`, expected an object");
    let text = BASE.replace(r#"{ "kind": "constant", "ms": 50 }"#, "7");
    let err = Scenario::from_json(&text).expect_err("number for an object");
    assert_eq!(err.to_string(), "consumers[0].processing: must be an object with a \"kind\" field");
}

/// Live inputs are script steps without a time, checked against the scenario's names.
#[test]
fn live_inputs_are_checked_against_the_scenario() {
    let s = crate::load("competing-consumers");
    assert!(matches!(
        s.live_op(r#"{"op": "crash", "consumer": "worker-2"}"#),
        Ok(brokerlab::scenario::Op::Crash { consumer: 1 })
    ));
    let e = s.live_op(r#"{"op": "crash", "consumer": "worker-9"}"#).expect_err("no such consumer");
    assert_eq!(e.to_string(), "input.consumer: no consumer is named \"worker-9\"");
    let e = s.live_op(r#"{"op": "send", "to": "orders"}"#).expect_err("sends are for scripts");
    assert!(e.to_string().starts_with("input.op: "), "{e}");
    let e = s.live_op("[1]").expect_err("not an object");
    assert!(e.to_string().starts_with("input: "), "{e}");
    let e = s.live_op(r#"{"op": "explode"}"#).expect_err("unknown op");
    assert!(e.to_string().starts_with("input.op: unknown variant `explode`"), "{e}");
}

/// Issue 8, limits: absurd sizes are refused with an error that names the path, never built.
#[test]
fn absurd_sizes_are_refused_with_a_clear_error() {
    use serde_json::json;
    // 10^12 messages, a 100-year run.
    assert!(error_after("/producers/0/schedule/count", json!(1_000_000_000_000u64)).contains("must be at most 2000000"));
    assert!(error_after("/duration_ms", json!(100u64 * 365 * 24 * 3_600_000))
        .contains("must be at most 604800000 (7 days)"));
    // 10^6 consumers: over the size limit long before it is parsed; and one past the count limit.
    let consumer = r#"{"name": "c", "from": "q", "processing": {"kind": "constant", "ms": 1}},"#;
    let million = BASE.replace(r#""consumers": ["#, &format!(r#""consumers": [{}"#, consumer.repeat(1_000_000)));
    let e = Scenario::from_json(&million).expect_err("a million consumers");
    assert_eq!(e.path, "scenario");
    assert!(e.reason.contains("the limit is 1048576 bytes"), "{e}");
    let many: Vec<String> = (0..=brokerlab::scenario::limits::CONSUMERS_MAX)
        .map(|i| consumer.replace(r#""c""#, &format!(r#""c{i}""#)))
        .collect();
    let over = BASE.replace(r#""consumers": ["#, &format!(r#""consumers": [{}"#, many.concat()));
    let e = Scenario::from_json(&over).expect_err("258 consumers");
    assert_eq!(e.to_string(), "consumers: has 258 entries; the limit is 256");
}

#[test]
fn text_after_the_scenario_object_is_refused() {
    // Once accepted by the engine and then refused by the page's JSON.parse.
    let e = Scenario::from_json(&format!("{BASE} {{\"junk\": 1}}")).expect_err("trailing text");
    assert_eq!(e.path, "scenario");
    assert!(e.reason.starts_with("trailing characters"), "{e}");
    Scenario::from_json(&format!("{BASE}\n  ")).expect("trailing whitespace is fine");
}
