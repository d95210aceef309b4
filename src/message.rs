//! A message's life as a closed set of states. Every message is in exactly one state at every
//! moment; the engine changes state only through `Sim::transition`, which keeps the per-queue
//! counts, and `check` recomputes everything from scratch to prove they agree.

use crate::time::SimTime;
use crate::trace::{ConsumerId, ProducerId, QueueId};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgState {
    /// Sent by the producer, on its way to the broker.
    Publishing,
    /// Stored in the queue, visible, waiting for a consumer.
    Ready,
    /// Handed to a consumer, on its way there. Counts against its prefetch.
    Delivering(ConsumerId),
    /// Arrived at a consumer that is busy with another message (prefetch > 1).
    Buffered(ConsumerId),
    /// Being processed by the consumer.
    Processing(ConsumerId),
    /// Acknowledged and deleted. Final.
    Acked,
}

impl MsgState {
    pub const COUNT: usize = 6;
    pub const NAMES: [&'static str; MsgState::COUNT] =
        ["publishing", "ready", "delivering", "buffered", "processing", "acked"];

    pub fn index(self) -> usize {
        match self {
            MsgState::Publishing => 0,
            MsgState::Ready => 1,
            MsgState::Delivering(_) => 2,
            MsgState::Buffered(_) => 3,
            MsgState::Processing(_) => 4,
            MsgState::Acked => 5,
        }
    }

    /// The consumer holding the message unacknowledged, if any.
    pub fn holder(self) -> Option<ConsumerId> {
        match self {
            MsgState::Delivering(c) | MsgState::Buffered(c) | MsgState::Processing(c) => Some(c),
            _ => None,
        }
    }

    /// The only moves a message can make. Anything else is an engine bug.
    pub fn can_become(self, next: MsgState) -> bool {
        use MsgState::*;
        match (self, next) {
            (Publishing, Ready) | (Ready, Delivering(_)) | (Processing(_), Acked) => true,
            (Delivering(a), Buffered(b) | Processing(b)) | (Buffered(a), Processing(b)) => a == b,
            _ => false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Message {
    pub queue: QueueId,
    pub producer: ProducerId,
    pub state: MsgState,
    pub published_at: SimTime,
    pub enqueued_at: SimTime,
}

/// How many messages of one queue are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounts(pub [u32; MsgState::COUNT]);

impl StateCounts {
    pub fn get(&self, state_index: usize) -> u32 {
        self.0[state_index]
    }
    pub fn total(&self) -> u64 {
        self.0.iter().map(|&n| u64::from(n)).sum()
    }
}

impl Serialize for StateCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(MsgState::COUNT))?;
        for (name, n) in MsgState::NAMES.iter().zip(self.0) {
            map.serialize_entry(name, &n)?;
        }
        map.end()
    }
}
