//! Each catalog preset does what its narration says. Every check here reads the trace, per
//! queue, after a run with both checkers on at every step.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::{load, run_traced};
use brokerlab::ids::{MsgId, QueueId};
use brokerlab::message::StateKind;
use brokerlab::trace::{DeadReason, ReturnReason};
use brokerlab::{Sim, TraceEvent};
use std::collections::BTreeMap;

fn run(id: &str) -> (Sim, Vec<TraceEvent>) {
    let scenario = load(id);
    let seed = scenario.seed.expect("presets carry their seed");
    run_traced(scenario, seed)
}

fn queue(sim: &Sim, name: &str) -> QueueId {
    QueueId(sim.scenario().queue_index(name).unwrap_or_else(|| panic!("no queue {name}")))
}

/// The queue each message was published to.
fn home(trace: &[TraceEvent]) -> BTreeMap<MsgId, QueueId> {
    trace
        .iter()
        .filter_map(|e| match *e {
            TraceEvent::Published { msg, queue, .. } => Some((msg, queue)),
            _ => None,
        })
        .collect()
}

/// Per queue: (keys applied twice or more, duplicates suppressed).
fn effects_by_queue(trace: &[TraceEvent]) -> BTreeMap<QueueId, (u32, u32)> {
    let home = home(trace);
    let mut out: BTreeMap<QueueId, (u32, u32)> = BTreeMap::new();
    for e in trace {
        match *e {
            TraceEvent::EffectApplied { msg, times: 2, .. } => out.entry(home[&msg]).or_default().0 += 1,
            TraceEvent::DuplicateSuppressed { msg, .. } => out.entry(home[&msg]).or_default().1 += 1,
            _ => {}
        }
    }
    out
}

fn dead_reasons(trace: &[TraceEvent], from: u32) -> Vec<DeadReason> {
    trace
        .iter()
        .filter_map(|e| match *e {
            TraceEvent::DeadLettered { from: f, reason, .. } if f == QueueId(from) => Some(reason),
            _ => None,
        })
        .collect()
}

#[test]
fn ack_before_processing_loses_messages_and_ack_after_duplicates_instead() {
    let (sim, trace) = run("ack-modes");
    let (before, after) = (queue(&sim, "before"), queue(&sim, "after"));
    assert!(sim.counts(before).get(StateKind::Dropped) > 0, "the loss is visible and counted");
    assert_eq!(u64::from(sim.counts(before).get(StateKind::Dropped)), sim.stats().lost);
    assert_eq!(sim.counts(after).get(StateKind::Dropped), 0, "ack after processing loses nothing");
    let effects = effects_by_queue(&trace);
    assert!(effects.get(&after).is_some_and(|e| e.0 > 0), "the duplicates show instead: {effects:?}");
}

#[test]
fn delivery_guarantees_differ_on_one_workload() {
    let (sim, trace) = run("delivery-guarantees");
    let [most, least, once] = ["at-most-once", "at-least-once", "effectively-once"].map(|q| queue(&sim, q));
    let effects = effects_by_queue(&trace);
    let e = |q: QueueId| effects.get(&q).copied().unwrap_or_default();
    assert!(sim.counts(most).get(StateKind::Dropped) > 0, "at-most-once loses");
    assert_eq!(sim.counts(least).get(StateKind::Dropped) + sim.counts(once).get(StateKind::Dropped), 0);
    assert!(e(least).0 > 0, "at-least-once applies some effects twice: {effects:?}");
    assert_eq!(e(once).0, 0, "effectively-once never does");
    assert!(e(once).1 > 0, "because it recognises the duplicate: {effects:?}");
}

#[test]
fn idempotent_consumers_skip_what_naive_ones_apply_twice() {
    let (sim, trace) = run("idempotency");
    let effects = effects_by_queue(&trace);
    let (naive, careful) = (queue(&sim, "naive"), queue(&sim, "idempotent"));
    assert!(effects.get(&naive).is_some_and(|e| e.0 > 0 && e.1 == 0), "{effects:?}");
    assert!(effects.get(&careful).is_some_and(|e| e.0 == 0 && e.1 > 0), "{effects:?}");
    assert!(sim.stats().lease_expired_mid_processing > 0, "redelivery comes from leases running out");
}

#[test]
fn lease_models_expire_close_and_dead_letter_each_their_own_way() {
    let (sim, trace) = run("lease-models");
    let [sqs, rmq, sb] = ["sqs", "rabbitmq", "servicebus"].map(|q| queue(&sim, q));
    let returned = |q: u32, why: ReturnReason| {
        trace
            .iter()
            .filter(
                |e| matches!(e, TraceEvent::Returned { queue, reason, .. } if *queue == QueueId(q) && *reason == why),
            )
            .count()
    };
    assert!(returned(sqs.0, ReturnReason::LeaseExpired) > 0, "SQS: the visibility timeout runs out");
    assert!(returned(sb.0, ReturnReason::LeaseExpired) > 0, "Service Bus: the lock runs out");
    assert_eq!(returned(rmq.0, ReturnReason::LeaseExpired), 0, "RabbitMQ has no lease");
    assert!(returned(rmq.0, ReturnReason::ConsumerTimeout) > 0, "but its consumer timeout closes the channel");
    assert!(dead_reasons(&trace, sb.0).contains(&DeadReason::MaxDeliveryCount), "a lock lost twice: DLQ");
    assert!(trace.iter().any(|e| matches!(e, TraceEvent::AckRefused { .. })), "the late ack is refused");
}

#[test]
fn error_classes_route_to_retry_or_the_dlq() {
    let (sim, trace) = run("error-classes");
    let reasons = dead_reasons(&trace, (queue(&sim, "payments")).0);
    assert!(reasons.contains(&DeadReason::PermanentError), "a permanent error goes straight to the DLQ");
    assert!(reasons.contains(&DeadReason::AttemptsExhausted), "an unknown one after its retries");
    let first_try_permanent = trace
        .iter()
        .any(|e| matches!(e, TraceEvent::Failed { error: brokerlab::trace::ErrorClass::Permanent, attempt: 1, .. }));
    assert!(first_try_permanent);
    assert!(trace.iter().any(|e| matches!(e, TraceEvent::Delayed { .. })), "transient errors wait out a backoff");
}

/// BO-4 on the preset's 50 clients per row, as its narration puts it: lockstep exponential
/// backoff costs about 600 write attempts and 37 s; full jitter about 330 in about 2 s;
/// decorrelated is as quick with more attempts; equal jitter takes about twice as long; no
/// backoff is quickest and costs the most.
#[test]
fn under_contention_jitter_does_less_work_and_lockstep_backoff_takes_longest() {
    let (sim, trace) = run("occ-contention");
    let home = home(&trace);
    let (mut attempts, mut done): (BTreeMap<u32, u32>, BTreeMap<u32, f64>) = (BTreeMap::new(), BTreeMap::new());
    let mut first_round_conflicts: BTreeMap<QueueId, u32> = BTreeMap::new();
    for e in &trace {
        match *e {
            TraceEvent::Failed { msg, error: brokerlab::trace::ErrorClass::Conflict, attempt, .. } => {
                *attempts.entry((home[&msg]).0).or_default() += 1;
                *first_round_conflicts.entry(home[&msg]).or_default() += u32::from(attempt == 1);
            }
            TraceEvent::EffectApplied { msg, at, .. } => {
                *attempts.entry((home[&msg]).0).or_default() += 1;
                let t = done.entry((home[&msg]).0).or_default();
                *t = t.max(at.as_millis_f64());
            }
            _ => {}
        }
    }
    let [exponential, decorrelated, equal, full, none] =
        ["exponential", "decorrelated", "equal-jitter", "full-jitter", "no-backoff"].map(|q| queue(&sim, q));
    for q in [exponential, decorrelated, equal, full, none] {
        assert_eq!(sim.counts(q).get(StateKind::Acked), 50, "every client's update lands, once");
        assert_eq!(first_round_conflicts[&q], 49, "the first round: one write wins, 49 conflict");
    }
    let (n, t) = (|q: u32| attempts[&q], |q: u32| done[&q]);
    assert!(
        (550..=650).contains(&n(exponential.0)) && (33_000.0..38_000.0).contains(&t(exponential.0)),
        "{} {}",
        n(exponential.0),
        t(exponential.0)
    );
    assert!((300..=360).contains(&n(full.0)) && t(full.0) < 2_400.0, "{} {}", n(full.0), t(full.0));
    assert!(
        n(decorrelated.0) > n(full.0) && t(decorrelated.0) < 2_400.0,
        "{} {}",
        n(decorrelated.0),
        t(decorrelated.0)
    );
    assert!(
        t(equal.0) > 1.8 * t(full.0) && t(equal.0) < 4_600.0 && n(equal.0) < n(decorrelated.0),
        "{} {}",
        n(equal.0),
        t(equal.0)
    );
    assert!(n(none.0) > n(exponential.0) && t(none.0) < 1_300.0, "{} {}", n(none.0), t(none.0));
}

#[test]
fn a_retry_storm_in_lockstep_finishes_later_than_full_jitter() {
    let (sim, trace) = run("retry-storm");
    let last_ack = |q: u32| {
        trace
            .iter()
            .filter_map(|e| match *e {
                TraceEvent::Acked { queue, at, .. } if queue == QueueId(q) => Some(at),
                _ => None,
            })
            .max()
    };
    let [immediate, exponential, jitter] = ["immediate", "exponential", "full-jitter"].map(|q| queue(&sim, q));
    assert_eq!(dead_reasons(&trace, immediate.0).len(), 30, "immediate retries burn out inside the outage");
    assert_eq!(sim.counts(exponential).get(StateKind::Acked), 30);
    assert_eq!(sim.counts(jitter).get(StateKind::Acked), 30);
    let (e, j) = (last_ack(exponential.0).expect("acks"), last_ack(jitter.0).expect("acks"));
    assert!(j.as_micros() * 3 < e.as_micros() * 2, "full jitter done at {j}, lockstep exponential at {e}");
}

#[test]
fn the_poison_message_goes_to_the_dlq_and_comes_back_after_the_fix() {
    let (sim, trace) = run("poison-redrive");
    let orders = queue(&sim, "orders");
    assert_eq!(dead_reasons(&trace, orders.0), vec![DeadReason::MaxReceiveCount]);
    let crashes = trace.iter().filter(|e| matches!(e, TraceEvent::ConsumerCrashed { .. })).count();
    assert_eq!(crashes, 3, "one crash per receive, maxReceiveCount 3");
    assert!(trace.iter().any(|e| matches!(e, TraceEvent::Redriven { .. })));
    assert_eq!(sim.counts(orders).get(StateKind::Acked), 20, "all 20 orders done, m4 as a new message");
    let effects = effects_by_queue(&trace);
    assert!(effects.values().all(|e| e.0 == 0), "each order applied once");
}

#[test]
fn ttl_dead_letters_what_waits_too_long() {
    let (sim, trace) = run("ttl-expiry");
    let reasons = dead_reasons(&trace, (queue(&sim, "quotes")).0);
    assert!(!reasons.is_empty() && reasons.iter().all(|r| *r == DeadReason::Expired), "{reasons:?}");
    assert!(sim.counts(QueueId((queue(&sim, "quotes")).0)).get(StateKind::Acked) > 0, "the young ones are processed");
}

#[test]
fn fifo_groups_keep_their_order() {
    let (sim, trace) = run("fifo-groups");
    // A FIFO queue's late delete is refused, not silently ignored as on a standard queue (SQS-29).
    let late: Vec<String> = trace
        .iter()
        .filter(|e| matches!(e, TraceEvent::AckRefused { .. }))
        .map(|e| brokerlab::readable::line(e, sim.scenario()).to_string())
        .collect();
    assert!(!late.is_empty() && late.iter().all(|l| l.ends_with("(InvalidParameterValue, SQS-29)")), "{late:?}");
    // Producer "customers" sends message i to group i % 3; within a group, the first effect of
    // each message comes in send order (SQS-20).
    let mut last: BTreeMap<u32, u32> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for e in &trace {
        if let TraceEvent::EffectApplied { key, .. } = *e {
            if seen.insert(key) {
                let group = key % 3;
                if let Some(&prev) = last.get(&group) {
                    assert!(key > prev, "group {group}: m{key} after m{prev}");
                }
                last.insert(group, key);
            }
        }
    }
    assert_eq!(seen.len(), 90);
}

#[test]
fn the_autoscaler_meets_the_rush_then_drains_back_to_its_minimum() {
    let (sim, trace) = run("autoscaling");
    let mut active = 2i32;
    let mut peak = active;
    for e in &trace {
        if let TraceEvent::Scaled { active: up, depth, .. } = *e {
            if up {
                assert!(depth > 40, "scales up only above the high mark: {depth}");
            } else {
                assert!(depth < 10, "drains only below the low mark: {depth}");
            }
            active += if up { 1 } else { -1 };
            peak = peak.max(active);
        }
    }
    assert_eq!(peak, 12, "up to its maximum during the rush");
    assert_eq!(active, 2, "back to its minimum after");
    assert!(sim.counts(QueueId(0)).get(StateKind::Acked) > 900);
    // A draining worker finishes what it holds: nothing is lost or left leased to it.
    assert_eq!(sim.counts(QueueId(0)).get(StateKind::Dropped), 0);
}

#[test]
fn a_slow_worker_takes_fewer_with_prefetch_one() {
    let (sim, trace) = run("slow-worker");
    let mut acks = [0u32; 3];
    for e in &trace {
        if let TraceEvent::Acked { consumer, .. } = *e {
            acks[consumer.index()] += 1;
        }
    }
    assert_eq!(acks.iter().sum::<u32>(), 70);
    assert!(acks[2] * 2 < acks[0], "worker-3 is four times slower: {acks:?}");
    assert_eq!(sim.counts(QueueId(0)).get(StateKind::Acked), 70);
}

// --- Streams ------------------------------------------------------------------------------------

fn group<'a>(sim: &'a Sim, name: &str) -> &'a brokerlab::stream::Group {
    let i = sim.scenario().groups.iter().position(|g| g.name == name).unwrap_or_else(|| panic!("no group {name}"));
    &sim.streams().groups[i]
}

#[test]
fn partition_keys_keeps_per_key_order() {
    let (sim, trace) = run("partition-keys");
    let g = group(&sim, "billing");
    assert!(g.stats.processed > 250, "{}", g.stats.processed);
    assert_eq!(g.stats.order_violations, 0);
    for e in &trace {
        if let TraceEvent::RecordAppended { partition, key, .. } = *e {
            assert_eq!(partition, brokerlab::kafka::partitioner::partition_for_key(format!("key-{key}").as_bytes(), 4));
        }
    }
}

#[test]
fn fan_out_gives_every_group_every_record_and_the_late_one_replays() {
    let (sim, trace) = run("fan-out");
    for name in ["email", "analytics", "inventory", "fraud-detection"] {
        assert_eq!(group(&sim, name).stats.processed, 320, "{name}");
    }
    let fraud_start = trace.iter().find_map(|e| match *e {
        TraceEvent::PartitionAssigned { group: 3, at, offset, .. } => Some((at, offset)),
        _ => None,
    });
    let (at, offset) = fraud_start.expect("fraud-detection gets partitions");
    assert!(at.as_millis_f64() >= 25_000.0 && offset == 0, "it starts late, from the first record");
}

#[test]
fn rebalancing_eager_revokes_everything_cooperative_only_what_moves() {
    let (sim, trace) = run("rebalancing");
    let revoked = |g: u32| {
        trace
            .iter()
            .filter(|e| matches!(e, TraceEvent::PartitionRevoked { group, reason: brokerlab::trace::RevokeReason::Rebalance, .. } if *group == g))
            .count()
    };
    let (eager, coop) = (group(&sim, "eager"), group(&sim, "cooperative"));
    assert!(revoked(0) >= 3 * revoked(1), "eager revoked {}, cooperative {}", revoked(0), revoked(1));
    assert!(coop.stats.rebalances > eager.stats.rebalances, "cooperative needs follow-up rebalances");
    assert_eq!(eager.members.iter().filter(|m| m.alive && m.in_group).count(), 2);
    assert_eq!(coop.members.iter().filter(|m| m.alive && m.in_group).count(), 2);
}

#[test]
fn commit_semantics_before_loses_after_duplicates() {
    let (sim, _) = run("commit-semantics");
    let (before, after) = (group(&sim, "commit-before"), group(&sim, "commit-after"));
    assert!(before.stats.lost > 0 && before.stats.duplicates == 0, "{:?}", before.stats);
    assert!(after.stats.duplicates > 0 && after.stats.lost == 0, "{:?}", after.stats);
}

#[test]
fn hot_partition_shows_in_the_lag() {
    let (sim, _) = run("hot-partition");
    let mut lags: Vec<u64> = sim.lag_table().iter().map(|r| r.lag.unwrap_or(0)).collect();
    lags.sort_unstable();
    assert!(lags[3] > 100 && lags[2] < 10, "one partition lags, the others keep up: {lags:?}");
}

#[test]
fn pubsub_forgets_the_past_a_stream_replays_it() {
    let (sim, _) = run("pubsub-vs-stream");
    assert_eq!(group(&sim, "live-now").stats.processed, 175);
    assert!(group(&sim, "live-late").stats.processed < 100, "the late subscriber missed the first 20 s");
    assert_eq!(group(&sim, "log-late").stats.processed, 175, "the late group replayed the stream");
}

#[test]
fn retry_topics_retry_dead_letter_and_reorder() {
    let (sim, _) = run("retry-topics");
    let g = group(&sim, "payments");
    assert!(g.stats.retried > 50 && g.stats.dead_lettered > 0 && g.stats.order_violations > 0, "{:?}", g.stats);
    assert_eq!(g.stats.processed + g.stats.dead_lettered, 400, "every order is paid or dead-lettered, once");
}

#[test]
fn compaction_leaves_the_latest_value_per_key() {
    let (sim, _) = run("compaction");
    let retained: u64 = sim.streams().topics[0].logs.iter().map(brokerlab::stream::Log::retained).sum();
    assert!(retained <= 40, "at most a few values per key survive: {retained}");
    assert_eq!(group(&sim, "rebuild").stats.processed, retained, "the rebuild reads only what is left");
}

/// Competing consumers on one queue break per-key order; a FIFO queue's message groups keep
/// it. The checker flags every message applied after a later one of its key.
#[test]
fn competing_consumers_break_per_key_order_and_fifo_groups_keep_it() {
    let (sim, trace) = run("competing-consumers");
    let flagged = trace.iter().filter(|e| matches!(e, TraceEvent::MessageOutOfOrder { .. })).count() as u64;
    assert!(flagged > 0 && flagged == sim.stats().order_violations, "{flagged}");
    let (sim, _) = run("fifo-groups");
    assert_eq!(sim.stats().order_violations, 0);
}

/// Every preset tells its story in four to eight beats, each with an `expect`, and for its own
/// seed and seeds 2 to 5 every beat is reached and its `expect` holds there, checked at the
/// end of the beat's instant as the page pauses.
#[test]
fn every_preset_tells_its_story_in_four_to_eight_checked_beats() {
    for p in brokerlab::scenario::presets() {
        let scenario = load(p.id);
        let markers = &scenario.markers;
        assert!((4..=8).contains(&markers.len()), "{}: {} beats", p.id, markers.len());
        for (k, m) in markers.iter().enumerate() {
            assert!(!m.expect.is_empty(), "{}: beat {} has no expect", p.id, k + 1);
            // A full stop (or ? or !) ends a sentence when a space or the end follows it, so
            // `auto.offset.reset` is one word.
            let rest = |i: usize| &m.text[i + 1..];
            let ends =
                m.text.match_indices(['.', '?', '!']).filter(|(i, _)| rest(*i).is_empty() || rest(*i).starts_with(' '));
            assert!(ends.count() <= 2, "{}: beat {} says more than two sentences", p.id, k + 1);
        }
        let own = scenario.seed.expect("presets carry their seed");
        for seed in [own, 2, 3, 4, 5] {
            let end = scenario.end();
            let mut sim = Sim::new(scenario.clone(), seed);
            sim.set_recording(false);
            let beats = sim.run_checking_beats(end, 100_000_000).expect("runs");
            for (k, b) in beats.iter().enumerate() {
                assert!(b.missed.is_none(), "{} seed {seed}: {}", p.id, b.missed.as_deref().unwrap_or(""));
                assert!(b.failed.is_empty(), "{} seed {seed} beat {}: {:?}", p.id, k + 1, b.failed);
            }
        }
    }
}

/// The `expired` counter means what its help says: every message whose time to live ran out,
/// deleted in place or dead-lettered for it; so in ttl-expiry it agrees with the DLQ's reasons.
#[test]
fn the_expired_counter_counts_dead_letters_that_expired_too() {
    let (sim, trace) = run("ttl-expiry");
    let expired_in_place = trace.iter().filter(|e| matches!(e, TraceEvent::Expired { .. })).count() as u64;
    let dead_for_it =
        dead_reasons(&trace, (queue(&sim, "quotes")).0).iter().filter(|r| **r == DeadReason::Expired).count() as u64;
    assert!(dead_for_it > 10, "{dead_for_it}");
    assert_eq!(sim.counters().expired, expired_in_place + dead_for_it);
    assert_eq!(sim.summary().counters, sim.counters(), "the CLI summary says the same");
}

/// circuit-breaker's key counters on its own seed and seeds 2 to 5 (issue 26, item 6), and
/// the breaker's moves against CB-4, CB-6 and CB-7: it opens at 50 % of its last 10 calls,
/// half-opens exactly 3 s later, opens again on failed trials while the dependency is down
/// and closes on the first trials after it is back; while it is open the worker makes no call.
#[test]
fn a_circuit_breaker_pauses_through_an_outage_and_loses_nothing() {
    use brokerlab::trace::BreakerPhase;
    let scenario = load("circuit-breaker");
    for seed in [11, 2, 3, 4, 5] {
        let (sim, trace) = run_traced(scenario.clone(), seed);
        let s = sim.summary();
        let (plain, guarded) = (s.dependencies[0].calls, s.dependencies[1].calls);
        let [plain_dlq, guarded_q, guarded_dlq] = ["plain.dlq", "guarded", "guarded.dlq"].map(|q| queue(&sim, q));
        assert!(plain.failed >= 80 && guarded.failed <= 12, "seed {seed}: {plain:?} {guarded:?}");
        assert!(sim.counts(plain_dlq).get(StateKind::DeadLettered) >= 12, "seed {seed}");
        assert_eq!(sim.counts(guarded_dlq).get(StateKind::DeadLettered), 0, "seed {seed}");
        assert_eq!(sim.counts(guarded_q).get(StateKind::Acked), 100, "seed {seed}");
        let moves: Vec<(u64, BreakerPhase, u32)> = trace
            .iter()
            .filter_map(|e| match *e {
                TraceEvent::BreakerChanged { at, phase, failure_rate_pct, .. } => {
                    Some((at.as_micros(), phase, failure_rate_pct))
                }
                _ => None,
            })
            .collect();
        let phases: Vec<BreakerPhase> = moves.iter().map(|m| m.1).collect();
        use BreakerPhase::{Closed, HalfOpen, Open};
        assert_eq!(phases, [Open, HalfOpen, Open, HalfOpen, Open, HalfOpen, Open, HalfOpen, Closed], "seed {seed}");
        assert!(moves[0].2 >= 50 && moves[0].0 > 4_000_000, "seed {seed}: opens at the threshold: {:?}", moves[0]);
        for w in moves.windows(2).filter(|w| w[0].1 == Open) {
            assert_eq!(w[1].0 - w[0].0, 3_000_000, "seed {seed}: CB-6, half-open after the 3 s wait");
        }
        assert!(moves[8].0 > 16_000_000, "seed {seed}: closed only once inventory is back");
        // No call while open: every processing start of guarded-worker lies outside the open
        // stretches (a call spans its processing, which starts only with a permit).
        let worker = brokerlab::ids::ConsumerId(1);
        let open: Vec<(u64, u64)> = moves.windows(2).filter(|w| w[0].1 == Open).map(|w| (w[0].0, w[1].0)).collect();
        let starts = trace.iter().filter_map(|e| match *e {
            TraceEvent::ProcessingStarted { at, consumer, .. } if consumer == worker => Some(at.as_micros()),
            _ => None,
        });
        for t in starts {
            assert!(!open.iter().any(|&(a, b)| a < t && t < b), "seed {seed}: a call at {t} µs while open");
        }
    }
}

/// Issue 26, item 7: one dead letter resubmitted as it is dies again; resubmitted after an
/// edit that fixes its payload, it is processed. The DLQ's report says how many wait there,
/// when the oldest died, and why (the reason, with the last error).
#[test]
fn a_dead_letter_resubmitted_as_it_is_dies_again_and_fixed_is_processed() {
    let mut doc: serde_json::Value =
        serde_json::from_str(brokerlab::scenario::preset("poison-redrive").expect("preset").json).expect("json");
    // No fix deployed, no redrive: the user resubmits m4 by hand, first as it is, then fixed.
    doc["script"] = serde_json::json!([]);
    doc["markers"] = serde_json::json!([]);
    doc["duration_ms"] = serde_json::json!(60_000);
    let scenario = brokerlab::Scenario::from_json(&doc.to_string()).expect("valid");
    let (dlq, orders) = (queue_of(&scenario, "orders.dlq"), queue_of(&scenario, "orders"));
    let mut sim = Sim::new(scenario.clone(), scenario.seed.expect("seed"));
    sim.run_until(brokerlab::SimTime::from_millis(20_000), u64::MAX).expect("runs");
    let report = sim.broker().dead_letter_report(dlq).expect("a DLQ has a report");
    assert_eq!(report.count, 1);
    assert_eq!((report.mix[0].reason, report.mix[0].count), ("maxReceiveCount exceeded", 1), "{report:?}");
    let died = report.oldest_dead_at_ms.expect("it died");
    assert!(died > 5_000.0 && died < 20_000.0, "{died}");
    let input = |sim: &mut Sim, json: &str| {
        let op = sim.scenario().live_op(json).expect("a valid input");
        sim.input(op);
    };
    input(&mut sim, r#"{"op": "resubmit", "msg": "m4"}"#);
    assert_eq!(sim.broker().dead_letter_report(dlq).expect("report").count, 0, "it left the DLQ");
    sim.run_until(brokerlab::SimTime::from_millis(40_000), u64::MAX).expect("runs");
    let again = sim.broker().dead_letter_report(dlq).expect("report");
    assert_eq!(again.count, 1, "unedited, the poison crashed the worker three times more and died again");
    let second = sim.broker().msgs.len() - 1;
    let id = format!(r#"{{"op": "resubmit", "msg": "m{}", "edit": true}}"#, dead_in(&sim, dlq));
    input(&mut sim, &id);
    sim.run_until(scenario.end(), u64::MAX).expect("runs");
    assert_eq!(sim.broker().dead_letter_report(dlq).expect("report").count, 0);
    assert_eq!(sim.counts(orders).get(StateKind::Acked), 20, "all 20 orders done, m4 as its fixed copy");
    assert!(sim.broker().msgs.len() > second, "the fixed copy is a new message");
    // Resubmitting what is not a dead letter does nothing.
    let before = sim.broker().msgs.len();
    input(&mut sim, r#"{"op": "resubmit", "msg": "m0"}"#);
    assert_eq!(sim.broker().msgs.len(), before);
}

fn queue_of(s: &brokerlab::Scenario, name: &str) -> QueueId {
    QueueId(s.queue_index(name).unwrap_or_else(|| panic!("no queue {name}")))
}

/// The one dead letter waiting in `dlq`.
fn dead_in(sim: &Sim, dlq: QueueId) -> u32 {
    let b = sim.broker();
    let n = u32::try_from(b.msgs.len()).expect("fits");
    (0..n)
        .rev()
        .find(|&m| {
            b.msgs[m as usize].queue == dlq
                && sim.message_state(MsgId(m)) == Some(brokerlab::message::MsgState::DeadLettered)
        })
        .expect("a dead letter")
}

/// Issue 26, item 7: an alert fires when its value goes above its bound and resolves when
/// it comes back to it or below, checked against the trace's own counts: poison-redrive's
/// "DLQ not empty" fires the moment m4 is dead-lettered and resolves at the redrive;
/// poison-blocks-partition's lag alert fires at a lag of 51 or more, on five seeds.
#[test]
fn alerts_fire_above_their_bound_and_resolve_at_or_below_it() {
    let changes = |trace: &[TraceEvent]| -> Vec<(u64, bool, u64)> {
        trace
            .iter()
            .filter_map(|e| match *e {
                TraceEvent::AlertChanged { at, firing, value, .. } => Some((at.as_micros(), firing, value)),
                _ => None,
            })
            .collect()
    };
    let (sim, trace) = run("poison-redrive");
    let dead_at = trace.iter().find_map(|e| match *e {
        TraceEvent::DeadLettered { at, .. } => Some(at.as_micros()),
        _ => None,
    });
    let redriven_at = trace.iter().find_map(|e| match *e {
        TraceEvent::Redriven { at, .. } => Some(at.as_micros()),
        _ => None,
    });
    let got = changes(&trace);
    assert_eq!(got, vec![(dead_at.expect("dead"), true, 1), (redriven_at.expect("redriven"), false, 0)]);
    let a = &sim.summary().alerts[0];
    assert_eq!((a.state.firing, a.state.fired), (false, 1));
    let scenario = load("poison-blocks-partition");
    for seed in [scenario.seed.expect("seed"), 2, 3, 4, 5] {
        let (sim, trace) = run_traced(scenario.clone(), seed);
        let got = changes(&trace);
        assert!(!got.is_empty() && got[0].1 && got[0].2 > 50, "seed {seed}: {got:?}");
        for w in got.windows(2) {
            assert_ne!(w[0].1, w[1].1, "seed {seed}: it alternates: {got:?}");
        }
        assert!(got.iter().all(|&(_, firing, v)| firing == (v > 50)), "seed {seed}: {got:?}");
        let a = &sim.summary().alerts[0];
        assert_eq!(a.state.fired, got.iter().filter(|c| c.1).count() as u64, "seed {seed}");
        assert_eq!(a.first_fired_ms, Some(got[0].0 as f64 / 1000.0), "seed {seed}");
    }
}

/// ordering-fixes' key counters on its own seed and seeds 2 to 5 (issue 26, item 4): every
/// order violation is racing's; versioned drops its stale updates (each one older than, or
/// the same as, the write its row has) and applies the rest in order; keyed's group reads
/// each key in order.
#[test]
fn a_version_check_and_a_partition_per_key_both_keep_order() {
    let scenario = load("ordering-fixes");
    let (racing, versioned) = (queue_of(&scenario, "racing"), queue_of(&scenario, "versioned"));
    for seed in [4, 2, 3, 4, 5] {
        let (sim, trace) = run_traced(scenario.clone(), seed);
        let s = sim.summary();
        let out_of_order = |q: QueueId| {
            trace.iter().filter(|e| matches!(e, TraceEvent::MessageOutOfOrder { queue, .. } if *queue == q)).count()
        };
        assert!(out_of_order(racing) >= 10, "seed {seed}: {}", out_of_order(racing));
        assert_eq!(out_of_order(versioned), 0, "seed {seed}");
        assert!(s.stats.stale_dropped >= 10, "seed {seed}: {:?}", s.stats);
        for e in &trace {
            if let TraceEvent::StaleDropped { key, newer, .. } = *e {
                assert!(newer.0 >= key, "seed {seed}: m{key} dropped for an older m{}", newer.0);
            }
        }
        assert_eq!(s.groups[0].stats.order_violations, 0, "seed {seed}");
        assert_eq!(s.groups[0].stats.processed, 120, "seed {seed}");
        assert_eq!((sim.counts(racing).get(StateKind::Acked), sim.counts(versioned).get(StateKind::Acked)), (120, 120));
    }
}
