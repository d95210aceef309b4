//! The trace is the product: tests snapshot it, the CLI prints it, the page animates it.
//! `TraceEvent` is a closed set. Each event has one readable line (`Line`) and a fixed binary
//! encoding that feeds the trace hash, so the hash is the same on every target and does not
//! depend on how lines are worded.

use crate::scenario::Scenario;
use crate::time::SimTime;
use serde::ser::{Serialize, SerializeStruct, Serializer};
use std::fmt;

/// Message, producer, queue and consumer ids are indices, fixed-width for the trace.
pub type MsgId = u32;
pub type ProducerId = u32;
pub type QueueId = u32;
pub type ConsumerId = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The schedule's `count` was reached, or its scripted times ran out.
    ScheduleDone,
    /// The scenario's `duration_ms` ended.
    DurationEnded,
    /// The run reached `limits::MESSAGES_MAX`.
    MessageLimit,
}

impl StopReason {
    fn code(self) -> u8 {
        match self {
            StopReason::ScheduleDone => 0,
            StopReason::DurationEnded => 1,
            StopReason::MessageLimit => 2,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::ScheduleDone => "schedule done",
            StopReason::DurationEnded => "duration ended",
            StopReason::MessageLimit => "message limit reached",
        }
    }
}

/// Everything that can happen in a run. Motion carries its start (`at`) and end time, so the
/// renderer interpolates without any events in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    /// A producer sent a message; it travels to the queue until `arrives_at`.
    Published { at: SimTime, msg: MsgId, producer: ProducerId, queue: QueueId, arrives_at: SimTime },
    /// The broker stored the message; it is ready, with `depth` ready messages now queued.
    Enqueued { at: SimTime, msg: MsgId, queue: QueueId, depth: u32 },
    /// The broker handed the message to a consumer; it travels there until `arrives_at`.
    Delivered { at: SimTime, msg: MsgId, queue: QueueId, consumer: ConsumerId, arrives_at: SimTime },
    /// The consumer started processing; it will finish at `done_at`.
    ProcessingStarted { at: SimTime, msg: MsgId, consumer: ConsumerId, done_at: SimTime },
    /// The consumer finished and acknowledged; the broker deleted the message.
    Acked { at: SimTime, msg: MsgId, queue: QueueId, consumer: ConsumerId },
    /// A producer will send no more.
    ProducerStopped { at: SimTime, producer: ProducerId, reason: StopReason },
}

impl TraceEvent {
    pub fn at(&self) -> SimTime {
        match *self {
            TraceEvent::Published { at, .. }
            | TraceEvent::Enqueued { at, .. }
            | TraceEvent::Delivered { at, .. }
            | TraceEvent::ProcessingStarted { at, .. }
            | TraceEvent::Acked { at, .. }
            | TraceEvent::ProducerStopped { at, .. } => at,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            TraceEvent::Published { .. } => "published",
            TraceEvent::Enqueued { .. } => "enqueued",
            TraceEvent::Delivered { .. } => "delivered",
            TraceEvent::ProcessingStarted { .. } => "processing_started",
            TraceEvent::Acked { .. } => "acked",
            TraceEvent::ProducerStopped { .. } => "producer_stopped",
        }
    }

    /// The message this event is about, if any.
    pub fn msg(&self) -> Option<MsgId> {
        match *self {
            TraceEvent::Published { msg, .. }
            | TraceEvent::Enqueued { msg, .. }
            | TraceEvent::Delivered { msg, .. }
            | TraceEvent::ProcessingStarted { msg, .. }
            | TraceEvent::Acked { msg, .. } => Some(msg),
            TraceEvent::ProducerStopped { .. } => None,
        }
    }

    /// The readable line, with the scenario's names.
    pub fn line<'a>(&'a self, scenario: &'a Scenario) -> Line<'a> {
        Line { event: self, scenario }
    }

    /// Feeds the event's fixed binary encoding to the hasher: a tag byte, then each field as
    /// little-endian integers. Times are microseconds.
    fn encode(&self, h: &mut TraceHash) {
        match *self {
            TraceEvent::Published { at, msg, producer, queue, arrives_at } => {
                h.bytes(&[1]);
                h.time(at).u32(msg).u32(producer).u32(queue).time(arrives_at);
            }
            TraceEvent::Enqueued { at, msg, queue, depth } => {
                h.bytes(&[2]);
                h.time(at).u32(msg).u32(queue).u32(depth);
            }
            TraceEvent::Delivered { at, msg, queue, consumer, arrives_at } => {
                h.bytes(&[3]);
                h.time(at).u32(msg).u32(queue).u32(consumer).time(arrives_at);
            }
            TraceEvent::ProcessingStarted { at, msg, consumer, done_at } => {
                h.bytes(&[4]);
                h.time(at).u32(msg).u32(consumer).time(done_at);
            }
            TraceEvent::Acked { at, msg, queue, consumer } => {
                h.bytes(&[5]);
                h.time(at).u32(msg).u32(queue).u32(consumer);
            }
            TraceEvent::ProducerStopped { at, producer, reason } => {
                h.bytes(&[6]);
                h.time(at).u32(producer).bytes(&[reason.code()]);
            }
        }
    }
}

/// `TraceEvent` with names, for display: `1.250000s m3 delivered orders → worker-2`.
#[derive(Debug)]
pub struct Line<'a> {
    event: &'a TraceEvent,
    scenario: &'a Scenario,
}

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.scenario;
        let queue = |q: QueueId| s.queues.get(q as usize).map_or("?", |x| x.name.as_str());
        let producer = |p: ProducerId| s.producers.get(p as usize).map_or("?", |x| x.name.as_str());
        let consumer = |c: ConsumerId| s.consumers.get(c as usize).map_or("?", |x| x.name.as_str());
        match *self.event {
            TraceEvent::Published { at, msg, producer: p, queue: q, arrives_at } => {
                write!(f, "{at} m{msg} published by {} to {} (arrives {arrives_at})", producer(p), queue(q))
            }
            TraceEvent::Enqueued { at, msg, queue: q, depth } => {
                write!(f, "{at} m{msg} enqueued in {} (depth {depth})", queue(q))
            }
            TraceEvent::Delivered { at, msg, queue: q, consumer: c, arrives_at } => {
                write!(f, "{at} m{msg} delivered {} → {} (arrives {arrives_at})", queue(q), consumer(c))
            }
            TraceEvent::ProcessingStarted { at, msg, consumer: c, done_at } => {
                write!(f, "{at} m{msg} processing on {} (done {done_at})", consumer(c))
            }
            TraceEvent::Acked { at, msg, queue: q, consumer: c } => {
                write!(f, "{at} m{msg} acked by {}, deleted from {}", consumer(c), queue(q))
            }
            TraceEvent::ProducerStopped { at, producer: p, reason } => {
                write!(f, "{at} {} stopped: {}", producer(p), reason.as_str())
            }
        }
    }
}

/// JSON form: `{"kind": "delivered", "at_ms": 1250, "msg": 3, …}`. Times are f64 milliseconds.
impl Serialize for TraceEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let ms = SimTime::as_millis_f64;
        let mut st = serializer.serialize_struct("TraceEvent", 6)?;
        st.serialize_field("kind", self.kind())?;
        st.serialize_field("at_ms", &ms(self.at()))?;
        match *self {
            TraceEvent::Published { msg, producer, queue, arrives_at, .. } => {
                st.serialize_field("msg", &msg)?;
                st.serialize_field("producer", &producer)?;
                st.serialize_field("queue", &queue)?;
                st.serialize_field("arrives_at_ms", &ms(arrives_at))?;
            }
            TraceEvent::Enqueued { msg, queue, depth, .. } => {
                st.serialize_field("msg", &msg)?;
                st.serialize_field("queue", &queue)?;
                st.serialize_field("depth", &depth)?;
            }
            TraceEvent::Delivered { msg, queue, consumer, arrives_at, .. } => {
                st.serialize_field("msg", &msg)?;
                st.serialize_field("queue", &queue)?;
                st.serialize_field("consumer", &consumer)?;
                st.serialize_field("arrives_at_ms", &ms(arrives_at))?;
            }
            TraceEvent::ProcessingStarted { msg, consumer, done_at, .. } => {
                st.serialize_field("msg", &msg)?;
                st.serialize_field("consumer", &consumer)?;
                st.serialize_field("done_at_ms", &ms(done_at))?;
            }
            TraceEvent::Acked { msg, queue, consumer, .. } => {
                st.serialize_field("msg", &msg)?;
                st.serialize_field("queue", &queue)?;
                st.serialize_field("consumer", &consumer)?;
            }
            TraceEvent::ProducerStopped { producer, reason, .. } => {
                st.serialize_field("producer", &producer)?;
                st.serialize_field("reason", reason.as_str())?;
            }
        }
        st.end()
    }
}

/// FNV-1a, 64 bit, over each event's binary encoding in order. Not cryptographic: it only
/// needs to change when the trace changes, identically on every target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceHash(u64);

impl Default for TraceHash {
    fn default() -> Self {
        TraceHash(0xcbf2_9ce4_8422_2325)
    }
}

impl TraceHash {
    pub fn add(&mut self, event: &TraceEvent) {
        event.encode(self);
    }
    fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    fn time(&mut self, t: SimTime) -> &mut Self {
        self.bytes(&t.as_micros().to_le_bytes())
    }
    pub fn value(self) -> u64 {
        self.0
    }
    /// 16 lowercase hex digits, the form the CLI, the page and the tests show.
    pub fn hex(self) -> String {
        format!("{:016x}", self.0)
    }
}
