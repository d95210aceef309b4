//! The trace's vocabulary for authors: each event's name, its tag and its fields, and the
//! words of each closed set a field can hold. A beat's anchor and the validator name events
//! and fields by these.

use crate::trace::{
    BreakerPhase, DeadReason, DropReason, ErrorClass, GroupPhase, LossReason, MemberChange, RecordOutcome,
    ReturnReason, RevokeReason, SagaNote, StopReason, UnmatchedReason,
};

/// What a field of a trace event holds, so that an anchor can name it in the author's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// A plain number: an offset, a count, an attempt.
    Num,
    /// A time; an anchor cannot name one.
    Time,
    /// A message id, `4` or `"m4"`.
    Msg,
    Queue,
    Consumer,
    Producer,
    Group,
    /// A group's member, `"eager-2"`.
    Member,
    Topic,
    Dependency,
    /// An alert, by its name.
    Alert,
    Saga,
    /// A saga's step, by its service's name.
    Step,
    /// A request-reply system.
    System,
    /// A requester instance, `"local.requester-1"`.
    Requester,
    /// A RabbitMQ exchange.
    Exchange,
    /// A routing key a message is published or dead-lettered with.
    RoutingKey,
    /// One of a closed set of words (a reason, a phase), by code.
    Text(&'static [(u8, &'static str)]),
}

const UP: &[(u8, &str)] = &[(0, "down"), (1, "up")];
const FIRING: &[(u8, &str)] = &[(0, "resolved"), (1, "firing")];
const ACTIVE: &[(u8, &str)] = &[(0, "draining"), (1, "started")];
const TOMBSTONE: &[(u8, &str)] = &[(0, "value"), (1, "tombstone")];
const RETRIED: &[(u8, &str)] = &[(0, "given up"), (1, "retried")];
const RETURNED: &[(u8, &str)] = &[(0, "dropped"), (1, "returned")];

use Field::{Consumer as C, Dependency as D, Group as G, Member as M, Msg as Id, Num as N, Queue as Q, Time as T};

/// A trace event's name, its tag (`TraceEvent::tag`) and its fields in order.
pub type EventFields = (&'static str, u8, &'static [(&'static str, Field)]);

/// Every trace event by its name in the trace, with its tag and its fields in order. A test
/// holds this list to what the events serialize to.
pub const EVENTS: &[EventFields] = &[
    ("published", 1, &[("msg", Id), ("producer", Field::Producer), ("queue", Q), ("arrives_at_ms", T)]),
    ("enqueued", 2, &[("msg", Id), ("queue", Q), ("depth", N)]),
    (
        "delivered",
        3,
        &[
            ("msg", Id),
            ("queue", Q),
            ("consumer", C),
            ("receipt", N),
            ("receive_count", N),
            ("lease_until_ms", T),
            ("arrives_at_ms", T),
        ],
    ),
    ("processing_started", 4, &[("msg", Id), ("consumer", C), ("done_at_ms", T)]),
    ("acked", 5, &[("msg", Id), ("queue", Q), ("consumer", C)]),
    ("producer_stopped", 6, &[("producer", Field::Producer), ("reason", Field::Text(StopReason::TEXTS))]),
    ("deduplicated", 7, &[("queue", Q), ("original", Id)]),
    ("delayed", 8, &[("msg", Id), ("queue", Q), ("until_ms", T)]),
    ("auto_acked", 9, &[("msg", Id), ("consumer", C)]),
    ("lease_extended", 10, &[("msg", Id), ("consumer", C), ("until_ms", T)]),
    ("failed", 11, &[("msg", Id), ("consumer", C), ("error", Field::Text(ErrorClass::TEXTS)), ("attempt", N)]),
    ("effect_applied", 12, &[("msg", Id), ("consumer", C), ("key", N), ("times", N)]),
    ("duplicate_suppressed", 13, &[("msg", Id), ("consumer", C), ("key", N)]),
    ("stale_dropped", 52, &[("msg", Id), ("consumer", C), ("key", N), ("newer", Id)]),
    ("ack_refused", 14, &[("msg", Id), ("consumer", C), ("receipt", N)]),
    ("returned", 15, &[("msg", Id), ("queue", Q), ("consumer", C), ("reason", Field::Text(ReturnReason::TEXTS))]),
    ("dead_lettered", 16, &[("msg", Id), ("from", Q), ("dlq", Q), ("reason", Field::Text(DeadReason::TEXTS))]),
    ("expired", 17, &[("msg", Id), ("queue", Q)]),
    ("dropped", 18, &[("msg", Id), ("queue", Q), ("reason", Field::Text(DropReason::TEXTS))]),
    ("redriven", 19, &[("msg", Id), ("new_msg", Id), ("to", Q)]),
    ("received_nothing", 20, &[("consumer", C), ("queue", Q)]),
    ("consumer_crashed", 21, &[("consumer", C)]),
    ("consumer_restarted", 22, &[("consumer", C)]),
    ("dependency_changed", 23, &[("dependency", D), ("up", Field::Text(UP))]),
    ("offsets_reset", 53, &[("group", G), ("topic", Field::Topic), ("partition", N), ("offset", N)]),
    ("offsets_reset_refused", 54, &[("group", G), ("members", N)]),
    ("alert_changed", 51, &[("alert", Field::Alert), ("state", Field::Text(FIRING)), ("value", N)]),
    (
        "breaker_changed",
        50,
        &[("consumer", C), ("dependency", D), ("phase", Field::Text(BreakerPhase::TEXTS)), ("failure_rate_pct", N)],
    ),
    ("scaled", 24, &[("consumer", C), ("active", Field::Text(ACTIVE)), ("depth", N)]),
    (
        "record_appended",
        25,
        &[
            ("topic", Field::Topic),
            ("partition", N),
            ("offset", N),
            ("record", N),
            ("key", N),
            ("producer", Field::Producer),
            ("tombstone", Field::Text(TOMBSTONE)),
        ],
    ),
    (
        "records_fetched",
        26,
        &[("group", G), ("member", M), ("topic", Field::Topic), ("partition", N), ("from", N), ("count", N)],
    ),
    (
        "record_started",
        27,
        &[("group", G), ("member", M), ("topic", Field::Topic), ("partition", N), ("offset", N), ("done_at_ms", T)],
    ),
    (
        "record_done",
        28,
        &[
            ("group", G),
            ("member", M),
            ("topic", Field::Topic),
            ("partition", N),
            ("offset", N),
            ("record", N),
            ("times", N),
            ("outcome", Field::Text(RecordOutcome::TEXTS)),
        ],
    ),
    ("offset_committed", 29, &[("group", G), ("member", M), ("topic", Field::Topic), ("partition", N), ("offset", N)]),
    ("commit_failed", 49, &[("group", G), ("member", M), ("topic", Field::Topic), ("partition", N), ("offset", N)]),
    (
        "records_lost",
        30,
        &[
            ("group", G),
            ("topic", Field::Topic),
            ("partition", N),
            ("from", N),
            ("to", N),
            ("count", N),
            ("reason", Field::Text(LossReason::TEXTS)),
        ],
    ),
    ("group_changed", 31, &[("group", G), ("phase", Field::Text(GroupPhase::TEXTS)), ("generation", N)]),
    ("member_changed", 32, &[("group", G), ("member", M), ("change", Field::Text(MemberChange::TEXTS))]),
    (
        "partition_assigned",
        33,
        &[("group", G), ("member", M), ("topic", Field::Topic), ("partition", N), ("generation", N), ("offset", N)],
    ),
    (
        "partition_revoked",
        34,
        &[
            ("group", G),
            ("member", M),
            ("topic", Field::Topic),
            ("partition", N),
            ("reason", Field::Text(RevokeReason::TEXTS)),
        ],
    ),
    ("segments_deleted", 35, &[("topic", Field::Topic), ("partition", N), ("log_start", N)]),
    ("compacted", 36, &[("topic", Field::Topic), ("partition", N), ("removed", N), ("cleaned_to", N)]),
    ("order_violated", 37, &[("group", G), ("key", N), ("record", N), ("after", N)]),
    ("message_out_of_order", 38, &[("msg", Id), ("queue", Q), ("order_key", N), ("after", Id)]),
    (
        "request_sent",
        39,
        &[("msg", Id), ("system", Field::System), ("requester", Field::Requester), ("corr", N), ("attempt", N)],
    ),
    (
        "reply_matched",
        40,
        &[("msg", Id), ("system", Field::System), ("requester", Field::Requester), ("corr", N), ("request", Id)],
    ),
    (
        "reply_unmatched",
        41,
        &[
            ("msg", Id),
            ("system", Field::System),
            ("requester", Field::Requester),
            ("corr", N),
            ("reason", Field::Text(UnmatchedReason::TEXTS)),
        ],
    ),
    (
        "request_timed_out",
        42,
        &[("system", Field::System), ("requester", Field::Requester), ("corr", N), ("retried", Field::Text(RETRIED))],
    ),
    ("requester_killed", 43, &[("system", Field::System), ("requester", Field::Requester)]),
    (
        "saga_event",
        44,
        &[("saga", Field::Saga), ("instance", N), ("step", Field::Step), ("note", Field::Text(SagaNote::TEXTS))],
    ),
    ("delivery_lost", 45, &[("msg", Id), ("consumer", C)]),
    ("processed", 46, &[("msg", Id), ("queue", Q), ("consumer", C)]),
    ("routed", 47, &[("msg", Id), ("exchange", Field::Exchange), ("key", Field::RoutingKey), ("binding", N)]),
    (
        "unroutable",
        48,
        &[
            ("producer", Field::Producer),
            ("exchange", Field::Exchange),
            ("key", Field::RoutingKey),
            ("returned", Field::Text(RETURNED)),
        ],
    ),
];
