//! Scenarios as data. Authors write JSON (`raw`); `Scenario::from_json` deserializes it with
//! unknown fields refused, then `validate` resolves it into this model: names become indices,
//! times become microseconds, probabilities become exact ratios, and every default is filled
//! in from `../shared/semantics.md`. Every error names the path and the reason:
//! `consumers[1].prefetch: must be at least 1`.
//!
//! The built-in presets are JSON files in `scenarios/`, embedded by `build.rs`.

mod beats;
mod exchanges;
mod raw;
mod streams;
mod validate;
mod workflows;

pub use beats::{Anchor, Counter, EventAnchor, Expect, Marker, Subject, Test};
pub use exchanges::{DlxSpec, PublishSpec, ShapeRef};
pub use streams::{CommitMode, GroupSpec, KeySpec, NullKeys, OffsetReset, Target, TopicKind, TopicRole, TopicSpec};
pub use workflows::{ConsumerRole, ProducerRole, RequestReplySpec, SagaSpec, SagaStyle, StepSpec};

use crate::backoff;
use crate::rng::Ratio;
use crate::time::{Duration, SimTime};
use std::fmt;

/// Hard limits. A scenario that asks for more is refused with a path-specific error, so that
/// no input can make the engine (or a browser tab) run out of memory or time.
pub mod limits {
    /// The largest scenario text accepted, in bytes.
    pub const SCENARIO_BYTES_MAX: usize = 1 << 20;
    pub const DURATION_MS_MAX: u64 = 7 * 24 * 3_600_000;
    /// Queues an author declares; each may add a DLQ and a retry queue.
    pub const QUEUES_MAX: usize = 16;
    pub const PRODUCERS_MAX: usize = 64;
    pub const CONSUMERS_MAX: usize = 256;
    pub const DEPENDENCIES_MAX: usize = 16;
    pub const OUTAGES_MAX: usize = 64;
    pub const PREFETCH_MAX: u32 = 10_000;
    pub const ALERTS_MAX: usize = 16;
    /// A circuit breaker's window and trial calls: what it remembers is bounded by them.
    pub const BREAKER_WINDOW_MAX: u32 = 1_000;
    /// Upper bound on the messages one run may publish, summed over producers.
    pub const MESSAGES_MAX: u64 = 2_000_000;
    /// SQS-25: how many messages a FIFO queue looks through for an available group.
    pub const FIFO_GROUP_SCAN: usize = 20_000;
    pub const SCRIPTED_SENDS_MAX: usize = 100_000;
    pub const SCRIPT_STEPS_MAX: usize = 10_000;
    pub const LATENCY_MS_MAX: f64 = 60_000.0;
    pub const PROCESSING_MS_MAX: f64 = 3_600_000.0;
    pub const RATE_PER_S_MAX: f64 = 100_000.0;
    pub const NAME_CHARS_MAX: usize = 40;
    pub const TITLE_CHARS_MAX: usize = 80;
    pub const TEXT_CHARS_MAX: usize = 2_000;
    pub const ATTEMPTS_MAX: u32 = 1_000;
    pub const MAX_LENGTH_MAX: u32 = 10_000_000;
    pub const TOPICS_MAX: usize = 8;
    /// Partitions per topic: room to draw each one as a log.
    pub const PARTITIONS_MAX: u32 = 64;
    pub const GROUPS_MAX: usize = 8;
    /// Members a group can ever have, counting those added live.
    pub const GROUP_MEMBERS_MAX: u32 = 32;
    pub const RETRY_TOPICS_MAX: usize = 4;
    pub const KEYS_MAX: u32 = 10_000;
    pub const WORKFLOWS_MAX: usize = 4;
    pub const WORKFLOW_INSTANCES_MAX: u32 = 8;
    pub const SAGA_STEPS_MAX: usize = 6;
    /// Every queue counted: the author's, dead-letter and retry queues, workflow queues.
    pub const ALL_QUEUES_MAX: usize = 64;
    pub const MARKERS_MAX: usize = 32;
    pub const MARKER_CHARS_MAX: usize = 400;
    /// 2^53 − 1: the largest seed JavaScript holds exactly, so the page can replay any run.
    pub const SEED_MAX: u64 = (1 << 53) - 1;
    /// SQS-3: a visibility timeout is 0 to 12 hours.
    pub const SQS_VISIBILITY_MS_MAX: f64 = 43_200_000.0;
    /// SQS-10: maxReceiveCount is 1 to 1,000.
    pub const SQS_MAX_RECEIVE_COUNT_MAX: u32 = 1_000;
    /// ASB-2: a lock lasts at most 5 minutes.
    pub const SB_LOCK_MS_MAX: f64 = 300_000.0;
}

/// A scenario problem, located by its JSON path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

impl std::error::Error for ScenarioError {}

#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub seed: Option<u64>,
    pub duration: Duration,
    pub latency: Duration,
    /// The author's queues first, then the dead-letter and retry queues they imply.
    pub queues: Vec<QueueSpec>,
    /// RabbitMQ's exchanges and bindings, and the keys and headers messages carry.
    pub topology: crate::exchange::Topology,
    /// The author's topics first, then the retry and dead-letter topics groups imply.
    pub topics: Vec<TopicSpec>,
    pub groups: Vec<GroupSpec>,
    pub request_reply: Vec<RequestReplySpec>,
    pub sagas: Vec<SagaSpec>,
    pub producers: Vec<ProducerSpec>,
    pub consumers: Vec<ConsumerSpec>,
    pub dependencies: Vec<DependencySpec>,
    pub autoscalers: Vec<AutoscaleSpec>,
    pub script: Vec<ScriptStep>,
    /// Names the script gives to messages it sends, in order of first use.
    pub message_names: Vec<String>,
    /// Narrative beats, in order: the page pauses at each and shows its text (`beats`).
    pub markers: Vec<Marker>,
    /// Alert thresholds: a queue's depth or a group's lag above a bound.
    pub alerts: Vec<AlertSpec>,
}

/// An alert on a queue's depth (messages waiting in it; a DLQ's dead letters) or a group's
/// lag: firing while the value is above `above`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertSpec {
    pub name: String,
    pub on: AlertOn,
    pub above: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertOn {
    Queue(u32),
    Group(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueRole {
    Main,
    /// `<queue>.dlq`: where the queue's dead letters go.
    DeadLetter {
        of: u32,
    },
    /// `<queue>.retry`: where messages wait out a backoff before going back.
    Retry {
        of: u32,
    },
}

/// How a queue leases messages to consumers: the three models of issue 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseModel {
    /// SQS visibility timeout (SQS-1..11). `max_receive_count` is the redrive policy.
    Sqs { visibility_timeout: Duration, max_receive_count: Option<u32> },
    /// RabbitMQ prefetch and ack (RMQ-1..18). `delivery_limit` applies to quorum queues, and
    /// `counts` says which returns count towards it.
    RabbitMq { quorum: bool, delivery_limit: Option<u32>, consumer_timeout: Duration, counts: LimitCounts },
    /// Service Bus peek-lock (ASB-1..6).
    ServiceBus { lock_duration: Duration, max_delivery_count: u32 },
}

/// Which returns a quorum queue counts towards its delivery limit: the rule changed in 4.3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitCounts {
    /// 4.0–4.2: every return of a checked-out message, requeue or crash (`acquired_count`,
    /// RMQ-16).
    EveryReturn,
    /// 4.3+: failed deliveries only, `basic.reject` and a crashed client; not `basic.nack`
    /// with requeue, nor the consumer timeout (`delivery_count`, RMQ-17).
    FailedDeliveries,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Drop (or dead-letter, reason `maxlen`) the oldest message (RMQ-23, the default).
    DropHead,
    /// Refuse the new message.
    RejectPublish,
    /// Refuse the new message, and dead-letter it (reason `maxlen`): RabbitMQ classic queues
    /// only (RMQ-23, RMQ-38).
    RejectPublishDlx,
}

#[derive(Clone, Debug, PartialEq)]
pub struct QueueSpec {
    pub name: String,
    pub role: QueueRole,
    pub lease: LeaseModel,
    /// The index of this queue's DLQ, if it has one.
    pub dead_letter: Option<u32>,
    /// Its dead-letter exchange (`x-dead-letter-exchange`), if it has one instead.
    pub dlx: Option<DlxSpec>,
    /// The index of this queue's retry queue, if a consumer retries through one.
    pub retry_queue: Option<u32>,
    pub ttl: Option<Duration>,
    /// Whether an expired message is dead-lettered (reason `expired`) rather than dropped.
    pub expire_to_dlq: bool,
    pub max_length: Option<u32>,
    pub overflow: Overflow,
    /// SQS FIFO: message groups and deduplication (SQS-20..23).
    pub fifo: bool,
    /// RabbitMQ's single active consumer: only one consumer takes messages (RMQ-57).
    pub single_active: bool,
    /// How long a send's deduplication id (Service Bus: its MessageId) suppresses re-sends, if
    /// the queue deduplicates: 5 minutes on SQS FIFO (SQS-23), the duplicate detection window
    /// on Service Bus (ASB-9).
    pub dedup_window: Option<Duration>,
    pub delay: Duration,
}

impl QueueSpec {
    pub fn is_dead_letter(&self) -> bool {
        matches!(self.role, QueueRole::DeadLetter { .. })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProducerSpec {
    pub name: String,
    pub target: Target,
    pub schedule: Schedule,
    pub groups: Option<u32>,
    /// Sorted indices of the producer's messages that are poison.
    pub poison: Vec<u64>,
    /// Topics: the keys of its records; `None` sends null keys (KP-6).
    pub keys: Option<KeySpec>,
    /// Topics: the chance that a record is a tombstone (KC-13).
    pub tombstones: Ratio,
    pub role: ProducerRole,
    /// What it publishes to an exchange (`Target::Exchange`).
    pub publish: Option<PublishSpec>,
    /// Its messages' `expiration` (RMQ-20).
    pub expiration: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    FixedRate {
        interval: Duration,
        start: SimTime,
        count: Option<u64>,
    },
    /// Exponential inter-arrival times with this mean.
    Poisson {
        mean_interval: Duration,
        start: SimTime,
        count: Option<u64>,
    },
    /// Sends at these times, sorted.
    Scripted {
        at: Vec<SimTime>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckMode {
    /// Ack when processing succeeds: at-least-once.
    AfterProcessing,
    /// Ack on receipt (auto-ack): at-most-once; a crash loses the message.
    BeforeProcessing,
}

/// The chance of each outcome of one processing attempt; the rest is success.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcomes {
    pub transient: Ratio,
    pub permanent: Ratio,
    pub unknown: Ratio,
    pub crash: Ratio,
    pub hang: Ratio,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryVia {
    /// The message waits out its backoff in the same queue; on RabbitMQ, which has no delayed
    /// redelivery, in its consumer's hands, unacked, and is then requeued (D3).
    Delay,
    /// The message waits in `<queue>.retry`, then goes back to the queue.
    RetryQueue,
    /// RabbitMQ's retry loop: the consumer rejects the message without requeue, its queue's
    /// dead-letter exchange takes it to a wait queue whose TTL sends it back, and the count of
    /// its `x-death` entry for (this queue, rejected) is the attempt counter (RMQ-42). Past its
    /// last attempt the consumer republishes it to `park` (a parking-lot queue) and acks it.
    DeadLetter { park: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetrySpec {
    pub policy: backoff::Policy,
    pub via: RetryVia,
    /// An unknown error is retried this many times at most, then dead-lettered.
    pub unknown_attempts_max: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ConsumerSpec {
    pub name: String,
    pub queue: u32,
    /// The most unsettled messages this consumer holds at once (RMQ basic.qos, SB prefetch,
    /// SQS MaxNumberOfMessages).
    pub prefetch: u32,
    /// How many it processes at once.
    pub concurrency: u32,
    /// RabbitMQ consumer priority (`x-priority`, RMQ-2): a queue delivers to its highest
    /// priority consumers with room, round-robin among equals. 0 by default.
    pub priority: i32,
    pub processing: Dist,
    pub ack: AckMode,
    pub outcomes: Outcomes,
    /// How long a hang lasts.
    pub hang: Duration,
    pub dependency: Option<u32>,
    pub retry: Option<RetrySpec>,
    /// Extend the lease this often while processing (SQS ChangeMessageVisibility, SB RenewLock).
    pub heartbeat: Option<Duration>,
    /// Keeps a dedupe store keyed by message id (IP-1).
    pub idempotent: bool,
    /// What its effect does to the row of the message's order key.
    pub effect: EffectKind,
    /// Its set is conditional on the row's version (only if newer): a stale update is dropped.
    pub version_check: bool,
    /// A poison message fails with a permanent error (a payload it cannot parse, such as a
    /// schema it does not know), instead of crashing it.
    pub poison_fails: bool,
    /// A circuit breaker around its dependency calls; it pauses while the breaker is open.
    pub breaker: Option<crate::breaker::BreakerSpec>,
    /// After a crash, come back this much later; `None` stays down until restarted.
    pub restart_after: Option<Duration>,
    /// Acts only on script steps.
    pub manual: bool,
    /// An autoscaled instance that starts on standby, taking nothing until scaled up.
    pub standby: bool,
    /// What it does with a message beyond processing it: answer a request, read a reply,
    /// run a saga step (workflows).
    pub role: ConsumerRole,
}

/// Scales a group of identical consumer instances on their queue's ready depth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoscaleSpec {
    pub queue: u32,
    /// The instances, in scale-up order; the first `min` start active.
    pub instances: Vec<u32>,
    pub min: u32,
    pub scale_up_above: u32,
    pub add: u32,
    pub scale_down_below: u32,
    pub remove: u32,
    pub check_every: Duration,
}

/// A distribution of durations (processing, network hops), in microseconds. `Normal` is folded
/// at zero, `|N(mean, sd)|`, as BO-3's network delay is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dist {
    Constant(Duration),
    Uniform { min: Duration, max: Duration },
    Exponential { mean: Duration },
    Normal { mean: Duration, sd: Duration },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DependencySpec {
    pub name: String,
    pub error_rate: Ratio,
    /// Sorted, non-overlapping `[from, to)` windows when every call fails (a 503).
    pub outages: Vec<(SimTime, SimTime)>,
    /// Calls per second it accepts, from a bucket of one second's worth; the rest get a 429.
    pub rate_limit_per_s: Option<u32>,
    /// One row with a version (BO-3): a call reads it, then writes it only if the version is
    /// unchanged, else a conflict. Each hop of the call (the read, its reply, the write, and
    /// a conflict's answer) takes a draw from this.
    pub optimistic: Option<Dist>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ScriptStep {
    pub at: SimTime,
    pub op: Op,
}

/// What a consumer's effect does, for the checkers: any effect counts both a repeat and an
/// effect out of order. An increment is not idempotent but is commutative, so order does not
/// matter; a set (write the message's value to its order key's row) is naturally idempotent
/// (IP-1) but not commutative: repeating the newest write changes nothing, and writing an older
/// value after a newer one is a stale write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EffectKind {
    Any,
    Increment,
    Set,
}

/// An explicit operation, for exact tutorials and tests. Messages are named by the script.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Send {
        queue: u32,
        name: Option<u32>,
        group: Option<u32>,
        dedup_id: Option<String>,
        ttl: Option<Duration>,
        delay: Option<Duration>,
        poison: bool,
        /// A resend of the named earlier message: the same business identity (and, unless it
        /// gives its own, the same deduplication id).
        resend: Option<u32>,
    },
    Receive {
        consumer: u32,
        queue: u32,
        max: u32,
    },
    Ack {
        consumer: u32,
        name: u32,
        multiple: bool,
    },
    /// basic.nack, or basic.reject when `reject` (RMQ-5, RMQ-17).
    Nack {
        consumer: u32,
        name: u32,
        requeue: bool,
        reject: bool,
        /// And every delivery the consumer holds before it (RMQ-51).
        multiple: bool,
    },
    /// basic.cancel (RMQ-53).
    Cancel {
        consumer: u32,
    },
    Abandon {
        consumer: u32,
        name: u32,
    },
    ChangeVisibility {
        consumer: u32,
        name: u32,
        timeout: Duration,
    },
    RenewLock {
        consumer: u32,
        name: u32,
    },
    DeadLetter {
        consumer: u32,
        name: u32,
    },
    Crash {
        consumer: u32,
    },
    Restart {
        consumer: u32,
    },
    /// The consumer gets a fix: poison messages no longer crash it.
    DeployFix {
        consumer: u32,
    },
    /// From now on the consumer's work takes this long.
    SetProcessing {
        consumer: u32,
        processing: Dist,
    },
    /// From now on the consumer's attempts fail (or crash, or hang) with these odds.
    SetOutcomes {
        consumer: u32,
        outcomes: Outcomes,
    },
    /// The producer's next message is poison.
    PoisonNext {
        producer: u32,
    },
    Redrive {
        from: u32,
        to: u32,
        rate_per_s: Option<u32>,
    },
    /// basic.publish: routed by the exchange, one message per queue reached (RMQ-24).
    Publish {
        route: crate::exchange::Route,
        name: Option<u32>,
        mandatory: bool,
        ttl: Option<Duration>,
    },
    /// A stream group's member (0-based) crashes: it stops at once, and the coordinator
    /// notices at its session timeout.
    CrashMember {
        group: u32,
        member: u32,
    },
    RestartMember {
        group: u32,
        member: u32,
    },
    /// The member leaves cleanly: it finishes its batch, commits, and sends LeaveGroup.
    RemoveMember {
        group: u32,
        member: u32,
    },
    /// A new member joins the group.
    AddMember {
        group: u32,
    },
    /// An operator resets the group's committed offsets to the log start, to replay; refused
    /// while any member is in the group.
    ResetOffsets {
        group: u32,
    },
    /// A requester instance dies for good: its reply reader stops, its producer stops, and a
    /// local pending-request table is lost with it.
    KillRequester {
        system: u32,
        instance: u32,
    },
    DependencyDown {
        dependency: u32,
    },
    DependencyUp {
        dependency: u32,
    },
    /// Dead letter `msg` goes back to the queue it died in as a new message with its business
    /// key, its payload fixed first with `edit` (no longer poison). Nothing happens unless it
    /// waits in a dead-letter queue when the step comes.
    Resubmit {
        msg: u32,
        edit: bool,
    },
    /// A fault: message `msg`'s delivery, on its way to its consumer, is lost. Nothing
    /// happens unless it is on its way (a network delay, a lease) when the fault comes.
    DropDelivery {
        msg: u32,
    },
    /// A fault: the broker delivers message `msg` again while its consumer holds it (SQS-5,
    /// a Service Bus lock lost; on RabbitMQ the consumer's connection drops, RMQ-52).
    /// Nothing happens unless its consumer holds it under a lease, on a queue that can
    /// deliver twice (not SQS FIFO).
    DuplicateDelivery {
        msg: u32,
    },
}

impl Scenario {
    /// Parses and validates a scenario. Never panics; every error names its path.
    pub fn from_json(text: &str) -> Result<Scenario, ScenarioError> {
        validate::from_json(text)
    }

    /// A live input (a script step without `at_ms`) checked against this scenario's names:
    /// crash or restart a consumer, take a dependency down, poison the next message, crash a
    /// group member, kill a requester… Errors name the path, as `input.consumer`.
    pub fn live_op(&self, json: &str) -> Result<Op, ScenarioError> {
        validate::live_op(self, json)
    }

    /// The most messages this scenario can publish (fixed and scripted schedules exactly,
    /// Poisson by its expectation; the engine also stops producers at `limits::MESSAGES_MAX`).
    pub fn messages_bound(&self) -> u64 {
        let end = self.end();
        // A script's publish reaches at most every queue (RMQ-24).
        let copies = |s: &ScriptStep| match s.op {
            Op::Send { .. } => 1,
            Op::Publish { .. } => self.queues.len() as u64,
            _ => 0,
        };
        let sends = self.script.iter().map(copies).sum::<u64>();
        // A publish to an exchange becomes one message per queue it reaches (RMQ-24).
        let bound = |p: &ProducerSpec| {
            schedule_bound(&p.schedule, end).saturating_mul(p.publish.as_ref().map_or(1, |x| u64::from(x.fanout)))
        };
        self.producers.iter().map(bound).fold(sends, u64::saturating_add)
    }

    pub fn end(&self) -> SimTime {
        SimTime::ZERO.after(self.duration)
    }

    pub fn queue_index(&self, name: &str) -> Option<u32> {
        self.queues.iter().position(|q| q.name == name).map(index_u32)
    }

    /// The hop of the optimistic row consumer `c` calls, if its dependency is one (BO-3).
    pub fn row_hop(&self, c: u32) -> Option<Dist> {
        self.consumers[c as usize].dependency.and_then(|d| self.dependencies[d as usize].optimistic)
    }
}

pub(crate) fn schedule_bound(schedule: &Schedule, end: SimTime) -> u64 {
    let within = |start: SimTime, every: Duration| -> u64 {
        if start > end {
            0
        } else {
            end.since(start).as_micros() / every.as_micros().max(1) + 1
        }
    };
    match schedule {
        Schedule::FixedRate { interval, start, count } => count.unwrap_or(u64::MAX).min(within(*start, *interval)),
        Schedule::Poisson { mean_interval, start, count } => {
            count.unwrap_or(u64::MAX).min(within(*start, *mean_interval))
        }
        Schedule::Scripted { at } => at.iter().filter(|t| **t <= end).count() as u64,
    }
}

/// Indices are bounded by the limits above, so they always fit in u32.
pub(crate) fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------------------------
// Presets: every file in scenarios/, embedded at build time (see build.rs).

/// A built-in scenario: its file stem as id, and its JSON text.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    pub id: &'static str,
    pub json: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/presets.rs"));

/// All presets, ordered by id.
pub fn presets() -> &'static [Preset] {
    PRESETS
}

pub fn preset(id: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.id == id)
}

/// What a scenario is mostly about: the page's catalog groups, and the beat tests' families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Queues,
    Streams,
    Workflows,
}

impl Family {
    pub fn of(s: &Scenario) -> Family {
        if !s.sagas.is_empty() || !s.request_reply.is_empty() {
            Family::Workflows
        } else if !s.topics.is_empty() {
            Family::Streams
        } else {
            Family::Queues
        }
    }

    /// A test for scenarios of this family.
    pub fn test(self) -> fn(&Scenario) -> bool {
        match self {
            Family::Queues => |s| Family::of(s) == Family::Queues,
            Family::Streams => |s| Family::of(s) == Family::Streams,
            Family::Workflows => |s| Family::of(s) == Family::Workflows,
        }
    }
}
