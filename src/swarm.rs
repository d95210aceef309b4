//! Swarm testing: random valid scenarios, random live faults, every checker after every step.
//! A seed decides everything, so a failure names the seed that reproduces it
//! (`brokerlab swarm --from SEED --seeds 1`).

use crate::check::{check, coarse_engine_counts, Ledger};
use crate::message::{MsgState, Phase};
use crate::rng::Prng;
use crate::scenario::{Op, Scenario};
use crate::sim::Sim;
use crate::time::SimTime;
use crate::trace::{ReturnReason, TraceEvent};
use serde_json::{json, Value};

/// What a swarm run found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub seeds: u64,
    /// Events handled plus live faults injected, over all seeds.
    pub operations: u64,
    /// (seed, what went wrong), for each seed that broke an invariant.
    pub violations: Vec<(u64, String)>,
    /// Faults on one delivery that took effect: deliveries lost on their way, and deliveries
    /// made again while held.
    pub deliveries_lost: u64,
    pub deliveries_duplicated: u64,
}

/// What one seed did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub operations: u64,
    pub deliveries_lost: u64,
    pub deliveries_duplicated: u64,
}

fn pick<'a>(r: &mut Prng, options: &[&'a str]) -> &'a str {
    options[r.index(options.len())]
}

fn chance(r: &mut Prng, percent: u64) -> bool {
    r.below(100) < percent
}

/// A random, valid scenario for `seed`: up to 3 queues of random lease models and options, up
/// to 3 producers, up to 5 consumers with random outcomes and policies, and dependencies with
/// outages and rate limits, some an optimistic row whose writes conflict (BO-3).
#[allow(clippy::cast_precision_loss)]
// long: one random choice per field of the scenario it builds, in the schema's order
pub fn scenario_json(seed: u64) -> String {
    let r = &mut Prng::from_seed(seed ^ 0x5eed_5eed);
    let queue_count = 1 + r.index(3);
    let mut queues = Vec::new();
    for q in 0..queue_count {
        let model = pick(r, &["sqs", "rabbitmq", "service_bus"]);
        let mut lease = json!({ "model": model });
        let mut queue = json!({ "name": format!("q{q}") });
        match model {
            "sqs" => {
                lease["visibility_timeout_ms"] = json!(500 + r.below(3000));
                if chance(r, 50) {
                    lease["max_receive_count"] = json!(1 + r.below(4));
                }
                if chance(r, 25) {
                    queue["fifo"] = json!(true);
                }
            }
            "rabbitmq" => {
                if chance(r, 50) {
                    lease["queue_type"] = json!("quorum");
                    lease["delivery_limit"] = json!(1 + r.below(4));
                    lease["version"] = json!(pick(r, &["4.2", "4.3"]));
                }
                lease["consumer_timeout_ms"] = json!(2000 + r.below(6000));
            }
            _ => {
                lease["lock_duration_ms"] = json!(500 + r.below(3000));
                lease["max_delivery_count"] = json!(1 + r.below(4));
            }
        }
        queue["lease"] = lease;
        if model != "service_bus" && chance(r, 60) {
            queue["dead_letter"] = json!(true);
        }
        if chance(r, 25) {
            if model == "sqs" {
                // SQS-17: a retention period of at least a minute, past which messages go.
                queue["ttl_ms"] = json!(60_000 + r.below(30_000));
                if queue.get("dead_letter").is_some() {
                    // SQS-13: the DLQ's own retention, from the original enqueue on standard.
                    queue["dead_letter_ttl_ms"] = json!(60_000 + r.below(30_000));
                }
            } else {
                queue["ttl_ms"] = json!(1000 + r.below(5000));
                let dlq = queue.get("dead_letter").is_some() || model == "service_bus";
                queue["on_expire"] = json!(if dlq && chance(r, 50) { "dead_letter" } else { "drop" });
            }
        }
        if chance(r, 20) {
            queue["max_length"] = json!(2 + r.below(10));
            queue["overflow"] = json!(pick(r, &["drop_head", "reject_publish"]));
            // RMQ-38: a classic queue may also dead-letter what it refuses.
            if model == "rabbitmq" && queue["lease"].get("queue_type").is_none() && chance(r, 30) {
                queue["overflow"] = json!("reject_publish_dlx");
            }
        }
        if chance(r, 15) {
            queue["delay_ms"] = json!(r.below(1500));
        }
        queues.push(queue);
    }
    let fifo = |q: usize, queues: &[Value]| queues[q].get("fifo").is_some();
    let model = |q: usize, queues: &[Value]| queues[q]["lease"]["model"].as_str().unwrap_or("").to_string();

    let mut dependencies = vec![json!({
        "name": "dep",
        "error_rate": (r.below(20) as f64) / 100.0,
        "outages": [{ "from_ms": 2000 + r.below(3000), "to_ms": 6000 + r.below(4000) }],
        "rate_limit_per_s": 5 + r.below(30),
    })];

    let mut producers = Vec::new();
    for p in 0..1 + r.below(3) {
        let q = r.index(queue_count);
        let schedule = if chance(r, 50) {
            json!({ "kind": "fixed_rate", "interval_ms": 50 + r.below(400), "count": 5 + r.below(40) })
        } else {
            json!({ "kind": "poisson", "rate_per_s": 1 + r.below(10), "count": 5 + r.below(40) })
        };
        let mut producer = json!({ "name": format!("p{p}"), "to": format!("q{q}"), "schedule": schedule });
        if fifo(q, &queues) {
            producer["groups"] = json!(1 + r.below(4));
        }
        if chance(r, 20) {
            producer["poison"] = json!([r.below(5)]);
        }
        producers.push(producer);
    }

    let mut consumers = Vec::new();
    for c in 0..1 + r.below(5) {
        let q = r.index(queue_count);
        let prefetch = 1 + r.below(4);
        // Now and then a consumer reads a dead-letter queue instead.
        let has_dlq = queues[q].get("dead_letter").is_some()
            || model(q, &queues) == "service_bus"
            || queues[q]["lease"].get("max_receive_count").is_some();
        let from = if has_dlq && chance(r, 15) { format!("q{q}.dlq") } else { format!("q{q}") };
        let mut consumer = json!({
            "name": format!("c{c}"),
            "from": from,
            "prefetch": prefetch,
            "concurrency": 1 + r.below(prefetch),
            "processing": { "kind": "uniform", "min_ms": r.below(300), "max_ms": 300 + r.below(900) },
            "outcomes": {
                "transient": (r.below(15) as f64) / 100.0,
                "permanent": (r.below(5) as f64) / 100.0,
                "unknown": (r.below(5) as f64) / 100.0,
                "crash": (r.below(6) as f64) / 100.0,
                "hang": (r.below(6) as f64) / 100.0,
            },
            "hang_ms": 1000 + r.below(8000),
            "restart_ms": 200 + r.below(3000),
        });
        if model(q, &queues) == "rabbitmq" && chance(r, 10) {
            consumer["prefetch"] = json!(0); // RMQ-3: unlimited
        }
        if model(q, &queues) == "rabbitmq" && chance(r, 25) {
            consumer["priority"] = json!(i64::from(r.below(3) == 0) - i64::from(r.below(3) == 0));
            // RMQ-2
        }
        if chance(r, 30) {
            consumer["ack"] = json!("before_processing");
        }
        if chance(r, 40) {
            consumer["dependency"] = json!("dep");
            if chance(r, 40) {
                consumer["circuit_breaker"] = json!({
                    "failure_rate_pct": 1 + r.below(100),
                    "window": 1 + r.below(20),
                    "minimum_calls": 1 + r.below(20),
                    "wait_open_ms": 1 + r.below(5000),
                    "half_open_calls": 1 + r.below(5),
                });
            }
        }
        if chance(r, 40) {
            consumer["idempotent"] = json!(true);
        }
        if chance(r, 30) {
            let effect = pick(r, &["increment", "set"]);
            consumer["effect"] = json!(effect);
            if effect == "set" && chance(r, 50) {
                consumer["version_check"] = json!(true);
            }
        }
        if chance(r, 30) {
            consumer["on_poison"] = json!("permanent_error");
        }
        if chance(r, 60) {
            let strategy =
                pick(r, &["immediate", "fixed", "exponential", "full_jitter", "equal_jitter", "decorrelated_jitter"]);
            let via = if chance(r, 30) { "retry_queue" } else { "delay" };
            consumer["retry"] = json!({
                "strategy": strategy, "base_ms": 20 + r.below(300), "cap_ms": 500 + r.below(5000),
                "attempts_max": 1 + r.below(6), "via": via, "unknown_attempts_max": r.below(3),
            });
        }
        if chance(r, 15) {
            let max = 2 + r.below(4);
            consumer["autoscale"] = json!({
                "min": 1, "max": max, "scale_up_above": 1 + r.below(6), "add": 1 + r.below(2),
                "scale_down_below": r.below(2), "remove": 1, "check_every_ms": 500 + r.below(3000),
            });
        }
        if model(q, &queues) != "rabbitmq" && chance(r, 30) {
            // Below the shortest lease the generator makes.
            consumer["heartbeat_ms"] = json!(100 + r.below(300));
        }
        consumers.push(consumer);
    }

    // Order keys on some queue producers, from their own PRNG so the rest stays as it was.
    let k = &mut Prng::from_seed(seed ^ 0x0bde_0000);
    for producer in &mut producers {
        if producer.get("groups").is_none() && chance(k, 30) {
            producer["keys"] = json!({ "count": 1 + k.below(5) });
        }
    }
    // An optimistic row (BO-3) for some, from its own PRNG as well: consumers on it conflict.
    let o = &mut Prng::from_seed(seed ^ 0x0cc0_0000);
    if chance(o, 30) {
        let (mean, sd) = (1 + o.below(30), o.below(10));
        dependencies[0]["optimistic"] = json!({ "hop": { "kind": "normal", "mean_ms": mean, "sd_ms": sd } });
    }
    let (exchanges, bindings) = routing_json(seed, &mut queues, &mut producers);
    retry_loops(seed, &queues, &mut consumers);
    let (topics, groups) = streams_json(seed, &mut producers);
    let (request_reply, sagas) = workflows_json(seed);
    // An SQS retention (a minute at least) needs a longer run to come due.
    let retained = queues.iter().any(|q| q["lease"]["model"] == "sqs" && q.get("ttl_ms").is_some());
    json!({
        "name": format!("swarm {seed}"),
        "duration_ms": if retained { 100_000 } else { 30_000 },
        "network": { "latency_ms": r.below(150) },
        "queues": queues,
        "exchanges": exchanges,
        "bindings": bindings,
        "topics": topics,
        "groups": groups,
        "request_reply": request_reply,
        "sagas": sagas,
        "producers": producers,
        "consumers": consumers,
        "dependencies": dependencies,
    })
    .to_string()
}

/// RabbitMQ routing for some seeds, from its own PRNG: exchanges of every type (some with an
/// alternate), bindings to the RabbitMQ queues and between exchanges, producers publishing
/// weighted kinds of message (some mandatory, some with an expiration), and dead-letter
/// exchanges on queues without a DLQ, so that dead letters fan out and chain (RMQ-24..46).
// long: one random choice per exchange, binding, producer and DLX it makes
fn routing_json(seed: u64, queues: &mut [Value], producers: &mut Vec<Value>) -> (Vec<Value>, Vec<Value>) {
    let r = &mut Prng::from_seed(seed ^ 0x0e8c_0000);
    let rabbit: Vec<usize> = (0..queues.len()).filter(|&q| queues[q]["lease"]["model"] == "rabbitmq").collect();
    if rabbit.is_empty() || !chance(r, 50) {
        return (Vec::new(), Vec::new());
    }
    const KEYS: &[&str] = &["a", "a.b", "a.b.c", "b.c", "", "x.y"];
    const PATTERNS: &[&str] = &["a", "a.b", "*.b", "#", "a.#", "*.*", "#.c", "b.c"];
    let count = 1 + r.index(3);
    let mut exchanges = Vec::new();
    for x in 0..count {
        let kind = pick(r, &["direct", "fanout", "topic", "headers"]);
        let mut e = json!({ "name": format!("x{x}"), "type": kind });
        if x + 1 < count && chance(r, 30) {
            e["arguments"] = json!({ "alternate-exchange": format!("x{}", x + 1) });
        }
        exchanges.push(e);
    }
    let mut bindings = Vec::new();
    for _ in 0..1 + r.below(6) {
        let x = r.index(count);
        let q = rabbit[r.index(rabbit.len())];
        let mut b = json!({ "source": format!("x{x}"), "destination": format!("q{q}") });
        match exchanges[x]["type"].as_str().unwrap_or("") {
            "headers" => {
                b["arguments"] = json!({ "x-match": pick(r, &["all", "any"]), "kind": pick(r, &["a", "b"]) });
            }
            "topic" => b["routing_key"] = json!(pick(r, PATTERNS)),
            _ => b["routing_key"] = json!(pick(r, KEYS)),
        }
        bindings.push(b);
    }
    if count > 1 && chance(r, 30) {
        bindings.push(json!({ "source": "x0", "destination": format!("x{}", count - 1), "destination_type": "exchange", "routing_key": pick(r, KEYS) }));
    }
    let shapes: Vec<Value> = (0..1 + r.below(3))
        .map(|_| json!({ "routing_key": pick(r, KEYS), "headers": { "kind": pick(r, &["a", "b"]) }, "weight": 1 + r.below(3) }))
        .collect();
    let mut producer = json!({
        "name": "px", "exchange": format!("x{}", r.index(count)), "messages": shapes, "mandatory": chance(r, 50),
        "schedule": { "kind": "fixed_rate", "interval_ms": 100 + r.below(400), "count": 5 + r.below(30) },
    });
    if chance(r, 30) {
        producer["expiration_ms"] = json!(500 + r.below(3000));
    }
    producers.push(producer);
    for &q in &rabbit {
        if queues[q].get("dead_letter").is_none() && chance(r, 50) {
            let mut args = json!({ "x-dead-letter-exchange": format!("x{}", r.index(count)) });
            if chance(r, 40) {
                args["x-dead-letter-routing-key"] = json!(pick(r, KEYS));
            }
            queues[q]["arguments"] = args;
        }
    }
    (exchanges, bindings)
}

/// RabbitMQ retry loops (`via: dead_letter`), from their own PRNG: some consumers of a queue
/// with a dead-letter exchange reject what fails, count attempts by x-death and park the
/// message in another RabbitMQ queue past their last attempt.
fn retry_loops(seed: u64, queues: &[Value], consumers: &mut [Value]) {
    let r = &mut Prng::from_seed(seed ^ 0x0d1e_0000);
    let rabbit: Vec<usize> = (0..queues.len()).filter(|&q| queues[q]["lease"]["model"] == "rabbitmq").collect();
    for consumer in consumers.iter_mut() {
        let from = consumer["from"].as_str().unwrap_or("");
        let Some(q) = queues.iter().position(|x| x["name"] == from) else { continue };
        let parks: Vec<usize> = rabbit.iter().copied().filter(|&p| p != q).collect();
        if queues[q].get("arguments").is_some_and(|a| a.get("x-dead-letter-exchange").is_some())
            && !parks.is_empty()
            && chance(r, 50)
        {
            consumer["retry"] = json!({
                "strategy": "immediate", "attempts_max": 1 + r.below(4), "via": "dead_letter",
                "park": format!("q{}", parks[r.index(parks.len())]),
            });
        }
    }
}

/// Streams for half the seeds, from their own PRNG so that the queues above stay as they
/// were: topics (logs and pubsub channels, retention by time and size, compaction), keyed and
/// null-key producers, and groups with every assignor, commit mode and reset, some retrying
/// through retry topics, some starting late.
#[allow(clippy::cast_precision_loss)]
// long: one random choice per field of the topics and groups it builds, in the schema's order
fn streams_json(seed: u64, producers: &mut Vec<Value>) -> (Vec<Value>, Vec<Value>) {
    let r = &mut Prng::from_seed(seed ^ 0x57ea_0000);
    let (mut topics, mut groups) = (Vec::new(), Vec::new());
    if chance(r, 50) {
        return (topics, groups);
    }
    for t in 0..1 + r.below(2) {
        let mut topic = json!({ "name": format!("t{t}"), "partitions": 1 + r.below(6) });
        let compact = chance(r, 15);
        if chance(r, 15) && !compact {
            topic["kind"] = json!("pubsub");
        }
        if chance(r, 50) {
            topic["record_bytes"] = json!(100);
            topic["segment_bytes"] = json!(100 * (1 + r.below(10)));
            topic["check_every_ms"] = json!(500 + r.below(3000));
        }
        if chance(r, 30) {
            topic["retention_ms"] = json!(1000 + r.below(10_000));
        }
        if chance(r, 20) {
            topic["retention_bytes"] = json!(100 * (1 + r.below(20)));
        }
        if compact {
            topic["cleanup_policy"] = json!(pick(r, &["compact", "delete,compact"]));
            topic["delete_retention_ms"] = json!(r.below(5000));
        }
        if chance(r, 30) {
            topic["null_keys"] = json!("round_robin");
        }
        let keyed = compact || chance(r, 70);
        let schedule = json!({ "kind": "poisson", "rate_per_s": 2 + r.below(30), "count": 10 + r.below(150) });
        let mut producer = json!({ "name": format!("tp{t}"), "to": format!("t{t}"), "schedule": schedule });
        if keyed {
            producer["keys"] = json!({ "count": 1 + r.below(20), "hot_key_share": (r.below(80) as f64) / 100.0 });
            if compact && chance(r, 50) {
                producer["tombstones"] = json!((r.below(20) as f64) / 100.0);
            }
        }
        producers.push(producer);
        topics.push(topic);
    }
    let mut retrying = std::collections::BTreeSet::new();
    for g in 0..1 + r.below(3) {
        let t = r.index(topics.len());
        let mut group = json!({
            "name": format!("g{g}"),
            "topic": format!("t{t}"),
            "members": r.below(4),
            "assignor": pick(r, &["range", "roundrobin", "sticky", "cooperative-sticky"]),
            "commit": pick(r, &["after", "before", "auto"]),
            "offset_reset": pick(r, &["earliest", "latest"]),
            "max_poll_records": 1 + r.below(50),
            "processing": { "kind": "uniform", "min_ms": r.below(50), "max_ms": 50 + r.below(300) },
            "session_timeout_ms": 2000 + r.below(8000),
            "heartbeat_interval_ms": 200 + r.below(1000),
            "max_poll_interval_ms": 1000 + r.below(20_000),
            "initial_rebalance_delay_ms": r.below(3000),
            "sync_ms": r.below(300),
            "start_ms": if chance(r, 30) { r.below(20_000) } else { 0 },
        });
        if chance(r, 30) && retrying.insert(t) {
            group["error_rate"] = json!((r.below(40) as f64) / 100.0);
            if chance(r, 40) {
                // Retrying in place: the partition waits, and long waits cost the membership.
                group["retry_in_place"] = json!({ "attempts_max": 1 + r.below(6), "backoff_ms": r.below(2000) });
            } else {
                let delays: Vec<u64> = (0..1 + r.below(2)).map(|_| 100 + r.below(3000)).collect();
                group["retry_delays_ms"] = json!(delays);
            }
        }
        if group["commit"] == "auto" {
            group["auto_commit_interval_ms"] = json!(100 + r.below(5000));
        }
        groups.push(group);
    }
    // Poison records, where every group reading the topic has somewhere to put a failure.
    let base = producers.len() - topics.len();
    for t in 0..topics.len() {
        let readers: Vec<&Value> = groups.iter().filter(|g| g["topic"] == format!("t{t}")).collect();
        if !readers.is_empty() && readers.iter().all(|g| g.get("error_rate").is_some()) && chance(r, 60) {
            producers[base + t]["poison"] = json!([r.below(10), 10 + r.below(40)]);
        }
    }
    (topics, groups)
}

/// Workflows for some seeds, from their own PRNG: a request-reply system with any reply
/// design, and sagas of either style with business failures, a pivot, flaky compensations and
/// duplicates.
#[allow(clippy::cast_precision_loss)]
fn workflows_json(seed: u64) -> (Vec<Value>, Vec<Value>) {
    let r = &mut Prng::from_seed(seed ^ 0x5a6a_0000);
    let (mut request_reply, mut sagas) = (Vec::new(), Vec::new());
    if chance(r, 30) {
        request_reply.push(json!({
            "name": "rr",
            "requesters": 1 + r.below(4),
            "responders": 1 + r.below(4),
            "reply_queue": pick(r, &["shared", "per_instance"]),
            "pending": pick(r, &["local", "shared"]),
            "schedule": { "kind": "poisson", "rate_per_s": 1 + r.below(4), "count": 5 + r.below(30) },
            "timeout_ms": 300 + r.below(3000),
            "retries": r.below(3),
            "processing": { "kind": "uniform", "min_ms": r.below(200), "max_ms": 200 + r.below(1000) },
        }));
    }
    for k in 0..r.below(3) {
        if !chance(r, 50) {
            continue;
        }
        let n = 2 + r.below(4);
        let pivot = if chance(r, 40) { Some(1 + r.below(n - 1)) } else { None };
        let steps: Vec<Value> = (0..n)
            .map(|i| {
                let after_pivot = pivot.is_some_and(|p| i > p);
                let mut step = json!({ "service": format!("s{i}"), "done": format!("s{i}.done") });
                if i > 0 && !after_pivot && chance(r, 60) {
                    step["fail_rate"] = json!((r.below(50) as f64) / 100.0);
                }
                if after_pivot {
                    step["transient_rate"] = json!((r.below(50) as f64) / 100.0);
                }
                step
            })
            .collect();
        let mut saga = json!({
            "name": format!("saga{k}"),
            "style": pick(r, &["choreography", "orchestration"]),
            "schedule": { "kind": "poisson", "rate_per_s": 1 + r.below(3), "count": 3 + r.below(20) },
            "steps": steps,
            "compensation_transient_rate": (r.below(60) as f64) / 100.0,
            "duplicate_rate": (r.below(30) as f64) / 100.0,
            "idempotent": chance(r, 50),
            "retry": { "strategy": "full_jitter", "base_ms": 50 + r.below(300), "cap_ms": 2000, "attempts_max": 1 + r.below(5) },
            "processing": { "kind": "uniform", "min_ms": r.below(100), "max_ms": 100 + r.below(400) },
        });
        if let Some(p) = pivot {
            saga["pivot"] = json!(format!("s{p}"));
        }
        sagas.push(saga);
    }
    (request_reply, sagas)
}

/// A random live fault for this run, as it stands.
// long: one arm per kind of live fault, each with its odds and its pick of a target
fn fault(r: &mut Prng, sim: &Sim) -> Op {
    let scenario = &sim.cx.scenario;
    // One delivery: lost on its way, or delivered again while its consumer holds it.
    if chance(r, 15) {
        let lose = chance(r, 50);
        let candidates: Vec<u32> = sim
            .ports
            .broker
            .msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| {
                m.lease().is_some()
                    && matches!(m.state(), MsgState::InFlight { phase, .. } if (phase == Phase::Delivering) == lose)
            })
            .map(|(i, _)| crate::scenario::index_u32(i))
            .collect();
        if let Some(&msg) = candidates.get(r.index(candidates.len().max(1))) {
            return if lose { Op::DropDelivery { msg } } else { Op::DuplicateDelivery { msg } };
        }
    }
    if let Some(rr) = scenario.request_reply.first().filter(|_| chance(r, 15)) {
        return Op::KillRequester {
            system: 0,
            instance: u32::try_from(r.below(u64::from(rr.requesters))).unwrap_or(0),
        };
    }
    if !scenario.groups.is_empty() && chance(r, 40) {
        let group = crate::scenario::index_u32(r.index(scenario.groups.len()));
        let member = u32::try_from(r.below(5)).unwrap_or(0);
        return match r.below(5) {
            0 => Op::CrashMember { group, member },
            1 => Op::RestartMember { group, member },
            2 => Op::AddMember { group },
            3 => Op::ResetOffsets { group },
            _ => Op::RemoveMember { group, member },
        };
    }
    let consumer = crate::scenario::index_u32(r.index(scenario.consumers.len()));
    let dlqs: Vec<(u32, u32)> = scenario
        .queues
        .iter()
        .filter_map(|q| q.dead_letter)
        .map(|d| {
            (
                d,
                match scenario.queues[d as usize].role {
                    crate::scenario::QueueRole::DeadLetter { of } => of,
                    _ => d,
                },
            )
        })
        .collect();
    let odds = |r: &mut Prng| crate::rng::Ratio { numerator: r.below(200_000), denominator: 1_000_000 };
    match r.below(8) {
        0 => Op::Crash { consumer },
        1 => Op::Restart { consumer },
        2 => Op::DependencyDown { dependency: 0 },
        3 => Op::DependencyUp { dependency: 0 },
        4 => Op::SetOutcomes {
            consumer,
            outcomes: crate::scenario::Outcomes {
                transient: odds(r),
                permanent: odds(r),
                unknown: odds(r),
                crash: odds(r),
                hang: odds(r),
            },
        },
        5 => Op::SetProcessing {
            consumer,
            processing: crate::scenario::Dist::Uniform {
                min: crate::time::Duration::ZERO,
                max: crate::time::Duration::from_millis(1 + r.below(3000)),
            },
        },
        6 if !scenario.producers.is_empty() => {
            Op::PoisonNext { producer: crate::scenario::index_u32(r.index(scenario.producers.len())) }
        }
        _ => match dlqs.get(r.index(dlqs.len().max(1))) {
            Some(&(from, to)) => Op::Redrive { from, to, rate_per_s: None },
            None => Op::Restart { consumer },
        },
    }
}

/// Runs one seed with every checker after every step and every fault. Returns the operations
/// it performed, or what broke.
pub fn run_seed(seed: u64) -> Result<u64, String> {
    outcome(seed).map(|o| o.operations)
}

/// Runs one seed (as `run_seed`), with what its faults did.
pub fn outcome(seed: u64) -> Result<Outcome, String> {
    let scenario = generated(seed)?;
    let end = scenario.end();
    let mut faults = Prng::from_seed(seed ^ 0xfa17);
    let mut fault_times: Vec<SimTime> =
        (0..3 + faults.below(8)).map(|_| SimTime::from_micros(faults.below(end.as_micros()))).collect();
    fault_times.sort_unstable();
    drive(seed, scenario, fault_times, |s| fault(&mut faults, s))
}

/// Most faults a plan can ask for.
const PLAN_FAULTS_MAX: usize = 64;

/// The fuzzer's way in: seed `seed`'s scenario, with the faults `plan` asks for, every checker
/// on. Each 8 bytes of the plan are one fault: when (4 bytes, as a fraction of the run) and
/// which (4 bytes, the seed of its random choice).
pub fn run_plan(seed: u64, plan: &[u8]) -> Result<u64, String> {
    let scenario = generated(seed)?;
    let end = scenario.end().as_micros();
    let word = |b: &[u8]| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let mut faults: Vec<(SimTime, u64)> = plan
        .chunks_exact(8)
        .take(PLAN_FAULTS_MAX)
        .map(|c| {
            // A fraction of the run in 32 bits: below `end`, so it fits.
            let at = u64::try_from((u128::from(word(&c[..4])) * u128::from(end)) >> 32).unwrap_or(end);
            (SimTime::from_micros(at), word(&c[4..]))
        })
        .collect();
    faults.sort_unstable();
    let mut choices = faults.iter().map(|&(_, choice)| choice).collect::<Vec<_>>().into_iter();
    let times = faults.iter().map(|&(at, _)| at).collect();
    drive(seed, scenario, times, |s| fault(&mut Prng::from_seed(choices.next().unwrap_or(0)), s)).map(|o| o.operations)
}

fn generated(seed: u64) -> Result<Scenario, String> {
    Scenario::from_json(&scenario_json(seed)).map_err(|e| format!("the generator made an invalid scenario: {e}"))
}

/// Steps the run event by event, making each fault at its time, with the ledger and every
/// checker after each operation, and the trace and the engine agreeing at the end.
fn drive(
    seed: u64,
    scenario: Scenario,
    fault_times: Vec<SimTime>,
    mut make_fault: impl FnMut(&Sim) -> Op,
) -> Result<Outcome, String> {
    let end = scenario.end();
    let queues = scenario.queues.len();
    let mut sim = Sim::new(scenario.clone(), seed);
    let mut ledger = Ledger::for_scenario(&scenario);
    let mut outcome = Outcome::default();
    let mut duplicate = false;
    let mut next_fault = fault_times.into_iter().peekable();
    loop {
        let next_event = sim.next_event_at().filter(|t| *t <= end);
        match (next_event, next_fault.peek().copied()) {
            (None, None) => break,
            (Some(t), Some(f)) if t <= f => {
                sim.step();
            }
            (Some(_), None) => {
                sim.step();
            }
            (_, Some(f)) => {
                next_fault.next();
                sim.run_until(f, 0).map_err(|e| e.to_string())?;
                let op = make_fault(&sim);
                duplicate = matches!(op, Op::DuplicateDelivery { .. });
                sim.input(op);
            }
        }
        outcome.operations += 1;
        for event in sim.drain_trace() {
            outcome.deliveries_lost += u64::from(matches!(event, TraceEvent::DeliveryLost { .. }));
            // A duplicate took effect if it gave its message (and, on RabbitMQ, its channel's) back.
            if duplicate
                && matches!(
                    event,
                    TraceEvent::Returned { reason: ReturnReason::Duplicated | ReturnReason::ChannelClosed, .. }
                )
            {
                outcome.deliveries_duplicated += 1;
                duplicate = false;
            }
            ledger.apply(&event).map_err(|v| v.to_string())?;
        }
        duplicate = false;
        check(&sim).map_err(|v| v.to_string())?;
    }
    let (traced, engine) = (ledger.coarse_counts(queues), coarse_engine_counts(&sim));
    if traced != engine {
        return Err(format!(
            "the trace and the engine disagree on the final counts \
             [publishing, delayed, visible, in flight, acked, expired, dropped, moved]: {traced:?} vs {engine:?}"
        ));
    }
    Ok(outcome)
}

/// Runs seeds `from..from + count`. A panic inside the engine is caught where the target can
/// unwind (natively), and reported with its seed like any other violation.
pub fn run(from: u64, count: u64) -> Report {
    let mut report = Report::default();
    for seed in from..from.saturating_add(count) {
        report.seeds += 1;
        match catch(seed) {
            Ok(o) => {
                report.operations += o.operations;
                report.deliveries_lost += o.deliveries_lost;
                report.deliveries_duplicated += o.deliveries_duplicated;
            }
            Err(what) => report.violations.push((seed, what)),
        }
    }
    report
}

#[cfg(not(target_arch = "wasm32"))]
fn catch(seed: u64) -> Result<Outcome, String> {
    std::panic::catch_unwind(|| outcome(seed)).unwrap_or_else(|p| {
        let what = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_string()));
        Err(format!("panicked: {}", what.unwrap_or_default()))
    })
}

#[cfg(target_arch = "wasm32")]
fn catch(seed: u64) -> Result<Outcome, String> {
    outcome(seed)
}
