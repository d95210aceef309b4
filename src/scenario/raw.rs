//! The JSON shape of a scenario, exactly as authors write it. Unknown fields are refused
//! everywhere. Objects with a `kind` (or `model`) field are kept as JSON values here and read
//! by `validate::tagged`, which keeps the full path in every error.

use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub seed: Option<u64>,
    pub duration_ms: i64,
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub queues: Vec<Queue>,
    /// RabbitMQ exchanges and bindings, as a definitions file spells them.
    #[serde(default)]
    pub exchanges: Vec<Exchange>,
    #[serde(default)]
    pub bindings: Vec<Binding>,
    #[serde(default)]
    pub topics: Vec<super::streams::RawTopic>,
    #[serde(default)]
    pub groups: Vec<super::streams::RawGroup>,
    #[serde(default)]
    pub request_reply: Vec<super::workflows::RawRequestReply>,
    #[serde(default)]
    pub sagas: Vec<super::workflows::RawSaga>,
    #[serde(default)]
    pub producers: Vec<Producer>,
    #[serde(default)]
    pub consumers: Vec<Consumer>,
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    #[serde(default)]
    pub script: Vec<ScriptStep>,
    /// Alert thresholds on a queue's depth or a group's lag.
    #[serde(default)]
    pub alerts: Vec<Alert>,
    /// Narrative beats: the page pauses at each and shows its text.
    #[serde(default)]
    pub markers: Vec<Marker>,
}

/// An alert: it fires when a queue holds more than `above` messages waiting (a DLQ: dead
/// letters), or a group's lag is more than `above` records; it resolves when back at or below.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    pub name: String,
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    pub above: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Marker {
    /// A moment, in ms; or else
    #[serde(default)]
    pub at_ms: Option<f64>,
    /// an event of the run: `{"event": "dead_lettered", "queue": "orders", "nth": 1}`, or a
    /// counter moving: `{"counter": "lost"}`. Read by `beats::anchor`.
    #[serde(default)]
    pub on: Option<serde_json::Map<String, Value>>,
    pub text: String,
    /// What is true at the beat: `{"counter": "lost", "at_least": 1}`, or a list of such.
    #[serde(default)]
    pub expect: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Network {
    #[serde(default)]
    pub latency_ms: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    pub name: String,
    /// `{"model": "sqs" | "rabbitmq" | "service_bus", …}`; RabbitMQ classic when absent.
    #[serde(default)]
    pub lease: Option<Value>,
    #[serde(default)]
    pub dead_letter: Option<bool>,
    #[serde(default)]
    pub ttl_ms: Option<f64>,
    /// SQS: the dead-letter queue's own retention period (SQS-13).
    #[serde(default)]
    pub dead_letter_ttl_ms: Option<f64>,
    #[serde(default)]
    pub on_expire: Option<String>,
    #[serde(default)]
    pub max_length: Option<i64>,
    #[serde(default)]
    pub overflow: Option<String>,
    #[serde(default)]
    pub fifo: bool,
    /// Service Bus duplicate detection's history window (ASB-9).
    #[serde(default)]
    pub duplicate_detection_ms: Option<f64>,
    #[serde(default)]
    pub delay_ms: f64,
    /// RabbitMQ's `x-single-active-consumer` (RMQ-57).
    #[serde(default)]
    pub single_active_consumer: bool,
    /// RabbitMQ queue arguments (`x-message-ttl`, `x-dead-letter-exchange`, …).
    #[serde(default)]
    pub arguments: Option<serde_json::Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `alternate-exchange`.
    #[serde(default)]
    pub arguments: Option<serde_json::Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    pub source: String,
    pub destination: String,
    /// `queue` (the default) or `exchange`.
    #[serde(default)]
    pub destination_type: Option<String>,
    #[serde(default)]
    pub routing_key: String,
    /// A headers exchange's match: `x-match` and the headers.
    #[serde(default)]
    pub arguments: Option<serde_json::Map<String, Value>>,
}

/// One kind of message a producer publishes to an exchange, drawn by weight.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shape {
    #[serde(default)]
    pub routing_key: String,
    #[serde(default)]
    pub headers: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    pub weight: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Lease {
    Sqs {
        #[serde(default = "sqs_visibility_ms")]
        visibility_timeout_ms: f64,
        #[serde(default)]
        max_receive_count: Option<i64>,
    },
    Rabbitmq {
        #[serde(default)]
        queue_type: Option<String>,
        #[serde(default)]
        delivery_limit: Option<i64>,
        #[serde(default = "rmq_consumer_timeout_ms")]
        consumer_timeout_ms: f64,
        /// "4.0" to "4.3": which rule the delivery limit follows (RMQ-16, RMQ-17).
        #[serde(default)]
        version: Option<String>,
    },
    ServiceBus {
        #[serde(default = "sb_lock_ms")]
        lock_duration_ms: f64,
        #[serde(default = "sb_max_delivery_count")]
        max_delivery_count: i64,
    },
}

/// SQS-3: 30 s.
fn sqs_visibility_ms() -> f64 {
    30_000.0
}
/// RMQ-9: 30 min.
fn rmq_consumer_timeout_ms() -> f64 {
    1_800_000.0
}
/// ASB-2: 60 s.
fn sb_lock_ms() -> f64 {
    60_000.0
}
/// ASB-5: 10.
fn sb_max_delivery_count() -> i64 {
    10
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Producer {
    pub name: String,
    /// A queue or a topic; or else
    #[serde(default)]
    pub to: Option<String>,
    /// an exchange, with a routing key or several kinds of message.
    #[serde(default)]
    pub exchange: Option<String>,
    #[serde(default)]
    pub routing_key: Option<String>,
    #[serde(default)]
    pub messages: Option<Vec<Shape>>,
    /// An unroutable message comes back to the producer (RMQ-35) rather than being dropped.
    #[serde(default)]
    pub mandatory: bool,
    /// Per-message TTL, the `expiration` property (RMQ-20).
    #[serde(default)]
    pub expiration_ms: Option<f64>,
    pub schedule: Value,
    /// FIFO queues: spread messages over this many message groups, round-robin.
    #[serde(default)]
    pub groups: Option<i64>,
    /// Indices (0-based) of this producer's messages that are poison.
    #[serde(default)]
    pub poison: Vec<u64>,
    /// Topics: record keys (none: null keys).
    #[serde(default)]
    pub keys: Option<super::streams::RawKeys>,
    /// Compacted topics: the share of records that are tombstones (a key with a null value).
    #[serde(default)]
    pub tombstones: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    FixedRate {
        interval_ms: f64,
        #[serde(default)]
        start_ms: f64,
        #[serde(default)]
        count: Option<i64>,
    },
    Poisson {
        rate_per_s: f64,
        #[serde(default)]
        start_ms: f64,
        #[serde(default)]
        count: Option<i64>,
    },
    Scripted {
        at_ms: Vec<f64>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consumer {
    pub name: String,
    pub from: String,
    #[serde(default = "one")]
    pub prefetch: i64,
    #[serde(default = "one")]
    pub concurrency: i64,
    /// RabbitMQ `x-priority` (RMQ-2).
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub processing: Option<Value>,
    #[serde(default)]
    pub ack: Option<String>,
    #[serde(default)]
    pub outcomes: Outcomes,
    #[serde(default)]
    pub hang_ms: Option<f64>,
    #[serde(default)]
    pub dependency: Option<String>,
    #[serde(default)]
    pub retry: Option<Retry>,
    #[serde(default)]
    pub heartbeat_ms: Option<f64>,
    #[serde(default)]
    pub idempotent: bool,
    #[serde(default)]
    pub effect: Option<String>,
    #[serde(default)]
    pub version_check: bool,
    #[serde(default)]
    pub on_poison: Option<String>,
    #[serde(default)]
    pub circuit_breaker: Option<CircuitBreaker>,
    #[serde(default)]
    pub restart_ms: Option<f64>,
    /// "auto" (the default) acts on its own; "manual" acts only on script steps.
    #[serde(default)]
    pub mode: Option<String>,
    /// Makes this consumer a template for up to `max` instances, scaled on queue depth.
    #[serde(default)]
    pub autoscale: Option<Autoscale>,
}

/// A circuit breaker around a consumer's dependency calls; resilience4j's defaults (CB-2).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreaker {
    #[serde(default = "fifty")]
    pub failure_rate_pct: i64,
    #[serde(default = "hundred")]
    pub window: i64,
    #[serde(default = "hundred")]
    pub minimum_calls: i64,
    #[serde(default = "sixty_s")]
    pub wait_open_ms: f64,
    #[serde(default = "ten")]
    pub half_open_calls: i64,
}

fn fifty() -> i64 {
    50
}
fn hundred() -> i64 {
    100
}
fn ten() -> i64 {
    10
}
fn sixty_s() -> f64 {
    60_000.0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Autoscale {
    #[serde(default = "one")]
    pub min: i64,
    pub max: i64,
    #[serde(default = "scale_up_above")]
    pub scale_up_above: i64,
    #[serde(default = "two_i")]
    pub add: i64,
    #[serde(default = "scale_down_below")]
    pub scale_down_below: i64,
    #[serde(default = "one")]
    pub remove: i64,
    #[serde(default = "check_every_ms")]
    pub check_every_ms: f64,
}

/// Issue 3's defaults: above 1,000 ready add 2 workers; below 100 remove 1.
fn scale_up_above() -> i64 {
    1000
}
fn scale_down_below() -> i64 {
    100
}
fn two_i() -> i64 {
    2
}
fn check_every_ms() -> f64 {
    10_000.0
}

fn one() -> i64 {
    1
}

/// Probabilities, each in [0, 1], summing to at most 1; the rest is success.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Outcomes {
    #[serde(default)]
    pub transient: f64,
    #[serde(default)]
    pub permanent: f64,
    #[serde(default)]
    pub unknown: f64,
    #[serde(default)]
    pub crash: f64,
    #[serde(default)]
    pub hang: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    pub strategy: String,
    #[serde(default)]
    pub base_ms: f64,
    #[serde(default = "two")]
    pub multiplier: f64,
    #[serde(default = "cap_ms")]
    pub cap_ms: f64,
    pub attempts_max: i64,
    #[serde(default)]
    pub via: Option<String>,
    /// `via: dead_letter`: the queue a message goes to past its last attempt.
    #[serde(default)]
    pub park: Option<String>,
    #[serde(default = "unknown_attempts")]
    pub unknown_attempts_max: i64,
}

fn two() -> f64 {
    2.0
}
fn cap_ms() -> f64 {
    60_000.0
}
fn unknown_attempts() -> i64 {
    2
}

/// `normal` is `|N(mean, sd)|`, folded at zero as the AWS backoff simulator's network delay
/// is (BO-3).
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Dist {
    Constant { ms: f64 },
    Uniform { min_ms: f64, max_ms: f64 },
    Exponential { mean_ms: f64 },
    Normal { mean_ms: f64, sd_ms: f64 },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    pub name: String,
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default)]
    pub outages: Vec<Outage>,
    /// Calls per second it accepts (a token bucket holding one second's worth); more get a 429.
    #[serde(default)]
    pub rate_limit_per_s: Option<i64>,
    /// One row with a version, read and then written conditionally (optimistic concurrency,
    /// BO-3): each hop of a call takes this long.
    #[serde(default)]
    pub optimistic: Option<Optimistic>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Optimistic {
    /// `{"kind": …}`, as a consumer's `processing`.
    pub hop: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    pub from_ms: f64,
    pub to_ms: f64,
}

/// One timed step of a script: `{"at_ms": 0, "op": "send", …}`. The rest of the object is
/// the operation, checked field by field (unknown fields refused) by `validate::tagged`.
#[derive(Deserialize)]
pub struct ScriptStep {
    pub at_ms: f64,
    #[serde(flatten)]
    pub op: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    Send {
        to: String,
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        group: Option<i64>,
        #[serde(default)]
        dedup_id: Option<String>,
        #[serde(default)]
        ttl_ms: Option<f64>,
        #[serde(default)]
        delay_ms: Option<f64>,
        #[serde(default)]
        poison: bool,
        /// The same message again, as a producer sends it when it never heard back: the
        /// earlier send's name.
        #[serde(default)]
        resend: Option<String>,
    },
    /// basic.publish to an exchange (`""` the default one).
    Publish {
        exchange: String,
        #[serde(default)]
        routing_key: String,
        #[serde(default)]
        headers: Option<serde_json::Map<String, Value>>,
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        mandatory: bool,
        #[serde(default)]
        expiration_ms: Option<f64>,
    },
    Receive {
        consumer: String,
        #[serde(default)]
        queue: Option<String>,
        #[serde(default = "one")]
        max: i64,
    },
    Ack {
        consumer: String,
        message: String,
        /// Every delivery the consumer holds up to this one as well (RMQ-51).
        #[serde(default)]
        multiple: bool,
    },
    Nack {
        consumer: String,
        message: String,
        requeue: bool,
        #[serde(default)]
        multiple: bool,
    },
    /// basic.cancel: no new deliveries; what the consumer holds stays unacked (RMQ-53).
    Cancel {
        consumer: String,
    },
    /// basic.reject: a nack of one message, which RabbitMQ 4.3+ counts as a failed delivery.
    Reject {
        consumer: String,
        message: String,
        requeue: bool,
    },
    Abandon {
        consumer: String,
        message: String,
    },
    ChangeVisibility {
        consumer: String,
        message: String,
        timeout_ms: f64,
    },
    RenewLock {
        consumer: String,
        message: String,
    },
    DeadLetter {
        consumer: String,
        message: String,
    },
    Crash {
        consumer: String,
    },
    Restart {
        consumer: String,
    },
    DeployFix {
        consumer: String,
    },
    SetProcessing {
        consumer: String,
        processing: Value,
    },
    SetOutcomes {
        consumer: String,
        outcomes: Outcomes,
    },
    PoisonNext {
        producer: String,
    },
    Redrive {
        from: String,
        #[serde(default)]
        to: Option<String>,
        #[serde(default)]
        rate_per_s: Option<f64>,
    },
    /// Stream consumer groups: a member crashes (and is noticed at its session timeout),
    /// comes back, leaves cleanly, or a new one joins.
    CrashMember {
        group: String,
        member: String,
    },
    RestartMember {
        group: String,
        member: String,
    },
    RemoveMember {
        group: String,
        member: String,
    },
    AddMember {
        group: String,
    },
    /// An operator resets an inactive group's offsets (`to`: "earliest") to replay.
    ResetOffsets {
        group: String,
        to: String,
    },
    /// A requester instance of a request-reply system dies and stays down.
    KillRequester {
        system: String,
        requester: String,
    },
    DependencyDown {
        dependency: String,
    },
    DependencyUp {
        dependency: String,
    },
    /// Faults on one delivery, by the engine's message id (`"m12"` or 12): lost on its way to
    /// the consumer, or delivered again while its consumer still holds it.
    DropDelivery {
        msg: Value,
    },
    DuplicateDelivery {
        msg: Value,
    },
    /// One dead letter, by its message id, sent back to the queue it died in (as Service Bus
    /// Explorer resubmits one); `edit` fixes its payload first (it is no longer poison).
    Resubmit {
        msg: Value,
        #[serde(default)]
        edit: bool,
    },
}
