//! The broker timelines of `shared/vectors/broker_scenarios.json` (SQS, RabbitMQ, Service Bus),
//! each as a scripted scenario asserting its documented outcome, plus the rules around them in
//! `shared/semantics.md`. Vector ids and rule numbers are cited per test.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::Driver;
use brokerlab::ids::{ConsumerId, MsgId, QueueId};
use brokerlab::message::MsgState;
use brokerlab::trace::{DeadReason, ReturnReason};
use brokerlab::TraceEvent;

/// A scenario with one queue (`queue` is its JSON), manual consumers `a` and `b`, and a script.
fn scenario(queue: &str, script: &str) -> String {
    format!(
        r#"{{"name": "vector", "duration_ms": 3600000,
            "queues": [{queue}],
            "consumers": [{{"name": "a", "from": "q", "mode": "manual"}}, {{"name": "b", "from": "q", "mode": "manual"}}],
            "script": [{script}]}}"#
    )
}

/// The (message, receive count) of each delivery among `events`.
fn deliveries(events: &[TraceEvent]) -> Vec<(MsgId, u32)> {
    events
        .iter()
        .filter_map(|e| match *e {
            TraceEvent::Delivered { msg, receive_count, .. } => Some((msg, receive_count)),
            _ => None,
        })
        .collect()
}

fn receipts(events: &[TraceEvent]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match *e {
            TraceEvent::Delivered { receipt, .. } => Some(receipt),
            _ => None,
        })
        .collect()
}

fn got_nothing(events: &[TraceEvent]) -> bool {
    events.iter().any(|e| matches!(e, TraceEvent::ReceivedNothing { .. })) && deliveries(events).is_empty()
}

fn dead_lettered(events: &[TraceEvent]) -> Vec<DeadReason> {
    events
        .iter()
        .filter_map(|e| match *e {
            TraceEvent::DeadLettered { reason, .. } => Some(reason),
            _ => None,
        })
        .collect()
}

#[test]
fn sqs_visibility_basic() {
    // Vector sqs-visibility-basic (SQS-2, SQS-8): invisible for 30 s, visible again at t = 30.
    let mut d = Driver::new(&scenario(
        r#"{"name": "q", "lease": {"model": "sqs", "visibility_timeout_ms": 30000}}"#,
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "m1"},
           {"at_ms": 0, "op": "receive", "consumer": "a"},
           {"at_ms": 29900, "op": "receive", "consumer": "a"},
           {"at_ms": 30000, "op": "receive", "consumer": "a"}"#,
    ));
    let m1 = d.sim.named("m1").map(|_| ());
    let first = d.to(0.0);
    assert_eq!(m1, None, "named on send, not before");
    let m1 = d.sim.named("m1").expect("sent");
    assert_eq!(deliveries(&first), vec![(m1, 1)], "ApproximateReceiveCount 1");
    assert!(got_nothing(&d.to(29_900.0)), "still invisible at 29.9 s");
    let again = d.to(30_000.0);
    assert_eq!(deliveries(&again), vec![(m1, 2)], "visible at t >= deadline, count 2");
    assert_ne!(receipts(&first), receipts(&again), "a new receipt handle");
}

#[test]
fn sqs_redrive_is_lazy_at_max_receive_count() {
    // Vector sqs-redrive-maxreceivecount (SQS-11): delivered 3 times; moved on the 4th receive.
    let mut d = Driver::new(&scenario(
        r#"{"name": "q", "lease": {"model": "sqs", "visibility_timeout_ms": 30000, "max_receive_count": 3}}"#,
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "m1"},
           {"at_ms": 0, "op": "receive", "consumer": "a"},
           {"at_ms": 30000, "op": "receive", "consumer": "a"},
           {"at_ms": 60000, "op": "receive", "consumer": "a"},
           {"at_ms": 100000, "op": "receive", "consumer": "a"},
           {"at_ms": 100000, "op": "receive", "consumer": "b", "queue": "q.dlq"}"#,
    ));
    let mut counts = Vec::new();
    for t in [0.0, 30_000.0, 60_000.0] {
        counts.extend(deliveries(&d.to(t)).into_iter().map(|(_, n)| n));
    }
    assert_eq!(counts, vec![1, 2, 3]);
    let (q, dlq) = (d.queue("q"), d.queue("q.dlq"));
    d.to(75_000.0);
    let m = d.msg("m1");
    assert!(matches!(m.state(), MsgState::InFlight { .. }) && m.queue == q, "t=75: in flight in the source");
    assert_eq!(d.sim.counts(dlq).total(), 0, "t=75: nothing in the DLQ");
    d.to(95_000.0);
    let m = d.msg("m1");
    assert_eq!((m.state(), m.queue), (MsgState::Ready, q), "t=95: visible in the SOURCE queue (the move is lazy)");
    let at_100 = d.to(100_000.0);
    let source_receive: Vec<_> =
        at_100.iter().take_while(|e| !matches!(e, TraceEvent::ReceivedNothing { .. })).collect();
    assert!(
        source_receive
            .iter()
            .any(|e| matches!(e, TraceEvent::DeadLettered { reason: DeadReason::MaxReceiveCount, .. })),
        "the 4th receive moves it to the DLQ"
    );
    assert!(
        at_100.iter().any(|e| matches!(e, TraceEvent::ReceivedNothing { queue, .. } if *queue == q)),
        "and returns nothing"
    );
    let from_dlq: Vec<_> = at_100
        .iter()
        .filter_map(|e| match *e {
            TraceEvent::Delivered { queue, receive_count, .. } if queue == dlq => Some(receive_count),
            _ => None,
        })
        .collect();
    assert_eq!(from_dlq, vec![4], "received from the DLQ with ApproximateReceiveCount 4");
}

#[test]
fn sqs_dlq_redrive_makes_new_messages() {
    // Vector sqs-dlq-redrive (SQS-15): new id, new enqueue time, a fresh receive count.
    let mut d = Driver::new(&scenario(
        r#"{"name": "q", "lease": {"model": "sqs", "visibility_timeout_ms": 1000, "max_receive_count": 1}}"#,
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "m1"},
           {"at_ms": 0, "op": "receive", "consumer": "a"},
           {"at_ms": 2000, "op": "receive", "consumer": "a"},
           {"at_ms": 5000, "op": "redrive", "from": "q.dlq"},
           {"at_ms": 6000, "op": "receive", "consumer": "a"}"#,
    ));
    d.to(2000.0);
    let old = d.sim.named("m1").expect("sent");
    assert_eq!(d.msg("m1").state(), MsgState::DeadLettered);
    let redrive = d.to(5000.0);
    let new = redrive
        .iter()
        .find_map(|e| match *e {
            TraceEvent::Redriven { msg, new_msg, to, .. } if msg == old && to == QueueId((d.queue("q")).0) => {
                Some(new_msg)
            }
            _ => None,
        })
        .expect("redriven to its source queue");
    assert_ne!(new, old, "a new MessageId");
    assert_eq!(d.msg("m1").state(), MsgState::Moved);
    let fresh = d.sim.broker().msg(new);
    assert_eq!((fresh.state(), fresh.receive_count, fresh.available_at.as_micros()), (MsgState::Ready, 0, 5_000_000));
    assert_eq!(fresh.key, d.msg("m1").key, "the business key survives, for idempotent consumers");
    assert_eq!(deliveries(&d.to(6000.0)), vec![(new, 1)], "the receive count starts afresh");
}

#[test]
fn a_fifo_dead_letter_redriven_inside_the_dedup_window_is_not_a_duplicate() {
    // SQS-14: moved to its FIFO DLQ (SQS-12), a message's deduplication id is replaced by its
    // message id, so the redriven copy is new even within the original id's window; a re-send
    // with the original id is still suppressed (SQS-23: the window runs from the first send).
    let mut d = Driver::new(&scenario(
        r#"{"name": "q", "lease": {"model": "sqs", "visibility_timeout_ms": 1000, "max_receive_count": 1}, "fifo": true}"#,
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "x1", "group": 1, "dedup_id": "X"},
           {"at_ms": 0, "op": "receive", "consumer": "a"},
           {"at_ms": 2000, "op": "receive", "consumer": "a"},
           {"at_ms": 5000, "op": "redrive", "from": "q.dlq"},
           {"at_ms": 6000, "op": "receive", "consumer": "a"},
           {"at_ms": 7000, "op": "send", "to": "q", "message": "x2", "group": 1, "dedup_id": "X"}"#,
    ));
    d.to(2000.0);
    assert_eq!(d.msg("x1").state(), MsgState::DeadLettered);
    let redrive = d.to(6000.0);
    assert!(!redrive.iter().any(|e| matches!(e, TraceEvent::Deduplicated { .. })), "the copy is not a duplicate");
    let new = redrive
        .iter()
        .find_map(|e| match *e {
            TraceEvent::Redriven { new_msg, .. } => Some(new_msg),
            _ => None,
        })
        .expect("redriven");
    assert_eq!(deliveries(&redrive), vec![(new, 1)], "and it is delivered");
    let resend = d.to(7000.0);
    assert!(resend.iter().any(|e| matches!(e, TraceEvent::Deduplicated { .. })), "X's own window still holds");
    assert_eq!(d.sim.named("x2"), d.sim.named("x1"));
}

#[test]
fn sqs_fifo_dedup_window_is_five_minutes_from_the_first_send() {
    // Vector sqs-fifo-dedup-window (SQS-23): suppressed at 299 s even after deletion; new at 301 s.
    let mut d = Driver::new(&scenario(
        r#"{"name": "q", "lease": {"model": "sqs"}, "fifo": true}"#,
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "x1", "group": 1, "dedup_id": "X"},
           {"at_ms": 10000, "op": "receive", "consumer": "a"},
           {"at_ms": 10000, "op": "ack", "consumer": "a", "message": "x1"},
           {"at_ms": 299000, "op": "send", "to": "q", "message": "x2", "group": 1, "dedup_id": "X"},
           {"at_ms": 299000, "op": "receive", "consumer": "a"},
           {"at_ms": 301000, "op": "send", "to": "q", "message": "x3", "group": 1, "dedup_id": "X"},
           {"at_ms": 301000, "op": "receive", "consumer": "a"}"#,
    ));
    d.to(10_000.0);
    assert_eq!(d.msg("x1").state(), MsgState::Acked, "consumed");
    let at_299 = d.to(299_000.0);
    assert!(at_299.iter().any(|e| matches!(e, TraceEvent::Deduplicated { .. })), "accepted, not stored");
    assert_eq!(d.sim.named("x2"), d.sim.named("x1"), "answered with the original's MessageId");
    assert!(got_nothing(&at_299), "and not delivered");
    let at_301 = d.to(301_000.0);
    let x3 = d.sim.named("x3").expect("a new message");
    assert_ne!(Some(x3), d.sim.named("x1"));
    assert_eq!(deliveries(&at_301), vec![(x3, 1)], "accepted and delivered as a new message");
}

#[test]
fn service_bus_duplicate_detection_drops_a_resent_message_id_within_its_window() {
    // ASB-9 (IP-5): a re-send of a MessageId within the window (here 20 s, the minimum) is
    // accepted and dropped; after it, the same id is a new message. Not a FIFO queue.
    let mut d = Driver::new(&scenario(
        r#"{"name": "q", "lease": {"model": "service_bus"}, "duplicate_detection_ms": 20000}"#,
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "o1", "dedup_id": "order-7"},
           {"at_ms": 19999, "op": "send", "to": "q", "message": "o2", "dedup_id": "order-7"},
           {"at_ms": 20000, "op": "send", "to": "q", "message": "o3", "dedup_id": "order-7"},
           {"at_ms": 20001, "op": "receive", "consumer": "a", "max": 10}"#,
    ));
    let early = d.to(19_999.0);
    assert!(early.iter().any(|e| matches!(e, TraceEvent::Deduplicated { .. })), "accepted, not stored");
    assert_eq!(d.sim.named("o2"), d.sim.named("o1"));
    let o3 = d.to(20_000.0);
    assert!(!o3.iter().any(|e| matches!(e, TraceEvent::Deduplicated { .. })), "20 s on: a new message");
    let got = deliveries(&d.to(20_001.0));
    assert_eq!(got.iter().map(|x| x.0).collect::<Vec<_>>(), vec![d.id("o1"), d.id("o3")]);
}

#[test]
fn sqs_fifo_group_blocks_while_one_is_in_flight() {
    // SQS-21: no more of group g while one of g is in flight; other groups flow; the in-flight
    // one comes back first.
    let mut d = Driver::new(&scenario(
        r#"{"name": "q", "lease": {"model": "sqs", "visibility_timeout_ms": 10000}, "fifo": true}"#,
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "g1a", "group": 1},
           {"at_ms": 0, "op": "send", "to": "q", "message": "g1b", "group": 1},
           {"at_ms": 0, "op": "send", "to": "q", "message": "g2a", "group": 2},
           {"at_ms": 1, "op": "receive", "consumer": "a"},
           {"at_ms": 2, "op": "receive", "consumer": "b", "max": 10},
           {"at_ms": 10001, "op": "receive", "consumer": "b", "max": 10}"#,
    ));
    let ids = |d: &Driver, names: &[&str]| names.iter().map(|n| d.sim.named(n).expect("sent")).collect::<Vec<_>>();
    let first = deliveries(&d.to(1.0));
    assert_eq!(first.iter().map(|x| x.0).collect::<Vec<_>>(), ids(&d, &["g1a"]));
    let second = deliveries(&d.to(2.0));
    assert_eq!(second.iter().map(|x| x.0).collect::<Vec<_>>(), ids(&d, &["g2a"]), "g1b waits behind g1a");
    let third = deliveries(&d.to(10_001.0));
    // g1a's timeout ran out: it comes back first, and g1b may follow in the same batch (SQS-22).
    assert_eq!(third.iter().map(|x| x.0).collect::<Vec<_>>(), ids(&d, &["g1a", "g1b"]), "g1a before g1b");
}

#[test]
fn sqs_change_visibility_runs_from_the_call() {
    // SQS-4a doc example: timeout 60 s, at +15 s set 10 → invisible until +25 s. SQS-4c: no more
    // than 12 h from the receive; SQS-4d: 0 makes it visible at once.
    let mut d = Driver::new(&scenario(
        r#"{"name": "q", "lease": {"model": "sqs", "visibility_timeout_ms": 60000}}"#,
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "m1"},
           {"at_ms": 0, "op": "receive", "consumer": "a"},
           {"at_ms": 15000, "op": "change_visibility", "consumer": "a", "message": "m1", "timeout_ms": 10000},
           {"at_ms": 24999, "op": "receive", "consumer": "b"},
           {"at_ms": 25000, "op": "receive", "consumer": "b"},
           {"at_ms": 26000, "op": "change_visibility", "consumer": "b", "message": "m1", "timeout_ms": 43200000},
           {"at_ms": 27000, "op": "change_visibility", "consumer": "b", "message": "m1", "timeout_ms": 0},
           {"at_ms": 27000, "op": "receive", "consumer": "a"}"#,
    ));
    d.to(15_000.0);
    assert!(got_nothing(&d.to(24_999.0)));
    assert_eq!(deliveries(&d.to(25_000.0)).len(), 1, "visible at +25 s");
    let too_long = d.to(26_000.0);
    assert!(
        !too_long.iter().any(|e| matches!(e, TraceEvent::LeaseExtended { .. })),
        "past 12 h from the receive: refused"
    );
    let zero = d.to(27_000.0);
    assert!(zero.iter().any(|e| matches!(e, TraceEvent::Returned { reason: ReturnReason::MadeVisible, .. })));
    assert_eq!(deliveries(&zero).len(), 1, "visible at once");
}

/// The script steps: send m1 at 0, then `rounds` times a receive by "a" (at 10 ms, 20 ms, …)
/// and a nack with requeue 5 ms later.
fn send_then_nack(rounds: u32) -> Vec<String> {
    let mut steps = vec![r#"{"at_ms": 0, "op": "send", "to": "q", "message": "m1"}"#.to_string()];
    for i in 1..=rounds {
        steps.push(format!(r#"{{"at_ms": {}, "op": "receive", "consumer": "a"}}"#, i * 10));
        steps.push(format!(
            r#"{{"at_ms": {}, "op": "nack", "consumer": "a", "message": "m1", "requeue": true}}"#,
            i * 10 + 5
        ));
    }
    steps
}

#[test]
fn rabbitmq_quorum_delivery_limit_dead_letters_on_the_21st_return() {
    // Vector rabbitmq-qq-delivery-limit-4.0-4.2 (RMQ-15, RMQ-16): acquired_count 1..20 requeues,
    // the 21st return dead-letters with reason delivery_limit. RMQ-14: x-death records it.
    let steps = send_then_nack(21);
    let mut d = Driver::new(&scenario(
        r#"{"name": "q", "lease": {"model": "rabbitmq", "queue_type": "quorum"}, "dead_letter": true}"#,
        &steps.join(","),
    ));
    for i in 1..=20u32 {
        let events = d.to(f64::from(i * 10 + 5));
        assert_eq!(deliveries(&events).iter().map(|x| x.1).collect::<Vec<_>>(), vec![i], "delivery {i}");
        assert!(events.iter().any(|e| matches!(e, TraceEvent::Returned { reason: ReturnReason::Nacked, .. })));
        assert_eq!(
            (d.msg("m1").state(), d.extra("m1").returns_counted),
            (MsgState::Ready, i),
            "requeued, acquired_count (RMQ-16) {i}"
        );
    }
    let last = d.to(215.0);
    assert_eq!(deliveries(&last).iter().map(|x| x.1).collect::<Vec<_>>(), vec![21], "delivered 21 times");
    assert_eq!(dead_lettered(&last), vec![DeadReason::DeliveryLimit]);
    let m = d.msg("m1");
    assert_eq!((m.state(), m.queue), (MsgState::DeadLettered, d.queue("q.dlq")));
    let info = &d.sim.broker().dead[&d.sim.named("m1").expect("sent")];
    assert_eq!(info.x_death.len(), 1);
    assert_eq!(
        (info.x_death[0].queue, info.x_death[0].reason, info.x_death[0].count),
        (d.queue("q"), DeadReason::DeliveryLimit, 1)
    );
    assert_eq!(info.x_death[0].time.as_micros(), 215_000);
}

/// RMQ-17 (4.3+): the limit counts failed deliveries only. Ten nacks with requeue and a
/// consumer timeout count nothing; a reject and a crash count one each; the next reject is
/// the third failure, past a limit of 2. Under 4.2 rules (RMQ-16) the third nack is the end.
#[test]
fn rabbitmq_4_3_counts_only_failed_deliveries_towards_the_limit() {
    let lease = |version: &str| {
        format!(
            r#"{{"name": "q", "lease": {{"model": "rabbitmq", "queue_type": "quorum", "delivery_limit": 2,
                "consumer_timeout_ms": 1000, "version": "{version}"}}, "dead_letter": true}}"#
        )
    };
    let mut steps = send_then_nack(10);
    steps.extend(
        [
            r#"{"at_ms": 200, "op": "receive", "consumer": "a"}"#, // held past the 1 s timeout
            r#"{"at_ms": 2000, "op": "receive", "consumer": "a"}"#,
            r#"{"at_ms": 2005, "op": "reject", "consumer": "a", "message": "m1", "requeue": true}"#,
            r#"{"at_ms": 2010, "op": "receive", "consumer": "a"}"#,
            r#"{"at_ms": 2015, "op": "crash", "consumer": "a"}"#,
            r#"{"at_ms": 2020, "op": "receive", "consumer": "b"}"#,
            r#"{"at_ms": 2025, "op": "reject", "consumer": "b", "message": "m1", "requeue": true}"#,
        ]
        .map(String::from),
    );
    let mut d = Driver::new(&scenario(&lease("4.3"), &steps.join(",")));
    let nacks = d.to(105.0);
    assert_eq!(deliveries(&nacks).len(), 10);
    assert_eq!((d.msg("m1").state(), d.extra("m1").returns_counted), (MsgState::Ready, 0), "nacks do not count");
    let timeout = d.to(1500.0);
    assert!(timeout.iter().any(|e| matches!(e, TraceEvent::Returned { reason: ReturnReason::ConsumerTimeout, .. })));
    assert_eq!(d.extra("m1").returns_counted, 0, "nor does the consumer timeout");
    let reject = d.to(2005.0);
    assert!(reject.iter().any(|e| matches!(e, TraceEvent::Returned { reason: ReturnReason::Rejected, .. })));
    assert_eq!(d.extra("m1").returns_counted, 1, "a reject counts");
    let crash = d.to(2015.0);
    assert!(crash.iter().any(|e| matches!(e, TraceEvent::Returned { reason: ReturnReason::ChannelClosed, .. })));
    assert_eq!((d.msg("m1").state(), d.extra("m1").returns_counted), (MsgState::Ready, 2), "so does a crash");
    let last = d.to(2025.0);
    assert_eq!(dead_lettered(&last), vec![DeadReason::DeliveryLimit], "3 > 2");
    assert_eq!(d.msg("m1").queue, QueueId((d.queue("q.dlq")).0));

    let mut old = Driver::new(&scenario(&lease("4.2"), &steps.join(",")));
    assert!(dead_lettered(&old.to(25.0)).is_empty());
    assert_eq!(dead_lettered(&old.to(35.0)), vec![DeadReason::DeliveryLimit], "RMQ-16: the 3rd nack is past 2");
}

/// RMQ-2: a RabbitMQ queue delivers to its highest-priority consumers with room, round-robin
/// among equals; a lower one gets a message only while every higher one is full.
#[test]
fn rabbitmq_consumer_priority_serves_the_highest_with_room_first() {
    let run = |schedule: &str| {
        let consumer = |name: &str, priority: i32| {
            format!(
                r#"{{"name": "{name}", "from": "q", "priority": {priority},
                    "processing": {{"kind": "constant", "ms": 1000}}}}"#
            )
        };
        let json = format!(
            r#"{{"name": "priorities", "duration_ms": 60000, "queues": [{{"name": "q"}}],
                "producers": [{{"name": "p", "to": "q", "schedule": {schedule}}}],
                "consumers": [{}, {}, {}]}}"#,
            consumer("lo", -5),
            consumer("hi1", 10),
            consumer("hi2", 10)
        );
        let mut d = Driver::new(&json);
        let events = d.to(60_000.0);
        let by = |c: u32| {
            events
                .iter()
                .filter(|e| matches!(e, TraceEvent::Delivered { consumer, .. } if *consumer == ConsumerId(c)))
                .count()
        };
        (by(0), by(1), by(2))
    };
    // One at a time: the two high-priority consumers take turns; the low one gets nothing.
    assert_eq!(run(r#"{"kind": "fixed_rate", "interval_ms": 1100, "count": 10}"#), (0, 5, 5));
    // Three at once: both high ones are full, so the third goes to the low one.
    assert_eq!(run(r#"{"kind": "fixed_rate", "interval_ms": 0.001, "count": 3}"#), (1, 1, 1));
}

#[test]
fn rabbitmq_requeue_goes_back_to_the_original_position() {
    // RMQ-6: a requeued message returns to its original position. RMQ-5: requeue=false without
    // a dead-letter exchange discards. RMQ-7: a closed channel requeues everything unacked.
    let mut d = Driver::new(&scenario(
        r#"{"name": "q"}"#,
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "m1"},
           {"at_ms": 0, "op": "send", "to": "q", "message": "m2"},
           {"at_ms": 0, "op": "send", "to": "q", "message": "m3"},
           {"at_ms": 1, "op": "receive", "consumer": "a", "max": 2},
           {"at_ms": 2, "op": "nack", "consumer": "a", "message": "m1", "requeue": true},
           {"at_ms": 3, "op": "receive", "consumer": "b"},
           {"at_ms": 4, "op": "crash", "consumer": "a"},
           {"at_ms": 5, "op": "nack", "consumer": "b", "message": "m1", "requeue": false}"#,
    ));
    d.to(2.0);
    let m1 = d.sim.named("m1").expect("sent");
    assert_eq!(deliveries(&d.to(3.0)), vec![(m1, 2)], "m1 is ahead of m3 again; redelivered");
    let crash = d.to(4.0);
    let m2 = d.sim.named("m2").expect("sent");
    assert!(crash
        .iter()
        .any(|e| matches!(e, TraceEvent::Returned { msg, reason: ReturnReason::ChannelClosed, .. } if *msg == m2)));
    d.to(5.0);
    assert_eq!(d.msg("m1").state(), MsgState::Dropped, "no DLX: discarded");
    assert_eq!(d.msg("m2").state(), MsgState::Ready);
}

#[test]
fn rabbitmq_reject_dead_letters_with_reason_rejected() {
    // RMQ-10 reason 1, and RMQ-14's x-death fields.
    let mut d = Driver::new(&scenario(
        r#"{"name": "q", "dead_letter": true}"#,
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "m1"},
           {"at_ms": 1, "op": "receive", "consumer": "a"},
           {"at_ms": 2, "op": "nack", "consumer": "a", "message": "m1", "requeue": false}"#,
    ));
    assert_eq!(dead_lettered(&d.to(2.0)), vec![DeadReason::Rejected]);
    assert_eq!(DeadReason::Rejected.as_str(), "rejected");
    let info = &d.sim.broker().dead[&d.sim.named("m1").expect("sent")];
    assert_eq!(
        (info.from, info.receive_count, info.first_attempt_at.map(|t| t.as_micros())),
        (d.queue("q"), 1, Some(1000))
    );
}

fn service_bus_ten_deliveries(settle: &str) -> (Vec<u32>, Vec<DeadReason>, Driver) {
    let mut steps = vec![r#"{"at_ms": 0, "op": "send", "to": "q", "message": "m1"}"#.to_string()];
    for i in 0..11 {
        let t = i * 100_000;
        steps.push(format!(r#"{{"at_ms": {t}, "op": "receive", "consumer": "a"}}"#));
        if settle == "abandon" {
            steps.push(format!(r#"{{"at_ms": {}, "op": "abandon", "consumer": "a", "message": "m1"}}"#, t + 1000));
        }
    }
    let mut d = Driver::new(&scenario(
        r#"{"name": "q", "lease": {"model": "service_bus", "lock_duration_ms": 60000, "max_delivery_count": 10}}"#,
        &steps.join(","),
    ));
    let events = d.to(1_100_000.0);
    (deliveries(&events).iter().map(|x| x.1).collect(), dead_lettered(&events), d)
}

#[test]
fn service_bus_max_delivery_count_by_abandon_and_by_lock_expiry() {
    // Vector azure-sb-max-delivery-count (ASB-5): DeliveryCount 1..10, then the DLQ with
    // MaxDeliveryCountExceeded, after the 10th abandon or lock expiry. ASB-6: the DLQ exists.
    for settle in ["abandon", "expire"] {
        let (counts, dead, d) = service_bus_ten_deliveries(settle);
        assert_eq!(counts, (1..=10).collect::<Vec<u32>>(), "{settle}: ten deliveries");
        assert_eq!(dead, vec![DeadReason::MaxDeliveryCount], "{settle}");
        assert_eq!(DeadReason::MaxDeliveryCount.as_str(), "MaxDeliveryCountExceeded");
        assert_eq!((d.msg("m1").state(), d.msg("m1").queue), (MsgState::DeadLettered, d.queue("q.dlq")), "{settle}");
    }
}

#[test]
fn service_bus_abandon_returns_near_the_front_and_renew_extends_the_lock() {
    // ASB-4: an abandoned message pops back at or near the front. ASB-3: renewal = now + lock.
    let mut d = Driver::new(&scenario(
        r#"{"name": "q", "lease": {"model": "service_bus", "lock_duration_ms": 10000}}"#,
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "m1"},
           {"at_ms": 0, "op": "send", "to": "q", "message": "m2"},
           {"at_ms": 1, "op": "receive", "consumer": "a"},
           {"at_ms": 2, "op": "abandon", "consumer": "a", "message": "m1"},
           {"at_ms": 3, "op": "receive", "consumer": "b"},
           {"at_ms": 8000, "op": "renew_lock", "consumer": "b", "message": "m1"},
           {"at_ms": 17999, "op": "receive", "consumer": "a", "max": 10}"#,
    ));
    d.to(2.0);
    let m1 = d.sim.named("m1").expect("sent");
    assert_eq!(deliveries(&d.to(3.0)), vec![(m1, 2)], "m1 before m2");
    let renew = d.to(8000.0);
    assert!(renew
        .iter()
        .any(|e| matches!(e, TraceEvent::LeaseExtended { until, .. } if until.as_micros() == 18_000_000)));
    let late = deliveries(&d.to(17_999.0));
    assert!(late.iter().all(|&(m, _)| m != m1), "still locked at 17.999 s");
}

#[test]
fn service_bus_renews_a_lock_past_twelve_hours_where_sqs_refuses() {
    // ASB-3: RenewLock sets the lock to now + LockDuration, however long it has been held;
    // SQS-4c's 12-hour cap on one receipt is SQS's alone.
    let renewals: Vec<String> = (1..=200)
        .map(|i| format!(r#"{{"at_ms": {}, "op": "renew_lock", "consumer": "a", "message": "m1"}}"#, i * 240_000))
        .collect();
    let json = format!(
        r#"{{"name": "long lock", "duration_ms": 50000000,
            "queues": [{{"name": "q", "lease": {{"model": "service_bus", "lock_duration_ms": 300000}}}}],
            "consumers": [{{"name": "a", "from": "q", "mode": "manual"}}],
            "script": [{{"at_ms": 0, "op": "send", "to": "q", "message": "m1"}},
                       {{"at_ms": 0, "op": "receive", "consumer": "a"}}, {}]}}"#,
        renewals.join(",")
    );
    let mut d = Driver::new(&json);
    let events = d.to(48_000_000.0);
    let extended = events.iter().filter(|e| matches!(e, TraceEvent::LeaseExtended { .. })).count();
    assert_eq!(extended, 200, "every renewal, the last at 13 h 20 min");
    assert_eq!(d.msg("m1").lease().map(|l| l.expires_at.as_micros()), Some(48_300_000_000));
}

#[test]
fn redrive_into_a_full_drop_head_queue_moves_each_message_once() {
    // Found by the swarm (seed 23): redriving "until empty" into a full drop-head queue looped
    // forever, each arrival evicting the head back into the DLQ. A move task moves what was
    // in the DLQ when it started.
    let steps: Vec<String> = (0..5)
        .map(|i| format!(r#"{{"at_ms": 0, "op": "send", "to": "q", "message": "m{i}"}}"#))
        .chain([r#"{"at_ms": 10, "op": "redrive", "from": "q.dlq"}"#.to_string()])
        .collect();
    let mut d = Driver::new(&scenario(
        r#"{"name": "q", "lease": {"model": "sqs"}, "dead_letter": true, "max_length": 2, "overflow": "drop_head"}"#,
        &steps.join(","),
    ));
    let evicted = dead_lettered(&d.to(0.0));
    assert_eq!(evicted, vec![DeadReason::MaxLength; 3], "5 sends into room for 2: 3 evicted (RMQ-23 maxlen)");
    let redrive = d.to(10.0);
    let moved = redrive.iter().filter(|e| matches!(e, TraceEvent::Redriven { .. })).count();
    assert_eq!(moved, 3, "each message that was in the DLQ moves once");
    assert_eq!(
        d.sim.counts(QueueId((d.queue("q")).0)).get(brokerlab::message::StateKind::Ready),
        2,
        "the queue is full again"
    );
    assert_eq!(d.sim.counts(QueueId((d.queue("q.dlq")).0)).get(brokerlab::message::StateKind::DeadLettered), 3);
}

#[test]
fn a_user_changes_behaviour_live_through_inputs() {
    use brokerlab::scenario::{Dist, Op, Outcomes};
    use brokerlab::{Duration, Scenario, Sim, SimTime};
    let json = r#"{"name": "live", "duration_ms": 20000,
        "queues": [{"name": "q", "lease": {"model": "sqs", "visibility_timeout_ms": 5000}, "dead_letter": true}],
        "producers": [{"name": "p", "to": "q", "schedule": {"kind": "fixed_rate", "interval_ms": 250}}],
        "consumers": [{"name": "w", "from": "q", "processing": {"kind": "constant", "ms": 100}, "restart_ms": 100}]}"#;
    let scenario = Scenario::from_json(json).expect("valid");
    let mut sim = Sim::new(scenario, 3);
    sim.run_until(SimTime::from_millis(5000), 100_000).expect("runs");
    let dlq = sim.scenario().queue_index("q.dlq").expect("dlq");
    assert_eq!(sim.counts(QueueId(dlq)).total(), 0, "all well before the change");
    // Every attempt now fails permanently: straight to the DLQ.
    let always = brokerlab::rng::Ratio { numerator: 1, denominator: 1 };
    sim.input(Op::SetOutcomes { consumer: 0, outcomes: Outcomes { permanent: always, ..Outcomes::default() } });
    sim.run_until(SimTime::from_millis(8000), 100_000).expect("runs");
    let dead = sim.counts(QueueId(dlq)).total();
    assert!(dead >= 10, "{dead} dead-lettered after the change");
    // Healthy again, but slow: each takes 2 s now.
    sim.input(Op::SetOutcomes { consumer: 0, outcomes: Outcomes::default() });
    sim.input(Op::SetProcessing { consumer: 0, processing: Dist::Constant(Duration::from_millis(2000)) });
    sim.drain_trace();
    sim.run_until(SimTime::from_millis(12_000), 100_000).expect("runs");
    let started: Vec<_> = sim
        .drain_trace()
        .into_iter()
        .filter_map(|e| match e {
            TraceEvent::ProcessingStarted { at, done_at, .. } => Some(done_at.since(at)),
            _ => None,
        })
        .collect();
    assert!(!started.is_empty() && started.iter().all(|d| *d == Duration::from_millis(2000)), "{started:?}");
    // Fast again; then the next message is poison: it crashes the worker.
    sim.input(Op::SetProcessing { consumer: 0, processing: Dist::Constant(Duration::from_millis(100)) });
    sim.input(Op::PoisonNext { producer: 0 });
    sim.run_until(SimTime::from_millis(20_000), 100_000).expect("runs");
    assert!(sim.drain_trace().iter().any(|e| matches!(e, TraceEvent::ConsumerCrashed { .. })));
    brokerlab::check::check(&sim).expect("invariants hold through live changes");
}

#[test]
fn a_replayed_input_lands_at_the_instant_it_was_made_between_events() {
    // The page records a live input by position (events handled before it) and time; a replay
    // runs that many events, which leaves the clock at the last of them, then moves it to the
    // input's time. The clock never passes the next event.
    use brokerlab::scenario::Op;
    use brokerlab::{Scenario, Sim, SimTime};
    let json = r#"{"name": "live", "duration_ms": 20000,
        "queues": [{"name": "q", "lease": {"model": "sqs", "visibility_timeout_ms": 5000}}],
        "producers": [{"name": "p", "to": "q", "schedule": {"kind": "fixed_rate", "interval_ms": 1000}}],
        "consumers": [{"name": "w", "from": "q", "processing": {"kind": "constant", "ms": 300}, "restart_ms": 700}]}"#;
    let live = {
        let mut sim = Sim::new(Scenario::from_json(json).expect("valid"), 1);
        sim.run_until(SimTime::from_millis(2150), 100_000).expect("runs");
        let position = sim.events_processed();
        sim.input(Op::Crash { consumer: 0 });
        sim.run_until(SimTime::from_millis(6000), 100_000).expect("runs");
        (position, sim.trace_hash())
    };
    let mut replay = Sim::new(Scenario::from_json(json).expect("valid"), 1);
    replay.run_events(live.0);
    assert!(replay.now() < SimTime::from_millis(2150), "the last event before the input is earlier");
    replay.advance_clock(SimTime::from_millis(2150));
    assert_eq!(replay.now(), SimTime::from_millis(2150));
    replay.input(Op::Crash { consumer: 0 });
    replay.run_until(SimTime::from_millis(6000), 100_000).expect("runs");
    assert_eq!(replay.trace_hash(), live.1, "the replay matches the live run");
    let next = replay.next_event_at().expect("more to come");
    replay.advance_clock(SimTime::from_millis(19_000));
    assert_eq!(replay.now(), next, "never past the next event");
}

#[test]
fn a_duplicate_send_names_the_original_whether_or_not_the_trace_is_kept() {
    // SQS-23: a duplicate answers with the original's MessageId, so a later step naming the
    // duplicate acts on the original. This once depended on the recorded trace.
    use brokerlab::{Scenario, Sim, SimTime};
    let json = scenario(
        r#"{"name": "q", "lease": {"model": "sqs"}, "fifo": true}"#,
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "first", "group": 1, "dedup_id": "X"},
           {"at_ms": 1, "op": "send", "to": "q", "message": "again", "group": 1, "dedup_id": "X"},
           {"at_ms": 2, "op": "receive", "consumer": "a"},
           {"at_ms": 3, "op": "ack", "consumer": "a", "message": "again"}"#,
    );
    let run = |recording: bool| {
        let mut sim = Sim::new(Scenario::from_json(&json).expect("valid"), 1);
        sim.set_recording(recording);
        sim.run_until(SimTime::from_millis(10), 1000).expect("runs");
        (sim.trace_hash(), sim.named("again"), sim.message_state(sim.named("first").expect("sent")))
    };
    let (kept, unkept) = (run(true), run(false));
    assert_eq!(kept, unkept, "the run does not depend on keeping the trace");
    assert_eq!(kept.1, Some(MsgId(0)), "\"again\" is the original, m0");
    assert_eq!(kept.2, Some(MsgState::Acked), "acking the duplicate's name acks the original");
}

/// SQS-25: a FIFO queue looks through its first 20,000 messages for an available group. With
/// a backlog in group 0 whose head is in flight, a later group-1 message is out of sight once
/// the backlog fills the window, and in sight when it is one message shorter.
#[test]
fn sqs_fifo_looks_for_groups_in_its_first_20000_messages() {
    use brokerlab::scenario::limits::FIFO_GROUP_SCAN;
    use brokerlab::{Scenario, Sim, SimTime};
    let receives = |backlog: usize| {
        let json = format!(
            r#"{{"name": "fifo window", "duration_ms": 60000,
                "queues": [{{"name": "q", "lease": {{"model": "sqs"}}, "fifo": true}}],
                "producers": [{{"name": "p", "to": "q", "groups": 1,
                    "schedule": {{"kind": "fixed_rate", "interval_ms": 1, "count": {backlog}}}}}],
                "consumers": [{{"name": "a", "from": "q", "mode": "manual"}}, {{"name": "b", "from": "q", "mode": "manual"}}],
                "script": [{{"at_ms": 30000, "op": "send", "to": "q", "message": "late", "group": 1}},
                           {{"at_ms": 30001, "op": "receive", "consumer": "a"}},
                           {{"at_ms": 30002, "op": "receive", "consumer": "b"}}]}}"#
        );
        let mut sim = Sim::new(Scenario::from_json(&json).expect("valid"), 1);
        sim.run_until(SimTime::from_millis(30_002), u64::MAX).expect("runs");
        brokerlab::check::check(&sim).unwrap_or_else(|v| panic!("{v}"));
        sim.message_state(sim.named("late").expect("sent"))
    };
    // Group 0's head in flight with `a`, then: the rest of the backlog, then "late".
    let b = MsgState::InFlight { consumer: ConsumerId(1), phase: brokerlab::message::Phase::Processing };
    assert_eq!(receives(FIFO_GROUP_SCAN - 1), Some(b), "message 20,000: in the window");
    assert_eq!(receives(FIFO_GROUP_SCAN), Some(MsgState::Ready), "message 20,001: hidden by the backlog");
}

#[test]
fn sqs_fifo_batch_takes_the_first_group_first() {
    // SQS-22: one receive returns as many as possible from the first available group, then
    // fills from other groups, in order within each.
    let mut d = Driver::new(&scenario(
        r#"{"name": "q", "lease": {"model": "sqs"}, "fifo": true}"#,
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "a1", "group": 1},
           {"at_ms": 0, "op": "send", "to": "q", "message": "b1", "group": 2},
           {"at_ms": 0, "op": "send", "to": "q", "message": "a2", "group": 1},
           {"at_ms": 0, "op": "send", "to": "q", "message": "b2", "group": 2},
           {"at_ms": 0, "op": "send", "to": "q", "message": "a3", "group": 1},
           {"at_ms": 1, "op": "receive", "consumer": "a", "max": 4}"#,
    ));
    let got: Vec<MsgId> = deliveries(&d.to(1.0)).into_iter().map(|x| x.0).collect();
    let ids: Vec<MsgId> = ["a1", "a2", "a3", "b1"].iter().map(|n| d.sim.named(n).expect("sent")).collect();
    assert_eq!(got, ids, "all of group 1 first, then group 2 in order");
}

#[test]
fn rabbitmq_ttl_zero_delivers_only_what_can_go_at_once() {
    // RMQ-19: a TTL of 0 means "expire unless deliverable immediately".
    let json = r#"{"name": "ttl0", "duration_ms": 5000,
        "queues": [{"name": "q", "ttl_ms": 0}],
        "consumers": [{"name": "w", "from": "q", "processing": {"kind": "constant", "ms": 1000}}],
        "script": [{"at_ms": 0, "op": "send", "to": "q", "message": "m0"},
                   {"at_ms": 0, "op": "send", "to": "q", "message": "m1"},
                   {"at_ms": 2000, "op": "send", "to": "q", "message": "m2"}]}"#;
    let mut d = Driver::new(json);
    d.to(5000.0);
    assert_eq!(d.msg("m0").state(), MsgState::Acked, "a consumer was free: delivered");
    assert_eq!(d.msg("m1").state(), MsgState::Expired, "the consumer was busy: expired, never delivered");
    assert_eq!(d.msg("m2").state(), MsgState::Acked, "free again");
}

/// A queue `q` of `model` and a script: at 0 s, m-long (TTL 10 s) then m-short (TTL 1 s) are
/// sent; at 5 s, consumer `a` receives one.
fn ttl_behind_the_head(model: &str) -> Driver {
    Driver::new(&scenario(
        &format!(
            r#"{{"name": "q", "lease": {{"model": "{model}"}}, "dead_letter": true, "on_expire": "dead_letter"}}"#
        ),
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "m-long", "ttl_ms": 10000},
           {"at_ms": 0, "op": "send", "to": "q", "message": "m-short", "ttl_ms": 1000},
           {"at_ms": 5000, "op": "receive", "consumer": "a"}"#,
    ))
}

#[test]
fn rabbitmq_expires_a_message_only_when_it_reaches_the_head() {
    // RMQ-21: m-short's TTL runs out at 1 s, but m-long is in front of it stays in the
    // queue (and counts in its length) until the head moves on. RMQ-19: it is never delivered.
    let mut d = ttl_behind_the_head("rabbitmq");
    d.to(2000.0);
    assert_eq!(d.msg("m-short").state(), MsgState::Ready, "expired, but behind the head: still waiting");
    assert_eq!(d.sim.counts(QueueId((d.queue("q")).0)).get(MsgState::Ready.kind()), 2, "and it counts in the length");
    let at_receive = d.to(5000.0);
    assert_eq!(deliveries(&at_receive).len(), 1, "one delivery: the head");
    assert_eq!(
        d.msg("m-long").state().kind(),
        MsgState::InFlight { consumer: ConsumerId(0), phase: brokerlab::message::Phase::Processing }.kind()
    );
    assert_eq!(d.msg("m-short").state(), MsgState::DeadLettered, "at the head now: dead-lettered at 5 s");
    assert_eq!(dead_lettered(&at_receive), vec![DeadReason::Expired]);

    // Service Bus expires it at its TTL, wherever it waits, with its own reason (ASB-6).
    let mut d = ttl_behind_the_head("service_bus");
    let early = d.to(2000.0);
    assert_eq!(d.msg("m-short").state(), MsgState::DeadLettered, "gone at 1 s");
    assert_eq!(dead_lettered(&early), vec![DeadReason::TtlExpired]);
    assert_eq!(DeadReason::TtlExpired.as_str(), "TTLExpiredException");
}

#[test]
fn sqs_deletes_what_outlives_its_retention_period_and_never_dead_letters_it() {
    // SQS-17: a queue's retention period (at least 60 s); past it the message is deleted,
    // even on a queue with a redrive policy. SQS has no per-message TTL.
    let mut d = Driver::new(&scenario(
        r#"{"name": "q", "lease": {"model": "sqs", "max_receive_count": 3}, "ttl_ms": 60000}"#,
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "m0"}"#,
    ));
    d.to(59_999.0);
    assert_eq!(d.msg("m0").state(), MsgState::Ready);
    let at_retention = d.to(60_000.0);
    assert_eq!(d.msg("m0").state(), MsgState::Expired, "deleted at 60 s");
    assert!(dead_lettered(&at_retention).is_empty(), "not dead-lettered");
}

const DAY_MS: f64 = 86_400_000.0;

/// An SQS queue (standard or FIFO, `extra` JSON added) whose redrive policy moves m0 to the
/// DLQ exactly one day after it was sent: a receive just before, whose visibility runs out,
/// then the receive that exceeds maxReceiveCount 1 (SQS-11).
fn dead_letter_after_a_day(fifo: bool, extra: &str) -> Driver {
    let send = if fifo {
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "m0", "group": 1, "dedup_id": "m0"}"#
    } else {
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "m0"}"#
    };
    let json = format!(
        r#"{{"name": "retention", "duration_ms": {duration},
            "queues": [{{"name": "q", "lease": {{"model": "sqs", "max_receive_count": 1}}, "fifo": {fifo},
                         "ttl_ms": {source}{extra}}}],
            "consumers": [{{"name": "a", "from": "q", "mode": "manual"}}],
            "script": [{send},
                       {{"at_ms": {first}, "op": "receive", "consumer": "a"}},
                       {{"at_ms": {day}, "op": "receive", "consumer": "a"}}]}}"#,
        duration = 6.0 * DAY_MS,
        source = 2.0 * DAY_MS,
        first = DAY_MS - 60_000.0,
        day = DAY_MS,
    );
    Driver::new(&json)
}

#[test]
fn an_sqs_dead_letter_keeps_its_original_enqueue_time_unless_it_came_from_fifo() {
    // SQS-13, the documentation's example: a message 1 day old in its source goes to a DLQ
    // with a 4-day retention (SQS-17's default) and is deleted 3 days after the move.
    let mut d = dead_letter_after_a_day(false, "");
    let moved = d.to(DAY_MS);
    assert_eq!(dead_lettered(&moved), vec![DeadReason::MaxReceiveCount]);
    d.to(4.0 * DAY_MS - 1.0);
    assert_eq!(d.msg("m0").state(), MsgState::DeadLettered, "still there just before 4 days from its send");
    d.to(4.0 * DAY_MS);
    assert_eq!(d.msg("m0").state(), MsgState::Expired, "deleted 3 days after the move");
    assert_eq!(d.msg("m0").queue, QueueId((d.queue("q.dlq")).0));

    // A DLQ retention shorter than the message's age deletes it as it arrives.
    let mut d = dead_letter_after_a_day(false, r#", "dead_letter_ttl_ms": 43200000"#);
    let moved = d.to(DAY_MS);
    assert_eq!(dead_lettered(&moved), vec![DeadReason::MaxReceiveCount]);
    assert_eq!(d.msg("m0").state(), MsgState::Expired, "12 h of DLQ retention, 1 day old: gone at the move");

    // From a FIFO queue the enqueue time resets with the move: 4 days from the move. The DLQ
    // of a FIFO queue is FIFO itself (SQS-12).
    let mut d = dead_letter_after_a_day(true, "");
    d.to(4.0 * DAY_MS);
    assert_eq!(d.msg("m0").state(), MsgState::DeadLettered, "4 days from its send, 3 from the move: kept");
    assert!(d.sim.scenario().queues[(d.queue("q.dlq")).index()].fifo, "a FIFO queue's DLQ is FIFO");
    d.to(5.0 * DAY_MS - 1.0);
    assert_eq!(d.msg("m0").state(), MsgState::DeadLettered);
    d.to(5.0 * DAY_MS);
    assert_eq!(d.msg("m0").state(), MsgState::Expired, "deleted 4 days after the move");
}

#[test]
fn a_dead_letter_waiting_in_its_dlq_does_not_hold_up_its_source_queues_expiry_list() {
    // SQS-13 with both retentions at 4 days: the dead letter's deadline is the one it had in
    // the source, but from the move on its DLQ watches it; the source's list drops settled
    // messages behind it as they come to the front.
    let acks: Vec<String> = (0..1000)
        .map(|i| {
            let at = DAY_MS + 1000.0 + f64::from(i) * 10.0;
            format!(
                r#"{{"at_ms": {at}, "op": "send", "to": "q", "message": "n{i}"}},
                   {{"at_ms": {}, "op": "receive", "consumer": "a"}},
                   {{"at_ms": {}, "op": "ack", "consumer": "a", "message": "n{i}"}}"#,
                at + 1.0,
                at + 2.0
            )
        })
        .collect();
    let mut long = Driver::new(&format!(
        r#"{{"name": "retention", "duration_ms": {},
            "queues": [{{"name": "q", "lease": {{"model": "sqs", "max_receive_count": 1}}}}],
            "consumers": [{{"name": "a", "from": "q", "mode": "manual"}}],
            "script": [{{"at_ms": 0, "op": "send", "to": "q", "message": "m0"}},
                       {{"at_ms": {}, "op": "receive", "consumer": "a"}},
                       {{"at_ms": {}, "op": "receive", "consumer": "a"}}, {}]}}"#,
        5.0 * DAY_MS,
        DAY_MS - 60_000.0,
        DAY_MS,
        acks.join(",")
    ));
    long.to(DAY_MS + 20_000.0);
    assert_eq!(long.msg("m0").state(), MsgState::DeadLettered);
    let listed = long.sim.broker().expiries_listed(QueueId((long.queue("q")).0));
    assert!(listed < 128, "the source's list keeps {listed} of 1,001 deadlines");
    long.to(4.0 * DAY_MS);
    assert_eq!(long.msg("m0").state(), MsgState::Expired, "its DLQ still deletes it 4 days from its send");
}

#[test]
fn an_sqs_queue_keeps_a_message_four_days_unless_told_otherwise() {
    // SQS-17: MessageRetentionPeriod defaults to 345,600 s.
    let json = format!(
        r#"{{"name": "default retention", "duration_ms": {},
            "queues": [{{"name": "q", "lease": {{"model": "sqs"}}}}],
            "script": [{{"at_ms": 0, "op": "send", "to": "q", "message": "m0"}},
                       {{"at_ms": 1000, "op": "send", "to": "q", "message": "m1"}}]}}"#,
        5.0 * DAY_MS
    );
    let mut d = Driver::new(&json);
    d.to(4.0 * DAY_MS - 1.0);
    assert_eq!((d.msg("m0").state(), d.msg("m1").state()), (MsgState::Ready, MsgState::Ready));
    let expired = |events: &[TraceEvent]| {
        events.iter().filter(|e| matches!(e, TraceEvent::Expired { .. })).map(TraceEvent::at).count()
    };
    assert_eq!(expired(&d.to(4.0 * DAY_MS)), 1, "m0 at 4 days");
    assert_eq!(d.msg("m1").state(), MsgState::Ready, "m1 a second later");
    assert_eq!(expired(&d.to(4.0 * DAY_MS + 1000.0)), 1);
    assert_eq!(d.msg("m1").state(), MsgState::Expired);
}

#[test]
fn a_ttl_runs_from_the_enqueue_not_the_send() {
    // RMQ-19: a message older than the TTL *in that queue* has expired. With 1 s of network
    // delay, a 5 s TTL sent at 0 ends at 6 s.
    let json = r#"{"name": "ttl from enqueue", "duration_ms": 10000, "network": {"latency_ms": 1000},
        "queues": [{"name": "q", "ttl_ms": 5000}],
        "script": [{"at_ms": 0, "op": "send", "to": "q", "message": "m0"}]}"#;
    let mut d = Driver::new(json);
    d.to(5999.0);
    assert_eq!(d.msg("m0").state(), MsgState::Ready);
    d.to(6000.0);
    assert_eq!(d.msg("m0").state(), MsgState::Expired);
}

#[test]
fn rabbitmq_quorum_without_a_limit_requeues_to_the_back() {
    // RMQ-6 (4.0–4.2): with the delivery limit disabled (-1) a returned message goes to the back.
    let mut d = Driver::new(&scenario(
        r#"{"name": "q", "lease": {"model": "rabbitmq", "queue_type": "quorum", "delivery_limit": -1}}"#,
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "m1"},
           {"at_ms": 0, "op": "send", "to": "q", "message": "m2"},
           {"at_ms": 1, "op": "receive", "consumer": "a"},
           {"at_ms": 2, "op": "nack", "consumer": "a", "message": "m1", "requeue": true},
           {"at_ms": 3, "op": "receive", "consumer": "b"}"#,
    ));
    d.to(2.0);
    let m2 = d.sim.named("m2").expect("sent");
    assert_eq!(deliveries(&d.to(3.0)), vec![(m2, 1)], "m2 first: m1 went to the back");
}

#[test]
fn service_bus_will_not_dead_letter_a_dead_letter() {
    // ASB-6: a message in the DLQ cannot be dead-lettered again; it stays, locked.
    let mut d = Driver::new(&scenario(
        r#"{"name": "q", "lease": {"model": "service_bus", "lock_duration_ms": 5000}}"#,
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "m1"},
           {"at_ms": 1, "op": "receive", "consumer": "a"},
           {"at_ms": 2, "op": "dead_letter", "consumer": "a", "message": "m1"},
           {"at_ms": 3, "op": "receive", "consumer": "b", "queue": "q.dlq"},
           {"at_ms": 4, "op": "dead_letter", "consumer": "b", "message": "m1"}"#,
    ));
    let events = d.to(4.0);
    assert_eq!(dead_lettered(&events), vec![DeadReason::Rejected], "once, from q");
    assert!(matches!(d.msg("m1").state(), MsgState::InFlight { .. }), "still in the DLQ, locked to b");
    assert_eq!(d.msg("m1").queue, QueueId((d.queue("q.dlq")).0));
    d.to(5004.0);
    assert_eq!(d.msg("m1").state(), MsgState::DeadLettered, "visible in the DLQ again when the lock runs out");
}

#[test]
fn a_service_bus_dlq_consumer_with_permanent_errors_keeps_its_dead_letters() {
    // ASB-6 for an automatic consumer: the refused dead-letter becomes an abandon, and the DLQ
    // never dead-letters by MaxDeliveryCount, so nothing is lost however often it fails.
    let json = r#"{"name": "dlq reader", "duration_ms": 20000,
        "queues": [{"name": "q", "lease": {"model": "service_bus", "lock_duration_ms": 1000, "max_delivery_count": 1}}],
        "consumers": [
          {"name": "main", "from": "q", "outcomes": {"permanent": 1.0}},
          {"name": "reader", "from": "q.dlq", "outcomes": {"permanent": 1.0}, "processing": {"kind": "constant", "ms": 200}}],
        "script": [{"at_ms": 0, "op": "send", "to": "q", "message": "m1"}]}"#;
    let mut d = Driver::new(json);
    let events = d.to(20000.0);
    let dlq = d.queue("q.dlq");
    let retried = events.iter().filter(|e| matches!(e, TraceEvent::Returned { queue, .. } if *queue == dlq)).count();
    assert!(retried > 10, "the reader keeps giving it back: {retried}");
    assert_eq!(d.msg("m1").queue, dlq);
    assert!(!matches!(d.msg("m1").state(), MsgState::Dropped), "never lost");
}

/// What a consumer reads about a message's deliveries, in each system's words: RabbitMQ's
/// redeliver flag (RMQ-8) and a quorum queue's x-delivery-count after counted returns (RMQ-18,
/// counted as the limit counts: 4.2 every return, 4.3 failed deliveries only); SQS's
/// ApproximateReceiveCount (SQS-9); Service Bus's DeliveryCount (ASB-5).
#[test]
fn each_system_names_when_a_message_expires() {
    // SQS-17 (a retention period, 4 days unless set), ASB's ExpiresAtUtc, RabbitMQ's TTL
    // (RMQ-19), each from the enqueue; nothing once settled, nor without a TTL.
    let expiry = |queue: &str| {
        let mut d = Driver::new(&scenario(
            queue,
            r#"{"at_ms": 5, "op": "send", "to": "q", "message": "m1"},
               {"at_ms": 10, "op": "receive", "consumer": "a"},
               {"at_ms": 20, "op": "ack", "consumer": "a", "message": "m1"}"#,
        ));
        d.to(10.0);
        let before = d.sim.broker().expiry(MsgId((d.id("m1")).0)).map(|(name, at)| (name, at.as_micros()));
        d.to(20.0);
        assert_eq!(d.sim.broker().expiry(MsgId((d.id("m1")).0)), None, "{queue}: acked, it no longer expires");
        before
    };
    assert_eq!(expiry(r#"{"name": "q", "lease": {"model": "sqs"}}"#), Some(("retention ends", 345_600_005_000)));
    let sb = r#"{"name": "q", "lease": {"model": "service_bus"}, "ttl_ms": 60000}"#;
    assert_eq!(expiry(sb), Some(("ExpiresAtUtc", 60_005_000)));
    assert_eq!(expiry(r#"{"name": "q", "ttl_ms": 1000}"#), Some(("expires", 1_005_000)));
    assert_eq!(expiry(r#"{"name": "q", "lease": {"model": "service_bus"}}"#), None, "ASB-10: never");
}

#[test]
fn each_system_names_its_delivery_counters() {
    let headers = |d: &Driver| d.sim.broker().delivery_headers(MsgId((d.id("m1")).0));
    let owned = |pairs: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        pairs.iter().map(|&(k, v)| (k, v.to_string())).collect()
    };
    let rabbit = |version: &str| {
        format!(r#"{{"name": "q", "lease": {{"model": "rabbitmq", "queue_type": "quorum", "version": "{version}"}}}}"#)
    };
    let steps = send_then_nack(2).join(",");
    let mut d = Driver::new(&scenario(&rabbit("4.2"), &steps));
    d.to(1.0);
    assert_eq!(headers(&d), Vec::new(), "nothing before the first delivery");
    d.to(10.0);
    assert_eq!(headers(&d), owned(&[("redeliver", "false")]), "a first delivery");
    d.to(20.0);
    assert_eq!(headers(&d), owned(&[("redeliver", "true"), ("x-delivery-count", "1")]), "after one return (RMQ-16)");
    d.to(25.0);
    assert_eq!(headers(&d), owned(&[("redeliver", "true")]), "returned again: the count is past what it carried");
    let mut new = Driver::new(&scenario(&rabbit("4.3"), &steps));
    new.to(20.0);
    assert_eq!(headers(&new), owned(&[("redeliver", "true")]), "a nack is not a failed delivery (RMQ-17)");
    let classic = r#"{"name": "q", "lease": {"model": "rabbitmq"}}"#;
    let mut c = Driver::new(&scenario(classic, &steps));
    c.to(20.0);
    assert_eq!(headers(&c), owned(&[("redeliver", "true")]), "a classic queue has no x-delivery-count");

    let twice = [
        r#"{"at_ms": 0, "op": "send", "to": "q", "message": "m1"}"#,
        r#"{"at_ms": 10, "op": "receive", "consumer": "a"}"#,
        r#"{"at_ms": 15, "op": "nack", "consumer": "a", "message": "m1", "requeue": true}"#,
        r#"{"at_ms": 20, "op": "receive", "consumer": "b"}"#,
    ]
    .join(",");
    let sqs = r#"{"name": "q", "lease": {"model": "sqs"}}"#;
    let mut s = Driver::new(&scenario(sqs, &twice));
    s.to(20.0);
    assert_eq!(headers(&s), owned(&[("ApproximateReceiveCount", "2")]));
    let sb = r#"{"name": "q", "lease": {"model": "service_bus"}}"#;
    let mut b = Driver::new(&scenario(sb, &twice));
    b.to(20.0);
    assert_eq!(headers(&b), owned(&[("DeliveryCount", "2")]));
}

// --- Faults on one delivery (issue 23): lost on its way, or delivered again while held ---

/// One queue (`lease` its lease JSON), a 100 ms network, worker `a` (prefetch 1, 1 s of work,
/// not idempotent) and worker `b` (idle until `b_from_ms`), and a message a second from 0.
fn faulty(lease: &str, extra_queue: &str, b_from_ms: u32) -> crate::Driver {
    crate::Driver::new(&format!(
        r#"{{"name": "faults", "duration_ms": 60000, "network": {{"latency_ms": 100}},
            "queues": [{{"name": "q", "lease": {lease}{extra_queue}}}],
            "producers": [{{"name": "p", "to": "q",
                            "schedule": {{"kind": "fixed_rate", "interval_ms": 1000, "count": 3}}}}],
            "consumers": [
              {{"name": "a", "from": "q", "processing": {{"kind": "constant", "ms": 1000}}}},
              {{"name": "b", "from": "q", "processing": {{"kind": "constant", "ms": 1000}}}}],
            "script": [{{"at_ms": 0, "op": "crash", "consumer": "b"}},
                       {{"at_ms": {b_from_ms}, "op": "restart", "consumer": "b"}}]}}"#
    ))
}

fn lost_and_returned(events: &[TraceEvent]) -> (Vec<MsgId>, Vec<(MsgId, ReturnReason)>) {
    let lost = events.iter().filter_map(|e| match *e {
        TraceEvent::DeliveryLost { msg, .. } => Some(msg),
        _ => None,
    });
    let returned = events.iter().filter_map(|e| match *e {
        TraceEvent::Returned { msg, reason, .. } => Some((msg, reason)),
        _ => None,
    });
    (lost.collect(), returned.collect())
}

fn started(events: &[TraceEvent], msg: u32) -> Vec<f64> {
    events
        .iter()
        .filter_map(|e| match *e {
            TraceEvent::ProcessingStarted { msg: m, at, .. } if m == MsgId(msg) => Some(at.as_millis_f64()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_lost_sqs_delivery_stays_invisible_for_its_visibility_timeout_and_the_consumer_takes_the_next() {
    // m0 reaches q at 100 ms and is delivered to a at once; it would arrive at 200 ms.
    let mut d = faulty(r#"{"model": "sqs", "visibility_timeout_ms": 5000}"#, "", 60_000);
    let mut events = d.to(150.0);
    events.extend(d.input(r#"{"op": "drop_delivery", "msg": "m0"}"#));
    let (lost, _) = lost_and_returned(&events);
    assert_eq!(lost, vec![MsgId(0)], "the loss is in the trace");
    assert!(matches!(d.sim.broker().msg(MsgId(0)).state(), MsgState::InFlight { .. }), "SQS still counts it in flight");
    events.extend(d.to(6000.0));
    // a never saw m0, so its hands are free for m1 (sent at 1 s, there at 1.1 s, with a at 1.2 s).
    assert_eq!(started(&events, 1), vec![1200.0], "the next message is not held up");
    let (_, returned) = lost_and_returned(&events);
    assert_eq!(
        returned,
        vec![(MsgId(0), ReturnReason::LeaseExpired)],
        "m0 comes back when its visibility timeout ends"
    );
    assert!(deliveries(&events).contains(&(MsgId(0), 2)), "and is received again: receive count 2");
    assert_eq!(started(&events, 0).len(), 1, "processed once, after the timeout: {:?}", started(&events, 0));
    assert!(started(&events, 0)[0] >= 5100.0);
}

#[test]
fn a_lost_rabbitmq_delivery_holds_its_prefetch_slot_until_the_consumer_timeout() {
    let mut d = faulty(r#"{"model": "rabbitmq", "consumer_timeout_ms": 10000}"#, "", 60_000);
    d.to(150.0);
    d.input(r#"{"op": "drop_delivery", "msg": 0}"#);
    let events = d.to(20_000.0);
    // Prefetch 1, one unacked on the channel: a gets nothing more until the timeout (10.1 s)
    // closes its channel; m0 comes back redelivered, and m1, m2 follow.
    let first_start = events
        .iter()
        .find_map(|e| match *e {
            TraceEvent::ProcessingStarted { at, .. } => Some(at.as_millis_f64()),
            _ => None,
        })
        .expect("work resumes");
    assert!(first_start >= 10_100.0, "nothing processed before the consumer timeout: {first_start}");
    let (_, returned) = lost_and_returned(&events);
    assert_eq!(returned, vec![(MsgId(0), ReturnReason::ConsumerTimeout)]);
    assert!(deliveries(&events).contains(&(MsgId(0), 2)));
}

#[test]
fn a_lost_service_bus_delivery_comes_back_when_its_lock_expires_and_counts_as_a_delivery() {
    let mut d = faulty(r#"{"model": "service_bus", "lock_duration_ms": 5000, "max_delivery_count": 2}"#, "", 60_000);
    d.to(150.0);
    d.input(r#"{"op": "drop_delivery", "msg": "m0"}"#);
    let events = d.to(20_000.0);
    let (_, returned) = lost_and_returned(&events);
    assert_eq!(returned, vec![(MsgId(0), ReturnReason::LeaseExpired)]);
    assert!(deliveries(&events).contains(&(MsgId(0), 2)), "DeliveryCount 2 on the redelivery");
}

#[test]
fn a_delivery_can_be_lost_only_on_its_way() {
    let mut d = faulty(r#"{"model": "sqs", "visibility_timeout_ms": 5000}"#, "", 60_000);
    d.to(500.0);
    // m0 is with a now (since 200 ms), m1 not sent yet: neither is on its way.
    assert!(d.input(r#"{"op": "drop_delivery", "msg": "m0"}"#).is_empty());
    assert!(d.input(r#"{"op": "drop_delivery", "msg": "m7"}"#).is_empty());
    let bad = d.sim.scenario().live_op(r#"{"op": "drop_delivery", "msg": "seven"}"#).expect_err("not an id");
    assert_eq!(bad.path, "input.msg");
}

#[test]
fn an_sqs_duplicate_is_processed_twice_and_the_first_copys_delete_is_refused() {
    // b is up from 0.5 s. At 0.6 s a works on m0 (since 0.2 s); it is delivered again, to b.
    let mut d = faulty(r#"{"model": "sqs", "visibility_timeout_ms": 5000}"#, "", 500);
    d.to(600.0);
    let mut events = d.input(r#"{"op": "duplicate_delivery", "msg": "m0"}"#);
    events.extend(d.to(5000.0));
    let (_, returned) = lost_and_returned(&events);
    assert_eq!(returned, vec![(MsgId(0), ReturnReason::Duplicated)]);
    assert_eq!(started(&events, 0), vec![700.0], "b gets the copy one hop later");
    let refused =
        events.iter().find(|e| matches!(e, TraceEvent::AckRefused { msg: MsgId(0), consumer: ConsumerId(0), .. }));
    let refused = refused.expect("a's delete uses an old receipt handle (SQS-28)");
    // SQS-28: on a standard queue the worker is told success; the queue did not delete it.
    let line = brokerlab::readable::line(refused, d.sim.scenario()).to_string();
    assert!(line.ends_with("SQS answered success but did not delete it (SQS-28)"), "{line}");
    let twice = events.iter().any(|e| matches!(e, TraceEvent::EffectApplied { msg: MsgId(0), times: 2, .. }));
    assert!(twice, "a consumer that is not idempotent applies it twice");
}

#[test]
fn a_rabbitmq_duplicate_is_a_connection_drop_that_requeues_every_unacked_delivery() {
    let mut d = faulty(r#"{"model": "rabbitmq"}"#, "", 500);
    d.to(600.0);
    let mut events = d.input(r#"{"op": "duplicate_delivery", "msg": "m0"}"#);
    let (_, returned) = lost_and_returned(&events);
    assert_eq!(returned, vec![(MsgId(0), ReturnReason::ChannelClosed)], "RMQ-52");
    events.extend(d.to(5000.0));
    assert!(deliveries(&events).contains(&(MsgId(0), 2)), "redelivered, to b");
    let refused =
        events.iter().any(|e| matches!(e, TraceEvent::AckRefused { msg: MsgId(0), consumer: ConsumerId(0), .. }));
    assert!(refused, "a works on, but its ack on the closed channel counts for nothing");
}

#[test]
fn an_sqs_fifo_queue_does_not_deliver_a_message_twice_while_it_is_in_flight() {
    let mut d = faulty(r#"{"model": "sqs", "visibility_timeout_ms": 5000}"#, r#", "fifo": true"#, 500);
    d.to(600.0);
    assert!(d.input(r#"{"op": "duplicate_delivery", "msg": "m0"}"#).is_empty());
}

/// D5 (issue 25): a dead letter carries what its own system writes. RabbitMQ adds its
/// `x-death` header (RMQ-14); a Service Bus dead letter says why in `DeadLetterReason` and
/// `DeadLetterErrorDescription` (ASB-5, ASB-6), and an SQS one carries nothing: neither has an
/// `x-death`, which is RabbitMQ's alone.
#[test]
fn only_a_rabbitmq_dead_letter_carries_x_death() {
    for (lease, x_deaths) in [
        (r#"{"model": "rabbitmq"}"#, 1),
        (r#"{"model": "service_bus", "lock_duration_ms": 5000}"#, 0),
        (r#"{"model": "sqs", "visibility_timeout_ms": 5000}"#, 0),
    ] {
        let steps = [
            r#"{"at_ms": 0, "op": "send", "to": "q", "message": "m1"}"#,
            r#"{"at_ms": 10, "op": "receive", "consumer": "a"}"#,
            r#"{"at_ms": 20, "op": "dead_letter", "consumer": "a", "message": "m1"}"#,
        ];
        let queue = format!(r#"{{"name": "q", "lease": {lease}, "dead_letter": true}}"#);
        let mut d = Driver::new(&scenario(&queue, &steps.join(",")));
        let events = d.to(30.0);
        assert_eq!(dead_lettered(&events), vec![DeadReason::Rejected], "{lease}: dead-lettered by hand");
        let info = &d.sim.broker().dead[&d.id("m1")];
        assert_eq!(info.x_death.len(), x_deaths, "{lease}: x-death entries");
    }
}

/// D6 (issue 25), RMQ-13: RabbitMQ dead-letters by republishing, so the copy in the DLQ is a
/// fresh enqueue: its first delivery there has delivery count 1 and is not a redelivery (as
/// RabbitMQ 3.10 shows: `redelivered` false). SQS moves the same message, and its
/// ApproximateReceiveCount goes on.
#[test]
fn a_rabbitmq_dead_letter_is_a_fresh_enqueue_and_an_sqs_one_is_not() {
    for (lease, in_dlq) in [(r#"{"model": "rabbitmq"}"#, 1), (r#"{"model": "sqs", "visibility_timeout_ms": 5000}"#, 3)]
    {
        let json = format!(
            r#"{{"name": "d6", "duration_ms": 60000,
                "queues": [{{"name": "q", "lease": {lease}, "dead_letter": true}}],
                "consumers": [{{"name": "a", "from": "q", "mode": "manual"}}, {{"name": "d", "from": "q.dlq", "mode": "manual"}}],
                "script": [
                  {{"at_ms": 0, "op": "send", "to": "q", "message": "m1"}},
                  {{"at_ms": 10, "op": "receive", "consumer": "a"}},
                  {{"at_ms": 20, "op": "nack", "consumer": "a", "message": "m1", "requeue": true}},
                  {{"at_ms": 30, "op": "receive", "consumer": "a"}},
                  {{"at_ms": 40, "op": "dead_letter", "consumer": "a", "message": "m1"}},
                  {{"at_ms": 50, "op": "receive", "consumer": "d"}}]}}"#
        );
        let mut d = Driver::new(&json);
        let before = d.to(45.0);
        assert_eq!(deliveries(&before).iter().map(|x| x.1).collect::<Vec<_>>(), vec![1, 2], "{lease}: twice in q");
        let after = d.to(55.0);
        assert_eq!(deliveries(&after), vec![(d.id("m1"), in_dlq)], "{lease}: its delivery count in the DLQ");
        let redelivered = d.sim.broker().msg(d.id("m1")).receive_count > 1;
        assert_eq!(redelivered, in_dlq > 1, "{lease}: a redelivery in the DLQ");
    }
}

/// D1 (issue 25), RMQ-49: a RabbitMQ delivery acked on receipt is never unacknowledged, so
/// prefetch does not hold the broker back: it pushes the whole queue into the consumer's
/// buffer, and a crash loses all of it, not the one message at work. An SQS client fetches
/// only what it has room for, so it loses one. Either way the work done is "processed", never
/// a second "acked": the broker forgot the message on receipt.
#[test]
fn auto_ack_takes_no_prefetch_slot_and_a_crash_loses_the_whole_buffer() {
    for (lease, lost) in [(r#"{"model": "rabbitmq"}"#, 5), (r#"{"model": "sqs", "visibility_timeout_ms": 30000}"#, 1)] {
        let json = format!(
            r#"{{"name": "d1", "duration_ms": 60000,
                "queues": [{{"name": "q", "lease": {lease}}}],
                "consumers": [{{"name": "a", "from": "q", "ack": "before_processing", "prefetch": 1,
                               "processing": {{"kind": "constant", "ms": 1000}}}}],
                "script": [
                  {{"at_ms": 0, "op": "send", "to": "q", "message": "m1"}},
                  {{"at_ms": 0, "op": "send", "to": "q", "message": "m2"}},
                  {{"at_ms": 0, "op": "send", "to": "q", "message": "m3"}},
                  {{"at_ms": 0, "op": "send", "to": "q", "message": "m4"}},
                  {{"at_ms": 0, "op": "send", "to": "q", "message": "m5"}},
                  {{"at_ms": 0, "op": "send", "to": "q", "message": "m6"}},
                  {{"at_ms": 1500, "op": "crash", "consumer": "a"}}]}}"#
        );
        let mut d = Driver::new(&json);
        let events = d.to(2000.0);
        let count = |kind: &str| events.iter().filter(|e| e.kind() == kind).count();
        assert_eq!(count("processed"), 1, "{lease}: m1 was done before the crash");
        assert_eq!(count("acked"), 0, "{lease}: an auto-acked message is not acked a second time");
        let dropped = events.iter().filter(|e| matches!(e, TraceEvent::Dropped { .. })).count();
        assert_eq!(dropped, lost, "{lease}: lost in the crash");
    }
}

/// D3 (issue 25): RabbitMQ has no delayed redelivery inside a queue, so a consumer that backs
/// off keeps the delivery unacked through the wait and then requeues it, and each requeue
/// counts toward a quorum queue's delivery limit (RMQ-16): with limit 2 the message is
/// delivered 3 times, then dead-lettered as `delivery_limit`, well before the consumer's own
/// 10 attempts run out. SQS waits out the backoff in the queue, and the consumer's attempts
/// decide.
#[test]
fn a_backoff_on_rabbitmq_waits_in_the_consumer_and_its_requeues_count_toward_the_delivery_limit() {
    let quorum = r#"{"model": "rabbitmq", "queue_type": "quorum", "delivery_limit": 2}"#;
    let sqs = r#"{"model": "sqs", "visibility_timeout_ms": 30000}"#;
    for (lease, deliveries_max, reason) in
        [(quorum, 3, DeadReason::DeliveryLimit), (sqs, 4, DeadReason::AttemptsExhausted)]
    {
        let json = format!(
            r#"{{"name": "d3", "duration_ms": 60000,
                "queues": [{{"name": "q", "lease": {lease}, "dead_letter": true}}],
                "consumers": [{{"name": "a", "from": "q", "outcomes": {{"transient": 1.0}},
                               "processing": {{"kind": "constant", "ms": 100}},
                               "retry": {{"strategy": "fixed", "base_ms": 1000, "attempts_max": 4}}}}],
                "script": [{{"at_ms": 0, "op": "send", "to": "q", "message": "m1"}}]}}"#
        );
        let mut d = Driver::new(&json);
        let mut events = d.to(600.0);
        let holder = d.sim.broker().msg(d.id("m1")).state().holder();
        assert_eq!(holder.is_some(), lease == quorum, "{lease}: in the consumer's hands during the backoff");
        events.extend(d.to(30_000.0));
        assert_eq!(deliveries(&events).len(), deliveries_max, "{lease}: deliveries");
        assert_eq!(dead_lettered(&events), vec![reason], "{lease}: why it was dead-lettered");
    }
}

/// D3's edge: RabbitMQ's consumer timeout closes the channel while the consumer waits out a
/// backoff with the message in hand (RMQ-9). The message goes back at once; when the backoff
/// ends the consumer lets go of its stale delivery, so its prefetch slot frees and it can
/// take the message again.
#[test]
fn a_consumer_timeout_during_a_held_backoff_frees_the_slot_when_the_backoff_ends() {
    let json = r#"{"name": "timeout in a backoff", "duration_ms": 5000,
        "queues": [{"name": "q", "lease": {"model": "rabbitmq", "consumer_timeout_ms": 500}}],
        "consumers": [{"name": "a", "from": "q", "outcomes": {"transient": 1.0},
                       "processing": {"kind": "constant", "ms": 100},
                       "retry": {"strategy": "fixed", "base_ms": 1000, "attempts_max": 10}}],
        "script": [{"at_ms": 0, "op": "send", "to": "q", "message": "m1"}]}"#;
    let mut d = Driver::new(json);
    let early = d.to(1050.0);
    assert_eq!(
        deliveries(&early).len(),
        1,
        "the channel closed at 0.5 s; the slot is still taken by the stale delivery"
    );
    assert!(early.iter().any(|e| matches!(e, TraceEvent::Returned { reason: ReturnReason::ConsumerTimeout, .. })));
    let later = d.to(1200.0);
    assert_eq!(deliveries(&later).len(), 1, "at 1.1 s the backoff ends, the slot frees, and m1 comes again");
}
