//! Typed ids (issue 24): a message, a consumer, a queue, a producer and a group's member are
//! each an index into their own table, and the type says which, so that one cannot be passed
//! for another (`m` is a message in the broker and a member in the streams; the types tell).
//! Each is a `u32` underneath, fixed-width for the trace, and serializes as that number.

use serde::Serialize;
use std::fmt;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub u32);

        impl $name {
            /// Its place in its table.
            #[inline(always)]
            pub const fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl From<$name> for u32 {
            #[inline(always)]
            fn from(id: $name) -> u32 {
                id.0
            }
        }

        /// The number, in lines and in debug output alike (a state prints as it always did).
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id!(
    /// A message: its index in the broker's table of every message of the run.
    MsgId
);
id!(
    /// A consumer: its index in the scenario's consumers.
    ConsumerId
);
id!(
    /// A queue: its index in the scenario's queues (dead-letter and retry queues included).
    QueueId
);
id!(
    /// A member of a stream consumer group: its slot in its group (`Group::members`).
    MemberId
);
id!(
    /// A producer: its index in the scenario's producers, or one of the senders that are not
    /// producers (`trace::SCRIPT`, `workflow::SERVICE`).
    ProducerId
);
