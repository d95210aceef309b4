//! Streams: the Kafka timeline of `broker_scenarios.json` (kafka-lag-and-commit), and the
//! behaviours issue 4 asks for, each as a scenario run with both checkers after every step.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::Driver;
use brokerlab::stream::Part;
use brokerlab::trace::{GroupPhase, LossReason, RecordOutcome, TraceEvent};

/// `count` records at time 0 to a one-partition topic `t`.
fn hundred_at_zero(count: usize) -> String {
    let at: Vec<&str> = vec!["0"; count];
    format!(r#"{{"name": "p", "to": "t", "schedule": {{"kind": "scripted", "at_ms": [{}]}}}}"#, at.join(","))
}

fn part0() -> Part {
    Part { topic: 0, partition: 0 }
}

/// kafka-lag-and-commit, steps 1 and 2: committed = next offset to read, lag = end −
/// committed; a crash after processing 90..94 but before the commit replays them.
#[test]
fn kafka_timeline_commit_after_processing_replays_after_a_crash() {
    let json = format!(
        r#"{{"name": "kafka-lag-and-commit", "duration_ms": 20000,
            "topics": [{{"name": "t", "partitions": 1}}],
            "producers": [{}],
            "groups": [{{"name": "g", "topic": "t", "commit": "after", "offset_reset": "earliest",
                         "max_poll_records": 90, "processing": {{"kind": "constant", "ms": 10}}}}],
            "script": [{{"at_ms": 4055, "op": "crash_member", "group": "g", "member": "g-1"}},
                       {{"at_ms": 5000, "op": "restart_member", "group": "g", "member": "g-1"}}]}}"#,
        hundred_at_zero(100)
    );
    let mut d = Driver::new(&json);
    // The group is Stable at 3.1 s (3 s initial delay, 100 ms sync); 90 records take 0.9 s.
    d.to(3999.0);
    assert_eq!(d.sim.streams().lag(0, part0()), None, "no commit yet: lag is undefined (KC-8)");
    d.to(4000.0);
    assert_eq!(d.sim.streams().groups[0].committed.get(&part0()), Some(&90), "records 0..89 processed: committed 90");
    assert_eq!(d.sim.streams().lag(0, part0()), Some(10), "lag = 100 - 90");
    let trace = d.to(20000.0);
    let replayed: Vec<u64> = trace
        .iter()
        .filter_map(|e| match *e {
            TraceEvent::RecordDone { offset, times: 2, .. } => Some(offset),
            _ => None,
        })
        .collect();
    assert_eq!(replayed, vec![90, 91, 92, 93, 94], "resumed at 90: 90..94 processed twice (at-least-once)");
    let g = &d.sim.streams().groups[0];
    assert_eq!((g.stats.duplicates, g.stats.lost), (5, 0));
    assert_eq!(g.committed.get(&part0()), Some(&100));
}

/// kafka-lag-and-commit, step 3: committing 95 before processing 90..94 and crashing midway
/// loses what was not processed (at-most-once).
#[test]
fn kafka_timeline_commit_before_processing_loses_after_a_crash() {
    let json = format!(
        r#"{{"name": "commit before", "duration_ms": 20000,
            "topics": [{{"name": "t", "partitions": 1}}],
            "producers": [{}],
            "groups": [{{"name": "g", "topic": "t", "commit": "before", "offset_reset": "earliest",
                         "max_poll_records": 5, "processing": {{"kind": "constant", "ms": 10}}}}],
            "script": [{{"at_ms": 4025, "op": "crash_member", "group": "g", "member": "g-1"}},
                       {{"at_ms": 5000, "op": "restart_member", "group": "g", "member": "g-1"}}]}}"#,
        hundred_at_zero(100)
    );
    let mut d = Driver::new(&json);
    d.to(4001.0);
    assert_eq!(d.sim.streams().groups[0].committed.get(&part0()), Some(&95), "90..94 fetched and committed first");
    let trace = d.to(20000.0);
    let lost: Vec<(u64, u64, u32)> = trace
        .iter()
        .filter_map(|e| match *e {
            TraceEvent::RecordsLost { from, to, count, reason: LossReason::CommittedUnprocessed, .. } => {
                Some((from, to, count))
            }
            _ => None,
        })
        .collect();
    assert_eq!(lost, vec![(92, 95, 3)], "90 and 91 were processed; 92..94 never will be");
    let g = &d.sim.streams().groups[0];
    assert_eq!((g.stats.duplicates, g.stats.lost), (0, 3));
    let first_after_restart = trace.iter().find_map(|e| match *e {
        TraceEvent::PartitionAssigned { offset, .. } => Some(offset),
        _ => None,
    });
    assert_eq!(first_after_restart, Some(95), "resumed at the committed 95");
}

/// kafka-lag-and-commit, steps 4 and 5: a new group starts at the log start with
/// `earliest`, at the log end with `latest` (the default, KC-9).
#[test]
fn kafka_timeline_a_new_group_starts_per_auto_offset_reset() {
    let json = format!(
        r#"{{"name": "offset reset", "duration_ms": 10000,
            "topics": [{{"name": "t", "partitions": 1}}],
            "producers": [{}],
            "groups": [{{"name": "early", "topic": "t", "offset_reset": "earliest", "start_ms": 1000}},
                       {{"name": "late", "topic": "t", "start_ms": 1000}}]}}"#,
        hundred_at_zero(100)
    );
    let trace = Driver::new(&json).to(10000.0);
    let starts: Vec<(u32, u64)> = trace
        .iter()
        .filter_map(|e| match *e {
            TraceEvent::PartitionAssigned { group, offset, .. } => Some((group, offset)),
            _ => None,
        })
        .collect();
    assert_eq!(starts, vec![(0, 0), (1, 100)]);
}

fn phases(trace: &[TraceEvent], group: u32) -> Vec<GroupPhase> {
    trace
        .iter()
        .filter_map(|e| match *e {
            TraceEvent::GroupChanged { group: g, phase, .. } if g == group => Some(phase),
            _ => None,
        })
        .collect()
}

/// The same join under eager and cooperative rebalancing (KC-1, KC-2): eager revokes every
/// partition of every member and stops them all; cooperative revokes only what moves, keeps
/// the others working through the rebalance, and needs a second rebalance to hand it over.
#[test]
fn eager_stops_the_world_cooperative_moves_only_what_changes_owner() {
    let run = |assignor: &str| {
        let json = format!(
            r#"{{"name": "rebalance", "duration_ms": 30000,
                "topics": [{{"name": "t", "partitions": 6}}],
                "producers": [{{"name": "p", "to": "t", "schedule": {{"kind": "fixed_rate", "interval_ms": 20}}, "keys": {{"count": 60}}}}],
                "groups": [{{"name": "g", "topic": "t", "members": 2, "assignor": "{assignor}", "commit": "after",
                             "max_poll_records": 20, "processing": {{"kind": "constant", "ms": 5}}}}],
                "script": [{{"at_ms": 10000, "op": "add_member", "group": "g"}}]}}"#
        );
        let mut d = Driver::new(&json);
        d.to(9999.0);
        let after = d.to(30000.0);
        (d, after)
    };
    let (eager, eager_trace) = run("range");
    let (coop, coop_trace) = run("cooperative-sticky");
    let revoked = |t: &[TraceEvent]| t.iter().filter(|e| matches!(e, TraceEvent::PartitionRevoked { .. })).count();
    let stable_generations = |t: &[TraceEvent]| {
        t.iter()
            .filter_map(|e| match *e {
                TraceEvent::GroupChanged { phase: GroupPhase::Stable, generation, .. } => Some(generation),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // Eager: both old members revoke all six partitions; one rebalance.
    assert_eq!(revoked(&eager_trace), 6);
    assert_eq!(stable_generations(&eager_trace), vec![2]);
    assert_eq!(
        phases(&eager_trace, 0),
        [GroupPhase::PreparingRebalance, GroupPhase::CompletingRebalance, GroupPhase::Stable]
    );
    // Cooperative: only the two partitions that move are revoked; two rebalances.
    assert_eq!(revoked(&coop_trace), 2);
    assert_eq!(stable_generations(&coop_trace), vec![2, 3]);
    // During the first cooperative rebalance the old members keep processing.
    let worked_while_rebalancing = |t: &[TraceEvent]| {
        let mut rebalancing = false;
        let mut worked = 0;
        for e in t {
            match *e {
                TraceEvent::GroupChanged { phase, .. } => rebalancing = phase != GroupPhase::Stable,
                TraceEvent::RecordDone { .. } if rebalancing => worked += 1,
                _ => {}
            }
        }
        worked
    };
    assert!(worked_while_rebalancing(&coop_trace) > 0, "cooperative members work through the rebalance");
    for (d, name) in [(&eager, "eager"), (&coop, "cooperative")] {
        let g = &d.sim.streams().groups[0];
        let owned: Vec<usize> = g.members.iter().map(|m| m.owned.len()).collect();
        assert_eq!(owned, vec![2, 2, 2], "{name}: balanced at the end");
        assert_eq!(g.phase, GroupPhase::Stable);
    }
}

/// One topic, three groups: each gets every record, spread over its own members.
#[test]
fn fan_out_gives_every_group_every_record() {
    let json = r#"{"name": "fan-out", "duration_ms": 20000,
        "topics": [{"name": "orders", "partitions": 3}],
        "producers": [{"name": "shop", "to": "orders", "schedule": {"kind": "fixed_rate", "interval_ms": 100, "count": 100}, "keys": {"count": 30}}],
        "groups": [{"name": "email", "topic": "orders", "members": 1, "offset_reset": "earliest"},
                   {"name": "analytics", "topic": "orders", "members": 3, "offset_reset": "earliest"},
                   {"name": "inventory", "topic": "orders", "members": 2, "offset_reset": "earliest"}]}"#;
    let mut d = Driver::new(json);
    d.to(20000.0);
    for g in &d.sim.streams().groups {
        assert_eq!(g.stats.processed, 100);
        assert_eq!((g.stats.duplicates, g.stats.lost, g.stats.order_violations), (0, 0, 0));
    }
}

/// The same late subscriber on a transient pubsub channel sees nothing of the past; on a
/// retained stream it replays from the start.
#[test]
fn a_late_subscriber_sees_nothing_on_pubsub_and_replays_a_stream() {
    let json = r#"{"name": "pubsub vs stream", "duration_ms": 20000,
        "topics": [{"name": "live", "partitions": 1, "kind": "pubsub"}, {"name": "log", "partitions": 1}],
        "producers": [{"name": "a", "to": "live", "schedule": {"kind": "fixed_rate", "interval_ms": 100, "count": 100}},
                      {"name": "b", "to": "log", "schedule": {"kind": "fixed_rate", "interval_ms": 100, "count": 100}}],
        "groups": [{"name": "late-live", "topic": "live", "offset_reset": "earliest", "start_ms": 5000},
                   {"name": "late-log", "topic": "log", "offset_reset": "earliest", "start_ms": 5000}]}"#;
    let mut d = Driver::new(json);
    d.to(20000.0);
    let s = d.sim.streams();
    // Joined at 5 s, Stable at 8.1 s: 81 records were published before.
    assert_eq!(s.groups[0].stats.processed, 19, "pubsub: only what came after it joined");
    assert_eq!(s.groups[1].stats.processed, 100, "stream: replayed everything");
}

/// Records with a key land where Kafka's partitioner puts it (KP-1), and per-key order holds
/// with several members on several partitions.
#[test]
fn keyed_records_land_by_murmur2_and_keep_their_order() {
    let json = r#"{"name": "keys", "duration_ms": 30000,
        "topics": [{"name": "orders", "partitions": 6}],
        "producers": [{"name": "shop", "to": "orders", "schedule": {"kind": "poisson", "rate_per_s": 40}, "keys": {"count": 25}}],
        "groups": [{"name": "g", "topic": "orders", "members": 3, "offset_reset": "earliest",
                    "processing": {"kind": "exponential", "mean_ms": 15}}]}"#;
    let mut d = Driver::new(json);
    let trace = d.to(30000.0);
    let mut appended = 0;
    for e in &trace {
        if let TraceEvent::RecordAppended { partition, key, .. } = *e {
            let want = brokerlab::kafka::partitioner::partition_for_key(format!("key-{key}").as_bytes(), 6);
            assert_eq!(partition, want, "key-{key}");
            appended += 1;
        }
    }
    assert!(appended > 1000, "{appended}");
    assert_eq!(d.sim.streams().groups[0].stats.order_violations, 0);
}

/// Retry topics as Uber runs them: a failed record goes to orders.retry.1, waits its delay
/// there, then orders.retry.2, then orders.dlq; the main partition never blocks, so later
/// records of the same key overtake it, and the order checker flags that.
#[test]
fn retry_topics_honour_their_delays_and_break_key_order() {
    let json = r#"{"name": "retry topics", "duration_ms": 60000,
        "topics": [{"name": "orders", "partitions": 2}],
        "producers": [{"name": "shop", "to": "orders", "schedule": {"kind": "fixed_rate", "interval_ms": 50, "count": 600}, "keys": {"count": 4}}],
        "groups": [{"name": "payments", "topic": "orders", "members": 2, "offset_reset": "earliest", "error_rate": 0.3,
                    "retry_delays_ms": [1000, 5000], "processing": {"kind": "constant", "ms": 5}}]}"#;
    let mut d = Driver::new(json);
    let trace = d.to(60000.0);
    let s = d.sim.scenario();
    let names: Vec<&str> = s.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["orders", "orders.retry.1", "orders.retry.2", "orders.dlq"]);
    let delay = [0u64, 1_000_000, 5_000_000];
    let mut appended_at = std::collections::BTreeMap::new();
    let mut checked = 0;
    for e in &trace {
        match *e {
            TraceEvent::RecordAppended { at, topic, partition, offset, .. } => {
                appended_at.insert((topic, partition, offset), at);
            }
            TraceEvent::RecordStarted { at, topic, partition, offset, .. } => {
                let appended = appended_at[&(topic, partition, offset)];
                assert!(at.since(appended).as_micros() >= delay[topic as usize], "started before its delay");
                checked += u32::from(topic > 0);
            }
            _ => {}
        }
    }
    assert!(checked > 50, "{checked} retries checked");
    let g = &d.sim.streams().groups[0];
    let outcomes = |o: RecordOutcome| {
        trace.iter().filter(|e| matches!(e, TraceEvent::RecordDone { outcome, .. } if *outcome == o)).count() as u64
    };
    assert_eq!(outcomes(RecordOutcome::Retried), g.stats.retried);
    assert_eq!(outcomes(RecordOutcome::DeadLettered), g.stats.dead_lettered);
    assert!(g.stats.dead_lettered > 0 && g.stats.retried > g.stats.dead_lettered);
    let dlq = Part { topic: 3, partition: 0 };
    let dlq_records = d.sim.streams().log(dlq).end() + d.sim.streams().log(Part { topic: 3, partition: 1 }).end();
    assert_eq!(dlq_records, g.stats.dead_lettered, "every dead letter is in orders.dlq");
    assert!(g.stats.order_violations > 0, "retries overtaken by newer records of their key are flagged");
    // Every record ends processed or dead-lettered, once.
    assert_eq!(g.stats.processed + g.stats.dead_lettered, 600);
}

/// Retention by time deletes whole segments, oldest first (KC-11); by size keeps at least
/// retention.bytes (KC-12); a group that reads too slowly loses what was deleted first.
#[test]
fn retention_deletes_whole_segments_and_a_slow_group_loses_them() {
    let json = r#"{"name": "retention", "duration_ms": 60000,
        "topics": [{"name": "t", "partitions": 1, "retention_ms": 10000, "record_bytes": 100, "segment_bytes": 1000, "check_every_ms": 1000},
                   {"name": "s", "partitions": 1, "retention_bytes": 2500, "record_bytes": 100, "segment_bytes": 1000, "check_every_ms": 1000}],
        "producers": [{"name": "a", "to": "t", "schedule": {"kind": "fixed_rate", "interval_ms": 100, "count": 400}},
                      {"name": "b", "to": "s", "schedule": {"kind": "fixed_rate", "interval_ms": 100, "count": 400}}],
        "groups": [{"name": "slow", "topic": "t", "offset_reset": "earliest", "max_poll_records": 1, "processing": {"kind": "constant", "ms": 400}}]}"#;
    let mut d = Driver::new(json);
    let trace = d.to(60000.0);
    let streams = d.sim.streams();
    let t = streams.log(part0());
    assert_eq!(t.end(), 400);
    assert_eq!(t.log_start % 10, 0, "whole segments of ten records");
    assert!(t.retained() <= 10 * 10 + 10, "at most ~10 s of records left: {}", t.retained());
    let s = streams.log(Part { topic: 1, partition: 0 });
    assert!(
        s.retained() >= 25 && s.retained() < 25 + 10,
        "at least retention.bytes kept, less than a segment more: {}",
        s.retained()
    );
    let g = &streams.groups[0];
    assert!(g.stats.lost_to_retention > 0, "the slow group lost records to retention");
    assert!(trace.iter().any(|e| matches!(e, TraceEvent::RecordsLost { reason: LossReason::Retention, .. })));
}

/// Compaction keeps the latest value per key, never moves an offset, removes tombstones after
/// delete.retention.ms, and never touches the active segment (KC-13).
#[test]
fn compaction_keeps_the_latest_value_per_key() {
    let json = r#"{"name": "compaction", "duration_ms": 120000,
        "topics": [{"name": "profiles", "partitions": 1, "cleanup_policy": "compact", "record_bytes": 100, "segment_bytes": 1000,
                    "check_every_ms": 5000, "delete_retention_ms": 20000}],
        "producers": [{"name": "p", "to": "profiles", "schedule": {"kind": "fixed_rate", "interval_ms": 100, "count": 500},
                       "keys": {"count": 8}, "tombstones": 0.05}]}"#;
    let mut d = Driver::new(json);
    d.to(120000.0);
    let log = d.sim.streams().log(part0());
    let active_base = usize::try_from(log.segments.back().map_or(0, |s| s.base)).expect("small");
    assert!(log.compacted > 300, "{} compacted", log.compacted);
    let mut latest = std::collections::BTreeMap::new();
    for (o, r) in log.records.iter().enumerate().take(active_base) {
        latest.insert(r.key, o);
    }
    for (o, r) in log.records.iter().enumerate() {
        if o >= active_base {
            assert!(r.retained, "the active segment is never compacted");
        } else if r.retained {
            assert_eq!(latest[&r.key], o, "only the newest value of key-{:?} below the active segment stays", r.key);
            assert!(!r.tombstone, "tombstones older than delete.retention.ms are gone");
        }
    }
}

/// A pubsub channel drops a record only once every listening group has it: a group that has
/// not committed yet holds it from where its member reads.
#[test]
fn a_pubsub_channel_keeps_what_a_slow_committer_still_needs() {
    let json = r#"{"name": "pubsub", "duration_ms": 30000,
        "topics": [{"name": "live", "partitions": 1, "kind": "pubsub"}],
        "producers": [{"name": "p", "to": "live", "schedule": {"kind": "fixed_rate", "interval_ms": 100, "start_ms": 4000, "count": 100}}],
        "groups": [{"name": "fast", "topic": "live", "commit": "after", "processing": {"kind": "constant", "ms": 1}},
                   {"name": "slow", "topic": "live", "auto_commit_interval_ms": 60000, "max_poll_records": 1,
                    "processing": {"kind": "constant", "ms": 150}}]}"#;
    let mut d = Driver::new(json);
    d.to(30000.0);
    for g in &d.sim.streams().groups {
        assert_eq!((g.stats.processed, g.stats.lost_to_retention), (100, 0), "{:?}", g.stats);
    }
}
