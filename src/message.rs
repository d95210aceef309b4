//! A message's life as a closed set of states. Every message is in exactly one state at every
//! moment; the engine changes state only through `Sim::transition`, which keeps the per-queue
//! counts, and `check` recomputes everything from scratch to prove they agree.

use crate::time::SimTime;
use crate::trace::{ConsumerId, QueueId};
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

/// A state without its consumer: the key for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StateKind {
    Publishing,
    Ready,
    Delivering,
    Buffered,
    Processing,
    Acked,
}

impl StateKind {
    pub const COUNT: usize = 6;
    pub const ALL: [StateKind; StateKind::COUNT] = [
        StateKind::Publishing,
        StateKind::Ready,
        StateKind::Delivering,
        StateKind::Buffered,
        StateKind::Processing,
        StateKind::Acked,
    ];
    pub const NAMES: [&'static str; StateKind::COUNT] =
        ["publishing", "ready", "delivering", "buffered", "processing", "acked"];
}

impl MsgState {
    pub fn kind(self) -> StateKind {
        match self {
            MsgState::Publishing => StateKind::Publishing,
            MsgState::Ready => StateKind::Ready,
            MsgState::Delivering(_) => StateKind::Delivering,
            MsgState::Buffered(_) => StateKind::Buffered,
            MsgState::Processing(_) => StateKind::Processing,
            MsgState::Acked => StateKind::Acked,
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
    pub state: MsgState,
    /// When it last became ready, for the time it waits in the queue.
    pub enqueued_at: SimTime,
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
    /// Moves one message's count from one state to another.
    pub fn shift(&mut self, from: StateKind, to: StateKind) {
        self.0[from as usize] -= 1;
        self.0[to as usize] += 1;
    }
    pub fn total(&self) -> u64 {
        self.0.iter().map(|&n| u64::from(n)).sum()
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
