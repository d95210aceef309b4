//! The trace is the product: tests snapshot it, the CLI prints it, the page animates it.
//! `TraceEvent` is a closed set. Each event has one readable line (`crate::readable::Line`) and a fixed binary
//! encoding that feeds the trace hash, so the hash is the same on every target and does not
//! depend on how lines are worded.

use crate::time::SimTime;
use serde::ser::{Serialize, SerializeMap, Serializer};

pub use crate::ids::{ConsumerId, MemberId, MsgId, ProducerId, QueueId};
/// The producer id of messages the script sends.
pub const SCRIPT: ProducerId = ProducerId(u32::MAX);
/// The producer id of the extra copies a dead-letter exchange makes when it routes a dead
/// letter to several queues (RMQ-24, RMQ-39).
pub const DEAD_LETTERING: ProducerId = ProducerId(u32::MAX - 3);
/// The producer id of messages a consumer republishes to a parking lot when its retry loop
/// gives up (`RetryVia::DeadLetter`).
pub const REPUBLISHED: ProducerId = ProducerId(u32::MAX - 4);

/// Declares a closed, field-less enum with a stable code (for the hash) and a name (for
/// lines and JSON) per variant.
macro_rules! reasons {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal, $text:literal;)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name { $($(#[$vdoc])* $variant,)+ }
        impl $name {
            /// Every variant's code and name, for narration that names one (`markers[].on`).
            pub const TEXTS: &'static [(u8, &'static str)] = &[$(($code, $text),)+];
            /// Every variant's Rust name and code: the page's fold matches on codes by these.
            pub const VARIANTS: &'static [(&'static str, u8)] = &[$((stringify!($variant), $code),)+];
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
        /// Its process was killed.
        Killed = 3, "killed";
    }
}

reasons! {
    /// Why a delivered message went back to its queue.
    ReturnReason {
        /// RabbitMQ basic.nack with requeue=true (RMQ-5).
        Nacked = 0, "nacked, requeue";
        /// Service Bus Abandon (ASB-1).
        Abandoned = 1, "abandoned";
        /// The visibility timeout or lock ran out (SQS-2, ASB-5).
        LeaseExpired = 2, "lease expired";
        /// SQS ChangeMessageVisibility to 0 (SQS-4d).
        MadeVisible = 3, "visibility set to 0";
        /// The consumer crashed and its channel closed (RMQ-7).
        ChannelClosed = 4, "channel closed";
        /// RabbitMQ basic.reject with requeue=true (RMQ-5): a failed delivery (RMQ-17).
        Rejected = 5, "rejected, requeue";
        /// RabbitMQ's consumer timeout closed the channel (RMQ-9): the late delivery and every
        /// other unacked one on it come back.
        ConsumerTimeout = 6, "consumer timeout";
        /// A fault: the broker lost the lease its consumer still works under, and delivers the
        /// message again (an SQS standard queue's duplicate, SQS-5; a Service Bus lock lost).
        /// The first copy's settle is refused. (RabbitMQ's way is a connection drop: ChannelClosed.)
        Duplicated = 7, "delivered again while held";
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
        /// Service Bus, dead-lettering on expiration: its own reason (ASB-6).
        TtlExpired = 8, "TTLExpiredException";
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
        /// Dead-lettered back into a queue it died in, with no rejection in between (RMQ-46).
        DeadLetterCycle = 4, "dead-letter cycle: dropped";
        /// Its dead-letter exchange routed it to no queue (RMQ-39).
        DeadLetterUnroutable = 5, "dead letter routed to no queue";
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
        /// The row changed between the read and the conditional write (optimistic
        /// concurrency, BO-3; HTTP's 412 Precondition Failed).
        Conflict = 5, "version conflict (412)";
    }
}

reasons! {
    /// A consumer's circuit breaker's state (CB-1).
    BreakerPhase {
        Closed = 0, "closed";
        Open = 1, "open";
        HalfOpen = 2, "half-open";
    }
}

reasons! {
    /// A consumer group's state (the classic group coordinator's names).
    GroupPhase {
        Empty = 0, "Empty";
        PreparingRebalance = 1, "PreparingRebalance";
        CompletingRebalance = 2, "CompletingRebalance";
        Stable = 3, "Stable";
    }
}

reasons! {
    /// What happened to a member of a consumer group.
    MemberChange {
        Joined = 0, "joined";
        Left = 1, "left the group";
        Crashed = 2, "crashed";
        /// The coordinator removed it: its session timed out, or it missed a rebalance.
        Removed = 3, "removed by the coordinator";
        Restarted = 4, "restarted";
        /// KC-14: it spent longer than `max.poll.interval.ms` between polls, so its client
        /// left the group; it does not know yet and goes on with its batch.
        Evicted = 5, "left: max.poll.interval exceeded";
    }
}

reasons! {
    /// Why a member gave up a partition.
    RevokeReason {
        Rebalance = 0, "revoked for a rebalance";
        /// KC-3: taken away without a chance to commit (session timeout).
        Lost = 1, "lost";
        Left = 2, "given up on leaving";
    }
}

reasons! {
    /// Why records a group never handled are behind it.
    LossReason {
        /// Committed before processing, then the member died (at-most-once, KC-6).
        CommittedUnprocessed = 0, "committed before processing, never processed";
        /// Deleted by retention before the group read them; the offset reset skipped them.
        Retention = 1, "deleted by retention before being read";
    }
}

reasons! {
    /// How a group's member handled a record.
    RecordOutcome {
        Processed = 0, "processed";
        /// Failed; forwarded to the next retry topic.
        Retried = 1, "failed, sent to retry";
        /// Failed its last retry; forwarded to the dead-letter topic.
        DeadLettered = 2, "failed, dead-lettered";
        /// Failed; the member tries it again where it stands, after a backoff, and nothing
        /// behind it on its partitions moves.
        RetryingInPlace = 3, "failed, retrying in place";
    }
}

reasons! {
    /// Why a reply found no pending request.
    UnmatchedReason {
        /// Its requester is dead and nobody reads its reply queue.
        RequesterDead = 0, "its requester is dead";
        /// The instance that read it does not hold the request in its table.
        NotInTable = 1, "not in this requester's pending table";
        /// Its request had timed out already.
        Late = 2, "late: its request had timed out";
    }
}

reasons! {
    /// A line of a saga's log.
    SagaNote {
        Started = 0, "started";
        StepDone = 1, "step done";
        StepFailed = 2, "step failed";
        Compensated = 3, "compensated";
        /// A duplicate reached a handler that is not idempotent.
        AppliedTwice = 4, "step ran twice";
        Completed = 5, "completed";
        FullyCompensated = 6, "fully compensated";
        Stuck = 7, "stuck";
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
    /// A consumer with a version check dropped an update its row already has a newer (or the
    /// same) version of: `newer` is the message whose write is there (IP-1, made safe for order).
    StaleDropped {
        at: SimTime,
        msg: MsgId,
        consumer: ConsumerId,
        key: u32,
        newer: MsgId,
    },
    /// Settled and deleted.
    Acked {
        at: SimTime,
        msg: MsgId,
        queue: QueueId,
        consumer: ConsumerId,
    },
    /// A message reached its queue through `exchange`, with routing `key` (an index into
    /// the topology's keys), by `binding` (an index into the scenario's bindings; `BY_NAME`
    /// through the default exchange).
    Routed {
        at: SimTime,
        msg: MsgId,
        exchange: u32,
        key: u32,
        binding: u32,
    },
    /// A publish to `exchange` with routing key `key` reached no queue: dropped, or returned
    /// to its producer when it was `mandatory` (RMQ-34, RMQ-35).
    Unroutable {
        at: SimTime,
        producer: ProducerId,
        exchange: u32,
        key: u32,
        returned: bool,
    },
    /// Processing succeeded on a message acked on receipt: nothing is left to settle.
    Processed {
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
    /// A fault: the delivery never reached its consumer. The broker still counts it as
    /// delivered: the message stays in flight until its lease runs out (SQS-2, ASB-5; on
    /// RabbitMQ the consumer timeout, RMQ-9, holding a prefetch slot until then).
    DeliveryLost {
        at: SimTime,
        msg: MsgId,
        consumer: ConsumerId,
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
    /// An alert's value went above its bound (`firing`), or came back to it or below.
    AlertChanged {
        at: SimTime,
        alert: u32,
        firing: bool,
        value: u64,
    },
    /// A consumer's circuit breaker changed state: opened at the failure rate of its window
    /// (CB-4), half-open when its wait was over (CB-6), or open or closed again on its trial
    /// calls (CB-7). `failure_rate_pct` is the rate that decided it (0 for half-open).
    BreakerChanged {
        at: SimTime,
        consumer: ConsumerId,
        dependency: u32,
        phase: BreakerPhase,
        failure_rate_pct: u32,
    },
    /// A record was appended to a partition's log at `offset`. `key` is `u32::MAX` for a
    /// null key; `producer` is `u32::MAX - 1` for a record a group forwarded to a retry or
    /// dead-letter topic. `record` is the logical record, the same through retries.
    RecordAppended {
        at: SimTime,
        topic: u32,
        partition: u32,
        offset: u64,
        record: u32,
        key: u32,
        producer: ProducerId,
        tombstone: bool,
    },
    /// A poll returned `count` records of a partition, from `from`.
    RecordsFetched {
        at: SimTime,
        group: u32,
        member: MemberId,
        topic: u32,
        partition: u32,
        from: u64,
        count: u32,
    },
    /// A member started on a record; done at `done_at`.
    RecordStarted {
        at: SimTime,
        group: u32,
        member: MemberId,
        topic: u32,
        partition: u32,
        offset: u64,
        done_at: SimTime,
    },
    /// A member finished a record; `times` is how often the group has handled this offset.
    RecordDone {
        at: SimTime,
        group: u32,
        member: MemberId,
        topic: u32,
        partition: u32,
        offset: u64,
        record: u32,
        times: u32,
        outcome: RecordOutcome,
    },
    /// The group's committed offset for a partition: the next record to read (KC-5).
    OffsetCommitted {
        at: SimTime,
        group: u32,
        member: MemberId,
        topic: u32,
        partition: u32,
        offset: u64,
    },
    /// KC-15: a member the group has rebalanced without tried to commit: the commit fails
    /// (`CommitFailedException`), and what it processed will be processed again.
    CommitFailed {
        at: SimTime,
        group: u32,
        member: MemberId,
        topic: u32,
        partition: u32,
        offset: u64,
    },
    /// An operator reset the group's committed offset for a partition to the log start, to
    /// replay it (`kafka-consumer-groups --reset-offsets --to-earliest`); only an inactive
    /// (empty) group's offsets can be reset.
    OffsetsReset {
        at: SimTime,
        group: u32,
        topic: u32,
        partition: u32,
        offset: u64,
    },
    /// A reset of the group's offsets was refused: `members` are still in the group (the tool
    /// says the group must be inactive).
    OffsetsResetRefused {
        at: SimTime,
        group: u32,
        members: u32,
    },
    /// `count` records in `[from, to)` the group will never handle.
    RecordsLost {
        at: SimTime,
        group: u32,
        topic: u32,
        partition: u32,
        from: u64,
        to: u64,
        count: u32,
        reason: LossReason,
    },
    GroupChanged {
        at: SimTime,
        group: u32,
        phase: GroupPhase,
        generation: i32,
    },
    MemberChanged {
        at: SimTime,
        group: u32,
        member: MemberId,
        change: MemberChange,
    },
    /// A member took a partition in `generation`, reading from `offset`.
    PartitionAssigned {
        at: SimTime,
        group: u32,
        member: MemberId,
        topic: u32,
        partition: u32,
        generation: u32,
        offset: u64,
    },
    PartitionRevoked {
        at: SimTime,
        group: u32,
        member: MemberId,
        topic: u32,
        partition: u32,
        reason: RevokeReason,
    },
    /// Retention deleted the log below `log_start` (KC-11, KC-12).
    SegmentsDeleted {
        at: SimTime,
        topic: u32,
        partition: u32,
        log_start: u64,
    },
    /// The cleaner removed `removed` superseded records; the log is clean below `cleaned_to`.
    Compacted {
        at: SimTime,
        topic: u32,
        partition: u32,
        removed: u32,
        cleaned_to: u64,
    },
    /// A queue consumer applied `msg` after a later message of the same order key, `after`.
    MessageOutOfOrder {
        at: SimTime,
        msg: MsgId,
        queue: QueueId,
        order_key: u32,
        after: MsgId,
    },
    /// A group processed `record` after a newer record of the same key, `after`.
    OrderViolated {
        at: SimTime,
        group: u32,
        key: u32,
        record: u32,
        after: u32,
    },
    /// A requester sent a request under a fresh correlation id (`attempt` 0 is the first).
    RequestSent {
        at: SimTime,
        msg: MsgId,
        system: u32,
        requester: u32,
        corr: u32,
        attempt: u32,
    },
    /// A requester matched a reply to its pending request.
    ReplyMatched {
        at: SimTime,
        msg: MsgId,
        system: u32,
        requester: u32,
        corr: u32,
        request: MsgId,
    },
    /// A reply nobody could match.
    ReplyUnmatched {
        at: SimTime,
        msg: MsgId,
        system: u32,
        requester: u32,
        corr: u32,
        reason: UnmatchedReason,
    },
    RequestTimedOut {
        at: SimTime,
        system: u32,
        requester: u32,
        corr: u32,
        retried: bool,
    },
    RequesterKilled {
        at: SimTime,
        system: u32,
        requester: u32,
    },
    /// A line of a saga's log: instance `instance` of saga block `saga`, at `step`.
    SagaEvent {
        at: SimTime,
        saga: u32,
        instance: u32,
        step: u32,
        note: SagaNote,
    },
    /// A producer will send no more.
    ProducerStopped {
        at: SimTime,
        producer: ProducerId,
        reason: StopReason,
    },
}

impl TraceEvent {
    #[inline(always)]
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
            | StaleDropped { at, .. }
            | Acked { at, .. }
            | Processed { at, .. }
            | Routed { at, .. }
            | Unroutable { at, .. }
            | AckRefused { at, .. }
            | Returned { at, .. }
            | DeadLettered { at, .. }
            | Expired { at, .. }
            | Dropped { at, .. }
            | Redriven { at, .. }
            | ReceivedNothing { at, .. }
            | DeliveryLost { at, .. }
            | ConsumerCrashed { at, .. }
            | ConsumerRestarted { at, .. }
            | Scaled { at, .. }
            | DependencyChanged { at, .. }
            | BreakerChanged { at, .. }
            | AlertChanged { at, .. }
            | OffsetsReset { at, .. }
            | OffsetsResetRefused { at, .. }
            | RecordAppended { at, .. }
            | RecordsFetched { at, .. }
            | RecordStarted { at, .. }
            | RecordDone { at, .. }
            | OffsetCommitted { at, .. }
            | CommitFailed { at, .. }
            | RecordsLost { at, .. }
            | GroupChanged { at, .. }
            | MemberChanged { at, .. }
            | PartitionAssigned { at, .. }
            | PartitionRevoked { at, .. }
            | SegmentsDeleted { at, .. }
            | Compacted { at, .. }
            | OrderViolated { at, .. }
            | MessageOutOfOrder { at, .. }
            | RequestSent { at, .. }
            | ReplyMatched { at, .. }
            | ReplyUnmatched { at, .. }
            | RequestTimedOut { at, .. }
            | RequesterKilled { at, .. }
            | SagaEvent { at, .. }
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
            StaleDropped { .. } => "stale_dropped",
            Acked { .. } => "acked",
            Processed { .. } => "processed",
            Routed { .. } => "routed",
            Unroutable { .. } => "unroutable",
            AckRefused { .. } => "ack_refused",
            Returned { .. } => "returned",
            DeadLettered { .. } => "dead_lettered",
            Expired { .. } => "expired",
            Dropped { .. } => "dropped",
            Redriven { .. } => "redriven",
            ReceivedNothing { .. } => "received_nothing",
            DeliveryLost { .. } => "delivery_lost",
            ConsumerCrashed { .. } => "consumer_crashed",
            ConsumerRestarted { .. } => "consumer_restarted",
            Scaled { .. } => "scaled",
            DependencyChanged { .. } => "dependency_changed",
            BreakerChanged { .. } => "breaker_changed",
            AlertChanged { .. } => "alert_changed",
            OffsetsReset { .. } => "offsets_reset",
            OffsetsResetRefused { .. } => "offsets_reset_refused",
            ProducerStopped { .. } => "producer_stopped",
            RequestSent { .. } => "request_sent",
            ReplyMatched { .. } => "reply_matched",
            ReplyUnmatched { .. } => "reply_unmatched",
            RequestTimedOut { .. } => "request_timed_out",
            RequesterKilled { .. } => "requester_killed",
            SagaEvent { .. } => "saga_event",
            RecordAppended { .. } => "record_appended",
            RecordsFetched { .. } => "records_fetched",
            RecordStarted { .. } => "record_started",
            RecordDone { .. } => "record_done",
            OffsetCommitted { .. } => "offset_committed",
            CommitFailed { .. } => "commit_failed",
            RecordsLost { .. } => "records_lost",
            GroupChanged { .. } => "group_changed",
            MemberChanged { .. } => "member_changed",
            PartitionAssigned { .. } => "partition_assigned",
            PartitionRevoked { .. } => "partition_revoked",
            SegmentsDeleted { .. } => "segments_deleted",
            Compacted { .. } => "compacted",
            OrderViolated { .. } => "order_violated",
            MessageOutOfOrder { .. } => "message_out_of_order",
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
            | StaleDropped { msg, .. }
            | Acked { msg, .. }
            | Processed { msg, .. }
            | Routed { msg, .. }
            | AckRefused { msg, .. }
            | Returned { msg, .. }
            | DeadLettered { msg, .. }
            | Expired { msg, .. }
            | Dropped { msg, .. }
            | Redriven { msg, .. }
            | DeliveryLost { msg, .. }
            | MessageOutOfOrder { msg, .. }
            | RequestSent { msg, .. }
            | ReplyMatched { msg, .. }
            | ReplyUnmatched { msg, .. } => Some(msg),
            Deduplicated { .. }
            | Unroutable { .. }
            | ReceivedNothing { .. }
            | ConsumerCrashed { .. }
            | ConsumerRestarted { .. }
            | Scaled { .. }
            | DependencyChanged { .. }
            | BreakerChanged { .. }
            | AlertChanged { .. }
            | OffsetsReset { .. }
            | OffsetsResetRefused { .. }
            | RecordAppended { .. }
            | RecordsFetched { .. }
            | RecordStarted { .. }
            | RecordDone { .. }
            | OffsetCommitted { .. }
            | CommitFailed { .. }
            | RecordsLost { .. }
            | GroupChanged { .. }
            | MemberChanged { .. }
            | PartitionAssigned { .. }
            | PartitionRevoked { .. }
            | SegmentsDeleted { .. }
            | Compacted { .. }
            | OrderViolated { .. }
            | RequestTimedOut { .. }
            | RequesterKilled { .. }
            | SagaEvent { .. }
            | ProducerStopped { .. } => None,
        }
    }

    /// Visits every field in a fixed order: the one place that lists each event's fields, for
    /// both the hash and the JSON form.
    #[inline(always)]
    // long: the one list of every event's fields: an exhaustive match, one arm per event
    pub(crate) fn fields(&self, v: &mut impl FieldVisitor) {
        use TraceEvent::*;
        match *self {
            Published { msg, producer, queue, arrives_at, .. } => {
                v.id("msg", msg.0).id("producer", producer.0).id("queue", queue.0).time("arrives_at_ms", arrives_at);
            }
            Deduplicated { queue, original, .. } => {
                v.id("queue", queue.0).id("original", original.0);
            }
            Enqueued { msg, queue, depth, .. } => {
                v.id("msg", msg.0).id("queue", queue.0).id("depth", depth);
            }
            Delayed { msg, queue, until, .. } => {
                v.id("msg", msg.0).id("queue", queue.0).time("until_ms", until);
            }
            Delivered { msg, queue, consumer, receipt, receive_count, lease_until, arrives_at, .. } => {
                v.id("msg", msg.0).id("queue", queue.0).id("consumer", consumer.0).id("receipt", receipt);
                v.id("receive_count", receive_count)
                    .time("lease_until_ms", lease_until)
                    .time("arrives_at_ms", arrives_at);
            }
            AutoAcked { msg, consumer, .. } => {
                v.id("msg", msg.0).id("consumer", consumer.0);
            }
            ProcessingStarted { msg, consumer, done_at, .. } => {
                v.id("msg", msg.0).id("consumer", consumer.0).time("done_at_ms", done_at);
            }
            LeaseExtended { msg, consumer, until, .. } => {
                v.id("msg", msg.0).id("consumer", consumer.0).time("until_ms", until);
            }
            Failed { msg, consumer, error, attempt, .. } => {
                v.id("msg", msg.0).id("consumer", consumer.0).reason("error", error.code(), error.as_str());
                v.id("attempt", attempt);
            }
            EffectApplied { msg, consumer, key, times, .. } => {
                v.id("msg", msg.0).id("consumer", consumer.0).id("key", key).id("times", times);
            }
            DuplicateSuppressed { msg, consumer, key, .. } => {
                v.id("msg", msg.0).id("consumer", consumer.0).id("key", key);
            }
            StaleDropped { msg, consumer, key, newer, .. } => {
                v.id("msg", msg.0).id("consumer", consumer.0).id("key", key).id("newer", newer.0);
            }
            Acked { msg, queue, consumer, .. } | Processed { msg, queue, consumer, .. } => {
                v.id("msg", msg.0).id("queue", queue.0).id("consumer", consumer.0);
            }
            AckRefused { msg, consumer, receipt, .. } => {
                v.id("msg", msg.0).id("consumer", consumer.0).id("receipt", receipt);
            }
            Returned { msg, queue, consumer, reason, .. } => {
                v.id("msg", msg.0).id("queue", queue.0).id("consumer", consumer.0);
                v.reason("reason", reason.code(), reason.as_str());
            }
            DeadLettered { msg, from, dlq, reason, .. } => {
                v.id("msg", msg.0).id("from", from.0).id("dlq", dlq.0).reason("reason", reason.code(), reason.as_str());
            }
            Expired { msg, queue, .. } => {
                v.id("msg", msg.0).id("queue", queue.0);
            }
            Dropped { msg, queue, reason, .. } => {
                v.id("msg", msg.0).id("queue", queue.0).reason("reason", reason.code(), reason.as_str());
            }
            Redriven { msg, new_msg, to, .. } => {
                v.id("msg", msg.0).id("new_msg", new_msg.0).id("to", to.0);
            }
            ReceivedNothing { consumer, queue, .. } => {
                v.id("consumer", consumer.0).id("queue", queue.0);
            }
            DeliveryLost { msg, consumer, .. } => {
                v.id("msg", msg.0).id("consumer", consumer.0);
            }
            Routed { msg, exchange, key, binding, .. } => {
                v.id("msg", msg.0).id("exchange", exchange).id("key", key).id("binding", binding);
            }
            Unroutable { producer, exchange, key, returned, .. } => {
                v.id("producer", producer.0).id("exchange", exchange).id("key", key);
                v.reason("returned", u8::from(returned), if returned { "returned" } else { "dropped" });
            }
            ConsumerCrashed { consumer, .. } | ConsumerRestarted { consumer, .. } => {
                v.id("consumer", consumer.0);
            }
            Scaled { consumer, active, depth, .. } => {
                v.id("consumer", consumer.0).reason(
                    "active",
                    u8::from(active),
                    if active { "started" } else { "draining" },
                );
                v.id("depth", depth);
            }
            DependencyChanged { dependency, up, .. } => {
                v.id("dependency", dependency).reason("up", u8::from(up), if up { "up" } else { "down" });
            }
            OffsetsReset { group, topic, partition, offset, .. } => {
                v.id("group", group).id("topic", topic).id("partition", partition).count("offset", offset);
            }
            OffsetsResetRefused { group, members, .. } => {
                v.id("group", group).id("members", members);
            }
            AlertChanged { alert, firing, value, .. } => {
                v.id("alert", alert).reason("state", u8::from(firing), if firing { "firing" } else { "resolved" });
                v.count("value", value);
            }
            BreakerChanged { consumer, dependency, phase, failure_rate_pct, .. } => {
                v.id("consumer", consumer.0).id("dependency", dependency);
                v.reason("phase", phase.code(), phase.as_str()).id("failure_rate_pct", failure_rate_pct);
            }
            ProducerStopped { producer, reason, .. } => {
                v.id("producer", producer.0).reason("reason", reason.code(), reason.as_str());
            }
            RecordAppended { topic, partition, offset, record, key, producer, tombstone, .. } => {
                v.id("topic", topic).id("partition", partition).count("offset", offset).id("record", record);
                v.id("key", key).id("producer", producer.0);
                v.reason("tombstone", u8::from(tombstone), if tombstone { "tombstone" } else { "value" });
            }
            RecordsFetched { group, member, topic, partition, from, count, .. } => {
                v.id("group", group).id("member", member.0).id("topic", topic).id("partition", partition);
                v.count("from", from).id("count", count);
            }
            RecordStarted { group, member, topic, partition, offset, done_at, .. } => {
                v.id("group", group).id("member", member.0).id("topic", topic).id("partition", partition);
                v.count("offset", offset).time("done_at_ms", done_at);
            }
            RecordDone { group, member, topic, partition, offset, record, times, outcome, .. } => {
                v.id("group", group).id("member", member.0).id("topic", topic).id("partition", partition);
                v.count("offset", offset).id("record", record).id("times", times);
                v.reason("outcome", outcome.code(), outcome.as_str());
            }
            OffsetCommitted { group, member, topic, partition, offset, .. }
            | CommitFailed { group, member, topic, partition, offset, .. } => {
                v.id("group", group).id("member", member.0).id("topic", topic).id("partition", partition);
                v.count("offset", offset);
            }
            RecordsLost { group, topic, partition, from, to, count, reason, .. } => {
                v.id("group", group).id("topic", topic).id("partition", partition).count("from", from).count("to", to);
                v.id("count", count).reason("reason", reason.code(), reason.as_str());
            }
            GroupChanged { group, phase, generation, .. } => {
                v.id("group", group).reason("phase", phase.code(), phase.as_str());
                v.id("generation", u32::try_from(generation).unwrap_or(0));
            }
            MemberChanged { group, member, change, .. } => {
                v.id("group", group).id("member", member.0).reason("change", change.code(), change.as_str());
            }
            PartitionAssigned { group, member, topic, partition, generation, offset, .. } => {
                v.id("group", group).id("member", member.0).id("topic", topic).id("partition", partition);
                v.id("generation", generation).count("offset", offset);
            }
            PartitionRevoked { group, member, topic, partition, reason, .. } => {
                v.id("group", group).id("member", member.0).id("topic", topic).id("partition", partition);
                v.reason("reason", reason.code(), reason.as_str());
            }
            SegmentsDeleted { topic, partition, log_start, .. } => {
                v.id("topic", topic).id("partition", partition).count("log_start", log_start);
            }
            Compacted { topic, partition, removed, cleaned_to, .. } => {
                v.id("topic", topic).id("partition", partition).id("removed", removed).count("cleaned_to", cleaned_to);
            }
            OrderViolated { group, key, record, after, .. } => {
                v.id("group", group).id("key", key).id("record", record).id("after", after);
            }
            MessageOutOfOrder { msg, queue, order_key, after, .. } => {
                v.id("msg", msg.0).id("queue", queue.0).id("order_key", order_key).id("after", after.0);
            }
            RequestSent { msg, system, requester, corr, attempt, .. } => {
                v.id("msg", msg.0)
                    .id("system", system)
                    .id("requester", requester)
                    .id("corr", corr)
                    .id("attempt", attempt);
            }
            ReplyMatched { msg, system, requester, corr, request, .. } => {
                v.id("msg", msg.0)
                    .id("system", system)
                    .id("requester", requester)
                    .id("corr", corr)
                    .id("request", request.0);
            }
            ReplyUnmatched { msg, system, requester, corr, reason, .. } => {
                v.id("msg", msg.0).id("system", system).id("requester", requester).id("corr", corr);
                v.reason("reason", reason.code(), reason.as_str());
            }
            RequestTimedOut { system, requester, corr, retried, .. } => {
                v.id("system", system).id("requester", requester).id("corr", corr);
                v.reason("retried", u8::from(retried), if retried { "retried" } else { "given up" });
            }
            RequesterKilled { system, requester, .. } => {
                v.id("system", system).id("requester", requester);
            }
            SagaEvent { saga, instance, step, note, .. } => {
                v.id("saga", saga).id("instance", instance).id("step", step).reason("note", note.code(), note.as_str());
            }
        }
    }

    /// A stable tag byte per kind, for the hash.
    #[inline(always)]
    pub(crate) fn tag(&self) -> u8 {
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
            RecordAppended { .. } => 25,
            RecordsFetched { .. } => 26,
            RecordStarted { .. } => 27,
            RecordDone { .. } => 28,
            OffsetCommitted { .. } => 29,
            RecordsLost { .. } => 30,
            GroupChanged { .. } => 31,
            MemberChanged { .. } => 32,
            PartitionAssigned { .. } => 33,
            PartitionRevoked { .. } => 34,
            SegmentsDeleted { .. } => 35,
            Compacted { .. } => 36,
            OrderViolated { .. } => 37,
            MessageOutOfOrder { .. } => 38,
            RequestSent { .. } => 39,
            ReplyMatched { .. } => 40,
            ReplyUnmatched { .. } => 41,
            RequestTimedOut { .. } => 42,
            RequesterKilled { .. } => 43,
            SagaEvent { .. } => 44,
            DeliveryLost { .. } => 45,
            Processed { .. } => 46,
            Routed { .. } => 47,
            Unroutable { .. } => 48,
            CommitFailed { .. } => 49,
            BreakerChanged { .. } => 50,
            AlertChanged { .. } => 51,
            StaleDropped { .. } => 52,
            OffsetsReset { .. } => 53,
            OffsetsResetRefused { .. } => 54,
        }
    }
}

/// What `TraceEvent::fields` calls for each field.
pub(crate) trait FieldVisitor {
    fn id(&mut self, name: &'static str, value: u32) -> &mut Self;
    /// Offsets and other counts that can pass u32.
    fn count(&mut self, name: &'static str, value: u64) -> &mut Self;
    fn time(&mut self, name: &'static str, value: SimTime) -> &mut Self;
    fn reason(&mut self, name: &'static str, code: u8, text: &'static str) -> &mut Self;
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
            fn count(&mut self, name: &'static str, value: u64) -> &mut Self {
                self.put(name, &value)
            }
            fn time(&mut self, name: &'static str, value: SimTime) -> &mut Self {
                self.put(name, &value.as_millis_f64())
            }
            fn reason(&mut self, name: &'static str, code: u8, text: &'static str) -> &mut Self {
                self.put(name, text).put(code_key(name), &code)
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

/// The JSON key of a reason's code beside its text: `reason` -> `reason_code`. The page's fold
/// matches on these codes (by `VARIANTS`), never on the text, which is for people.
fn code_key(name: &'static str) -> &'static str {
    match name {
        "reason" => "reason_code",
        "error" => "error_code",
        "outcome" => "outcome_code",
        "change" => "change_code",
        "phase" => "phase_code",
        "tombstone" => "tombstone_code",
        "up" => "up_code",
        "retried" => "retried_code",
        "note" => "note_code",
        "active" => "active_code",
        "returned" => "returned_code",
        "state" => "state_code",
        _ => "code",
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
    /// Adds one event: its tag, its time, then each field. Inline: at a call site that names
    /// the event, the matches fold away and only the words are left.
    #[inline(always)]
    pub fn add(&mut self, event: &TraceEvent) {
        self.word(u64::from(event.tag()));
        self.word(event.at().as_micros());
        event.fields(self);
    }
    #[inline(always)]
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
    fn count(&mut self, _name: &'static str, value: u64) -> &mut Self {
        self.word(value);
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
