//! The three lease models' rules in one place (issue 24): SQS's visibility timeout, RabbitMQ's
//! prefetch and consumer timeout, Service Bus's peek-lock. Every decision that differs by model
//! is a method of `LeaseModel` here, named for what it decides; no other file matches on the
//! model. Rules cite their numbers (docs/rules.md).

use crate::scenario::{LeaseModel, LimitCounts};
use crate::time::Duration;
use crate::trace::{DeadReason, ReturnReason};

/// What a dead letter carries for the consumer that reads it (`LeaseModel::dead_letter_metadata`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadLetterMetadata {
    /// RabbitMQ's `x-death` header.
    XDeath,
    /// Service Bus's `DeadLetterReason` and `DeadLetterErrorDescription`.
    DeadLetterReason,
    /// SQS: nothing.
    None,
}

/// How a model delivers a message again while its consumer still holds it (a fault).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redelivery {
    /// The broker returns it alone, and the first copy's settle is refused (SQS-5, a Service
    /// Bus lock lost).
    Alone,
    /// The connection drops: every unacked delivery of the consumer comes back (RMQ-52).
    ConnectionDrop,
    /// Never while it is in flight (an SQS FIFO queue).
    Never,
}

/// SQS-4c: one receipt's visibility may not pass 12 hours from its receive.
const SQS_VISIBILITY_MAX: Duration = Duration::from_millis(43_200_000);
/// RMQ-3: a quorum queue delivers at most 2,000 unacknowledged messages to one consumer.
const QUORUM_PREFETCH_MAX: u32 = 2_000;
/// ASB-3: the processor renews a lock automatically for 5 minutes at most.
const ASB_AUTO_RENEW_MAX: Duration = Duration::from_millis(300_000);

impl LeaseModel {
    /// The model's name for the page: "sqs", "rabbitmq" or "service_bus".
    pub fn name(self) -> &'static str {
        match self {
            LeaseModel::Sqs { .. } => "sqs",
            LeaseModel::RabbitMq { .. } => "rabbitmq",
            LeaseModel::ServiceBus { .. } => "service_bus",
        }
    }

    /// What a settle with a receipt that is no longer current gets back, as the worker sees it
    /// and as the queue acts: an SQS standard queue answers success and does not delete
    /// (SQS-28); a FIFO queue says the handle expired (SQS-29); the others refuse it.
    pub fn stale_settle(self, fifo: bool) -> &'static str {
        match (self, fifo) {
            (LeaseModel::Sqs { .. }, false) => {
                "with an old receipt handle: SQS answered success but did not delete it (SQS-28)"
            }
            (LeaseModel::Sqs { .. }, true) => "refused: its receipt handle has expired (InvalidParameterValue, SQS-29)",
            _ => "refused: its receipt is no longer current",
        }
    }

    /// How long one delivery is leased: the visibility timeout (SQS-2), RabbitMQ's consumer
    /// timeout (RMQ-9), the lock (ASB-1).
    pub fn lease_duration(self) -> Duration {
        match self {
            LeaseModel::Sqs { visibility_timeout, .. } => visibility_timeout,
            LeaseModel::RabbitMq { consumer_timeout, .. } => consumer_timeout,
            LeaseModel::ServiceBus { lock_duration, .. } => lock_duration,
        }
    }

    /// RMQ-21: a RabbitMQ queue expires messages at its head only; the others at their TTL,
    /// wherever they wait.
    pub fn expires_at_head(self) -> bool {
        matches!(self, LeaseModel::RabbitMq { .. })
    }

    /// The reason an expired message is dead-lettered with: RabbitMQ's `expired` (RMQ-10),
    /// Service Bus's TTLExpiredException (ASB-6).
    pub fn ttl_dead_reason(self) -> DeadReason {
        match self {
            LeaseModel::ServiceBus { .. } => DeadReason::TtlExpired,
            _ => DeadReason::Expired,
        }
    }

    /// SQS-11: the redrive policy's maxReceiveCount, checked at the next receive.
    pub fn max_receive_count(self) -> Option<u32> {
        match self {
            LeaseModel::Sqs { max_receive_count, .. } => max_receive_count,
            _ => None,
        }
    }

    /// The delivery counters a consumer reads, in its system's words: SQS
    /// ApproximateReceiveCount, RabbitMQ `redeliver` and a quorum queue's `x-delivery-count`
    /// (the returns counted, while in flight again), Service Bus DeliveryCount.
    pub fn delivery_headers(
        self,
        receive_count: u32,
        returns_counted: u32,
        in_flight: bool,
    ) -> Vec<(&'static str, String)> {
        match self {
            LeaseModel::Sqs { .. } => vec![("ApproximateReceiveCount", receive_count.to_string())],
            LeaseModel::RabbitMq { quorum, .. } => {
                let mut headers = vec![("redeliver", (receive_count > 1).to_string())];
                if quorum && in_flight && receive_count > 1 && returns_counted > 0 {
                    headers.push(("x-delivery-count", returns_counted.to_string()));
                }
                headers
            }
            LeaseModel::ServiceBus { .. } => vec![("DeliveryCount", receive_count.to_string())],
        }
    }

    /// What the system calls the moment a message expires: SQS's retention, RabbitMQ's TTL,
    /// Service Bus's ExpiresAtUtc.
    pub fn expiry_word(self) -> &'static str {
        match self {
            LeaseModel::Sqs { .. } => "retention ends",
            LeaseModel::RabbitMq { .. } => "expires",
            LeaseModel::ServiceBus { .. } => "ExpiresAtUtc",
        }
    }

    /// Whether a return counts toward a RabbitMQ quorum queue's delivery limit: RMQ-16
    /// (4.0–4.2) every return; RMQ-17 (4.3+) failed deliveries only, a reject or a crash, not
    /// a nack nor the consumer timeout.
    pub fn counts_return(self, reason: ReturnReason) -> bool {
        match self {
            LeaseModel::RabbitMq { counts: LimitCounts::EveryReturn, .. } => true,
            LeaseModel::RabbitMq { counts: LimitCounts::FailedDeliveries, .. } => {
                matches!(reason, ReturnReason::Rejected | ReturnReason::ChannelClosed)
            }
            _ => false,
        }
    }

    /// After a return: dead-letter, and why? RabbitMQ past its delivery limit (`returns`
    /// counted so far); Service Bus after the N-th abandon or lock lost (ASB-5, eagerly),
    /// never from the dead-letter queue itself (ASB-6); SQS counts receives, not returns
    /// (SQS-9): its check is at the next receive.
    pub fn dead_after_return(
        self,
        reason: ReturnReason,
        returns: u32,
        receive_count: u32,
        in_dlq: bool,
    ) -> Option<DeadReason> {
        match self {
            LeaseModel::RabbitMq { delivery_limit, .. } => {
                delivery_limit.is_some_and(|limit| returns > limit).then_some(DeadReason::DeliveryLimit)
            }
            LeaseModel::ServiceBus { max_delivery_count, .. } => {
                let counted =
                    matches!(reason, ReturnReason::Abandoned | ReturnReason::LeaseExpired | ReturnReason::Duplicated);
                (counted && !in_dlq && receive_count >= max_delivery_count).then_some(DeadReason::MaxDeliveryCount)
            }
            LeaseModel::Sqs { .. } => None,
        }
    }

    /// RMQ-6: a quorum queue without a delivery limit returns a message to its back; the
    /// others keep its place.
    pub fn returns_to_back(self) -> bool {
        matches!(self, LeaseModel::RabbitMq { quorum: true, delivery_limit: None, .. })
    }

    /// Why a lease that ran out returns its message: the visibility timeout or lock
    /// (SQS-2, ASB-5), or RabbitMQ's consumer timeout (RMQ-9).
    pub fn timeout_reason(self) -> ReturnReason {
        match self {
            LeaseModel::RabbitMq { .. } => ReturnReason::ConsumerTimeout,
            _ => ReturnReason::LeaseExpired,
        }
    }

    /// RMQ-9, RMQ-7, RMQ-52: RabbitMQ leases belong to a channel. The consumer timeout and a
    /// crash close it, and every unacked delivery on it comes back; a delivery lost on its way
    /// keeps its prefetch slot until then. SQS and Service Bus leases run out one by one.
    pub fn channel_bound(self) -> bool {
        matches!(self, LeaseModel::RabbitMq { .. })
    }

    /// SQS-4c: the most one receipt's visibility may run from its receive (a request past it
    /// is an error, not clamped); the others have no such cap on an explicit renewal.
    pub fn visibility_cap(self) -> Option<Duration> {
        matches!(self, LeaseModel::Sqs { .. }).then_some(SQS_VISIBILITY_MAX)
    }

    /// ASB-3: how long a consumer's automatic lock renewal may go on from the receive.
    pub fn auto_renew_cap(self) -> Option<Duration> {
        matches!(self, LeaseModel::ServiceBus { .. }).then_some(ASB_AUTO_RENEW_MAX)
    }

    /// ASB-6: a Service Bus dead-letter queue cannot dead-letter a message again.
    pub fn dead_letters_from_its_dlq(self) -> bool {
        !matches!(self, LeaseModel::ServiceBus { .. })
    }

    /// A consumer giving a message up: RabbitMQ dead-letters a nack without requeue as
    /// `rejected` (RMQ-10); the others keep the consumer's reason.
    pub fn give_up_reason(self, reason: DeadReason) -> DeadReason {
        if matches!(self, LeaseModel::RabbitMq { .. }) {
            DeadReason::Rejected
        } else {
            reason
        }
    }

    /// A consumer handing a message back for an immediate retry: RabbitMQ basic.nack with
    /// requeue (RMQ-5), Service Bus Abandon (ASB-1), SQS ChangeMessageVisibility 0 (SQS-4d).
    pub fn retry_now_reason(self) -> ReturnReason {
        match self {
            LeaseModel::RabbitMq { .. } => ReturnReason::Nacked,
            LeaseModel::ServiceBus { .. } => ReturnReason::Abandoned,
            LeaseModel::Sqs { .. } => ReturnReason::MadeVisible,
        }
    }

    /// How a message held by its consumer is delivered again, as a fault (`fifo`: an SQS
    /// FIFO queue).
    pub fn redelivery(self, fifo: bool) -> Redelivery {
        match self {
            LeaseModel::RabbitMq { .. } => Redelivery::ConnectionDrop,
            LeaseModel::Sqs { .. } if fifo => Redelivery::Never,
            _ => Redelivery::Alone,
        }
    }

    /// Whether a queue of this model must have a dead-letter queue: Service Bus always has its
    /// dead-letter sub-queue (ASB-6); SQS's redrive policy needs one (SQS-10).
    pub fn needs_dlq(self) -> bool {
        self.always_has_dlq() || matches!(self, LeaseModel::Sqs { max_receive_count: Some(_), .. })
    }

    /// What a dead letter carries for the consumer that reads it from the DLQ, in its system's
    /// own words: RabbitMQ's `x-death` header (RMQ-14, RMQ-40); Service Bus's
    /// `DeadLetterReason` and `DeadLetterErrorDescription` properties (ASB-5, ASB-6); on SQS
    /// nothing but the message itself (its receive count goes on).
    pub fn dead_letter_metadata(self) -> DeadLetterMetadata {
        match self {
            LeaseModel::RabbitMq { .. } => DeadLetterMetadata::XDeath,
            LeaseModel::ServiceBus { .. } => DeadLetterMetadata::DeadLetterReason,
            LeaseModel::Sqs { .. } => DeadLetterMetadata::None,
        }
    }

    /// RMQ-13: RabbitMQ dead-letters by republishing, so the copy in the dead-letter queue is
    /// a fresh enqueue: its delivery count starts again, and its first delivery there is not a
    /// redelivery (D6; seen on RabbitMQ 3.10: `redelivered` false). SQS and Service Bus move
    /// the same message, its counts with it (SQS-11, ASB-5).
    pub fn dead_letter_republishes(self) -> bool {
        matches!(self, LeaseModel::RabbitMq { .. })
    }

    /// ASB-6: a Service Bus queue always has its dead-letter sub-queue; it cannot be turned off.
    pub fn always_has_dlq(self) -> bool {
        matches!(self, LeaseModel::ServiceBus { .. })
    }

    /// SQS-17: on SQS a TTL is the queue's retention period (at least 60 s, 4 days unless set),
    /// a message past it is deleted, never dead-lettered, and a DLQ has one of its own (SQS-13).
    pub fn ttl_is_retention(self) -> bool {
        matches!(self, LeaseModel::Sqs { .. })
    }

    /// FIFO message groups are SQS FIFO's (SQS-20).
    pub fn has_fifo(self) -> bool {
        matches!(self, LeaseModel::Sqs { .. })
    }

    /// A duplicate detection window is Service Bus's (ASB-9).
    pub fn has_duplicate_detection(self) -> bool {
        matches!(self, LeaseModel::ServiceBus { .. })
    }

    /// The lease of a queue Brokerlab makes for a queue of this model (its DLQ, its retry
    /// queue): the same model, without a receive or delivery limit of its own.
    pub fn for_derived_queue(self) -> LeaseModel {
        match self {
            LeaseModel::Sqs { visibility_timeout, .. } => {
                LeaseModel::Sqs { visibility_timeout, max_receive_count: None }
            }
            LeaseModel::RabbitMq { quorum, consumer_timeout, counts, .. } => {
                LeaseModel::RabbitMq { quorum, delivery_limit: None, consumer_timeout, counts }
            }
            other @ LeaseModel::ServiceBus { .. } => other,
        }
    }

    /// RMQ-3: on RabbitMQ, prefetch 0 means unlimited.
    pub fn prefetch_zero_is_unlimited(self) -> bool {
        matches!(self, LeaseModel::RabbitMq { .. })
    }

    /// RMQ-3: a quorum queue caps the effective prefetch at 2,000.
    pub fn prefetch_cap(self) -> Option<u32> {
        matches!(self, LeaseModel::RabbitMq { quorum: true, .. }).then_some(QUORUM_PREFETCH_MAX)
    }

    /// Whether a consumer can extend its lease (SQS ChangeMessageVisibility, Service Bus
    /// RenewLock): RabbitMQ has no lease to extend, only its consumer timeout.
    pub fn has_renewable_lease(self) -> bool {
        !matches!(self, LeaseModel::RabbitMq { .. })
    }

    /// Whether a message may carry a TTL of its own: SQS has none, only the queue's retention
    /// period (SQS-17).
    pub fn has_message_ttl(self) -> bool {
        !matches!(self, LeaseModel::Sqs { .. })
    }

    /// Consumer priorities are RabbitMQ's (`x-priority`, RMQ-2).
    pub fn has_consumer_priority(self) -> bool {
        matches!(self, LeaseModel::RabbitMq { .. })
    }

    /// RMQ-49, RMQ-50: a RabbitMQ delivery acked on receipt (auto-ack, or an ack before the
    /// work) is no longer unacknowledged, so it takes no prefetch slot, and the broker pushes
    /// the next one at once. An SQS or Service Bus client fetches only what it has room for,
    /// acked or not.
    pub fn acked_delivery_holds_a_slot(self) -> bool {
        !matches!(self, LeaseModel::RabbitMq { .. })
    }

    /// Whether a message can wait out a retry's backoff in its queue: SQS by its visibility
    /// (SQS-4), Service Bus by a scheduled redelivery. RabbitMQ has no delayed redelivery in a
    /// queue (RMQ-5, RMQ-16): the consumer keeps it unacked through the backoff and then
    /// requeues it, which counts toward a quorum queue's delivery limit (D3, issue 25).
    pub fn delays_in_queue(self) -> bool {
        !matches!(self, LeaseModel::RabbitMq { .. })
    }

    /// A RabbitMQ queue's type and delivery limit, as its arguments say them
    /// (`x-queue-type`, `x-delivery-limit`); `None` for a queue of another system.
    pub fn rabbitmq_type(self) -> Option<(bool, Option<u32>)> {
        match self {
            LeaseModel::RabbitMq { quorum, delivery_limit, .. } => Some((quorum, delivery_limit)),
            _ => None,
        }
    }
}
