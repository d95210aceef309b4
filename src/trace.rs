//! The trace is the product: tests snapshot it, the CLI prints it, the page animates it.
//! `TraceEvent` is a closed set. Each event has one readable line (`Line`) and a fixed binary
//! encoding that feeds the trace hash, so the hash is the same on every target and does not
//! depend on how lines are worded.

use crate::scenario::Scenario;
use crate::time::SimTime;
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::fmt;

/// Message, producer, queue and consumer ids are indices, fixed-width for the trace.
pub type MsgId = u32;
pub type ProducerId = u32;
pub type QueueId = u32;
pub type ConsumerId = u32;
/// The producer id of messages the script sends.
pub const SCRIPT: ProducerId = u32::MAX;

/// Declares a closed, field-less enum with a stable code (for the hash) and a name (for
/// lines and JSON) per variant.
macro_rules! reasons {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal, $text:literal;)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name { $($(#[$vdoc])* $variant,)+ }
        impl $name {
            pub fn code(self) -> u8 { match self { $($name::$variant => $code,)+ } }
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $text,)+ } }
        }
    };
}

reasons! {
    /// Why a producer stopped.
    StopReason {
        /// The schedule's `count` was reached, or its scripted times ran out.
        ScheduleDone = 0, "schedule done";
        DurationEnded = 1, "duration ended";
        MessageLimit = 2, "message limit reached";
    }
}

reasons! {
    /// Why a delivered message went back to its queue.
    ReturnReason {
        /// RabbitMQ basic.nack / basic.reject with requeue=true (RMQ-5).
        Nacked = 0, "nacked, requeue";
        /// Service Bus Abandon (ASB-1).
        Abandoned = 1, "abandoned";
        /// The visibility timeout or lock ran out (SQS-2, ASB-5).
        LeaseExpired = 2, "lease expired";
        /// SQS ChangeMessageVisibility to 0 (SQS-4d).
        MadeVisible = 3, "visibility set to 0";
        /// The consumer's channel closed: a crash or RabbitMQ's consumer timeout (RMQ-7, RMQ-9).
        ChannelClosed = 4, "channel closed";
    }
}

reasons! {
    /// Why a message was dead-lettered. RabbitMQ's four reasons keep RabbitMQ's words (RMQ-10).
    DeadReason {
        Rejected = 0, "rejected";
        Expired = 1, "expired";
        MaxLength = 2, "maxlen";
        DeliveryLimit = 3, "delivery_limit";
        /// SQS redrive policy (SQS-11).
        MaxReceiveCount = 4, "maxReceiveCount exceeded";
        /// Service Bus (ASB-5).
        MaxDeliveryCount = 5, "MaxDeliveryCountExceeded";
        /// The consumer's retry policy gave up.
        AttemptsExhausted = 6, "attempts exhausted";
        /// The consumer classed the error as permanent.
        PermanentError = 7, "permanent error";
    }
}

reasons! {
    /// Why a message was dropped: only where the configuration allows loss.
    DropReason {
        /// Auto-acked (ack before processing), then processing never completed: lost.
        LostAfterAutoAck = 0, "lost: acked before processing, which then failed";
        /// The queue was full and drops its oldest (RMQ-23).
        DropHead = 1, "queue full: oldest dropped";
        /// The queue was full and refused the publish (RMQ-23).
        RejectPublish = 2, "queue full: publish refused";
        /// Dead-lettered without a dead-letter queue: discarded (RMQ-5).
        NoDeadLetterQueue = 3, "discarded: no dead-letter queue";
    }
}

reasons! {
    /// What went wrong with one processing attempt.
    ErrorClass {
        /// Timeout, 429, 503: worth retrying.
        Transient = 0, "transient error";
        /// Bad payload, schema mismatch: retrying cannot help.
        Permanent = 1, "permanent error";
        /// Cannot tell: retry once or twice, then give up.
        Unknown = 2, "unknown error";
        /// The downstream dependency was down (a 503).
        DependencyDown = 3, "dependency down (503)";
        /// The downstream dependency's rate limit refused the call (a 429).
        Throttled = 4, "throttled (429)";
    }
}

/// Everything that can happen in a run. Motion carries its start (`at`) and end time, so the
/// renderer interpolates without any events in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    /// A producer (or the script) sent a message; it travels to the queue until `arrives_at`.
    Published {
        at: SimTime,
        msg: MsgId,
        producer: ProducerId,
        queue: QueueId,
        arrives_at: SimTime,
    },
    /// The broker accepted a send but, by its deduplication id, stored nothing (SQS-23).
    Deduplicated {
        at: SimTime,
        queue: QueueId,
        original: MsgId,
    },
    /// The message is visible in its queue (in a DLQ: waiting there), `depth` visible now.
    Enqueued {
        at: SimTime,
        msg: MsgId,
        queue: QueueId,
        depth: u32,
    },
    /// The message is in its queue but hidden until `until`: a delay or a retry's backoff.
    Delayed {
        at: SimTime,
        msg: MsgId,
        queue: QueueId,
        until: SimTime,
    },
    /// Handed to a consumer under a fresh receipt, leased until `lease_until`; it travels there
    /// until `arrives_at`. `receive_count` is the system's own counter after this delivery.
    Delivered {
        at: SimTime,
        msg: MsgId,
        queue: QueueId,
        consumer: ConsumerId,
        receipt: u32,
        receive_count: u32,
        lease_until: SimTime,
        arrives_at: SimTime,
    },
    /// Ack before processing: the broker forgot the message on receipt.
    AutoAcked {
        at: SimTime,
        msg: MsgId,
        consumer: ConsumerId,
    },
    /// The consumer started processing; it will be done at `done_at`.
    ProcessingStarted {
        at: SimTime,
        msg: MsgId,
        consumer: ConsumerId,
        done_at: SimTime,
    },
    /// The lease was extended to `until` (ChangeMessageVisibility, RenewLock).
    LeaseExtended {
        at: SimTime,
        msg: MsgId,
        consumer: ConsumerId,
        until: SimTime,
    },
    /// An attempt failed; `attempt` failed attempts so far.
    Failed {
        at: SimTime,
        msg: MsgId,
        consumer: ConsumerId,
        error: ErrorClass,
        attempt: u32,
    },
    /// The business effect was applied; `times` is how often, for this message's key.
    EffectApplied {
        at: SimTime,
        msg: MsgId,
        consumer: ConsumerId,
        key: u32,
        times: u32,
    },
    /// An idempotent consumer saw a key it had applied already, and skipped it (IP-1).
    DuplicateSuppressed {
        at: SimTime,
        msg: MsgId,
        consumer: ConsumerId,
        key: u32,
    },
    /// Settled and deleted.
    Acked {
        at: SimTime,
        msg: MsgId,
        queue: QueueId,
        consumer: ConsumerId,
    },
    /// A settle with a receipt that is no longer current: the broker kept the message
    /// (SQS-6 stale handle, Service Bus lock lost).
    AckRefused {
        at: SimTime,
        msg: MsgId,
        consumer: ConsumerId,
        receipt: u32,
    },
    /// Back in the queue, visible again.
    Returned {
        at: SimTime,
        msg: MsgId,
        queue: QueueId,
        consumer: ConsumerId,
        reason: ReturnReason,
    },
    /// Moved to `dlq`.
    DeadLettered {
        at: SimTime,
        msg: MsgId,
        from: QueueId,
        dlq: QueueId,
        reason: DeadReason,
    },
    /// Its time to live ran out and it was discarded.
    Expired {
        at: SimTime,
        msg: MsgId,
        queue: QueueId,
    },
    /// Dropped: see the reason.
    Dropped {
        at: SimTime,
        msg: MsgId,
        queue: QueueId,
        reason: DropReason,
    },
    /// Redriven out of its DLQ as the new message `new_msg` in `to` (SQS-15).
    Redriven {
        at: SimTime,
        msg: MsgId,
        new_msg: MsgId,
        to: QueueId,
    },
    /// A receive that returned nothing.
    ReceivedNothing {
        at: SimTime,
        consumer: ConsumerId,
        queue: QueueId,
    },
    ConsumerCrashed {
        at: SimTime,
        consumer: ConsumerId,
    },
    ConsumerRestarted {
        at: SimTime,
        consumer: ConsumerId,
    },
    /// The autoscaler started (`active`) or drained an instance, at a queue `depth`.
    Scaled {
        at: SimTime,
        consumer: ConsumerId,
        active: bool,
        depth: u32,
    },
    DependencyChanged {
        at: SimTime,
        dependency: u32,
        up: bool,
    },
    /// A producer will send no more.
    ProducerStopped {
        at: SimTime,
        producer: ProducerId,
        reason: StopReason,
    },
}

impl TraceEvent {
    pub fn at(&self) -> SimTime {
        use TraceEvent::*;
        match *self {
            Published { at, .. }
            | Deduplicated { at, .. }
            | Enqueued { at, .. }
            | Delayed { at, .. }
            | Delivered { at, .. }
            | AutoAcked { at, .. }
            | ProcessingStarted { at, .. }
            | LeaseExtended { at, .. }
            | Failed { at, .. }
            | EffectApplied { at, .. }
            | DuplicateSuppressed { at, .. }
            | Acked { at, .. }
            | AckRefused { at, .. }
            | Returned { at, .. }
            | DeadLettered { at, .. }
            | Expired { at, .. }
            | Dropped { at, .. }
            | Redriven { at, .. }
            | ReceivedNothing { at, .. }
            | ConsumerCrashed { at, .. }
            | ConsumerRestarted { at, .. }
            | Scaled { at, .. }
            | DependencyChanged { at, .. }
            | ProducerStopped { at, .. } => at,
        }
    }

    pub fn kind(&self) -> &'static str {
        use TraceEvent::*;
        match self {
            Published { .. } => "published",
            Deduplicated { .. } => "deduplicated",
            Enqueued { .. } => "enqueued",
            Delayed { .. } => "delayed",
            Delivered { .. } => "delivered",
            AutoAcked { .. } => "auto_acked",
            ProcessingStarted { .. } => "processing_started",
            LeaseExtended { .. } => "lease_extended",
            Failed { .. } => "failed",
            EffectApplied { .. } => "effect_applied",
            DuplicateSuppressed { .. } => "duplicate_suppressed",
            Acked { .. } => "acked",
            AckRefused { .. } => "ack_refused",
            Returned { .. } => "returned",
            DeadLettered { .. } => "dead_lettered",
            Expired { .. } => "expired",
            Dropped { .. } => "dropped",
            Redriven { .. } => "redriven",
            ReceivedNothing { .. } => "received_nothing",
            ConsumerCrashed { .. } => "consumer_crashed",
            ConsumerRestarted { .. } => "consumer_restarted",
            Scaled { .. } => "scaled",
            DependencyChanged { .. } => "dependency_changed",
            ProducerStopped { .. } => "producer_stopped",
        }
    }

    /// The message this event is about, if any.
    pub fn msg(&self) -> Option<MsgId> {
        use TraceEvent::*;
        match *self {
            Published { msg, .. }
            | Enqueued { msg, .. }
            | Delayed { msg, .. }
            | Delivered { msg, .. }
            | AutoAcked { msg, .. }
            | ProcessingStarted { msg, .. }
            | LeaseExtended { msg, .. }
            | Failed { msg, .. }
            | EffectApplied { msg, .. }
            | DuplicateSuppressed { msg, .. }
            | Acked { msg, .. }
            | AckRefused { msg, .. }
            | Returned { msg, .. }
            | DeadLettered { msg, .. }
            | Expired { msg, .. }
            | Dropped { msg, .. }
            | Redriven { msg, .. } => Some(msg),
            Deduplicated { .. }
            | ReceivedNothing { .. }
            | ConsumerCrashed { .. }
            | ConsumerRestarted { .. }
            | Scaled { .. }
            | DependencyChanged { .. }
            | ProducerStopped { .. } => None,
        }
    }

    /// The readable line, with the scenario's names.
    pub fn line<'a>(&'a self, scenario: &'a Scenario) -> Line<'a> {
        Line { event: self, scenario }
    }

    /// Visits every field in a fixed order: the one place that lists each event's fields, for
    /// both the hash and the JSON form.
    fn fields(&self, v: &mut impl FieldVisitor) {
        use TraceEvent::*;
        match *self {
            Published { msg, producer, queue, arrives_at, .. } => {
                v.id("msg", msg).id("producer", producer).id("queue", queue).time("arrives_at_ms", arrives_at);
            }
            Deduplicated { queue, original, .. } => {
                v.id("queue", queue).id("original", original);
            }
            Enqueued { msg, queue, depth, .. } => {
                v.id("msg", msg).id("queue", queue).id("depth", depth);
            }
            Delayed { msg, queue, until, .. } => {
                v.id("msg", msg).id("queue", queue).time("until_ms", until);
            }
            Delivered { msg, queue, consumer, receipt, receive_count, lease_until, arrives_at, .. } => {
                v.id("msg", msg).id("queue", queue).id("consumer", consumer).id("receipt", receipt);
                v.id("receive_count", receive_count)
                    .time("lease_until_ms", lease_until)
                    .time("arrives_at_ms", arrives_at);
            }
            AutoAcked { msg, consumer, .. } => {
                v.id("msg", msg).id("consumer", consumer);
            }
            ProcessingStarted { msg, consumer, done_at, .. } => {
                v.id("msg", msg).id("consumer", consumer).time("done_at_ms", done_at);
            }
            LeaseExtended { msg, consumer, until, .. } => {
                v.id("msg", msg).id("consumer", consumer).time("until_ms", until);
            }
            Failed { msg, consumer, error, attempt, .. } => {
                v.id("msg", msg).id("consumer", consumer).reason("error", error.code(), error.as_str());
                v.id("attempt", attempt);
            }
            EffectApplied { msg, consumer, key, times, .. } => {
                v.id("msg", msg).id("consumer", consumer).id("key", key).id("times", times);
            }
            DuplicateSuppressed { msg, consumer, key, .. } => {
                v.id("msg", msg).id("consumer", consumer).id("key", key);
            }
            Acked { msg, queue, consumer, .. } => {
                v.id("msg", msg).id("queue", queue).id("consumer", consumer);
            }
            AckRefused { msg, consumer, receipt, .. } => {
                v.id("msg", msg).id("consumer", consumer).id("receipt", receipt);
            }
            Returned { msg, queue, consumer, reason, .. } => {
                v.id("msg", msg).id("queue", queue).id("consumer", consumer);
                v.reason("reason", reason.code(), reason.as_str());
            }
            DeadLettered { msg, from, dlq, reason, .. } => {
                v.id("msg", msg).id("from", from).id("dlq", dlq).reason("reason", reason.code(), reason.as_str());
            }
            Expired { msg, queue, .. } => {
                v.id("msg", msg).id("queue", queue);
            }
            Dropped { msg, queue, reason, .. } => {
                v.id("msg", msg).id("queue", queue).reason("reason", reason.code(), reason.as_str());
            }
            Redriven { msg, new_msg, to, .. } => {
                v.id("msg", msg).id("new_msg", new_msg).id("to", to);
            }
            ReceivedNothing { consumer, queue, .. } => {
                v.id("consumer", consumer).id("queue", queue);
            }
            ConsumerCrashed { consumer, .. } | ConsumerRestarted { consumer, .. } => {
                v.id("consumer", consumer);
            }
            Scaled { consumer, active, depth, .. } => {
                v.id("consumer", consumer).reason(
                    "active",
                    u8::from(active),
                    if active { "started" } else { "draining" },
                );
                v.id("depth", depth);
            }
            DependencyChanged { dependency, up, .. } => {
                v.id("dependency", dependency).reason("up", u8::from(up), if up { "up" } else { "down" });
            }
            ProducerStopped { producer, reason, .. } => {
                v.id("producer", producer).reason("reason", reason.code(), reason.as_str());
            }
        }
    }

    /// A stable tag byte per kind, for the hash.
    fn tag(&self) -> u8 {
        use TraceEvent::*;
        match self {
            Published { .. } => 1,
            Enqueued { .. } => 2,
            Delivered { .. } => 3,
            ProcessingStarted { .. } => 4,
            Acked { .. } => 5,
            ProducerStopped { .. } => 6,
            Deduplicated { .. } => 7,
            Delayed { .. } => 8,
            AutoAcked { .. } => 9,
            LeaseExtended { .. } => 10,
            Failed { .. } => 11,
            EffectApplied { .. } => 12,
            DuplicateSuppressed { .. } => 13,
            AckRefused { .. } => 14,
            Returned { .. } => 15,
            DeadLettered { .. } => 16,
            Expired { .. } => 17,
            Dropped { .. } => 18,
            Redriven { .. } => 19,
            ReceivedNothing { .. } => 20,
            ConsumerCrashed { .. } => 21,
            ConsumerRestarted { .. } => 22,
            DependencyChanged { .. } => 23,
            Scaled { .. } => 24,
        }
    }
}

/// What `TraceEvent::fields` calls for each field.
trait FieldVisitor {
    fn id(&mut self, name: &'static str, value: u32) -> &mut Self;
    fn time(&mut self, name: &'static str, value: SimTime) -> &mut Self;
    fn reason(&mut self, name: &'static str, code: u8, text: &'static str) -> &mut Self;
}

/// `TraceEvent` with names, for display: `1.250000s m3 delivered orders → worker-2`.
#[derive(Debug)]
pub struct Line<'a> {
    event: &'a TraceEvent,
    scenario: &'a Scenario,
}

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TraceEvent::*;
        let s = self.scenario;
        let queue = |q: QueueId| s.queues.get(q as usize).map_or("?", |x| x.name.as_str());
        let producer = |p: ProducerId| {
            if p == SCRIPT {
                "the script"
            } else {
                s.producers.get(p as usize).map_or("?", |x| x.name.as_str())
            }
        };
        let consumer = |c: ConsumerId| s.consumers.get(c as usize).map_or("?", |x| x.name.as_str());
        let dependency = |d: u32| s.dependencies.get(d as usize).map_or("?", |x| x.name.as_str());
        write!(f, "{} ", self.event.at())?;
        match *self.event {
            Published { msg, producer: p, queue: q, arrives_at, .. } => {
                write!(f, "m{msg} published by {} to {} (arrives {arrives_at})", producer(p), queue(q))
            }
            Deduplicated { queue: q, original, .. } => {
                write!(f, "a send to {} was a duplicate of m{original}: accepted, not stored", queue(q))
            }
            Enqueued { msg, queue: q, depth, .. } => write!(f, "m{msg} visible in {} (depth {depth})", queue(q)),
            Delayed { msg, queue: q, until, .. } => write!(f, "m{msg} waits in {} until {until}", queue(q)),
            Delivered { msg, queue: q, consumer: c, receive_count, lease_until, arrives_at, .. } => {
                write!(f, "m{msg} delivered {} → {} (delivery {receive_count}", queue(q), consumer(c))?;
                if lease_until != SimTime::MAX {
                    write!(f, ", leased until {lease_until}")?;
                }
                write!(f, ", arrives {arrives_at})")
            }
            AutoAcked { msg, consumer: c, .. } => {
                write!(f, "m{msg} acked on receipt by {} (before processing)", consumer(c))
            }
            ProcessingStarted { msg, consumer: c, done_at, .. } => {
                write!(f, "m{msg} processing on {} (done {done_at})", consumer(c))
            }
            LeaseExtended { msg, consumer: c, until, .. } => {
                write!(f, "m{msg} lease extended by {} until {until}", consumer(c))
            }
            Failed { msg, consumer: c, error, attempt, .. } => {
                write!(f, "m{msg} failed on {}: {} (attempt {attempt})", consumer(c), error.as_str())
            }
            EffectApplied { msg, consumer: c, times, .. } => {
                write!(f, "m{msg} effect applied by {}", consumer(c))?;
                if times > 1 {
                    write!(f, " (applied {times} times!)")?;
                }
                Ok(())
            }
            DuplicateSuppressed { msg, consumer: c, .. } => {
                write!(f, "m{msg} already applied: {} skipped it", consumer(c))
            }
            Acked { msg, queue: q, consumer: c, .. } => {
                write!(f, "m{msg} acked by {}, deleted from {}", consumer(c), queue(q))
            }
            AckRefused { msg, consumer: c, .. } => {
                write!(f, "m{msg} ack by {} refused: its receipt is no longer current", consumer(c))
            }
            Returned { msg, queue: q, consumer: c, reason, .. } => {
                write!(f, "m{msg} back in {} from {}: {}", queue(q), consumer(c), reason.as_str())
            }
            DeadLettered { msg, from, dlq, reason, .. } => {
                write!(f, "m{msg} dead-lettered {} → {}: {}", queue(from), queue(dlq), reason.as_str())
            }
            Expired { msg, queue: q, .. } => write!(f, "m{msg} expired in {}", queue(q)),
            Dropped { msg, queue: q, reason, .. } => write!(f, "m{msg} dropped from {}: {}", queue(q), reason.as_str()),
            Redriven { msg, new_msg, to, .. } => write!(f, "m{msg} redriven to {} as m{new_msg}", queue(to)),
            ReceivedNothing { consumer: c, queue: q, .. } => {
                write!(f, "{} received nothing from {}", consumer(c), queue(q))
            }
            ConsumerCrashed { consumer: c, .. } => write!(f, "{} crashed", consumer(c)),
            ConsumerRestarted { consumer: c, .. } => write!(f, "{} restarted", consumer(c)),
            Scaled { consumer: c, active, depth, .. } => write!(
                f,
                "autoscaler {} {} (queue depth {depth})",
                if active { "started" } else { "drains" },
                consumer(c)
            ),
            DependencyChanged { dependency: d, up, .. } => {
                write!(f, "{} is {}", dependency(d), if up { "up" } else { "down" })
            }
            ProducerStopped { producer: p, reason, .. } => write!(f, "{} stopped: {}", producer(p), reason.as_str()),
        }
    }
}

/// JSON form: `{"kind": "delivered", "at_ms": 1250, "msg": 3, …}`. Times are f64 milliseconds.
impl Serialize for TraceEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Json<M: SerializeMap>(M, Option<M::Error>);
        impl<M: SerializeMap> Json<M> {
            fn put<V: Serialize + ?Sized>(&mut self, k: &str, v: &V) -> &mut Self {
                if self.1.is_none() {
                    if let Err(e) = self.0.serialize_entry(k, v) {
                        self.1 = Some(e);
                    }
                }
                self
            }
        }
        impl<M: SerializeMap> FieldVisitor for Json<M> {
            fn id(&mut self, name: &'static str, value: u32) -> &mut Self {
                self.put(name, &value)
            }
            fn time(&mut self, name: &'static str, value: SimTime) -> &mut Self {
                self.put(name, &value.as_millis_f64())
            }
            fn reason(&mut self, name: &'static str, _code: u8, text: &'static str) -> &mut Self {
                self.put(name, text)
            }
        }
        let mut json = Json(serializer.serialize_map(None)?, None);
        json.put("kind", self.kind()).put("at_ms", &self.at().as_millis_f64());
        self.fields(&mut json);
        match json.1 {
            Some(e) => Err(e),
            None => json.0.end(),
        }
    }
}

/// The trace hash: a 64-bit multiply-rotate mix over each event's fields in order, one word per
/// field (its tag, its time in microseconds, then each id, time and reason code). Each step is a
/// bijection of the state for a given word, so any change to a field changes the hash. Not
/// cryptographic: it only needs to change when the trace changes, identically on every target,
/// and to cost little on the hot path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceHash(u64);

impl Default for TraceHash {
    fn default() -> Self {
        TraceHash(0xcbf2_9ce4_8422_2325)
    }
}

impl TraceHash {
    /// Adds one event: its tag, its time, then each field.
    pub fn add(&mut self, event: &TraceEvent) {
        self.word(u64::from(event.tag()));
        self.word(event.at().as_micros());
        event.fields(self);
    }
    fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    }
    pub fn value(self) -> u64 {
        self.0
    }
    /// 16 lowercase hex digits, the form the CLI, the page and the tests show.
    pub fn hex(self) -> String {
        format!("{:016x}", self.0)
    }
}

impl FieldVisitor for TraceHash {
    fn id(&mut self, _name: &'static str, value: u32) -> &mut Self {
        self.word(u64::from(value));
        self
    }
    fn time(&mut self, _name: &'static str, value: SimTime) -> &mut Self {
        self.word(value.as_micros());
        self
    }
    fn reason(&mut self, _name: &'static str, code: u8, _text: &'static str) -> &mut Self {
        self.word(u64::from(code));
        self
    }
}
