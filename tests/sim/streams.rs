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

/// One partition, two members, batches of two records that take 3 s each, and a 5 s
/// `max.poll.interval.ms`; `processing_ms` per record.
fn slow_batches(processing_ms: u32) -> String {
    format!(
        r#"{{"name": "liveness", "duration_ms": 12000,
            "topics": [{{"name": "t", "partitions": 1}}],
            "producers": [{}],
            "groups": [{{"name": "g", "topic": "t", "members": 2, "commit": "after", "offset_reset": "earliest",
                         "max_poll_records": 2, "max_poll_interval_ms": 5000,
                         "processing": {{"kind": "constant", "ms": {processing_ms}}}}}]}}"#,
        hundred_at_zero(6)
    )
}

fn at_ms(e: &TraceEvent) -> u64 {
    e.at().as_micros() / 1000
}

/// KC-14..17: g-1 polls at 3.1 s (Stable after the 3 s initial delay and the 100 ms sync) and
/// gets records 0 and 1, done at 6.1 s and 9.1 s. Its poll timer expires at 8.1 s: its client
/// leaves the group, which rebalances and gives the partition to g-2 from the last commit.
/// g-1 does not know: it finishes record 1 (a zombie), and at its next poll its commit fails
/// and it rejoins as a new member. g-2 processes record 0 again.
#[test]
fn a_member_that_stops_polling_is_evicted_and_its_late_commit_fails() {
    use brokerlab::trace::{MemberChange, RevokeReason};
    let mut d = Driver::new(&slow_batches(3000));
    let trace = d.to(12000.0);
    let (g1, g2) = (brokerlab::ids::MemberId(0), brokerlab::ids::MemberId(1));
    let when = |f: &dyn Fn(&TraceEvent) -> bool| trace.iter().filter(|e| f(e)).map(at_ms).collect::<Vec<_>>();
    assert_eq!(
        when(
            &|e| matches!(*e, TraceEvent::MemberChanged { member, change: MemberChange::Evicted, .. } if member == g1)
        ),
        vec![8100],
        "KC-14: evicted at its last poll (3.1 s) + max.poll.interval (5 s)"
    );
    assert_eq!(
        when(
            &|e| matches!(*e, TraceEvent::PartitionRevoked { member, reason: RevokeReason::Lost, .. } if member == g1)
        ),
        vec![8100],
        "its partition is lost to it at once, with no commit"
    );
    let handed: Vec<(u64, u64)> = trace
        .iter()
        .filter_map(|e| match *e {
            TraceEvent::PartitionAssigned { member, offset, .. } if member == g2 => Some((at_ms(e), offset)),
            _ => None,
        })
        .collect();
    assert_eq!(handed, vec![(8200, 0)], "g-2 takes it after the rebalance, from the last commit (none: earliest)");
    // The zombie finishes record 1 after its eviction; then its commit of 2 is refused.
    assert!(trace
        .iter()
        .any(|e| matches!(*e, TraceEvent::RecordDone { member, offset: 1, .. } if member == g1 && at_ms(e) == 9100)));
    let failed: Vec<(u64, u64)> = trace
        .iter()
        .filter_map(|e| match *e {
            TraceEvent::CommitFailed { member, offset, .. } if member == g1 => Some((at_ms(e), offset)),
            _ => None,
        })
        .collect();
    assert_eq!(failed, vec![(9100, 2)], "KC-15: CommitFailedException at its next poll");
    assert!(
        !trace.iter().any(|e| matches!(*e, TraceEvent::OffsetCommitted { member, .. } if member == g1)),
        "it never commits a partition it lost"
    );
    assert_eq!(
        when(&|e| matches!(*e, TraceEvent::MemberChanged { member, change: MemberChange::Joined, .. } if member == g1)),
        vec![0, 9100],
        "KC-16: it rejoins as a new member at that poll"
    );
    // KC-17: record 0 is processed again by g-2, at 8.2 + 3 s.
    assert!(trace
        .iter()
        .any(|e| matches!(*e, TraceEvent::RecordDone { member, offset: 0, times: 2, .. } if member == g2 && at_ms(e) == 11200)));
    let g = &d.sim.streams().groups[0];
    assert!(g.stats.evictions >= 1 && g.stats.commits_failed == 1 && g.stats.duplicates >= 1, "{:?}", g.stats);
}

/// KC-14's timer is `>=`: a poll exactly at the limit is too late; a millisecond earlier is not.
#[test]
fn a_poll_at_the_limit_is_too_late_and_one_before_it_is_not() {
    use brokerlab::trace::MemberChange;
    let evictions = |ms: u32| {
        let mut d = Driver::new(&slow_batches(ms));
        d.to(8200.0)
            .iter()
            .filter(|e| matches!(e, TraceEvent::MemberChanged { change: MemberChange::Evicted, .. }))
            .map(at_ms)
            .collect::<Vec<_>>()
    };
    assert_eq!(evictions(2500), vec![8100], "two records of 2.5 s end at 8.1 s, the limit itself");
    assert_eq!(evictions(2499), Vec::<u64>::new(), "ending at 8.098 s, the poll is in time");
    let mut d = Driver::new(&slow_batches(2499));
    d.to(8200.0);
    assert_eq!(d.sim.streams().groups[0].committed.get(&part0()), Some(&2), "and its commit holds");
}

/// A poison record retried in place blocks its partition: nothing behind it moves and lag
/// climbs, while the other partition flows; after the last attempt it goes to `t.dlq` and the
/// partition drains. Order on the partition holds (that is what blocking buys).
#[test]
fn a_poison_record_retried_in_place_blocks_its_partition() {
    let json = r#"{"name": "poison", "duration_ms": 20000,
        "topics": [{"name": "t", "partitions": 2, "null_keys": "round_robin"}],
        "producers": [{"name": "p", "to": "t", "poison": [10],
                       "schedule": {"kind": "fixed_rate", "interval_ms": 100, "start_ms": 4000, "count": 120}}],
        "groups": [{"name": "g", "topic": "t", "members": 2, "commit": "after", "offset_reset": "earliest",
                    "processing": {"kind": "constant", "ms": 10},
                    "retry_in_place": {"attempts_max": 5, "backoff_ms": 1000}}]}"#;
    let mut d = Driver::new(json);
    let p1 = Part { topic: 0, partition: 1 };
    // Record 10 (at 5.0 s) goes round-robin to partition 1; attempt 1 fails at 5.01 s, and
    // each next one 1 s of backoff and 10 ms of work later: 6.02, 7.03, 8.04, and 9.05 s.
    let blocked = d.to(8500.0);
    let lag = |d: &Driver, p| d.sim.streams().lag(0, p).expect("committed");
    assert!(lag(&d, p1) >= 15, "lag on the blocked partition climbs: {}", lag(&d, p1));
    assert!(lag(&d, part0()) <= 2, "the other partition flows: {}", lag(&d, part0()));
    let tries = |t: &[TraceEvent]| {
        t.iter().filter(|e| matches!(e, TraceEvent::RecordDone { outcome: RecordOutcome::RetryingInPlace, .. })).count()
    };
    assert_eq!(tries(&blocked), 4, "attempts 1 to 4 failed by 8.5 s, each tried again");
    let rest = d.to(20000.0);
    assert_eq!(tries(&rest), 0, "attempt 5 was the last");
    let dead: Vec<u64> = rest
        .iter()
        .filter_map(|e| match *e {
            TraceEvent::RecordDone { partition: 1, offset, outcome: RecordOutcome::DeadLettered, .. } => Some(offset),
            _ => None,
        })
        .collect();
    assert_eq!(dead, vec![5], "after its fifth attempt record 10 (offset 5 of partition 1) goes to t.dlq");
    let dlq = d.sim.scenario().topics.iter().position(|t| t.name == "t.dlq").expect("t.dlq");
    assert_eq!(d.sim.streams().log(Part { topic: u32::try_from(dlq).expect("small"), partition: 1 }).end(), 1);
    assert!(lag(&d, p1) <= 1, "then the partition drains: {}", lag(&d, p1));
    let g = &d.sim.streams().groups[0];
    assert_eq!((g.stats.retried_in_place, g.stats.dead_lettered, g.stats.order_violations), (4, 1, 0), "{:?}", g.stats);
}

/// A failure needs somewhere to go, and a group retries one way: each refusal names its path.
#[test]
fn retry_and_poison_settings_that_cannot_work_are_refused_with_their_path() {
    use brokerlab::Scenario;
    let scenario = |producer: &str, group: &str| {
        format!(
            r#"{{"name": "x", "duration_ms": 1000, "topics": [{{"name": "t", "partitions": 1}}],
                "producers": [{{"name": "p", "to": "t", "schedule": {{"kind": "fixed_rate", "interval_ms": 100}}{producer}}}],
                "groups": [{{"name": "g", "topic": "t"{group}}}, {{"name": "h", "topic": "t"}}]}}"#
        )
    };
    let refused = |producer: &str, group: &str| Scenario::from_json(&scenario(producer, group)).expect_err("refused");
    let e = refused("", r#", "error_rate": 0.1"#);
    assert_eq!(e.path, "groups[0].error_rate", "{e}");
    let e = refused("", r#", "retry_in_place": {"attempts_max": 3}, "retry_delays_ms": [100]"#);
    assert_eq!(e.path, "groups[0].retry_in_place", "{e}");
    let e = refused("", r#", "retry_in_place": {"attempts_max": 0}"#);
    assert_eq!(e.path, "groups[0].retry_in_place.attempts_max", "{e}");
    let e = refused("", r#", "retry_in_place": {"attempts_max": 2, "backoff_ms": -1}"#);
    assert_eq!(e.path, "groups[0].retry_in_place.backoff_ms", "{e}");
    // Group h reads t too and cannot fail a record: a poison record there has no outcome.
    let e = refused(r#", "poison": [3]"#, r#", "retry_in_place": {"attempts_max": 3}"#);
    assert_eq!(e.path, "producers[0].poison", "{e}");
    assert!(e.reason.contains("group \"h\""), "{e}");
    let ok = Scenario::from_json(&scenario("", r#", "retry_in_place": {"attempts_max": 3}"#)).expect("valid");
    let e = ok.live_op(r#"{"op": "poison_next", "producer": "p"}"#).expect_err("refused");
    assert_eq!(e.path, "input.producer", "{e}");
}

/// KA-7: the eager sticky assignor reads what each member owned from its userData, which the
/// eager revocation before a rejoin does not erase. When one of three members leaves, only its
/// two partitions move; round-robin deals all six out again and moves four.
#[test]
fn the_eager_sticky_assignor_remembers_through_its_revocation() {
    let moved = |assignor: &str| {
        let json = format!(
            r#"{{"name": "a", "duration_ms": 20000, "topics": [{{"name": "t", "partitions": 6}}],
                "producers": [{{"name": "p", "to": "t", "schedule": {{"kind": "fixed_rate", "interval_ms": 100}}, "keys": {{"count": 12}}}}],
                "groups": [{{"name": "g", "topic": "t", "members": 3, "assignor": "{assignor}"}}],
                "script": [{{"at_ms": 10000, "op": "remove_member", "group": "g", "member": "g-2"}}]}}"#
        );
        let mut d = Driver::new(&json);
        d.to(20000.0);
        d.sim.streams().groups[0].stats.moved
    };
    assert_eq!(moved("sticky"), 2);
    assert_eq!(moved("roundrobin"), 4);
    assert_eq!(moved("range"), 2, "range moves only the leaver's block here, too");
}

/// A member told to leave that is evicted before its next poll does not come back: at that
/// poll its commit fails and it closes, instead of joining again.
#[test]
fn a_member_leaving_when_it_is_evicted_closes_instead_of_rejoining() {
    use brokerlab::trace::MemberChange;
    let json = slow_batches(3000).replacen(
        r#""groups""#,
        r#""script": [{"at_ms": 4000, "op": "remove_member", "group": "g", "member": "g-1"}], "groups""#,
        1,
    );
    let mut d = Driver::new(&json);
    let trace = d.to(12000.0);
    let g1 = brokerlab::ids::MemberId(0);
    let changes: Vec<(u64, MemberChange)> = trace
        .iter()
        .filter_map(|e| match *e {
            TraceEvent::MemberChanged { member, change, .. } if member == g1 => Some((at_ms(e), change)),
            _ => None,
        })
        .collect();
    assert_eq!(changes, vec![(0, MemberChange::Joined), (8100, MemberChange::Evicted), (9100, MemberChange::Left)]);
    assert!(!d.sim.streams().groups[0].members[0].alive);
}

/// Issue 26, item 7: an operator's offset reset, as `kafka-consumer-groups --reset-offsets
/// --to-earliest` does it: refused while a member is in the group; once the group is empty,
/// every partition's commit goes back to the log start (lag jumps to the whole log), and the
/// member that joins next replays every record, each handled a second time.
#[test]
fn an_inactive_groups_offsets_reset_to_the_earliest_and_it_replays() {
    let json = format!(
        r#"{{"name": "replay", "duration_ms": 20000,
            "topics": [{{"name": "t", "partitions": 1}}],
            "producers": [{}],
            "groups": [{{"name": "g", "topic": "t", "commit": "after", "offset_reset": "earliest",
                         "processing": {{"kind": "constant", "ms": 10}}}}],
            "script": [{{"at_ms": 6000, "op": "reset_offsets", "group": "g", "to": "earliest"}},
                       {{"at_ms": 6500, "op": "remove_member", "group": "g", "member": "g-1"}},
                       {{"at_ms": 8000, "op": "reset_offsets", "group": "g", "to": "earliest"}},
                       {{"at_ms": 9000, "op": "add_member", "group": "g"}}]}}"#,
        hundred_at_zero(100)
    );
    let mut d = Driver::new(&json);
    let refused = d.to(6000.0);
    assert!(
        refused.iter().any(|e| matches!(e, TraceEvent::OffsetsResetRefused { members: 1, .. })),
        "one member is in the group: refused"
    );
    assert_eq!(d.sim.streams().groups[0].committed.get(&part0()), Some(&100), "the refused reset changed nothing");
    let reset = d.to(8000.0);
    assert!(reset.iter().any(|e| matches!(e, TraceEvent::OffsetsReset { offset: 0, .. })));
    assert_eq!(d.sim.streams().lag(0, part0()), Some(100), "the whole log is behind the commit again");
    d.to(20000.0);
    let g = &d.sim.streams().groups[0];
    assert_eq!((g.stats.processed, g.stats.duplicates), (200, 100), "every record replayed once");
    assert_eq!(g.committed.get(&part0()), Some(&100));
    let latest = json.replacen(r#""to": "earliest""#, r#""to": "latest""#, 1);
    let e = brokerlab::Scenario::from_json(&latest).expect_err("latest is not offered");
    assert_eq!(e.path, "script[0].to", "{e}");
}
