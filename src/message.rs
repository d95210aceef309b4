//! A message's life as a closed set of states. Every message is in exactly one state at every
//! moment; only `Broker::set_state` changes it, keeping the per-queue counts, and `check`
//! recomputes everything from scratch to prove they agree.

use crate::time::{Duration, SimTime};
use crate::trace::{ConsumerId, ErrorClass, QueueId};
use serde::Serialize;

/// Where a delivered, unsettled message is on the consumer's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// On its way from the broker to the consumer.
    Delivering,
    /// Arrived; waiting for a free processing slot (prefetch > concurrency).
    Buffered,
    /// Being processed (or, for a scripted consumer, held in hand).
    Processing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgState {
    /// Sent by the producer, on its way to the broker.
    Publishing,
    /// In a queue but not yet visible: a delivery delay, or a retry's backoff.
    Delayed,
    /// Visible in a queue, waiting for a consumer.
    Ready,
    /// Visible in a dead-letter queue.
    DeadLettered,
    /// Delivered to a consumer and not settled. With ack-before-processing the broker has
    /// already forgotten it (no lease), so a crash loses it.
    InFlight { consumer: ConsumerId, phase: Phase },
    /// Acknowledged and deleted. Final.
    Acked,
    /// Its time to live ran out and it was discarded. Final.
    Expired,
    /// Lost or discarded where the configuration allows it: ack-before-processing with a
    /// crash, a drop-head overflow, a rejected publish, a reject without a DLQ. Final.
    Dropped,
    /// Redriven out of a DLQ as a new message (SQS-15). Final.
    Moved,
}

/// A state without its consumer: the key for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StateKind {
    Publishing,
    Delayed,
    Ready,
    Delivering,
    Buffered,
    Processing,
    Acked,
    DeadLettered,
    Expired,
    Dropped,
    Moved,
}

impl StateKind {
    pub const COUNT: usize = 11;

    pub const fn is_final(self) -> bool {
        matches!(self, StateKind::Acked | StateKind::Expired | StateKind::Dropped | StateKind::Moved)
    }

    pub const fn in_flight(self) -> bool {
        matches!(self, StateKind::Delivering | StateKind::Buffered | StateKind::Processing)
    }

    pub const ALL: [StateKind; StateKind::COUNT] = [
        StateKind::Publishing,
        StateKind::Delayed,
        StateKind::Ready,
        StateKind::Delivering,
        StateKind::Buffered,
        StateKind::Processing,
        StateKind::Acked,
        StateKind::DeadLettered,
        StateKind::Expired,
        StateKind::Dropped,
        StateKind::Moved,
    ];
    pub const NAMES: [&'static str; StateKind::COUNT] = [
        "publishing",
        "delayed",
        "ready",
        "delivering",
        "buffered",
        "processing",
        "acked",
        "dead_lettered",
        "expired",
        "dropped",
        "moved",
    ];
}

impl MsgState {
    pub const fn kind(self) -> StateKind {
        match self {
            MsgState::Publishing => StateKind::Publishing,
            MsgState::Delayed => StateKind::Delayed,
            MsgState::Ready => StateKind::Ready,
            MsgState::DeadLettered => StateKind::DeadLettered,
            MsgState::InFlight { phase: Phase::Delivering, .. } => StateKind::Delivering,
            MsgState::InFlight { phase: Phase::Buffered, .. } => StateKind::Buffered,
            MsgState::InFlight { phase: Phase::Processing, .. } => StateKind::Processing,
            MsgState::Acked => StateKind::Acked,
            MsgState::Expired => StateKind::Expired,
            MsgState::Dropped => StateKind::Dropped,
            MsgState::Moved => StateKind::Moved,
        }
    }

    /// The consumer holding the message, if any.
    pub const fn holder(self) -> Option<ConsumerId> {
        match self {
            MsgState::InFlight { consumer, .. } => Some(consumer),
            _ => None,
        }
    }

    pub const fn is_final(self) -> bool {
        self.kind().is_final()
    }

    /// Waiting in a queue (visible or not): these sit in a queue's ready set or delay list.
    pub fn is_queued(self) -> bool {
        matches!(self, MsgState::Delayed | MsgState::Ready | MsgState::DeadLettered)
    }

    /// The only moves a message can make. Anything else is an engine bug.
    pub const fn can_become(self, next: MsgState) -> bool {
        use MsgState::*;
        if self.is_final() {
            return false;
        }
        match (self, next) {
            (Publishing, Delayed | Ready | DeadLettered | Dropped) => true,
            (Delayed | Ready | DeadLettered, Delayed | Ready | DeadLettered | Expired | Dropped | Moved) => true,
            // Delivered into any phase: with no network delay it lands straight in a slot or the buffer.
            (Ready | DeadLettered, InFlight { .. }) => true,
            (InFlight { consumer: a, phase: p }, InFlight { consumer: b, phase: q }) => {
                a.0 == b.0
                    && matches!(
                        (p, q),
                        (Phase::Delivering, Phase::Buffered | Phase::Processing) | (Phase::Buffered, Phase::Processing)
                    )
            }
            (InFlight { .. }, Acked | Delayed | Ready | DeadLettered | Dropped) => true,
            _ => false,
        }
    }

    /// `can_become` for a message of `kind` held by `holder` (when in flight), as the broker
    /// asks it on every move: a table over kinds, which is all the answer depends on but for
    /// an in-flight message staying with its consumer.
    pub fn can_move(kind: StateKind, holder: ConsumerId, next: StateKind, next_holder: ConsumerId) -> bool {
        let same_holder = !(kind.in_flight() && next.in_flight()) || holder == next_holder;
        MOVES[kind as usize] >> next as usize & 1 == 1 && same_holder
    }

    /// The state of this kind, held by `holder` if it is in flight.
    pub const fn from_parts(kind: StateKind, holder: ConsumerId) -> MsgState {
        match kind {
            StateKind::Publishing => MsgState::Publishing,
            StateKind::Delayed => MsgState::Delayed,
            StateKind::Ready => MsgState::Ready,
            StateKind::Delivering => MsgState::InFlight { consumer: holder, phase: Phase::Delivering },
            StateKind::Buffered => MsgState::InFlight { consumer: holder, phase: Phase::Buffered },
            StateKind::Processing => MsgState::InFlight { consumer: holder, phase: Phase::Processing },
            StateKind::Acked => MsgState::Acked,
            StateKind::DeadLettered => MsgState::DeadLettered,
            StateKind::Expired => MsgState::Expired,
            StateKind::Dropped => MsgState::Dropped,
            StateKind::Moved => MsgState::Moved,
        }
    }
}

/// Per kind, the kinds it may become (bit `to`), evaluated from `can_become` at compile time.
const MOVES: [u16; StateKind::COUNT] = {
    let mut table = [0u16; StateKind::COUNT];
    let mut from = 0;
    while from < StateKind::COUNT {
        let mut to = 0;
        while to < StateKind::COUNT {
            let (a, b) = (
                MsgState::from_parts(StateKind::ALL[from], ConsumerId(0)),
                MsgState::from_parts(StateKind::ALL[to], ConsumerId(0)),
            );
            if a.can_become(b) {
                table[from] |= 1 << to;
            }
            to += 1;
        }
        from += 1;
    }
    table
};

/// A lease: which consumer holds the message, under which receipt, until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub consumer: ConsumerId,
    /// A fresh number on every delivery (SQS receipt handle, RMQ delivery tag, SB lock token).
    pub receipt: u32,
    /// When the visibility timeout or lock runs out; `SimTime::MAX` when it never does.
    pub expires_at: SimTime,
    pub received_at: SimTime,
}

/// One message's record: 64 bytes, because a run keeps every message's to the end (the
/// summary, the inspector and the checkers read them) and a run of 10^6 messages spends a
/// good part of its time faulting in the pages they fill. What only some messages carry (FIFO
/// groups, failures, retries) lives beside it, in `Extra`.
#[derive(Clone, Debug)]
pub struct Message {
    /// Its place in the queue's order; a returned message goes back to this place.
    pub pos: u64,
    /// When it was last made visible, for the time it waits in the queue.
    pub available_at: SimTime,
    /// The earlier of the queue's and the message's TTL, from when it was sent.
    pub expires_at: SimTime,
    /// The current lease's deadline, while it has one (`receipt != 0`).
    pub(crate) lease_until: SimTime,
    /// Its last receive (the current lease's start); `SimTime::MAX` before the first.
    pub(crate) last_received_at: SimTime,
    pub queue: QueueId,
    /// The business identity a consumer deduplicates on (IP-1): the producer's message id.
    /// It survives a redrive, which makes a new message (SQS-15).
    pub key: u32,
    /// Deliveries so far: SQS ApproximateReceiveCount, SB DeliveryCount, RMQ deliveries.
    pub receive_count: u32,
    /// The current lease's receipt; 0 when it has no lease (receipts count from 1).
    pub(crate) receipt: u32,
    /// Its `Extra`, as an index + 1 into the broker's table; 0 when it has none.
    pub(crate) extra: u32,
    /// Its state, as its kind and (in flight) its consumer; `state()` puts them together.
    /// Apart, a move is counted and checked without a match. Only `Broker::set_state` and a
    /// new message write them. (`limits::CONSUMERS_MAX` fits 16 bits.)
    pub(crate) holder: u16,
    pub(crate) kind: StateKind,
}

/// What only some messages carry, kept out of `Message` so that the common one stays small.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extra {
    /// FIFO message group (SQS-20), if any.
    pub group: Option<u32>,
    /// The key order is kept per (a FIFO group, or a producer's key), if any.
    pub order_key: Option<u32>,
    /// Crashes the consumer every time it is processed.
    pub poison: bool,
    /// Its first receive, once a second one has replaced it as the last.
    pub first_received_at: Option<SimTime>,
    /// RabbitMQ quorum queues: the returns the delivery limit counts, all of them
    /// (`acquired_count`, RMQ-16) or the failed deliveries (`delivery_count`, RMQ-17).
    pub returns_counted: u32,
    /// Failed processing attempts, for the consumer's retry policy.
    pub attempts: u32,
    /// The last retry backoff, which decorrelated jitter grows from (BO-1).
    pub last_sleep: Duration,
    /// The error of the last failed attempt, for the dead-letter metadata.
    pub last_error: Option<ErrorClass>,
    /// The exchange and routing key it was published (or dead-lettered) with, if through an
    /// exchange; none for a send straight to a queue.
    pub route: Option<crate::exchange::Route>,
    /// For a copy a routing or a dead-lettering made (RMQ-24), the business key of the message
    /// it is a copy of: its `message_id` to a consumer. Its own key is its own, so that the
    /// services behind two queues each apply it once.
    pub copy_of: Option<u32>,
}

impl Extra {
    pub const NONE: Extra = Extra {
        group: None,
        order_key: None,
        poison: false,
        first_received_at: None,
        returns_counted: 0,
        attempts: 0,
        last_sleep: Duration::ZERO,
        last_error: None,
        route: None,
        copy_of: None,
    };
}

impl Message {
    /// A message on its way to `queue`, not yet arrived.
    pub fn publishing(queue: QueueId, key: u32, available_at: SimTime, expires_at: SimTime) -> Message {
        Message {
            queue,
            kind: StateKind::Publishing,
            holder: 0,
            key,
            pos: 0,
            available_at,
            expires_at,
            lease_until: SimTime::MAX,
            last_received_at: SimTime::MAX,
            receive_count: 0,
            receipt: 0,
            extra: 0,
        }
    }

    pub fn state(&self) -> MsgState {
        MsgState::from_parts(self.kind, ConsumerId(u32::from(self.holder)))
    }

    pub fn kind(&self) -> StateKind {
        self.kind
    }

    /// Its current lease, if it has one. The leaseholder is the consumer it is in flight with.
    pub fn lease(&self) -> Option<Lease> {
        (self.receipt != 0).then_some(Lease {
            consumer: ConsumerId(u32::from(self.holder)),
            receipt: self.receipt,
            expires_at: self.lease_until,
            received_at: self.last_received_at,
        })
    }

    /// When it was last received, if ever.
    pub fn last_received(&self) -> Option<SimTime> {
        (self.receive_count > 0).then_some(self.last_received_at)
    }
}

/// How many messages of one queue are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounts([u32; StateKind::COUNT]);

impl StateCounts {
    pub fn get(&self, kind: StateKind) -> u32 {
        self.0[kind as usize]
    }
    pub fn add(&mut self, kind: StateKind) {
        self.0[kind as usize] += 1;
    }
    pub fn remove(&mut self, kind: StateKind) {
        self.0[kind as usize] -= 1;
    }
    pub fn total(&self) -> u64 {
        self.0.iter().map(|&n| u64::from(n)).sum()
    }
    /// Delivered and unsettled, in any phase.
    pub fn in_flight(&self) -> u32 {
        self.get(StateKind::Delivering) + self.get(StateKind::Buffered) + self.get(StateKind::Processing)
    }
}

impl Serialize for StateCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(StateKind::COUNT))?;
        for (name, n) in StateKind::NAMES.iter().zip(self.0) {
            map.serialize_entry(name, &n)?;
        }
        map.end()
    }
}

/// What a consumer reads on a delivery (`Broker::delivery_meta`), for the CLI's trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeliveryMeta {
    /// The script's name for the message (its AMQP `message-id`), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// `redeliver`, `x-delivery-count`, `ApproximateReceiveCount` or `DeliveryCount`.
    pub headers: std::collections::BTreeMap<&'static str, String>,
    /// RabbitMQ: the exchange it was published (or dead-lettered) to, `""` the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
    /// RabbitMQ's `x-death`, newest first (RMQ-40).
    #[serde(rename = "x-death", skip_serializing_if = "Vec::is_empty")]
    pub x_death: Vec<XDeathMeta>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct XDeathMeta {
    pub queue: String,
    pub reason: &'static str,
    pub count: u32,
    pub time_ms: f64,
    pub exchange: String,
    pub routing_keys: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table the broker asks agrees with the rule it was built from, for every pair of
    /// states, in flight with the same consumer or another.
    #[test]
    fn the_move_table_is_can_become() {
        let states: Vec<MsgState> = StateKind::ALL
            .iter()
            .flat_map(|&k| match MsgState::from_parts(k, ConsumerId(0)) {
                MsgState::InFlight { phase, .. } => {
                    vec![
                        MsgState::InFlight { consumer: ConsumerId(1), phase },
                        MsgState::InFlight { consumer: ConsumerId(2), phase },
                    ]
                }
                s => vec![s],
            })
            .collect();
        let mut legal = 0;
        for &a in &states {
            for &b in &states {
                let (ha, hb) = (a.holder().unwrap_or(ConsumerId(7)), b.holder().unwrap_or(ConsumerId(9)));
                assert_eq!(MsgState::can_move(a.kind(), ha, b.kind(), hb), a.can_become(b), "{a:?} -> {b:?}");
                assert_eq!(MsgState::from_parts(a.kind(), ha), a, "a state is its parts");
                legal += u32::from(a.can_become(b));
            }
        }
        assert!(legal > 20, "the rule allows some moves ({legal})");
    }
}

#[cfg(test)]
mod size {
    /// Every message's record is kept to the end of a run: keep it to one cache line.
    #[test]
    fn a_message_record_is_64_bytes() {
        assert!(std::mem::size_of::<super::Message>() <= 64, "{}", std::mem::size_of::<super::Message>());
    }
}
