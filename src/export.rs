//! A scenario's RabbitMQ topology as the broker's own definitions file, for
//! `rabbitmqctl import_definitions` or the management UI's import: where a user who outgrows
//! the playground goes next. Every RabbitMQ queue with its arguments (the queues Brokerlab
//! makes for dead letters and retries included), every exchange, every binding. SQS and
//! Service Bus queues have no RabbitMQ form and are left out, and named in `skipped`.

use crate::exchange::{BindingSpec, Destination, DEFAULT_EXCHANGE};
use crate::scenario::{Overflow, QueueSpec, Scenario};
use serde_json::{json, Map, Value};

/// The version the definitions say they come from: the broker the conformance suite imports
/// them into.
pub const RABBIT_VERSION: &str = "3.10.8";

/// The definitions file, and the queues left out (not RabbitMQ's).
pub fn rabbitmq_definitions(s: &Scenario) -> (Value, Vec<String>) {
    let mut queues = Vec::new();
    let mut skipped = Vec::new();
    for q in &s.queues {
        match queue(s, q) {
            Some(v) => queues.push(v),
            None => skipped.push(q.name.clone()),
        }
    }
    let exchanges: Vec<Value> = s
        .topology
        .exchanges
        .iter()
        .map(|x| {
            let mut args = Map::new();
            if let Some(ae) = x.alternate {
                args.insert("alternate-exchange".into(), json!(s.topology.exchange_name(ae)));
            }
            json!({
                "name": x.name, "vhost": "/", "type": x.kind.as_str(), "durable": true,
                "auto_delete": false, "internal": false, "arguments": args,
            })
        })
        .collect();
    let bindings: Vec<Value> = s.topology.bindings.iter().map(|b| binding(s, b)).collect();
    let definitions = json!({
        "rabbit_version": RABBIT_VERSION,
        "vhosts": [{ "name": "/" }],
        "queues": queues,
        "exchanges": exchanges,
        "bindings": bindings,
        "policies": [],
    });
    (definitions, skipped)
}

/// One queue with its arguments; `None` when it is not a RabbitMQ queue.
fn queue(s: &Scenario, q: &QueueSpec) -> Option<Value> {
    let (quorum, delivery_limit) = q.lease.rabbitmq_type()?;
    let mut args = Map::new();
    if quorum {
        args.insert("x-queue-type".into(), json!("quorum"));
        if let Some(n) = delivery_limit {
            args.insert("x-delivery-limit".into(), json!(n));
        }
    }
    if let Some(ttl) = q.ttl {
        args.insert("x-message-ttl".into(), json!(ttl.as_micros() / 1000));
    }
    if let Some(n) = q.max_length {
        args.insert("x-max-length".into(), json!(n));
        match q.overflow {
            Overflow::RejectPublish => args.insert("x-overflow".into(), json!("reject-publish")),
            Overflow::RejectPublishDlx => args.insert("x-overflow".into(), json!("reject-publish-dlx")),
            Overflow::DropHead => None,
        };
    }
    if let Some(dlx) = q.dlx {
        let exchange = if dlx.exchange == DEFAULT_EXCHANGE { "" } else { s.topology.exchange_name(dlx.exchange) };
        args.insert("x-dead-letter-exchange".into(), json!(exchange));
        if let Some(k) = dlx.routing_key {
            args.insert("x-dead-letter-routing-key".into(), json!(s.topology.keys[k as usize]));
        }
    } else if let Some(dlq) = q.dead_letter {
        // The DLQ Brokerlab makes is RabbitMQ's DLX "" with the DLQ's name as its key.
        args.insert("x-dead-letter-exchange".into(), json!(""));
        args.insert("x-dead-letter-routing-key".into(), json!(s.queues[dlq as usize].name));
    }
    if q.single_active {
        args.insert("x-single-active-consumer".into(), json!(true));
    }
    Some(json!({ "name": q.name, "vhost": "/", "durable": true, "auto_delete": false, "arguments": args }))
}

fn binding(s: &Scenario, b: &BindingSpec) -> Value {
    let (destination, kind) = match b.to {
        Destination::Queue(q) => (s.queues[q as usize].name.as_str(), "queue"),
        Destination::Exchange(x) => (s.topology.exchange_name(x), "exchange"),
    };
    let mut args = Map::new();
    if let Some(h) = &b.headers {
        let m = match (h.any, h.with_x) {
            (false, false) => "all",
            (true, false) => "any",
            (false, true) => "all-with-x",
            (true, true) => "any-with-x",
        };
        args.insert("x-match".into(), json!(m));
        for (name, value) in &h.args {
            args.insert(name.clone(), json!(value));
        }
    }
    json!({
        "source": s.topology.exchange_name(b.exchange), "vhost": "/", "destination": destination,
        "destination_type": kind, "routing_key": b.key, "arguments": args,
    })
}
