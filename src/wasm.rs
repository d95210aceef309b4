//! The only Rust file that knows wasm-bindgen. It converts values and holds no simulation
//! logic: JSON text and numbers in, plain JS objects out (`json_compatible`, so maps become
//! objects and every number is a JS number). Errors cross as `JsError` with the same text the
//! CLI prints.

use crate::ids::{MsgId, QueueId};
use crate::lease::DeadLetterMetadata;
use crate::scenario::{
    index_u32, presets as all_presets, Anchor, CommitMode, QueueRole, SagaStyle, Scenario, Target, TopicKind, TopicRole,
};
use crate::sim::Sim;
use crate::time::SimTime;
use crate::trace::TraceEvent;
use crate::workflow::{SagaMsg, Tag};
use serde::Serialize;
use wasm_bindgen::prelude::*;

const SERIALIZER: serde_wasm_bindgen::Serializer = serde_wasm_bindgen::Serializer::json_compatible();

fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsError> {
    value.serialize(&SERIALIZER).map_err(|e| JsError::new(&e.to_string()))
}

/// Trace events cross as one JSON string, which the page parses in one call: far cheaper than
/// building thousands of JS objects field by field through the boundary.
fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, JsError> {
    serde_json::to_string(value).map_err(|e| JsError::new(&e.to_string()))
}

/// The largest seed or time JS can pass exactly (2^53).
const JS_EXACT_MAX: f64 = 9_007_199_254_740_992.0;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[derive(Serialize)]
struct AlertInfo<'a> {
    name: &'a str,
    queue: Option<u32>,
    group: Option<u32>,
    above: u64,
}

#[derive(Serialize)]
struct PresetInfo<'a> {
    id: &'a str,
    name: String,
    description: String,
    json: &'a str,
}

/// The built-in scenarios: `[{id, name, description, json}]`, ordered by id.
#[wasm_bindgen]
pub fn presets() -> Result<JsValue, JsError> {
    let list: Vec<PresetInfo> = all_presets()
        .iter()
        .filter_map(|p| {
            let s = Scenario::from_json(p.json).ok()?;
            Some(PresetInfo { id: p.id, name: s.name, description: s.description, json: p.json })
        })
        .collect();
    to_js(&list)
}

/// `undefined` when the scenario is valid, else the path-specific error text.
#[wasm_bindgen(js_name = validateScenario)]
pub fn validate_scenario(json: &str) -> Option<String> {
    Scenario::from_json(json).err().map(|e| e.to_string())
}

/// The trace's codes by name: `{ReturnReason: {LeaseExpired: 2, …}, …, NONE: 4294967295}`. The
/// page's fold matches on the `*_code` fields of events by these, never on their text; `NONE`
/// is an absent id or key.
#[wasm_bindgen(js_name = traceCodes)]
pub fn trace_codes() -> Result<JsValue, JsError> {
    use crate::trace::*;
    use std::collections::BTreeMap;
    let table =
        |v: &'static [(&'static str, u8)]| v.iter().map(|&(n, c)| (n, u32::from(c))).collect::<BTreeMap<_, _>>();
    let mut codes: BTreeMap<&str, serde_json::Value> = [
        ("StopReason", table(StopReason::VARIANTS)),
        ("ReturnReason", table(ReturnReason::VARIANTS)),
        ("DeadReason", table(DeadReason::VARIANTS)),
        ("DropReason", table(DropReason::VARIANTS)),
        ("ErrorClass", table(ErrorClass::VARIANTS)),
        ("GroupPhase", table(GroupPhase::VARIANTS)),
        ("MemberChange", table(MemberChange::VARIANTS)),
        ("RevokeReason", table(RevokeReason::VARIANTS)),
        ("LossReason", table(LossReason::VARIANTS)),
        ("RecordOutcome", table(RecordOutcome::VARIANTS)),
        ("UnmatchedReason", table(UnmatchedReason::VARIANTS)),
        ("SagaNote", table(SagaNote::VARIANTS)),
    ]
    .into_iter()
    .map(|(k, t)| (k, serde_json::json!(t)))
    .collect();
    codes.insert("NONE", serde_json::json!(u32::MAX));
    codes.insert("REPUBLISHED", serde_json::json!(REPUBLISHED.0));
    to_js(&codes)
}

/// A fresh seed from the browser's CSPRNG, for "random seed". Never used inside a run.
#[wasm_bindgen(js_name = randomSeed)]
pub fn random_seed() -> Result<u32, JsError> {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).map_err(|e| JsError::new(&e.to_string()))?;
    Ok(u32::from_le_bytes(bytes))
}

#[derive(Serialize)]
struct Lined<'a> {
    #[serde(flatten)]
    event: &'a TraceEvent,
    line: String,
}

#[derive(Serialize)]
struct Layout<'a> {
    name: &'a str,
    description: &'a str,
    duration_ms: f64,
    queues: Vec<QueueInfo<'a>>,
    producers: Vec<Named<'a>>,
    consumers: Vec<NamedConsumer<'a>>,
    /// RabbitMQ's declared exchanges (the default exchange is not drawn), their bindings,
    /// and the routing keys `routed` events name by index.
    exchanges: Vec<ExchangeInfo<'a>>,
    bindings: Vec<BindingInfo>,
    routing_keys: &'a [String],
    topics: Vec<TopicInfo<'a>>,
    groups: Vec<GroupInfo<'a>>,
    request_reply: Vec<RequestReplyInfo<'a>>,
    sagas: Vec<SagaInfo<'a>>,
    markers: Vec<MarkerInfo<'a>>,
    /// Downstream dependencies, by name.
    dependencies: Vec<&'a str>,
    /// Alerts: each on one queue's depth or one group's lag, above a bound.
    alerts: Vec<AlertInfo<'a>>,
    states: [&'static str; crate::message::StateKind::COUNT],
    /// What queue messages are keyed by, if anything: "group" (FIFO message groups) or
    /// "key" (a producer's order keys), and how many there are. The page colors them by it.
    keyed: Option<&'static str>,
    key_count: u32,
    /// The most keys a producer gives a topic's records (0: null keys, or no topics).
    topic_keys: u32,
}

#[derive(Serialize)]
struct TopicInfo<'a> {
    name: &'a str,
    partitions: u32,
    /// "main", "retry" or "dead_letter".
    role: &'static str,
    /// For a retry or dead-letter topic, the topic it serves; for a retry topic, its delay.
    of: Option<u32>,
    delay_ms: Option<f64>,
    /// "log" or "pubsub".
    kind: &'static str,
    compact: bool,
}

#[derive(Serialize)]
struct MarkerInfo<'a> {
    /// A beat by time: its moment; a beat by event: `null` (the run says when, `beats`).
    at_ms: Option<f64>,
    text: &'a str,
}

#[derive(Serialize)]
struct RequestReplyInfo<'a> {
    name: &'a str,
    requesters: u32,
    shared_reply_queue: bool,
    shared_store: bool,
    /// Per requester, its reply-reading consumer.
    readers: &'a [u32],
}

#[derive(Serialize)]
struct SagaInfo<'a> {
    name: &'a str,
    /// "choreography" or "orchestration".
    style: &'static str,
    steps: Vec<StepInfo<'a>>,
    pivot: Option<u32>,
    /// Every message a saga of this block can carry, by the code `sagaMarks` gives: its
    /// name, the node that sends it and the node whose queue it goes to.
    flights: Vec<crate::workflow::Flight>,
    /// The services' queues and consumers, by step, then the orchestrator's (if any).
    queues: Vec<u32>,
    consumers: Vec<u32>,
    /// The producer that starts its sagas.
    starter: u32,
}

#[derive(Serialize)]
struct StepInfo<'a> {
    service: &'a str,
    done: &'a str,
    failed: &'a str,
    undone: &'a str,
    state: &'a str,
    undone_state: &'a str,
}

#[derive(Serialize)]
struct GroupInfo<'a> {
    name: &'a str,
    /// The main topic first, then its retry topics.
    topics: &'a [u32],
    assignor: &'static str,
    cooperative: bool,
    /// "after", "before" or "auto".
    commit: &'static str,
}

#[derive(Serialize)]
struct QueueInfo<'a> {
    name: &'a str,
    /// "main", "dead_letter" or "retry".
    role: &'static str,
    /// For a dead-letter or retry queue, the queue it serves.
    of: Option<u32>,
    /// "sqs", "rabbitmq" or "service_bus".
    model: &'static str,
    /// The lease a delivery gets, in ms; `null` when it never runs out by itself.
    lease_ms: f64,
    /// An SQS FIFO queue (it never delivers a message twice while it is in flight).
    fifo: bool,
    /// Its dead-letter exchange, when it is a declared one.
    dlx: Option<u32>,
    /// Its length limit (RMQ-23), if it has one.
    max_length: Option<u32>,
}

#[derive(Serialize)]
struct Named<'a> {
    name: &'a str,
    /// Where it sends: a queue, a topic or a declared exchange.
    queue: Option<u32>,
    topic: Option<u32>,
    exchange: Option<u32>,
}

#[derive(Serialize)]
struct ExchangeInfo<'a> {
    name: &'a str,
    /// "direct", "fanout", "topic" or "headers".
    kind: &'static str,
    /// Its alternate exchange, if it has one.
    alternate: Option<u32>,
}

#[derive(Serialize)]
struct BindingInfo {
    exchange: u32,
    /// Where it leads: a queue, or another exchange.
    queue: Option<u32>,
    to_exchange: Option<u32>,
    /// What the page writes on it: the binding key, or a headers binding's match.
    label: String,
}

#[derive(Serialize)]
struct NamedConsumer<'a> {
    name: &'a str,
    queue: u32,
    prefetch: u32,
    /// RabbitMQ's prefetch 0 (RMQ-3), held to the engine's limit: the page says "unlimited".
    unlimited: bool,
    concurrency: u32,
    /// An autoscaled instance that starts on standby.
    standby: bool,
    /// The downstream dependency it calls, if any (an index into `dependencies`).
    dependency: Option<u32>,
    /// A retry loop's parking lot (a queue), where it republishes what it gives up on.
    park: Option<u32>,
    /// Its effect writes a value (a repeat of the newest is harmless, not applied twice).
    sets: bool,
    /// It has a circuit breaker around its dependency calls.
    breaker: bool,
}

/// A binding as the page draws it: a topic or direct binding by its key, a headers binding
/// by its match (`all: a=1, b=2`), a fanout binding unlabelled.
fn binding_info(b: &crate::exchange::BindingSpec) -> BindingInfo {
    use crate::exchange::Destination;
    let (queue, to_exchange) = match b.to {
        Destination::Queue(q) => (Some(q), None),
        Destination::Exchange(x) => (None, Some(x)),
    };
    let label = match &b.headers {
        Some(h) => {
            let args: Vec<String> = h.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{}: {}", if h.any { "any" } else { "all" }, args.join(", "))
        }
        None => b.key.clone(),
    };
    BindingInfo { exchange: b.exchange, queue, to_exchange, label }
}

/// Runs a scenario to its end without keeping the trace, and returns the same summary as
/// `brokerlab run`. For benchmarks and cross-target checks; the page uses `Engine`.
#[wasm_bindgen(js_name = runSummary)]
pub fn run_summary(json: &str, seed: f64) -> Result<JsValue, JsError> {
    let mut engine = Engine::new(json, seed)?;
    engine.sim.set_recording(false);
    let end = engine.sim.scenario().end();
    engine.sim.run_until(end, u64::MAX).map_err(|e| JsError::new(&e.to_string()))?;
    engine.summary()
}

/// One run of one scenario with one seed.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Engine {
    sim: Sim,
    /// Snapshots for seeking, by id; the page decides when to take and drop them.
    checkpoints: Vec<Option<Sim>>,
}

/// The most snapshots kept at once; the page thins its own list well below this.
const CHECKPOINTS_MAX: usize = 1024;

#[wasm_bindgen]
impl Engine {
    /// Validates `json` and starts a run. `seed` must be a whole number in 0..2^53.
    #[wasm_bindgen(constructor)]
    pub fn new(json: &str, seed: f64) -> Result<Engine, JsError> {
        if !((0.0..JS_EXACT_MAX).contains(&seed) && seed.fract() == 0.0) {
            return Err(JsError::new("seed: must be a whole number from 0 to 2^53 - 1"));
        }
        let scenario = Scenario::from_json(json).map_err(|e| JsError::new(&e.to_string()))?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let seed = seed as u64;
        Ok(Engine { sim: Sim::new(scenario, seed), checkpoints: Vec::new() })
    }

    /// Names and shape of the scenario, for drawing.
    // long: one entry per part of the layout the page draws from, in the Layout's order
    pub fn layout(&self) -> Result<JsValue, JsError> {
        let s = self.sim.scenario();
        to_js(&Layout {
            name: &s.name,
            description: &s.description,
            duration_ms: s.end().as_millis_f64(),
            queues: s
                .queues
                .iter()
                .map(|q| {
                    let dlx = q.dlx.map(|d| d.exchange).filter(|&x| x != crate::exchange::DEFAULT_EXCHANGE);
                    let (role, of) = match q.role {
                        QueueRole::Main => ("main", None),
                        QueueRole::DeadLetter { of } => ("dead_letter", Some(of)),
                        QueueRole::Retry { of } => ("retry", Some(of)),
                    };
                    let model = q.lease.name();
                    QueueInfo {
                        name: &q.name,
                        role,
                        of,
                        model,
                        lease_ms: q.lease.lease_duration().as_millis_f64(),
                        fifo: q.fifo,
                        dlx,
                        max_length: q.max_length,
                    }
                })
                .collect(),
            producers: s
                .producers
                .iter()
                .map(|p| match p.target {
                    Target::Queue(q) => Named { name: &p.name, queue: Some(q), topic: None, exchange: None },
                    Target::Topic(t) => Named { name: &p.name, queue: None, topic: Some(t), exchange: None },
                    Target::Exchange(x) if x != crate::exchange::DEFAULT_EXCHANGE => {
                        Named { name: &p.name, queue: None, topic: None, exchange: Some(x) }
                    }
                    // The default exchange is not drawn: the producer's edge goes to the queue
                    // its first kind of message names.
                    Target::Exchange(x) => {
                        let t = &s.topology;
                        let first = p.publish.as_ref().and_then(|pb| pb.shapes.first()).and_then(|sh| {
                            t.route(x, &t.keys[sh.key as usize], &t.headers[sh.headers as usize])
                                .first()
                                .map(|r| r.queue)
                        });
                        Named { name: &p.name, queue: first, topic: None, exchange: None }
                    }
                })
                .collect(),
            exchanges: s
                .topology
                .exchanges
                .iter()
                .map(|x| ExchangeInfo { name: &x.name, kind: x.kind.as_str(), alternate: x.alternate })
                .collect(),
            bindings: s.topology.bindings.iter().map(binding_info).collect(),
            routing_keys: &s.topology.keys,
            consumers: s
                .consumers
                .iter()
                .map(|c| NamedConsumer {
                    name: &c.name,
                    queue: c.queue,
                    prefetch: c.prefetch,
                    unlimited: c.prefetch == crate::scenario::limits::PREFETCH_MAX,
                    concurrency: c.concurrency,
                    standby: c.standby,
                    dependency: c.dependency,
                    park: match c.retry.map(|r| r.via) {
                        Some(crate::scenario::RetryVia::DeadLetter { park }) => Some(park),
                        _ => None,
                    },
                    sets: c.effect == crate::scenario::EffectKind::Set,
                    breaker: c.breaker.is_some(),
                })
                .collect(),
            topics: s
                .topics
                .iter()
                .map(|t| {
                    let (role, of, delay_ms) = match t.role {
                        TopicRole::Main => ("main", None, None),
                        TopicRole::Retry { of, delay, .. } => ("retry", Some(of), Some(delay.as_millis_f64())),
                        TopicRole::DeadLetter { of } => ("dead_letter", Some(of), None),
                    };
                    let kind = if t.kind == TopicKind::PubSub { "pubsub" } else { "log" };
                    TopicInfo { name: &t.name, partitions: t.partitions, role, of, delay_ms, kind, compact: t.compact }
                })
                .collect(),
            groups: s
                .groups
                .iter()
                .map(|g| GroupInfo {
                    name: &g.name,
                    topics: &g.topics,
                    assignor: g.assignor.name(),
                    cooperative: g.assignor.cooperative(),
                    commit: match g.commit {
                        CommitMode::AfterProcessing => "after",
                        CommitMode::BeforeProcessing => "before",
                        CommitMode::Auto { .. } => "auto",
                    },
                })
                .collect(),
            request_reply: s
                .request_reply
                .iter()
                .map(|r| RequestReplyInfo {
                    name: &r.name,
                    requesters: r.requesters,
                    shared_reply_queue: r.shared_reply_queue,
                    shared_store: r.shared_store,
                    readers: &r.readers,
                })
                .collect(),
            keyed: {
                let to_queue = || s.producers.iter().filter(|p| matches!(p.target, Target::Queue(_)));
                if to_queue().any(|p| p.groups.is_some()) {
                    Some("group")
                } else if to_queue().any(|p| p.keys.is_some()) {
                    Some("key")
                } else {
                    None
                }
            },
            key_count: s
                .producers
                .iter()
                .filter(|p| matches!(p.target, Target::Queue(_)))
                .map(|p| p.groups.unwrap_or(0).max(p.keys.map_or(0, |k| k.count)))
                .max()
                .unwrap_or(0),
            topic_keys: s
                .producers
                .iter()
                .filter(|p| matches!(p.target, Target::Topic(_)))
                .filter_map(|p| p.keys.map(|k| k.count))
                .max()
                .unwrap_or(0),
            sagas: s
                .sagas
                .iter()
                .map(|g| SagaInfo {
                    name: &g.name,
                    style: if g.style == SagaStyle::Choreography { "choreography" } else { "orchestration" },
                    steps: g
                        .steps
                        .iter()
                        .map(|st| StepInfo {
                            service: &st.service,
                            done: &st.done,
                            failed: &st.failed,
                            undone: &st.undone,
                            state: &st.state,
                            undone_state: &st.undone_state,
                        })
                        .collect(),
                    pivot: g.pivot,
                    flights: SagaMsg::all(index_u32(g.steps.len())).map(|m| g.flight(m)).collect(),
                    queues: g.steps.iter().map(|st| st.queue).chain(g.orchestrator.map(|(q, _)| q)).collect(),
                    consumers: g.steps.iter().map(|st| st.consumer).chain(g.orchestrator.map(|(_, c)| c)).collect(),
                    starter: g.starter,
                })
                .collect(),
            markers: s
                .markers
                .iter()
                .map(|m| MarkerInfo {
                    at_ms: match m.anchor {
                        Anchor::At(t) => Some(t.as_millis_f64()),
                        Anchor::On(_) | Anchor::Counter { .. } => None,
                    },
                    text: &m.text,
                })
                .collect(),
            dependencies: s.dependencies.iter().map(|d| d.name.as_str()).collect(),
            alerts: s
                .alerts
                .iter()
                .map(|a| {
                    let (queue, group) = match a.on {
                        crate::scenario::AlertOn::Queue(q) => (Some(q), None),
                        crate::scenario::AlertOn::Group(g) => (None, Some(g)),
                    };
                    AlertInfo { name: &a.name, queue, group, above: a.above }
                })
                .collect(),
            states: crate::message::StateKind::NAMES,
        })
    }

    /// The workflows' state: `{request_reply: [...], sagas: [...]}`, the same summaries the
    /// CLI prints (counters, windows of inconsistency, the newest sagas, the saga in focus).
    /// `selected[b]` is the instance of saga block `b` the user put in focus (`u32::MAX`:
    /// none, the default focus).
    pub fn workflows(&self, selected: Vec<u32>) -> Result<JsValue, JsError> {
        #[derive(Serialize)]
        struct Workflows {
            request_reply: Vec<crate::workflow::RequestSummary>,
            sagas: Vec<crate::workflow::SagaSummary>,
        }
        to_js(&Workflows {
            request_reply: self.sim.request_summaries(),
            sagas: self.sim.saga_summaries(&selected.iter().map(|&i| (i != u32::MAX).then_some(i)).collect::<Vec<_>>()),
        })
    }

    /// Each consumer group's counters (processed, duplicates, lost, lost to retention, order
    /// violations, retried, dead-lettered, rebalances), in scenario order.
    pub fn groups(&self) -> Result<JsValue, JsError> {
        let stats: Vec<_> = self.sim.streams().groups.iter().map(|g| g.stats).collect();
        to_js(&stats)
    }

    /// Which offsets in `[from, to)` of a partition are still in the log (not deleted by
    /// retention, not compacted away): one 0 or 1 per offset, for drawing the tape.
    pub fn retained(&self, topic: u32, partition: u32, from: f64, to: f64) -> Vec<u8> {
        let streams = self.sim.streams();
        let Some(log) = streams.topics.get(topic as usize).and_then(|t| t.logs.get(partition as usize)) else {
            return Vec::new();
        };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let (from, to) = (from.max(0.0) as u64, (to.max(0.0) as u64).min(log.end()));
        // Bounded: the page asks for the offsets it draws.
        let to = to.min(from.saturating_add(4096));
        (from..to)
            .map(|o| u8::from(log.records.get(usize::try_from(o).unwrap_or(usize::MAX)).is_some_and(|r| r.retained)))
            .collect()
    }

    /// Runs every event up to `t_ms`, at most `budget` of them. Returns
    /// `{events, stopped}`: the trace events recorded, each with its readable `line`, and, if
    /// the budget ran out first, why (`stopped` is then a message and time is short of `t_ms`).
    /// The events come back either way, so the caller's view never misses one.
    #[wasm_bindgen(js_name = runUntil)]
    pub fn run_until(&mut self, t_ms: f64, budget: u32) -> Result<String, JsError> {
        let until = time_arg(t_ms)?;
        let stopped = self.sim.run_until(until, u64::from(budget)).err().map(|e| e.to_string());
        let events = self.sim.drain_trace();
        to_json(&Advanced { events: lined(self.sim.scenario(), &events), stopped })
    }

    /// `runUntil`, but stopping at the end of the instant a narrative beat is reached:
    /// `{events, stopped, beat}`, `beat` the index of the beat stopped at (time is then its
    /// moment), or `null` when `t_ms` was reached without one.
    #[wasm_bindgen(js_name = runToBeat)]
    pub fn run_to_beat(&mut self, t_ms: f64, budget: u32) -> Result<String, JsError> {
        let until = time_arg(t_ms)?;
        let (beat, stopped) = match self.sim.run_to_beat(until, u64::from(budget)) {
            Ok(beat) => (beat, None),
            Err(e) => (None, Some(e.to_string())),
        };
        let events = self.sim.drain_trace();
        to_json(&AdvancedToBeat { events: lined(self.sim.scenario(), &events), stopped, beat })
    }

    /// Every beat as the run stands now: `[{at_ms, missed}]`, `at_ms` null until it is
    /// reached, `missed` the path and reason once it cannot be.
    pub fn beats(&self) -> Result<JsValue, JsError> {
        to_js(&self.sim.beats())
    }

    /// Where every beat will be, from here on, if nothing else is done: a copy of the run
    /// plays on without its trace, up to `budget` events, until the last beat or the end.
    /// `{beats: [{at_ms, missed}], complete}`; this run is not touched.
    #[wasm_bindgen(js_name = beatsAhead)]
    pub fn beats_ahead(&self, budget: u32) -> Result<JsValue, JsError> {
        #[derive(Serialize)]
        struct Ahead {
            beats: Vec<crate::beats::BeatStatus>,
            complete: bool,
        }
        let mut probe = self.sim.clone();
        probe.set_recording(false);
        probe.drain_trace();
        let end = probe.scenario().end();
        let markers = probe.scenario().markers.len();
        let mut left = u64::from(budget);
        let complete = loop {
            if probe.beats_reached().len() == markers {
                break true;
            }
            let before = probe.events_processed();
            match probe.run_to_beat(end, left) {
                Ok(Some(_)) => left -= probe.events_processed() - before,
                Ok(None) => break true,
                Err(_) => break false,
            }
        };
        to_js(&Ahead { beats: probe.beats(), complete })
    }

    /// Per dependency, 1 if it is up now (outside its outage windows, and not taken down).
    #[wasm_bindgen(js_name = dependenciesUp)]
    pub fn dependencies_up(&self) -> Vec<u8> {
        let n = crate::scenario::index_u32(self.sim.scenario().dependencies.len());
        (0..n).map(|d| u8::from(self.sim.dependency_up(d))).collect()
    }

    /// Per queue, a dead-letter queue's report (how many, the oldest's time of death, the
    /// mix of reasons), `null` for a queue that is not one.
    #[wasm_bindgen(js_name = deadLetters)]
    pub fn dead_letters(&self) -> Result<JsValue, JsError> {
        let broker = self.sim.broker();
        let n = crate::scenario::index_u32(broker.queues.len());
        to_js(&(0..n).map(|q| broker.dead_letter_report(crate::ids::QueueId(q))).collect::<Vec<_>>())
    }

    /// Per dependency, the calls made to it so far and how many failed: two numbers each.
    #[wasm_bindgen(js_name = dependencyCalls)]
    pub fn dependency_calls(&self) -> Vec<f64> {
        #[allow(clippy::cast_precision_loss)] // exact below 2^53 calls
        let calls = self.sim.dependency_calls().iter().flat_map(|c| [c.calls as f64, c.failed as f64]).collect();
        calls
    }

    /// The badges' counters now: lost, applied twice, order violated, duplicates suppressed,
    /// leases expired mid-processing, in a DLQ, expired.
    pub fn counters(&self) -> Result<JsValue, JsError> {
        to_js(&self.sim.counters())
    }

    /// For messages `from..to` (as far as there are any), two numbers each, for drawing: its
    /// order key (a FIFO group or a producer's key; `u32::MAX` for none), and for a reply the
    /// consumer that reads its requester's replies (`u32::MAX` for any other message).
    #[wasm_bindgen(js_name = messageMarks)]
    pub fn message_marks(&self, from: u32, to: u32) -> Vec<u32> {
        let broker = self.sim.broker();
        let scenario = self.sim.scenario();
        let to = to.min(u32::try_from(broker.msgs.len()).unwrap_or(u32::MAX));
        let mut out = Vec::with_capacity(2 * to.saturating_sub(from) as usize);
        for id in from..to {
            out.push(broker.extra(MsgId(id)).order_key.unwrap_or(u32::MAX));
            out.push(match self.sim.workflows().tags.get(&MsgId(id)) {
                Some(&Tag::Reply { system, requester, .. }) => {
                    scenario.request_reply[system as usize].readers.get(requester as usize).copied().unwrap_or(u32::MAX)
                }
                _ => u32::MAX,
            });
        }
        out
    }

    /// For messages `from..to`, three numbers each: for a saga message its block, its
    /// instance and its code (the index of its flight in the layout); `u32::MAX` three times
    /// for any other message.
    #[wasm_bindgen(js_name = sagaMarks)]
    pub fn saga_marks(&self, from: u32, to: u32) -> Vec<u32> {
        let scenario = self.sim.scenario();
        let to = to.min(u32::try_from(self.sim.broker().msgs.len()).unwrap_or(u32::MAX));
        let mut out = Vec::with_capacity(3 * to.saturating_sub(from) as usize);
        for id in from..to {
            match self.sim.workflows().tags.get(&MsgId(id)) {
                Some(&Tag::Saga { saga, instance, msg }) => {
                    out.extend([saga, instance, msg.code(index_u32(scenario.sagas[saga as usize].steps.len()))]);
                }
                _ => out.extend([u32::MAX; 3]),
            }
        }
        out
    }

    /// Keeps the trace (the default) or only its hash: a probe run needs no trace.
    #[wasm_bindgen(js_name = setRecording)]
    pub fn set_recording(&mut self, on: bool) {
        self.sim.set_recording(on);
    }

    /// Applies a live input now (a script step without `at_ms`, as JSON) and returns what it
    /// recorded. A bad input is an error naming its path; the run is untouched.
    pub fn input(&mut self, json: &str) -> Result<String, JsError> {
        let op = self.sim.scenario().live_op(json).map_err(|e| JsError::new(&e.to_string()))?;
        self.sim.input(op);
        let events = self.sim.drain_trace();
        to_json(&lined(self.sim.scenario(), &events))
    }

    /// Takes a snapshot of the run as it is now and returns its id, for `restore`.
    pub fn checkpoint(&mut self) -> Result<u32, JsError> {
        let slot = self.checkpoints.iter().position(Option::is_none).unwrap_or(self.checkpoints.len());
        if slot >= CHECKPOINTS_MAX {
            return Err(JsError::new("too many checkpoints: drop some first"));
        }
        let mut snapshot = self.sim.clone();
        snapshot.drain_trace();
        if slot == self.checkpoints.len() {
            self.checkpoints.push(Some(snapshot));
        } else {
            self.checkpoints[slot] = Some(snapshot);
        }
        Ok(crate::scenario::index_u32(slot))
    }

    /// Puts the run back to snapshot `id`; the snapshot stays, for later seeks.
    pub fn restore(&mut self, id: u32) -> Result<(), JsError> {
        let snapshot = self.checkpoints.get(id as usize).and_then(Option::as_ref);
        let snapshot = snapshot.ok_or_else(|| JsError::new("no such checkpoint"))?;
        self.sim = snapshot.clone();
        Ok(())
    }

    #[wasm_bindgen(js_name = dropCheckpoint)]
    pub fn drop_checkpoint(&mut self, id: u32) {
        if let Some(slot) = self.checkpoints.get_mut(id as usize) {
            *slot = None;
        }
    }

    /// Events handled since the start: the run's position, for stepping back.
    #[wasm_bindgen(js_name = eventsProcessed)]
    pub fn events_processed(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)] // far below 2^53
        let n = self.sim.events_processed() as f64;
        n
    }

    /// Handles up to `n` events and returns what they recorded.
    #[wasm_bindgen(js_name = runEvents)]
    pub fn run_events(&mut self, n: u32) -> Result<String, JsError> {
        self.sim.run_events(u64::from(n));
        let events = self.sim.drain_trace();
        to_json(&lined(self.sim.scenario(), &events))
    }

    /// Moves the clock to `t_ms` without handling an event (never past the next one): where a
    /// replayed live input was made.
    #[wasm_bindgen(js_name = advanceClock)]
    pub fn advance_clock(&mut self, t_ms: f64) -> Result<(), JsError> {
        self.sim.advance_clock(time_arg(t_ms)?);
        Ok(())
    }

    /// Handles exactly one event (the next one) and returns what it recorded.
    pub fn step(&mut self) -> Result<String, JsError> {
        self.sim.step();
        let events = self.sim.drain_trace();
        to_json(&lined(self.sim.scenario(), &events))
    }

    #[wasm_bindgen(js_name = nowMs)]
    pub fn now_ms(&self) -> f64 {
        self.sim.now().as_millis_f64()
    }

    /// When the next event happens, or `undefined` when nothing more is scheduled.
    #[wasm_bindgen(js_name = nextEventMs)]
    pub fn next_event_ms(&self) -> Option<f64> {
        self.sim.next_event_at().map(SimTime::as_millis_f64)
    }

    #[wasm_bindgen(js_name = traceHash)]
    pub fn trace_hash(&self) -> String {
        self.sim.trace_hash().hex()
    }

    /// The scenario's RabbitMQ topology as a definitions file (`brokerlab export rabbitmq`),
    /// as JSON text; `undefined` when it has no RabbitMQ queue.
    #[wasm_bindgen(js_name = rabbitmqDefinitions)]
    pub fn rabbitmq_definitions(&self) -> Option<String> {
        let (definitions, _) = crate::export::rabbitmq_definitions(self.sim.scenario());
        let empty = definitions["queues"].as_array().is_none_or(Vec::is_empty);
        (!empty).then(|| format!("{definitions:#}\n"))
    }

    /// The same summary the CLI prints.
    pub fn summary(&self) -> Result<JsValue, JsError> {
        to_js(&self.sim.summary())
    }

    /// The run's counters: published, deliveries, effects applied, applied twice, duplicates
    /// suppressed, lost, leases expired mid-processing.
    pub fn stats(&self) -> Result<JsValue, JsError> {
        to_js(&self.sim.stats())
    }

    /// One message as the broker sees it, with its dead-letter metadata if it has any; for
    /// the inspector. `undefined` for an unknown id.
    // long: one entry per field of the inspector's message view, in the MessageView's order
    pub fn message(&self, id: u32) -> Result<JsValue, JsError> {
        let broker = self.sim.broker();
        let Some(m) = broker.msgs.get(id as usize) else { return Ok(JsValue::UNDEFINED) };
        let extra = broker.extra(MsgId(id));
        let scenario = self.sim.scenario();
        let queue_name = |q: u32| scenario.queues.get(q as usize).map_or("?", |x| x.name.as_str());
        let ms = |t: Option<SimTime>| t.map(SimTime::as_millis_f64);
        let dead = broker.dead.get(&MsgId(id)).map(|d| DeadView {
            // ASB-5, ASB-6: a Service Bus dead letter says why in its own two properties.
            service_bus: (scenario.queues[d.from.index()].lease.dead_letter_metadata()
                == DeadLetterMetadata::DeadLetterReason)
                .then(|| (d.reason.as_str(), d.last_error.map_or("", |e| e.as_str()))),
            from: queue_name(d.from.0),
            reason: d.reason.as_str(),
            last_error: d.last_error.map(|e| e.as_str()),
            receive_count: d.receive_count,
            attempts: d.attempts,
            first_attempt_ms: ms(d.first_attempt_at),
            last_attempt_ms: ms(d.last_attempt_at),
            dead_at_ms: d.dead_at.as_millis_f64(),
            x_death: d
                .x_death
                .iter()
                .map(|x| XDeathView {
                    queue: queue_name(x.queue.0),
                    reason: x.reason.as_str(),
                    count: x.count,
                    time_ms: x.time.as_millis_f64(),
                    exchange: scenario.topology.exchange_name(x.exchange),
                    routing_key: scenario.topology.keys.get(x.routing_key as usize).map_or("", String::as_str),
                })
                .collect(),
        });
        to_js(&MessageView {
            id,
            key: m.key,
            queue: queue_name(m.queue.0),
            state: crate::message::StateKind::NAMES[m.kind() as usize],
            receive_count: m.receive_count,
            attempts: extra.attempts,
            poison: extra.poison,
            group: extra.group,
            lease_until_ms: m.lease().map(|l| l.expires_at.as_millis_f64()),
            headers: broker.delivery_headers(MsgId(id)),
            // RabbitMQ: the exchange and routing key it came by, as its consumer reads them.
            routed: {
                let meta = broker.delivery_meta(MsgId(id));
                meta.exchange.zip(meta.routing_key)
            },
            expires: broker.expiry(MsgId(id)).map(|(name, at)| (name, at.as_millis_f64())),
            dead,
            workflow: self.sim.workflows().tags.get(&MsgId(id)).map(|t| match *t {
                Tag::Request { system, requester, corr } => WorkflowView {
                    kind: "request",
                    system: Some(system),
                    corr: Some(corr),
                    requester: Some(requester),
                    ..WorkflowView::default()
                },
                Tag::Reply { system, requester, corr, request } => WorkflowView {
                    kind: "reply",
                    system: Some(system),
                    corr: Some(corr),
                    requester: Some(requester),
                    request: Some(request.0),
                    ..WorkflowView::default()
                },
                Tag::Saga { saga, instance, .. } => {
                    WorkflowView { kind: "saga", saga: Some(saga), instance: Some(instance), ..WorkflowView::default() }
                }
            }),
        })
    }

    /// Messages per state, one object per queue: `[{publishing, ready, …, acked}]`.
    pub fn counts(&self) -> Result<JsValue, JsError> {
        let queues = crate::scenario::index_u32(self.sim.scenario().queues.len());
        let counts: Vec<_> = (0..queues).map(|q| self.sim.counts(QueueId(q))).collect();
        to_js(&counts)
    }
}

#[derive(Serialize)]
struct MessageView<'a> {
    id: u32,
    key: u32,
    queue: &'a str,
    state: &'static str,
    receive_count: u32,
    attempts: u32,
    poison: bool,
    group: Option<u32>,
    lease_until_ms: Option<f64>,
    /// The delivery counters its consumer reads, by their names in its system: `[name, value]`.
    headers: Vec<(&'static str, String)>,
    /// RabbitMQ: `[exchange, routing key]`, the exchange `""` for the default one.
    routed: Option<(String, String)>,
    /// When it expires, if it does: `[its system's word for it, ms]`.
    expires: Option<(&'static str, f64)>,
    dead: Option<DeadView<'a>>,
    /// For a workflow message: what it is, and what it correlates with.
    workflow: Option<WorkflowView>,
}

#[derive(Serialize, Default)]
struct WorkflowView {
    /// "request", "reply" or "saga".
    kind: &'static str,
    /// The request-reply system.
    system: Option<u32>,
    corr: Option<u32>,
    /// The requester instance (0-based) the request came from, or the reply is for.
    requester: Option<u32>,
    /// A reply's request.
    request: Option<u32>,
    saga: Option<u32>,
    instance: Option<u32>,
}

#[derive(Serialize)]
struct DeadView<'a> {
    /// Service Bus's `DeadLetterReason` and `DeadLetterErrorDescription`.
    service_bus: Option<(&'static str, &'static str)>,
    from: &'a str,
    reason: &'static str,
    last_error: Option<&'static str>,
    receive_count: u32,
    attempts: u32,
    first_attempt_ms: Option<f64>,
    last_attempt_ms: Option<f64>,
    dead_at_ms: f64,
    x_death: Vec<XDeathView<'a>>,
}

#[derive(Serialize)]
struct XDeathView<'a> {
    queue: &'a str,
    reason: &'static str,
    count: u32,
    time_ms: f64,
    exchange: &'a str,
    routing_key: &'a str,
}

#[derive(Serialize)]
struct Advanced<'a> {
    events: Vec<Lined<'a>>,
    stopped: Option<String>,
}

#[derive(Serialize)]
struct AdvancedToBeat<'a> {
    events: Vec<Lined<'a>>,
    stopped: Option<String>,
    beat: Option<u32>,
}

/// A time from JS: finite ms ≥ 0, held to what JS keeps exact, to the nearest microsecond (a
/// time the engine gave as ms, `µs / 1000`, comes back as the same microsecond).
fn time_arg(t_ms: f64) -> Result<SimTime, JsError> {
    if !(t_ms.is_finite() && t_ms >= 0.0) {
        return Err(JsError::new("time: must be a finite number of milliseconds ≥ 0"));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(SimTime::from_micros((t_ms.min(JS_EXACT_MAX / 1000.0) * 1000.0).round() as u64))
}

fn lined<'a>(scenario: &Scenario, events: &'a [TraceEvent]) -> Vec<Lined<'a>> {
    events.iter().map(|event| Lined { event, line: crate::readable::line(event, scenario).to_string() }).collect()
}
