//! RabbitMQ's routing in a run: exchanges, bindings, the alternate exchange, `mandatory`, and
//! dead-lettering through an exchange, with both checkers after every step.

use super::run_traced;
use brokerlab::message::StateKind;
use brokerlab::trace::TraceEvent;
use brokerlab::Scenario;
use std::collections::BTreeMap;

fn scenario(body: &str) -> Scenario {
    let json = format!(r#"{{"name": "routing", "duration_ms": 10000, {body}}}"#);
    Scenario::from_json(&json).unwrap_or_else(|e| panic!("{e}"))
}

/// Per queue (by name), the bindings (by routing key; "" for none) its messages came by.
fn routes(s: &Scenario, trace: &[TraceEvent]) -> BTreeMap<String, Vec<String>> {
    let mut queue_of = BTreeMap::new();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in trace {
        match *e {
            TraceEvent::Published { msg, queue, .. } => {
                queue_of.insert(msg, queue);
            }
            TraceEvent::Routed { msg, binding, .. } => {
                let q = &s.queues[queue_of[&msg].index()].name;
                let key = s.topology.bindings.get(binding as usize).map_or("(by name)", |b| b.key.as_str());
                out.entry(q.clone()).or_default().push(key.to_owned());
            }
            _ => {}
        }
    }
    out
}

/// RMQ-24, RMQ-26..28: one publish becomes one message per queue it reaches, however many
/// bindings match there; RMQ-36: what no binding matches goes to the alternate exchange;
/// RMQ-34/35: with none, it is dropped, or returned to a mandatory publisher, and counted.
#[test]
fn a_publish_becomes_one_message_per_queue_it_reaches_and_the_rest_is_counted() {
    let s = scenario(
        r##""queues": [{"name": "eu"}, {"name": "high"}, {"name": "audit"}, {"name": "catch"}],
           "exchanges": [{"name": "orders", "type": "topic", "arguments": {"alternate-exchange": "unrouted"}},
                         {"name": "unrouted", "type": "fanout"},
                         {"name": "strict", "type": "direct"}],
           "bindings": [{"source": "orders", "destination": "eu", "routing_key": "eu.*"},
                        {"source": "orders", "destination": "high", "routing_key": "*.high"},
                        {"source": "orders", "destination": "audit", "routing_key": "#"},
                        {"source": "orders", "destination": "audit", "routing_key": "eu.#"},
                        {"source": "unrouted", "destination": "catch"},
                        {"source": "strict", "destination": "eu", "routing_key": "eu"}],
           "producers": [
             {"name": "a", "exchange": "orders", "routing_key": "eu.high", "schedule": {"kind": "fixed_rate", "interval_ms": 100, "count": 3}},
             {"name": "b", "exchange": "orders", "routing_key": "", "schedule": {"kind": "fixed_rate", "interval_ms": 100, "count": 2}},
             {"name": "c", "exchange": "strict", "routing_key": "us", "mandatory": true, "schedule": {"kind": "fixed_rate", "interval_ms": 100, "count": 2}},
             {"name": "d", "exchange": "strict", "routing_key": "us", "schedule": {"kind": "fixed_rate", "interval_ms": 100, "count": 4}}]"##,
    );
    let (sim, trace) = run_traced(s.clone(), 1);
    let got = routes(&s, &trace);
    let want: BTreeMap<String, Vec<String>> = [
        // a's three: each to eu, high and audit once (audit matches "#" and "eu.#": one copy).
        ("eu", vec!["eu.*"; 3]),
        ("high", vec!["*.high"; 3]),
        // b's key "" matches only "#".
        ("audit", vec!["#", "#", "#", "#", "#"]),
    ]
    .into_iter()
    .map(|(q, v)| (q.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    // audit's order: a's and b's interleave by time; compare as sets of counts.
    let count = |m: &BTreeMap<String, Vec<String>>| m.iter().map(|(q, v)| (q.clone(), v.len())).collect::<Vec<_>>();
    assert_eq!(count(&got), count(&want), "{got:?}");
    assert_eq!(got["eu"], want["eu"]);
    let stats = sim.stats();
    assert_eq!(stats.published, 3 * 3 + 2, "messages made: a's fan out to three queues");
    assert_eq!((stats.returned, stats.unroutable), (2, 4), "c's come back, d's are dropped");
    let returned = trace.iter().filter(|e| matches!(e, TraceEvent::Unroutable { returned: true, .. })).count();
    assert_eq!(returned, 2);
    assert_eq!(sim.counts(brokerlab::ids::QueueId(3)).get(StateKind::Ready), 0, "catch: nothing reached it");
}

/// RMQ-36: the alternate exchange takes what the exchange's own bindings do not match; and a
/// headers exchange matches `x-match` any or all (RMQ-31).
#[test]
fn the_alternate_exchange_and_the_headers_exchange_route_as_the_broker_does() {
    let s = scenario(
        r#""queues": [{"name": "pdf"}, {"name": "reports"}, {"name": "other"}],
           "exchanges": [{"name": "docs", "type": "headers", "arguments": {"alternate-exchange": "rest"}},
                         {"name": "rest", "type": "fanout"}],
           "bindings": [{"source": "docs", "destination": "pdf", "arguments": {"x-match": "any", "format": "pdf"}},
                        {"source": "docs", "destination": "reports", "arguments": {"format": "pdf", "type": "report"}},
                        {"source": "rest", "destination": "other"}],
           "producers": [{"name": "p", "exchange": "docs", "schedule": {"kind": "fixed_rate", "interval_ms": 10, "count": 300},
                          "messages": [{"headers": {"format": "pdf", "type": "report"}},
                                       {"headers": {"format": "pdf", "type": "log"}},
                                       {"headers": {"format": "zip"}}]}]"#,
    );
    let (_, trace) = run_traced(s.clone(), 7);
    let got = routes(&s, &trace);
    let (pdf, reports, other) = (got["pdf"].len(), got["reports"].len(), got["other"].len());
    // Every pdf (two kinds in three) reaches pdf; only pdf reports reach reports; zips, which
    // match no binding, go to the alternate exchange.
    assert_eq!(pdf + other, 300, "{got:?}");
    assert!(reports < pdf && reports > 50 && other > 50, "{pdf} {reports} {other}");
}

use super::Driver;
use brokerlab::trace::{DeadReason, DropReason};

/// RMQ-39..42, RMQ-45: a retry-by-TTL loop. `work` dead-letters to the direct exchange
/// `retry` with the key `wait`; `wait` holds each message 1 s (x-message-ttl), then
/// dead-letters it through the default exchange back to `work`. `x-death` keeps one entry per
/// (queue, reason), newest first, counting each trip, with the exchange and routing key of its
/// first trip.
#[test]
fn a_retry_by_ttl_loop_counts_its_trips_in_x_death() {
    let json = r#"{"name": "retry by TTL", "duration_ms": 60000,
        "queues": [{"name": "work", "arguments": {"x-dead-letter-exchange": "retry", "x-dead-letter-routing-key": "wait"}},
                   {"name": "wait", "arguments": {"x-message-ttl": 1000, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "work"}}],
        "exchanges": [{"name": "retry", "type": "direct"}],
        "bindings": [{"source": "retry", "destination": "wait", "routing_key": "wait"}],
        "consumers": [{"name": "a", "from": "work", "mode": "manual"}],
        "script": [
          {"at_ms": 0, "op": "send", "to": "work", "message": "m1"},
          {"at_ms": 10, "op": "receive", "consumer": "a"},
          {"at_ms": 20, "op": "nack", "consumer": "a", "message": "m1", "requeue": false},
          {"at_ms": 1100, "op": "receive", "consumer": "a"},
          {"at_ms": 1110, "op": "nack", "consumer": "a", "message": "m1", "requeue": false},
          {"at_ms": 2200, "op": "receive", "consumer": "a"},
          {"at_ms": 2210, "op": "nack", "consumer": "a", "message": "m1", "requeue": false}]}"#;
    let mut d = Driver::new(json);
    let events = d.to(2500.0);
    let dead: Vec<DeadReason> = events
        .iter()
        .filter_map(|e| match *e {
            TraceEvent::DeadLettered { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    use DeadReason::{Expired, Rejected};
    assert_eq!(dead, vec![Rejected, Expired, Rejected, Expired, Rejected]);
    let s = d.sim.scenario();
    let t = &s.topology;
    let x: Vec<(String, DeadReason, u32, String, String)> = d.sim.broker().dead[&d.id("m1")]
        .x_death
        .iter()
        .map(|x| {
            let q = s.queues[x.queue.index()].name.clone();
            (q, x.reason, x.count, t.exchange_name(x.exchange).to_owned(), t.keys[x.routing_key as usize].clone())
        })
        .collect();
    // work's entry keeps its first trip's exchange and key: the default exchange, "work".
    // wait's: the DLX it came through, and the dead-letter routing key.
    assert_eq!(
        x,
        vec![
            ("work".to_owned(), Rejected, 3, "(default)".to_owned(), "work".to_owned()),
            ("wait".to_owned(), Expired, 2, "retry".to_owned(), "wait".to_owned()),
        ]
    );
}

/// RMQ-46's own tests: a message that expires in a queue whose DLX routes it back there,
/// with no rejection in between, is dropped; one rejected there comes back every time.
#[test]
fn a_dead_letter_cycle_without_a_rejection_is_dropped_and_one_with_a_rejection_is_not() {
    let json = r#"{"name": "cycle", "duration_ms": 60000,
        "queues": [{"name": "q", "arguments": {"x-message-ttl": 100, "x-dead-letter-exchange": ""}},
                   {"name": "r", "arguments": {"x-dead-letter-exchange": ""}}],
        "consumers": [{"name": "a", "from": "r", "mode": "manual"}],
        "script": [
          {"at_ms": 0, "op": "send", "to": "q", "message": "m1"},
          {"at_ms": 0, "op": "send", "to": "r", "message": "m2"},
          {"at_ms": 10, "op": "receive", "consumer": "a"},
          {"at_ms": 20, "op": "nack", "consumer": "a", "message": "m2", "requeue": false},
          {"at_ms": 30, "op": "receive", "consumer": "a"},
          {"at_ms": 40, "op": "nack", "consumer": "a", "message": "m2", "requeue": false}]}"#;
    let mut d = Driver::new(json);
    let events = d.to(500.0);
    let m1 = d.id("m1");
    assert!(
        events
            .iter()
            .any(|e| matches!(*e, TraceEvent::Dropped { msg, reason: DropReason::DeadLetterCycle, .. } if msg == m1)),
        "m1 expired in q, whose DLX routes it back to q: a cycle, dropped"
    );
    let m2 = d.id("m2");
    let back = events.iter().filter(|e| matches!(**e, TraceEvent::DeadLettered { msg, .. } if msg == m2)).count();
    assert_eq!(back, 2, "m2 was rejected each time: it reappears in r every time");
    assert_eq!(d.sim.broker().dead[&m2].x_death[0].count, 2, "one entry, count 2 (RMQ-42)");
}

/// RMQ-24 with RMQ-39: a DLX that reaches two queues makes a copy for the second, which the
/// ledger accounts for (Published by the dead-lettering) like any other message.
#[test]
fn a_fanout_dead_letter_exchange_makes_one_message_per_queue() {
    let json = r#"{"name": "fan-out DLX", "duration_ms": 60000,
        "queues": [{"name": "q", "arguments": {"x-dead-letter-exchange": "dead"}}, {"name": "d1"}, {"name": "d2"}],
        "exchanges": [{"name": "dead", "type": "fanout"}],
        "bindings": [{"source": "dead", "destination": "d1"}, {"source": "dead", "destination": "d2"}],
        "consumers": [{"name": "a", "from": "q", "mode": "manual"}],
        "script": [
          {"at_ms": 0, "op": "send", "to": "q", "message": "m1"},
          {"at_ms": 10, "op": "receive", "consumer": "a"},
          {"at_ms": 20, "op": "nack", "consumer": "a", "message": "m1", "requeue": false}]}"#;
    let mut d = Driver::new(json);
    d.to(100.0);
    let b = d.sim.broker();
    let ready = |q: u32| b.counts[q as usize].get(StateKind::Ready);
    assert_eq!((ready(0), ready(1), ready(2)), (0, 1, 1));
    assert_eq!(b.msgs.len(), 2, "the original and one copy");
    assert_eq!(b.dead[&brokerlab::ids::MsgId(1)].x_death.len(), 1, "the copy carries the death too");
}

/// Bad topology is refused with its path and a reason, never a panic.
#[test]
fn bad_exchanges_bindings_and_arguments_are_refused_with_their_path() {
    let base = |extra: &str| {
        format!(
            r#"{{"name": "bad", "duration_ms": 1000, "queues": [{{"name": "q"}}, {{"name": "s", "lease": {{"model": "sqs"}}}}],
                 "script": [{{"at_ms": 0, "op": "send", "to": "q"}}]{extra}}}"#
        )
    };
    let x = r#", "exchanges": [{"name": "x", "type": "topic"}]"#;
    let cases = [
        (r#", "exchanges": [{"name": "x", "type": "round"}]"#.to_owned(), "exchanges[0].type"),
        (format!("{x}{}", r#", "bindings": [{"source": "", "destination": "q"}]"#), "bindings[0].source"),
        (format!("{x}{}", r#", "bindings": [{"source": "nope", "destination": "q"}]"#), "bindings[0].source"),
        (format!("{x}{}", r#", "bindings": [{"source": "x", "destination": "s"}]"#), "bindings[0].destination"),
        (format!("{x}{}", r#", "bindings": [{"source": "x", "destination": "q", "arguments": {"a": "b"}}]"#), "bindings[0].arguments"),
        (
            r#", "producers": [{"name": "p", "exchange": "nope", "schedule": {"kind": "fixed_rate", "interval_ms": 10}}]"#.to_owned(),
            "producers[0].exchange",
        ),
    ];
    for (extra, path) in cases {
        let e = Scenario::from_json(&base(&extra)).expect_err(&extra);
        assert_eq!(e.path, path, "{extra}: {e}");
    }
    let args = |a: &str| {
        Scenario::from_json(&format!(
            r#"{{"name": "bad", "duration_ms": 1000, "queues": [{{"name": "q", "arguments": {a}}}], "script": [{{"at_ms": 0, "op": "send", "to": "q"}}]}}"#
        ))
        .expect_err(a)
        .path
    };
    assert_eq!(args(r#"{"x-expires": 1000}"#), "queues[0].arguments.x-expires");
    assert_eq!(args(r#"{"x-overflow": "drop"}"#), "queues[0].arguments.x-overflow");
    assert_eq!(args(r#"{"x-dead-letter-exchange": "nope"}"#), "queues[0].arguments.x-dead-letter-exchange");
    assert_eq!(args(r#"{"x-dead-letter-routing-key": "k"}"#), "queues[0].arguments.x-dead-letter-routing-key");
    assert_eq!(args(r#"{"x-message-ttl": -1}"#), "queues[0].arguments.x-message-ttl");
}

/// RMQ-42 as an attempt counter: a consumer retrying `via: dead_letter` rejects what fails,
/// the loop through `wait` brings it back, and it counts attempts by the message's own
/// `x-death` entry for (work, rejected); past `attempts_max` it republishes the message to its
/// parking lot, x-death and all, and acks it. With its dependency down for good, each message
/// is tried exactly three times, dead-lettered twice from each queue, and parked once.
#[test]
fn a_retry_loop_counts_attempts_by_x_death_and_parks_the_message_after_the_last() {
    let s = scenario(
        r#""queues": [{"name": "work", "arguments": {"x-dead-letter-exchange": "retry"}},
                      {"name": "wait", "arguments": {"x-message-ttl": 500, "x-dead-letter-exchange": ""}},
                      {"name": "parked"}],
           "exchanges": [{"name": "retry", "type": "fanout"}],
           "bindings": [{"source": "retry", "destination": "wait"}],
           "dependencies": [{"name": "down", "outages": [{"from_ms": 0, "to_ms": 60000}]}],
           "producers": [{"name": "p", "exchange": "", "routing_key": "work",
                          "schedule": {"kind": "fixed_rate", "interval_ms": 1000, "count": 4}}],
           "consumers": [{"name": "w", "from": "work", "dependency": "down",
                          "retry": {"strategy": "immediate", "attempts_max": 3, "via": "dead_letter", "park": "parked"},
                          "processing": {"kind": "constant", "ms": 50}}]"#,
    );
    let (sim, trace) = run_traced(s.clone(), 1);
    let mut attempts = BTreeMap::<u32, Vec<u32>>::new();
    let mut parked = Vec::new();
    for e in &trace {
        match *e {
            TraceEvent::Failed { msg, attempt, .. } => {
                attempts.entry(sim.broker().msg(msg).key).or_default().push(attempt)
            }
            TraceEvent::Published { msg, producer, queue, .. } if producer == brokerlab::trace::REPUBLISHED => {
                assert_eq!(s.queues[queue.index()].name, "parked");
                parked.push(msg);
            }
            _ => {}
        }
    }
    assert_eq!(attempts.len(), 4, "{attempts:?}");
    assert!(attempts.values().all(|a| a == &vec![1, 2, 3]), "{attempts:?}");
    assert_eq!(parked.len(), 4);
    let b = sim.broker();
    for &m in &parked {
        let x: Vec<(String, DeadReason, u32)> =
            b.dead[&m].x_death.iter().map(|x| (s.queues[x.queue.index()].name.clone(), x.reason, x.count)).collect();
        // Newest first: its last death was the wait that brought it back for its third try.
        assert_eq!(x, vec![("wait".to_owned(), DeadReason::Expired, 2), ("work".to_owned(), DeadReason::Rejected, 2)]);
        assert!(b.extra(m).copy_of.is_some(), "a parked message remembers whose copy it is");
    }
    let q = |name: &str| {
        let i = s.queues.iter().position(|x| x.name == name).expect("a queue of the scenario");
        sim.counts(brokerlab::ids::QueueId(u32::try_from(i).expect("few queues")))
    };
    assert_eq!((q("work").get(StateKind::Acked), q("parked").get(StateKind::Ready)), (4, 4));
    assert_eq!(sim.stats().lost, 0);

    // Refused with their paths: the wrong strategy, no parking lot, a queue with no DLX.
    let bad = |retry: &str, queue_args: &str| {
        Scenario::from_json(&format!(
            r#"{{"name": "bad", "duration_ms": 1000,
                 "queues": [{{"name": "work"{queue_args}}}, {{"name": "parked"}}],
                 "exchanges": [{{"name": "retry", "type": "fanout"}}],
                 "consumers": [{{"name": "w", "from": "work", "retry": {retry}}}]}}"#
        ))
        .expect_err(retry)
        .path
    };
    let dlx = r#", "arguments": {"x-dead-letter-exchange": "retry"}"#;
    let r = |extra: &str| format!(r#"{{"strategy": "immediate", "attempts_max": 2, "via": "dead_letter"{extra}}}"#);
    assert_eq!(bad(&r(r#", "park": "parked""#), ""), "consumers[0].retry.via");
    assert_eq!(bad(&r(""), dlx), "consumers[0].retry.park");
    assert_eq!(bad(&r(r#", "park": "nope""#), dlx), "consumers[0].retry.park");
    assert_eq!(bad(&r(r#", "park": "work""#), dlx), "consumers[0].retry.park");
    assert_eq!(
        bad(r#"{"strategy": "fixed", "base_ms": 10, "attempts_max": 2, "via": "dead_letter", "park": "parked"}"#, dlx),
        "consumers[0].retry.strategy"
    );
    assert_eq!(
        bad(r#"{"strategy": "immediate", "attempts_max": 2, "park": "parked"}"#, dlx),
        "consumers[0].retry.park"
    );
}
