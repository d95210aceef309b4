//! Checkers that can fail (issue 24): each invariant `Ledger` holds is broken on purpose in a
//! real recorded trace, and the exact violation it reports is asserted. (`check`'s own are in
//! `src/check.rs`'s unit tests, which can corrupt the engine's private state.)

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::{load, run_traced};
use brokerlab::check::Ledger;
use brokerlab::ids::{ConsumerId, MemberId, MsgId, QueueId};
use brokerlab::trace::ReturnReason;
use brokerlab::{SimTime, TraceEvent as T};

/// A preset's whole trace (its own seed), every checker on while it was recorded.
fn trace(id: &str) -> Vec<T> {
    let scenario = load(id);
    let seed = scenario.seed.expect("presets carry their seed");
    run_traced(scenario, seed).1
}

/// Replays `events` into a fresh ledger: the first violation's text, or None.
fn replay(events: &[T]) -> Option<String> {
    let mut ledger = Ledger::default();
    events.iter().find_map(|e| ledger.apply(e).err()).map(|v| v.what)
}

/// The trace up to and including its `nth` event matching `pick`, then `extra` after it.
fn cut(events: &[T], nth: usize, pick: impl Fn(&T) -> bool, extra: T) -> Vec<T> {
    let i = events.iter().enumerate().filter(|(_, e)| pick(e)).nth(nth).map(|(i, _)| i).expect("such an event");
    let mut out = events[..=i].to_vec();
    out.push(extra);
    out
}

fn find<R>(events: &[T], f: impl Fn(&T) -> Option<R>) -> R {
    events.iter().find_map(f).expect("such an event")
}

/// SQS with a heartbeat that extends leases, and (at 150 ms) a delivery lost on its way: the
/// two events no preset makes.
const HEARTBEAT: &str = r#"{"name": "h", "duration_ms": 8000, "network": {"latency_ms": 100},
  "queues": [{"name": "q", "lease": {"model": "sqs", "visibility_timeout_ms": 1000}}],
  "producers": [{"name": "p", "to": "q", "schedule": {"kind": "fixed_rate", "interval_ms": 1000, "count": 4}}],
  "consumers": [{"name": "c", "from": "q", "heartbeat_ms": 400, "processing": {"kind": "constant", "ms": 1500}}]}"#;

/// A queue nobody reads, whose messages live 500 ms.
const EXPIRING: &str = r#"{"name": "e", "duration_ms": 3000,
  "queues": [{"name": "q", "ttl_ms": 500}],
  "producers": [{"name": "p", "to": "q", "schedule": {"kind": "fixed_rate", "interval_ms": 200, "count": 5}}]}"#;

fn heartbeat_trace() -> Vec<T> {
    let mut d = crate::Driver::new(HEARTBEAT);
    let mut events = d.to(150.0);
    events.extend(d.input(r#"{"op": "drop_delivery", "msg": "m0"}"#));
    events.extend(d.to(8000.0));
    events
}

#[test]
fn the_ledger_accepts_every_real_trace() {
    for p in brokerlab::scenario::presets() {
        // With the scenario's own ledger: a RabbitMQ dead letter's receive count starts again.
        let mut ledger = Ledger::for_scenario(&load(p.id));
        let found = trace(p.id).iter().find_map(|e| ledger.apply(e).err()).map(|v| v.what);
        assert_eq!(found, None, "{}", p.id);
    }
    let t = heartbeat_trace();
    assert!(
        t.iter().any(|e| matches!(e, T::LeaseExtended { .. })) && t.iter().any(|e| matches!(e, T::DeliveryLost { .. }))
    );
    assert_eq!(replay(&t), None);
    // Messages nobody reads expire where they wait (no preset lets one expire outright).
    let mut d = crate::Driver::new(EXPIRING);
    let t = d.to(3000.0);
    assert!(t.iter().any(|e| matches!(e, T::Expired { .. })), "messages expired");
    assert_eq!(replay(&t), None);
    // Committing the same offset again is no move backwards.
    let r = trace("rebalancing");
    let commit = |e: &T| matches!(*e, T::OffsetCommitted { offset, .. } if offset > 0);
    let again = *r.iter().find(|e| commit(e)).expect("a commit");
    assert_eq!(replay(&cut(&r, 0, commit, again)), None);
}

/// The first event of `events` that `pick` finds, with the trace up to it; then `after` it.
fn after(events: &[T], pick: impl Fn(&T) -> bool, then: impl Fn(&T) -> T) -> Option<String> {
    let i = events.iter().position(pick).expect("such an event");
    let mut out = events[..=i].to_vec();
    out.push(then(&events[i]));
    replay(&out)
}

/// Every move the ledger allows is refused from a state it does not allow it in: after the
/// message is settled, or by a consumer that does not hold it.
#[test]
fn the_ledger_refuses_each_move_from_the_wrong_state() {
    let t = trace("competing-consumers");
    let acked = |e: &T| matches!(e, T::Acked { .. });
    let refused = |then: &dyn Fn(MsgId, QueueId, SimTime) -> T, what: &str| {
        let v = after(&t, acked, |e| {
            let T::Acked { at, msg, queue, .. } = *e else { unreachable!() };
            then(msg, queue, at)
        });
        assert!(v.as_deref().is_some_and(|v| v.ends_with(&format!("{what} while Final(Acked)"))), "{what}: {v:?}");
    };
    refused(&|msg, queue, at| T::Enqueued { at, msg, queue, depth: 1 }, "enqueued");
    refused(&|msg, queue, at| T::Delayed { at, msg, queue, until: at }, "delayed");
    let dead = |msg, queue, at| T::DeadLettered {
        at,
        msg,
        from: queue,
        dlq: queue,
        reason: brokerlab::trace::DeadReason::Rejected,
    };
    refused(&dead, "dead_lettered");
    refused(&|msg, queue, at| T::Dropped { at, msg, queue, reason: brokerlab::trace::DropReason::DropHead }, "dropped");

    // ack-modes: an auto-acked message is neither delayed nor dead-lettered, and only its
    // holder auto-acks.
    let a = trace("ack-modes");
    let auto = |e: &T| matches!(e, T::AutoAcked { .. });
    let v = after(&a, auto, |e| {
        let T::AutoAcked { at, msg, .. } = *e else { unreachable!() };
        T::Delayed { at, msg, queue: QueueId(0), until: at }
    });
    assert!(v.as_deref().is_some_and(|v| v.contains(": delayed while AutoAcked")), "{v:?}");
    let v = after(&a, auto, |e| {
        let T::AutoAcked { at, msg, .. } = *e else { unreachable!() };
        T::DeadLettered { at, msg, from: QueueId(0), dlq: QueueId(0), reason: brokerlab::trace::DeadReason::Rejected }
    });
    assert!(v.as_deref().is_some_and(|v| v.contains(": dead_lettered while AutoAcked")), "{v:?}");
    let delivered = |e: &T| matches!(e, T::Delivered { .. });
    let v = after(&a, delivered, |e| {
        let T::Delivered { at, msg, consumer, .. } = *e else { unreachable!() };
        T::AutoAcked { at, msg, consumer: ConsumerId(consumer.0 + 1) }
    });
    assert!(v.as_deref().is_some_and(|v| v.contains(": auto_acked while Leased")), "{v:?}");

    // Extended or lost by a consumer that does not hold the lease.
    let h = heartbeat_trace();
    let v = after(&h, delivered, |e| {
        let T::Delivered { at, msg, consumer, .. } = *e else { unreachable!() };
        T::LeaseExtended { at, msg, consumer: ConsumerId(consumer.0 + 1), until: at }
    });
    assert!(v.as_deref().is_some_and(|v| v.contains(": lease_extended while Leased")), "{v:?}");
    let v = after(&h, delivered, |e| {
        let T::Delivered { at, msg, consumer, .. } = *e else { unreachable!() };
        T::DeliveryLost { at, msg, consumer: ConsumerId(consumer.0 + 1) }
    });
    assert!(v.as_deref().is_some_and(|v| v.contains(": delivery_lost while Leased")), "{v:?}");
}

#[test]
fn the_ledger_refuses_time_going_back() {
    let t = trace("competing-consumers");
    let (msg, at) = find(&t, |e| match *e {
        T::Acked { msg, at, .. } if at > SimTime::from_millis(1000) => Some((msg, at)),
        _ => None,
    });
    let i = t.iter().position(|e| matches!(*e, T::Acked { msg: m, .. } if m == msg)).expect("acked");
    let mut bad = t[..=i].to_vec();
    bad.push(T::Expired { at: SimTime::from_millis(1), msg, queue: QueueId(0) });
    assert_eq!(replay(&bad), Some(format!("event at {} after one at {at}", SimTime::from_millis(1))));
}

#[test]
fn the_ledger_refuses_messages_out_of_sequence_or_never_published() {
    let t = trace("competing-consumers");
    let first = t.iter().position(|e| matches!(e, T::Published { .. })).expect("a publish");
    let mut skipped = t[..first].to_vec();
    if let T::Published { at, producer, queue, arrives_at, .. } = t[first] {
        skipped.push(T::Published { at, msg: MsgId(1), producer, queue, arrives_at });
    }
    assert_eq!(replay(&skipped), Some("m1 published out of sequence (expected m0)".into()));
    let stray = vec![T::Acked { at: SimTime::ZERO, msg: MsgId(7), queue: QueueId(0), consumer: ConsumerId(0) }];
    assert_eq!(replay(&stray), Some("acked for m7, which was never published".into()));
}

#[test]
fn the_ledger_refuses_a_wrong_receive_count_and_illegal_moves() {
    let t = trace("competing-consumers");
    let is_delivery = |e: &T| matches!(e, T::Delivered { .. });
    let T::Delivered { at, msg, queue, consumer, receipt, receive_count, lease_until, arrives_at } =
        *t.iter().find(|e| is_delivery(e)).expect("a delivery")
    else {
        unreachable!()
    };
    let i = t.iter().position(is_delivery).expect("a delivery");
    // Delivered again with a count that skips one.
    let mut bad = t[..i].to_vec();
    let wrong =
        T::Delivered { at, msg, queue, consumer, receipt, receive_count: receive_count + 1, lease_until, arrives_at };
    bad.push(wrong);
    assert_eq!(replay(&bad), Some(format!("m{msg} delivered with receive count 2, the trace shows 1")));
    // Delivered twice without coming back.
    let twice = cut(&t, 0, is_delivery, t[i]);
    assert_eq!(
        replay(&twice),
        Some(format!("m{msg}: delivered while Leased {{ consumer: {consumer}, receipt: {receipt} }}"))
    );
    // Acked by a consumer that does not hold it.
    let other = cut(&t, 0, is_delivery, T::Acked { at, msg, queue, consumer: ConsumerId(consumer.0 + 1) });
    assert_eq!(
        replay(&other),
        Some(format!("m{msg}: acked while Leased {{ consumer: {consumer}, receipt: {receipt} }}"))
    );
    // Returned by another consumer; expired while leased; redriven while leased.
    let back = T::Returned { at, msg, queue, consumer: ConsumerId(consumer.0 + 1), reason: ReturnReason::Nacked };
    assert!(replay(&cut(&t, 0, is_delivery, back))
        .is_some_and(|v| v.starts_with(&format!("m{msg}: returned while Leased"))));
    let expired = T::Expired { at, msg, queue };
    assert!(replay(&cut(&t, 0, is_delivery, expired))
        .is_some_and(|v| v.starts_with(&format!("m{msg}: expired while Leased"))));
    let redriven = T::Redriven { at, msg, new_msg: MsgId(msg.0 + 1000), to: queue };
    assert!(replay(&cut(&t, 0, is_delivery, redriven))
        .is_some_and(|v| v.starts_with(&format!("m{msg}: redriven while Leased"))));
    // Acked twice: a settled message stays settled.
    let acked = |e: &T| matches!(*e, T::Acked { msg: m, .. } if m == msg);
    let ack = *t.iter().find(|e| acked(e)).expect("acked");
    assert_eq!(replay(&cut(&t, 0, acked, ack)), Some(format!("m{msg}: acked while Final(Acked)")));
}

#[test]
fn the_ledger_refuses_broken_logs_commits_and_ownership() {
    let t = trace("rebalancing");
    // An append at an offset the log already has.
    let append = |e: &T| matches!(e, T::RecordAppended { .. });
    let first = *t.iter().find(|e| append(e)).expect("an append");
    let T::RecordAppended { topic, partition, .. } = first else { unreachable!() };
    assert_eq!(
        replay(&cut(&t, 0, append, first)),
        Some(format!("topic {topic}-{partition}: appended at 0, the log ends at 1"))
    );
    // A commit that goes back, and one beyond the log end.
    let commit = |e: &T| matches!(*e, T::OffsetCommitted { offset, .. } if offset > 0);
    let T::OffsetCommitted { at, group, member, topic, partition, offset } =
        *t.iter().find(|e| commit(e)).expect("a commit")
    else {
        unreachable!()
    };
    let back = T::OffsetCommitted { at, group, member, topic, partition, offset: offset - 1 };
    let v = replay(&cut(&t, 0, commit, back)).expect("refused");
    assert!(
        v.starts_with(&format!("group {group} committed {topic}-{partition} at {}: was {offset}", offset - 1)),
        "{v}"
    );
    let beyond = T::OffsetCommitted { at, group, member, topic, partition, offset: 1_000_000 };
    let v = replay(&cut(&t, 0, commit, beyond)).expect("refused");
    assert!(
        v.starts_with(&format!("group {group} committed {topic}-{partition} at 1000000: was {offset}, log end")),
        "{v}"
    );
    // A record handled beyond the log end.
    let done = |e: &T| matches!(e, T::RecordDone { .. });
    let T::RecordDone { at, group, member, topic, partition, record, times, .. } =
        *t.iter().find(|e| done(e)).expect("done")
    else {
        unreachable!()
    };
    let far = T::RecordDone {
        at,
        group,
        member,
        topic,
        partition,
        offset: 1_000_000,
        record,
        times,
        outcome: brokerlab::trace::RecordOutcome::Processed,
    };
    assert_eq!(
        replay(&cut(&t, 0, done, far)),
        Some(format!("a record at {topic}-{partition}@1000000, beyond the log end"))
    );
    // A partition given to a second member while one owns it, and one given up by a member
    // that does not own it.
    let assign = |e: &T| matches!(e, T::PartitionAssigned { .. });
    let T::PartitionAssigned { at, group, member, topic, partition, generation, offset } =
        *t.iter().find(|e| assign(e)).expect("an assignment")
    else {
        unreachable!()
    };
    let again =
        T::PartitionAssigned { at, group, member: MemberId(member.0 + 1), topic, partition, generation, offset };
    assert_eq!(
        replay(&cut(&t, 0, assign, again)),
        Some(format!(
            "group {group}: {topic}-{partition} given to member {} while member {member} owns it",
            member.0 + 1
        ))
    );
    let revoke = T::PartitionRevoked {
        at,
        group,
        member: MemberId(member.0 + 1),
        topic,
        partition,
        reason: brokerlab::trace::RevokeReason::Rebalance,
    };
    assert_eq!(
        replay(&cut(&t, 0, assign, revoke)),
        Some(format!("group {group}: member {} gave up {topic}-{partition}, which it did not own", member.0 + 1))
    );
}

#[test]
fn the_ledger_refuses_a_reply_matched_to_the_wrong_request_or_twice() {
    let t = trace("request-reply");
    let matched = |e: &T| matches!(e, T::ReplyMatched { .. });
    let T::ReplyMatched { at, msg, system, requester, corr, request } =
        *t.iter().find(|e| matched(e)).expect("a match")
    else {
        unreachable!()
    };
    let wrong = T::ReplyMatched { at, msg, system, requester, corr: corr + 1000, request };
    let i = t.iter().position(matched).expect("a match");
    let mut bad = t[..i].to_vec();
    bad.push(wrong);
    assert_eq!(
        replay(&bad),
        Some(format!("a reply with corr-{} matched to request m{request}, which is not its request", corr + 1000))
    );
    assert_eq!(
        replay(&cut(&t, 0, matched, t[i])),
        Some(format!("a reply with corr-{corr} matched to request m{request}, which is not its request"))
    );
}
