//! The running totals the components keep and the page, the CLI and the tests read: plain
//! integers, so that they are exact on every target.

use serde::Serialize;

/// Running totals, kept as integers so they are exact on every target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Messages sent to queues.
    pub published: u64,
    /// Records producers appended to topics (groups' forwards to retry topics not counted).
    pub records: u64,
    /// Deliveries out of a queue, and the summed time messages waited there first.
    pub deliveries: u64,
    /// Deliveries that waited at all (Erlang C's P(wait) is `waited / deliveries`).
    pub waited: u64,
    /// Summed time deliveries waited in their queue, in µs (Wq).
    pub wait_total_us: u64,
    pub effects_applied: u64,
    /// First effects of a message's key, and the summed time from its publish to that effect,
    /// in µs: the end-to-end latency, which counts what the queue wait does not (time in a
    /// consumer's prefetch buffer, retries, a stay in a DLQ until a redrive).
    pub effects_first: u64,
    pub latency_total_us: u64,
    /// Keys whose effect was applied more than once.
    pub applied_twice: u64,
    pub duplicates_suppressed: u64,
    /// Messages lost after an ack before processing.
    pub lost: u64,
    /// Leases that ran out while their consumer was still working on the message.
    pub lease_expired_mid_processing: u64,
    /// Messages whose effect came after a later message of the same order key (for a set
    /// effect, a repeat of an older write counts too: it brought back stale state).
    pub order_violations: u64,
    /// Repeats of a set effect that wrote the value already there: harmless (IP-1).
    pub harmless_repeats: u64,
    /// Updates a version check dropped: their row already had a newer (or the same) version.
    pub stale_dropped: u64,
    /// Publishes to an exchange that reached no queue: dropped (RMQ-34), or returned to a
    /// `mandatory` publisher (RMQ-35).
    pub unroutable: u64,
    pub returned: u64,
}

/// A group's counters, for the page and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GroupStats {
    pub processed: u64,
    /// Records handled more than once (at-least-once after a crash or rebalance).
    pub duplicates: u64,
    /// Records committed before they were processed, then never processed (at-most-once).
    pub lost: u64,
    /// Records deleted by retention before the group read them.
    pub lost_to_retention: u64,
    pub order_violations: u64,
    /// Failed records sent on to a retry topic.
    pub retried: u64,
    /// Failed attempts tried again where they stand (the partition waits).
    pub retried_in_place: u64,
    pub dead_lettered: u64,
    pub rebalances: u64,
    /// Partitions handed to a member other than the one that last owned them: each restarts
    /// from the last commit on a member without its state.
    pub moved: u64,
    /// Members that left because they went longer than `max.poll.interval.ms` between polls
    /// (KC-14), and commits refused because the group had gone on without them (KC-15).
    pub evictions: u64,
    pub commits_failed: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RequestStats {
    pub sent: u64,
    pub matched: u64,
    /// Replies nobody could match: their requester died, or another instance read them
    /// without the table that knows them.
    pub orphaned: u64,
    /// Replies that came after their request timed out.
    pub late: u64,
    pub timed_out: u64,
    pub retried: u64,
    /// Requests that timed out with no retry left.
    pub failed: u64,
    /// Summed time from request to matched reply, in µs.
    pub latency_total_us: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SagaStats {
    pub started: u64,
    pub completed: u64,
    pub compensated: u64,
    pub stuck: u64,
    /// Steps a duplicate made run twice (a non-idempotent handler).
    pub applied_twice: u64,
    /// Done events published twice.
    pub duplicates_sent: u64,
    /// Compensations that reached a step that had not completed: always 0 (a checker).
    pub bad_compensations: u64,
}

/// Calls made to one dependency (failed: it answered with an error, or was down).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DependencyCalls {
    pub calls: u64,
    pub failed: u64,
}
