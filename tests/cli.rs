//! The native CLI, as tutorial authors and our checks use it: the real binary, run as a process.
#![cfg(not(target_arch = "wasm32"))]

use std::path::Path;
use std::process::{Command, Output};

fn brokerlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_brokerlab"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the CLI runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn summary(o: &Output) -> serde_json::Value {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(o));
    let last = stdout(o).lines().last().map(str::to_owned).unwrap_or_default();
    serde_json::from_str(if stdout(o).trim_start().starts_with("{\n") { stdout(o) } else { last }.trim())
        .expect("the summary is JSON")
}

#[test]
fn run_prints_a_summary_with_the_golden_hash() {
    let s = summary(&brokerlab(&["run", "scenarios/competing-consumers.json"]));
    assert_eq!(s["trace_hash"], "929b17e78e258e22", "the preset's own seed, 7, and the golden of tests/sim");
    assert_eq!(s["seed"], 7);
    assert_eq!(s["time_ms"], 30000.0);
    assert_eq!(s["queues"][0]["name"], "orders");
    assert_eq!(s["queues"][0]["messages"]["acked"], 72);
    assert_eq!(
        s["stats"]["order_violations"], 6,
        "competing consumers finish some of a customer's orders out of order"
    );
    let counts = s["queues"][0]["messages"].as_object().expect("object");
    let total: u64 = counts.values().filter_map(serde_json::Value::as_u64).sum();
    assert_eq!(serde_json::Value::from(total), s["stats"]["published"], "every message is counted in one state");
}

#[test]
fn the_same_seed_twice_gives_the_same_hash_and_until_ms_stops_early() {
    let a = summary(&brokerlab(&["run", "scenarios/backlog.json", "--seed", "42"]));
    let b = summary(&brokerlab(&["run", "scenarios/backlog.json", "--seed", "42"]));
    let c = summary(&brokerlab(&["run", "scenarios/backlog.json", "--seed", "43"]));
    assert_eq!(a, b);
    assert_ne!(a["trace_hash"], c["trace_hash"]);
    let early = summary(&brokerlab(&["run", "scenarios/backlog.json", "--seed", "42", "--until-ms", "5000"]));
    assert_eq!(early["time_ms"], 5000.0);
    assert!(early["events"].as_u64() < a["events"].as_u64());
    // To the microsecond, as the page shows a beat's moment.
    let fine = summary(&brokerlab(&["run", "scenarios/backlog.json", "--seed", "42", "--until-ms", "5000.25"]));
    assert_eq!(fine["time_ms"], 5000.25);
}

#[test]
fn trace_prints_one_json_line_per_event_then_the_summary() {
    let o = brokerlab(&["run", "scenarios/prefetch-hoarding.json", "--trace"]);
    let out = stdout(&o);
    let lines: Vec<serde_json::Value> =
        out.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    let (summary, events) = lines.split_last().expect("lines");
    assert_eq!(summary["trace_hash"], "b1082a4704a97ee9");
    assert!(events.iter().all(|e| e["kind"].is_string() && e["at_ms"].is_number() && e["line"].is_string()));
    let acked = events.iter().filter(|e| e["kind"] == "acked").count();
    assert_eq!(acked, 24);
    assert_eq!(events[0]["line"], "0.000000s m0 published by batch to jobs (arrives 0.100000s)");
}

#[test]
fn bad_scenarios_exit_2_with_the_path() {
    let dir = std::env::temp_dir().join(format!("brokerlab-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let base = std::fs::read_to_string("scenarios/competing-consumers.json").expect("preset");
    let cases = [
        (
            "wrong-type",
            base.replace("\"duration_ms\": 30000", "\"duration_ms\": \"30s\""),
            "duration_ms: invalid type: string \"30s\", expected a whole number",
        ),
        (
            "unknown-field",
            base.replace("\"prefetch\": 1,", "\"prefetch\": 1, \"prefetch_count\": 2,"),
            "consumers[0].prefetch_count: unknown field `prefetch_count`",
        ),
        (
            "negative-count",
            base.replace("\"interval_ms\": 400", "\"interval_ms\": 400, \"count\": -10"),
            "producers[0].schedule.count: must be at least 1",
        ),
        (
            "absurd-size",
            base.replace("\"interval_ms\": 400", "\"interval_ms\": 400, \"count\": 1000000000000"),
            "producers[0].schedule.count: must be at most 2000000",
        ),
        (
            "absurd-duration",
            base.replace("\"duration_ms\": 30000", "\"duration_ms\": 3153600000000"),
            "duration_ms: must be at most 604800000",
        ),
    ];
    for (name, text, want) in cases {
        assert_ne!(text, base, "{name}: the edit applied");
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, text).expect("write");
        let o = brokerlab(&["run", path.to_str().expect("utf-8 path")]);
        assert_eq!(o.status.code(), Some(2), "{name}");
        assert!(stderr(&o).contains(want), "{name}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{name}: nothing on stdout");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors_exit_2_and_the_budget_exits_3() {
    for args in [
        &["run"][..],
        &["run", "x.json", "--seed", "-1"],
        &["run", "x.json", "--seed", "9007199254740992"],
        &["run", "x.json", "--frobnicate"],
        &["run", "x.json", "--until-ms", "1.2345"],
        &["run", "x.json", "--until-ms", "-5"],
        &["run", "x.json", "--until-ms", "5."],
        &["fly"],
    ] {
        let o = brokerlab(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    let o = brokerlab(&["run", "no/such/file.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read no/such/file.json"));
    let o = brokerlab(&["run", "scenarios/backlog.json", "--max-events", "50"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("the budget of 50 events per call is used up"), "{}", stderr(&o));
}

#[test]
fn presets_and_show_let_an_author_copy_a_scenario() {
    let o = brokerlab(&["presets"]);
    assert_eq!(o.status.code(), Some(0));
    for entry in std::fs::read_dir("scenarios").expect("scenarios/").flatten() {
        let id = entry.file_name().to_string_lossy().trim_end_matches(".json").to_string();
        assert!(stdout(&o).contains(&id), "presets lists {id}");
        let shown = brokerlab(&["show", &id]);
        let file = std::fs::read_to_string(Path::new("scenarios").join(entry.file_name())).expect("file");
        assert_eq!(stdout(&shown), file, "show {id} prints the file as embedded");
    }
    assert_eq!(brokerlab(&["show", "nope"]).status.code(), Some(2));
}

#[test]
fn swarm_reports_seeds_operations_and_violations() {
    let o = brokerlab(&["swarm", "--seeds", "5", "--from", "100"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("a JSON report");
    assert_eq!(report["seeds"], 5);
    assert_eq!(report["first_seed"], 100);
    assert_eq!(report["violations"], 0);
    assert!(report["operations"].as_u64().is_some_and(|n| n > 100), "{report}");
    assert_eq!(brokerlab(&["swarm", "--seeds", "many"]).status.code(), Some(2));
}

fn vectors(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors").join(name))
        .expect("vector file");
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn partition_prints_each_key_and_its_kafka_partition() {
    let v = vectors("kafka_murmur2_partition.json");
    let rows = v["vectors"].as_array().expect("rows");
    let keys: Vec<&str> = rows.iter().map(|r| r["key"].as_str().expect("key")).collect();
    for n in ["3", "6", "12"] {
        let mut args = vec!["partition", "--partitions", n, "--"];
        args.extend(keys.iter().copied());
        let o = brokerlab(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let out = stdout(&o);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), rows.len(), "one line per key, the empty key included");
        for (line, row) in lines.iter().zip(rows) {
            let key = row["key"].as_str().expect("key");
            assert_eq!(*line, format!("{key}\t{}", row["partition"][n]), "{key:?} @ {n}");
        }
    }
    let o = brokerlab(&["partition", "--partitions", "0", "k"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--partitions"), "{}", stderr(&o));
}

#[test]
fn assign_answers_every_vector_case_through_the_binary() {
    let v = vectors("kafka_assignors.json");
    let dir = std::env::temp_dir().join(format!("brokerlab-assign-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut checked = 0;
    for (family, default_assignors) in
        [("range", &["range"][..]), ("roundrobin", &["roundrobin"][..]), ("sticky_and_cooperative_sticky", &[][..])]
    {
        for (i, case) in v[family].as_array().expect("cases").iter().enumerate() {
            let file = dir.join(format!("{family}-{i}.json"));
            std::fs::write(&file, case.to_string()).expect("write");
            let listed: Vec<&str> = case["assignors"]
                .as_array()
                .map_or_else(|| default_assignors.to_vec(), |a| a.iter().map(|x| x.as_str().expect("name")).collect());
            for assignor in listed {
                let o = brokerlab(&["assign", "--assignor", assignor, file.to_str().expect("utf-8")]);
                assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
                let out: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
                let got = if assignor == "cooperative-sticky" {
                    let key = if case["expected_is"] == "first_round" { "first_round" } else { "assignment" };
                    out[key].clone()
                } else {
                    out
                };
                let sets =
                    |x: &serde_json::Value| -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
                        x.as_object()
                            .expect("map")
                            .iter()
                            .map(|(k, l)| {
                                (k.clone(), l.as_array().expect("list").iter().map(|p| p.to_string()).collect())
                            })
                            .collect()
                    };
                let (got, want) = (sets(&got), sets(&case["expected"]));
                for (member, partitions) in &want {
                    assert_eq!(got.get(member), Some(partitions), "{} {assignor}: {member}", case["name"]);
                }
                checked += 1;
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(checked, 11 + 8 + 28);
    let o = brokerlab(&["assign", "--assignor", "sticky", "Cargo.toml"]);
    assert_eq!(o.status.code(), Some(2), "not JSON is a usage error");
}

/// `run` stops at every beat to check it: the summary says when each was reached and what its
/// `expect` found false, and a beat that never happens is reported on stderr with its path.
#[test]
fn run_reports_each_beat_its_moment_and_what_it_found() {
    let s = summary(&brokerlab(&["run", "scenarios/poison-redrive.json"]));
    let beats = s["beats"].as_array().expect("beats");
    assert_eq!(beats.len(), 7);
    assert_eq!(beats[3]["at_ms"], 12_620.037, "the dead letter, as the trace has it");
    assert!(beats.iter().all(|b| b["missed"].is_null() && b["failed"].as_array().is_some_and(Vec::is_empty)));

    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("scenarios/poison-redrive.json").expect("preset")).expect("json");
    doc["markers"] = serde_json::json!([
        { "on": { "event": "consumer_crashed" }, "text": "a crash", "expect": { "counter": "lost", "at_least": 1 } },
        { "on": { "event": "expired" }, "text": "never, on SQS here" }
    ]);
    let dir = std::env::temp_dir().join(format!("brokerlab-cli-beats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("beats.json");
    std::fs::write(&path, doc.to_string()).expect("write");
    let o = brokerlab(&["run", path.to_str().expect("utf-8")]);
    let err = stderr(&o);
    assert!(err.contains("beat 1: markers[0].expect.at_least: is 0, not at least 1"), "{err}");
    assert!(
        err.contains("beat 2: markers[1].on: an expired after beat 1 (3.6 s) never happened in this run (seed 9)"),
        "{err}"
    );
    let s = summary(&o);
    assert_eq!(s["beats"][1]["at_ms"], serde_json::Value::Null);
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 25: the trace carries, on each delivery, what a consumer would read: the delivery
/// counters in its system's words (`redeliver` on RabbitMQ), the exchange and routing key, and
/// `x-death`, as it is at that delivery (RMQ-40..42).
#[test]
fn trace_deliveries_carry_what_a_consumer_reads_x_death_included() {
    let o = brokerlab(&["run", "tests/scenarios/retry-by-ttl.json", "--trace"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let text = stdout(&o);
    let delivered: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["kind"] == "delivered")
        .collect();
    assert_eq!(delivered.len(), 3, "published, then back from the wait queue twice");
    let first = &delivered[0]["delivery"];
    assert_eq!((&first["exchange"], &first["routing_key"]), (&"orders".into(), &"eu.high".into()));
    assert_eq!(first["headers"]["redeliver"], "false");
    assert!(first.get("x-death").is_none(), "no death yet");
    let third = &delivered[2]["delivery"];
    assert_eq!(
        (&third["exchange"], &third["routing_key"]),
        (&"".into(), &"work".into()),
        "back through the default exchange"
    );
    assert_eq!(third["headers"]["redeliver"], "false", "a dead-lettered copy is a fresh message (RMQ-47)");
    let x = &third["x-death"];
    assert_eq!((&x[0]["queue"], &x[0]["reason"], &x[0]["count"]), (&"wait".into(), &"expired".into(), &2.into()));
    assert_eq!((&x[1]["queue"], &x[1]["reason"], &x[1]["count"]), (&"work".into(), &"rejected".into(), &2.into()));
    assert_eq!(
        (&x[1]["exchange"], &x[1]["routing-keys"][0]),
        (&"orders".into(), &"eu.high".into()),
        "its first trip's"
    );
}

/// Issue 25: `export rabbitmq` prints the scenario's topology as a RabbitMQ definitions file:
/// queues with their arguments (a DLQ Brokerlab makes is DLX "" with its name as the key),
/// exchanges with their alternate, bindings. The conformance suite imports it into a real
/// broker; this holds its shape.
#[test]
fn export_rabbitmq_prints_a_definitions_file() {
    let o = brokerlab(&["export", "rabbitmq", "tests/scenarios/retry-by-ttl.json"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let d: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let queue = |name: &str| d["queues"].as_array().and_then(|q| q.iter().find(|q| q["name"] == name)).cloned();
    let wait = queue("wait").expect("wait");
    assert_eq!(wait["arguments"]["x-message-ttl"], 1000);
    assert_eq!(
        (&wait["arguments"]["x-dead-letter-exchange"], &wait["arguments"]["x-dead-letter-routing-key"]),
        (&"".into(), &"work".into())
    );
    assert_eq!(d["exchanges"][1]["type"], "topic");
    assert_eq!((&d["bindings"][1]["source"], &d["bindings"][1]["routing_key"]), (&"orders".into(), &"eu.#".into()));
    let sqs = brokerlab(&["export", "rabbitmq", "scenarios/error-classes.json"]);
    assert!(stderr(&sqs).contains("left out, not RabbitMQ queues: payments"), "{}", stderr(&sqs));
    assert_eq!(brokerlab(&["export", "kafka", "scenarios/backlog.json"]).status.code(), Some(2));
}
