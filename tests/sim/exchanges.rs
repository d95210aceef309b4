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
