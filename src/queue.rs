//! The work queue with competing consumers: the broker's ready list, and consumers that hold
//! up to `prefetch` unacknowledged messages and process one at a time, acking after processing.
//! Dispatch is round-robin over the consumers that have room (RMQ-style push).

use crate::rng::Prng;
use crate::scenario::Dist;
use crate::time::Duration;
use crate::trace::{ConsumerId, MsgId};
use std::collections::VecDeque;

#[derive(Clone, Debug, Default)]
pub struct Queue {
    /// Ready messages, oldest first.
    pub ready: VecDeque<MsgId>,
    /// Consumers subscribed to this queue, in scenario order.
    pub consumers: Vec<ConsumerId>,
    /// Index into `consumers` where the next round-robin search starts.
    pub next_rr: usize,
}

impl Queue {
    /// Picks the next consumer with room, round-robin from where the last pick left off, and
    /// advances the cursor past it. `has_room` answers for a consumer id.
    pub fn pick_consumer(&mut self, has_room: impl Fn(ConsumerId) -> bool) -> Option<ConsumerId> {
        let n = self.consumers.len();
        for k in 0..n {
            let i = (self.next_rr + k) % n;
            let c = self.consumers[i];
            if has_room(c) {
                self.next_rr = (i + 1) % n;
                return Some(c);
            }
        }
        None
    }
}

#[derive(Clone, Debug)]
pub struct Consumer {
    pub prefetch: u32,
    /// Messages delivered and not yet acked: in transit, buffered or processing.
    pub unacked: u32,
    /// Arrived messages waiting for the consumer to be free, oldest first.
    pub buffer: VecDeque<MsgId>,
    pub processing: Option<MsgId>,
    pub dist: Dist,
    pub prng: Prng,
}

impl Consumer {
    pub fn has_room(&self) -> bool {
        self.unacked < self.prefetch
    }

    /// Draws one processing time.
    pub fn processing_time(&mut self) -> Duration {
        sample(self.dist, &mut self.prng)
    }
}

/// The gap to the next arrival of a Poisson process with this mean inter-arrival time.
pub fn poisson_gap(mean_interval: Duration, prng: &mut Prng) -> Duration {
    sample(Dist::Exponential { mean: mean_interval }, prng)
}

/// One draw from a distribution. Pure apart from the PRNG it is given.
pub fn sample(dist: Dist, prng: &mut Prng) -> Duration {
    match dist {
        Dist::Constant(d) => d,
        Dist::Uniform { min, max } => Duration::from_micros(prng.range_inclusive(min.as_micros(), max.as_micros())),
        Dist::Exponential { mean } => {
            // Capped at 1000 means so that one astronomically unlikely draw cannot stall a run.
            let cap = mean.as_micros().saturating_mul(1000);
            Duration::from_micros(prng.exp_sample(mean.as_micros(), cap))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_skips_full_consumers_and_resumes_after_the_pick() {
        let mut q = Queue { consumers: vec![0, 1, 2], ..Queue::default() };
        assert_eq!(q.pick_consumer(|_| true), Some(0));
        assert_eq!(q.pick_consumer(|c| c != 1), Some(2));
        assert_eq!(q.pick_consumer(|_| true), Some(0));
        assert_eq!(q.pick_consumer(|_| false), None);
        assert_eq!(q.next_rr, 1, "a failed search leaves the cursor where it was");
    }
}
