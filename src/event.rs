//! What the components and the driver share, and nothing of theirs: the `Event`s the agenda
//! holds, the agenda itself (ordered by time, class and sequence), and the `Outbox` every
//! component answers through (timers for the agenda, `TraceEvent`s for the trace). A component
//! is lent the driver's `Ctx`: the time and the scenario, read-only, and the outbox.

use crate::scenario::Scenario;
use crate::time::{Duration, SimTime};
use crate::trace::{ConsumerId, MemberId, MsgId, ProducerId, QueueId, TraceEvent, TraceHash};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// What the agenda holds: things that will happen at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A producer sends its next message.
    Produce { producer: ProducerId },
    /// A published message reaches the broker.
    Arrive { msg: MsgId },
    /// An extended lease (visibility timeout, lock) runs out, unless extended again.
    LeaseExpiry { msg: MsgId, receipt: u32 },
    /// The leases a queue granted that are due now run out (see `Broker::due_leases`).
    LeaseCheck { queue: QueueId },
    /// A delay or backoff is over.
    Visible { msg: MsgId },
    /// A message's time to live runs out (one not on its queue's list, see `Broker::ttl_check`).
    TtlExpiry { msg: MsgId },
    /// The messages whose queue TTL (SQS retention) ends now expire.
    TtlCheck { queue: QueueId },
    /// The next message of a redrive at a rate.
    RedriveNext { from: QueueId, to: QueueId, every: Duration },
    /// A step of the scenario's script.
    Script { step: u32 },
    /// A consumer's event (`crate::consumer::Consumers::handle`).
    Consumer(ConsumerEvent),
    /// A stream's event (`crate::stream::Streams::handle`).
    Stream(StreamEvent),
    /// A request's timeout, if it is still pending.
    RequestTimeout { system: u32, corr: u32 },
}

impl Event {
    /// At equal times the broker's own timers go first, so that a message whose deadline is
    /// `t` is visible to anything else that happens at `t` (SQS-8: visible at t >= deadline).
    fn class(self) -> u8 {
        match self {
            Event::LeaseExpiry { .. }
            | Event::LeaseCheck { .. }
            | Event::Visible { .. }
            | Event::TtlExpiry { .. }
            | Event::TtlCheck { .. }
            | Event::Stream(StreamEvent::LogCleanup { .. }) => 0,
            _ => 1,
        }
    }
}

/// The consumers' events: a delivery arriving, work done, a crash, a heartbeat, a restart, and
/// the autoscalers' checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumerEvent {
    /// A delivered message reaches its consumer.
    Receive(Delivery),
    /// A consumer's work on a message is done.
    Finish(Delivery),
    /// A consumer crashes (its attempt's outcome, or a poison message).
    CrashNow { consumer: ConsumerId, epoch: u32 },
    /// A consumer extends its lease while processing.
    Heartbeat(Delivery),
    /// A crashed consumer comes back.
    Restart { consumer: ConsumerId, epoch: u32 },
    /// An autoscaler looks at its queue.
    Autoscale { scaler: u32 },
    /// A consumer's backoff, waited out with the message in hand, is over: it requeues it.
    Requeue(Delivery),
    /// A consumer's circuit breaker's open wait is over (CB-6).
    BreakerWake { consumer: ConsumerId, epoch: u32 },
}

/// One delivery as a consumer's timers name it: the consumer, the message, the lease's
/// receipt, and the consumer's incarnation (a timer of one that has since crashed is stale).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub consumer: ConsumerId,
    pub msg: MsgId,
    pub receipt: u32,
    pub epoch: u32,
}

/// The streams' events: the group coordinator's, the members' and the log cleaner's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    /// A stream consumer group starts.
    GroupStart { group: u32 },
    /// A stream member's record is done, or a record it waits for is due.
    StreamWork { group: u32, member: MemberId, epoch: u32 },
    /// The coordinator stops waiting for members to rejoin (or the initial delay is over).
    JoinDeadline { group: u32, round: u32 },
    /// The leader's SyncGroup round is done: the group is Stable.
    SyncDone { group: u32, round: u32 },
    /// A crashed member's session times out.
    SessionExpired { group: u32, member: MemberId, epoch: u32 },
    /// KC-14: `max.poll.interval.ms` after a member's poll `poll`, if it has not polled since.
    PollTimeout { group: u32, member: MemberId, epoch: u32, poll: u32 },
    /// The log cleaner's round for a topic: retention and compaction.
    LogCleanup { topic: u32 },
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Scheduled {
    pub(crate) at: SimTime,
    /// The class in the top byte, the sequence number below it: one word to compare.
    order: u64,
    pub(crate) event: Event,
}

/// Sequence numbers take the low 56 bits of `Scheduled::order`: far beyond any event budget.
const SEQ_BITS: u32 = 56;

impl Scheduled {
    fn key(&self) -> (SimTime, u64) {
        (self.at, self.order)
    }
}

// BinaryHeap is a max-heap; reverse so the earliest key pops first.
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Scheduled {}

/// Where components put what they cause: timers for the agenda, events for the trace.
#[derive(Clone, Debug, Default)]
pub struct Outbox {
    pub(crate) agenda: BinaryHeap<Scheduled>,
    /// The event being handled is still at the agenda's top: the first event it schedules
    /// takes its place, one sift instead of a pop and a push (`Sim::step` pops it otherwise).
    pub(crate) top_spent: bool,
    pub(crate) seq: u64,
    pub(crate) hash: TraceHash,
    pub(crate) trace: Vec<TraceEvent>,
    pub(crate) recording: bool,
    /// When asked (the CLI's trace): what each delivery in `trace` carried, by its index
    /// there. Off by default: it costs an allocation per delivery.
    pub(crate) deliveries: Option<Vec<(usize, crate::message::DeliveryMeta)>>,
    /// The armed beat's event anchor, if it is one (`crate::beats`).
    pub(crate) watch: Option<Box<crate::beats::Watch>>,
    /// What a beat needs looked at after an event: `beats::CAUGHT` (the anchor fired),
    /// `beats::COUNTING` (a counter is armed). One byte, so that the step tests it once.
    pub(crate) beat_poll: u8,
}

impl Outbox {
    #[inline]
    pub fn schedule(&mut self, at: SimTime, event: Event) {
        self.seq += 1;
        debug_assert!(self.seq < 1 << SEQ_BITS);
        let order = u64::from(event.class()) << SEQ_BITS | self.seq;
        let next = Scheduled { at, order, event };
        if std::mem::take(&mut self.top_spent) {
            if let Some(mut top) = self.agenda.peek_mut() {
                *top = next;
                return;
            }
        }
        self.agenda.push(next);
    }

    /// An armed beat's anchor looks at each event: out of line, so that without one the
    /// event's fields stay folded into the hash (see `TraceHash::add`).
    #[cold]
    #[inline(never)]
    fn watch_event(&mut self, event: TraceEvent) {
        if self.watch.as_mut().is_some_and(|w| w.observe(&event)) {
            self.watch = None;
            self.beat_poll |= crate::beats::CAUGHT;
        }
    }

    #[inline(always)]
    pub fn emit(&mut self, event: TraceEvent) {
        self.hash.add(&event);
        if self.watch.is_some() {
            self.watch_event(event);
        }
        if self.recording {
            self.trace.push(event);
        }
    }
}

/// What a component's handler is given: the time now (read-only), the outbox to answer
/// through, and the scenario (read-only). The driver keeps one and lends it for each event.
#[derive(Clone, Debug)]
pub struct Ctx {
    now: SimTime,
    pub out: Outbox,
    pub scenario: ReadOnly<Scenario>,
}

impl Ctx {
    pub fn new(scenario: Scenario, out: Outbox) -> Ctx {
        Ctx { now: SimTime::ZERO, out, scenario: ReadOnly(scenario) }
    }

    #[inline(always)]
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// The driver moves the clock; nothing else does.
    #[inline(always)]
    pub(crate) fn set_now(&mut self, now: SimTime) {
        self.now = now;
    }
}

/// A value a component can read and not change: it derefs, and does not deref mutably.
#[derive(Clone, Debug)]
pub struct ReadOnly<T>(T);

impl<T> ReadOnly<T> {
    /// For the checkers' tests, which break a run's scenario on purpose.
    #[cfg(test)]
    pub(crate) fn get_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> std::ops::Deref for ReadOnly<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}
