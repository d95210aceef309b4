//! Consumers: the agents that receive, process and settle. Each holds up to `prefetch`
//! unsettled messages and processes up to `concurrency` at once. What happens to one attempt
//! is drawn when it starts: success, a transient, permanent or unknown error, a crash or a hang
//! (a poison message always crashes). The retry policy then decides between retrying with
//! backoff, giving the message back, and dead-lettering it.
//!
//! A consumer keeps what it holds even after its lease is gone: a hung worker still works on a
//! message the broker has handed to someone else, and its ack is then refused. That is how
//! "effect applied twice" happens, and the idempotent store is how it is avoided (IP-1).

use crate::backoff;
use crate::broker::Dispatched;
use crate::event::Event;
use crate::lease::Redelivery;
use crate::message::{MsgState, Phase};
use crate::rng::Prng;
use crate::scenario::{AckMode, ConsumerSpec, Dist, Outcomes, RetryVia};
use crate::sim::Sim;
use crate::time::{Duration, SimTime};
use crate::trace::{ConsumerId, DeadReason, ErrorClass, MsgId, ReturnReason, TraceEvent};
use std::collections::{BTreeMap, VecDeque};

/// A delivery the network lost (`Op::DropDelivery`): its consumer never gets it, while the
/// broker's lease on it runs on. Kept until that lease ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lost {
    pub msg: MsgId,
    pub receipt: u32,
    pub consumer: ConsumerId,
}

/// A message a consumer holds, by the receipt it got it with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    pub msg: MsgId,
    pub receipt: u32,
    /// Acked on receipt (ack before processing): the broker no longer tracks it.
    pub auto_acked: bool,
}

/// What one processing attempt will do, drawn when it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Fail(ErrorClass),
    /// Dies halfway through the work, before the effect.
    Crash,
    /// Dies after applying the effect, before the ack: with ack after processing, the
    /// message comes back and the effect is applied again.
    CrashAfterEffect,
    Hang,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    pub msg: MsgId,
    pub receipt: u32,
    pub outcome: Outcome,
    /// When its call read an optimistic dependency's row (BO-3); `SimTime::MAX` without one.
    pub read_at: SimTime,
}

/// What a consumer tracks by (message, receipt): what it holds, and its jobs. Kept in the order
/// they came (a crash gives messages back in that order, RMQ-9). A few are a plain list, which
/// a scan searches fastest; past `TRACKED_SMALL_MAX` (a prefetch can be 10,000) they move to
/// ordered maps, found by key in O(log n), so that per-event cost does not grow with the
/// prefetch. Both forms iterate in arrival order, so the choice never shows in a trace.
#[derive(Clone, Debug)]
pub struct Tracked<T> {
    small: Vec<T>,
    large: Option<Large<T>>,
}

const TRACKED_SMALL_MAX: usize = 32;

#[derive(Clone, Debug)]
struct Large<T> {
    order: BTreeMap<u64, T>,
    at: BTreeMap<(MsgId, u32), u64>,
    next: u64,
}

impl<T> Default for Tracked<T> {
    fn default() -> Self {
        Tracked { small: Vec::new(), large: None }
    }
}

/// An item's key in a `Tracked` list: its message and the receipt it came with.
pub trait Keyed {
    fn key(&self) -> (MsgId, u32);
}

impl Keyed for Held {
    fn key(&self) -> (MsgId, u32) {
        (self.msg, self.receipt)
    }
}

impl Keyed for Job {
    fn key(&self) -> (MsgId, u32) {
        (self.msg, self.receipt)
    }
}

impl<T: Keyed + Copy> Tracked<T> {
    #[inline]
    pub fn len(&self) -> usize {
        self.large.as_ref().map_or(self.small.len(), |l| l.order.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `item` last. A receipt names one delivery, so its key is new.
    #[inline]
    pub fn push(&mut self, item: T) {
        if self.large.is_none() && self.small.len() == TRACKED_SMALL_MAX {
            let items = std::mem::take(&mut self.small);
            let mut large = Large { order: BTreeMap::new(), at: BTreeMap::new(), next: 0 };
            for x in items {
                large.push(x);
            }
            self.large = Some(large);
        }
        match &mut self.large {
            Some(large) => large.push(item),
            None => self.small.push(item),
        }
    }

    #[inline]
    pub fn get(&self, msg: MsgId, receipt: u32) -> Option<T> {
        match &self.large {
            Some(l) => l.at.get(&(msg, receipt)).and_then(|seq| l.order.get(seq)).copied(),
            None => self.small.iter().find(|x| x.key() == (msg, receipt)).copied(),
        }
    }

    pub fn get_mut(&mut self, msg: MsgId, receipt: u32) -> Option<&mut T> {
        match &mut self.large {
            Some(l) => {
                let seq = *l.at.get(&(msg, receipt))?;
                l.order.get_mut(&seq)
            }
            None => self.small.iter_mut().find(|x| x.key() == (msg, receipt)),
        }
    }

    /// The newest item for `msg`, whatever its receipt.
    #[inline]
    pub fn newest(&self, msg: MsgId) -> Option<T> {
        match &self.large {
            Some(l) => {
                let seq = l.at.range((msg, 0)..=(msg, u32::MAX)).map(|(_, &seq)| seq).max()?;
                l.order.get(&seq).copied()
            }
            None => self.small.iter().rev().find(|x| x.key().0 == msg).copied(),
        }
    }

    #[inline]
    pub fn remove(&mut self, msg: MsgId, receipt: u32) -> Option<T> {
        match &mut self.large {
            Some(l) => {
                let seq = l.at.remove(&(msg, receipt))?;
                let item = l.order.remove(&seq);
                if l.order.is_empty() {
                    self.large = None;
                }
                item
            }
            None => {
                // Often the last (or only) one: take it without a shift.
                let i = self.small.iter().rposition(|x| x.key() == (msg, receipt))?;
                if i + 1 == self.small.len() {
                    return self.small.pop();
                }
                Some(self.small.remove(i))
            }
        }
    }

    pub fn clear(&mut self) {
        self.small.clear();
        self.large = None;
    }

    /// In the order they came.
    pub fn iter(&self) -> Box<dyn Iterator<Item = &T> + '_> {
        match &self.large {
            Some(l) => Box::new(l.order.values()),
            None => Box::new(self.small.iter()),
        }
    }
}

impl<T: Keyed> Large<T> {
    fn push(&mut self, item: T) {
        let seq = self.next;
        self.next += 1;
        if let Some(old) = self.at.insert(item.key(), seq) {
            self.order.remove(&old);
        }
        self.order.insert(seq, item);
    }
}

#[derive(Clone, Debug)]
pub struct Consumer {
    pub alive: bool,
    /// Taking new messages: false for an autoscaled instance on standby or draining.
    pub active: bool,
    /// Bumped on every crash, so the dead incarnation's timers are ignored.
    pub epoch: u32,
    /// When it last crashed: leases from before then are orphans that run out on their own.
    pub crashed_at: Option<SimTime>,
    pub held: Tracked<Held>,
    /// Arrived and waiting for a processing slot, oldest first.
    pub buffer: VecDeque<Held>,
    pub jobs: Tracked<Job>,
    /// Deployed a fix: poison no longer crashes it.
    pub fixed: bool,
    /// Its place in its queue's `consumers`, and so its bit in the queue's `room`.
    pub slot: usize,
    /// Its processing time and outcome odds: the scenario's, until a user changes them live.
    pub processing: Dist,
    pub outcomes: Outcomes,
    pub prng: Prng,
}

impl Consumer {
    pub fn new(prng: Prng, spec: &ConsumerSpec, slot: usize) -> Consumer {
        Consumer {
            processing: spec.processing,
            outcomes: spec.outcomes,
            active: !spec.standby,
            alive: true,
            epoch: 0,
            crashed_at: None,
            held: Tracked::default(),
            buffer: VecDeque::new(),
            jobs: Tracked::default(),
            fixed: false,
            slot,
            prng,
        }
    }

    /// Whether it has a processing slot free (its concurrency).
    #[inline]
    pub fn slot_free(&self, spec: &ConsumerSpec) -> bool {
        self.jobs.len() < spec.concurrency as usize
    }

    /// Whether it would take another message now.
    #[inline]
    pub fn has_room(&self, spec: &ConsumerSpec) -> bool {
        self.alive && self.active && !spec.manual && self.held.len() < spec.prefetch as usize
    }

    #[inline]
    pub fn find(&self, msg: MsgId) -> Option<Held> {
        self.held.newest(msg)
    }

    #[inline]
    fn forget(&mut self, msg: MsgId, receipt: u32) {
        self.held.remove(msg, receipt);
        self.jobs.remove(msg, receipt);
    }

    /// Draws the outcome of one attempt from the consumer's outcome table. Integer math only.
    /// An unknown error repeats when the same message is retried: it is the kind of failure
    /// nobody has diagnosed, which is why it gets only a retry or two before the DLQ.
    pub fn draw_outcome(&mut self, poison: bool, last_error: Option<ErrorClass>) -> Outcome {
        if poison && !self.fixed {
            return Outcome::Crash;
        }
        if last_error == Some(ErrorClass::Unknown) {
            return Outcome::Fail(ErrorClass::Unknown);
        }
        let o = &self.outcomes;
        if (o.transient.numerator | o.permanent.numerator | o.unknown.numerator | o.crash.numerator | o.hang.numerator)
            == 0
        {
            return Outcome::Success;
        }
        let table = [
            (o.transient, Outcome::Fail(ErrorClass::Transient)),
            (o.permanent, Outcome::Fail(ErrorClass::Permanent)),
            (o.unknown, Outcome::Fail(ErrorClass::Unknown)),
            (o.crash, Outcome::Crash),
            (o.hang, Outcome::Hang),
        ];
        // All ratios share the denominator the scenario gives them (parts per million).
        let draw = self.prng.below(o.transient.denominator);
        let mut threshold = 0;
        for (ratio, outcome) in table {
            threshold += ratio.numerator;
            if draw < threshold {
                // Half of all crashes come after the effect, before the ack.
                if outcome == Outcome::Crash && self.prng.below(2) == 1 {
                    return Outcome::CrashAfterEffect;
                }
                return outcome;
            }
        }
        Outcome::Success
    }
}

/// One draw from a distribution. Pure apart from the PRNG it is given. (Inline: the hot path
/// draws an exponential processing time, and the rarer arms stay out of its way.)
#[inline]
pub fn sample(dist: Dist, prng: &mut Prng) -> Duration {
    match dist {
        Dist::Constant(d) => d,
        Dist::Uniform { min, max } => Duration::from_micros(prng.range_inclusive(min.as_micros(), max.as_micros())),
        Dist::Exponential { mean } => {
            // Capped at 1000 means so that one astronomically unlikely draw cannot stall a run.
            let cap = mean.as_micros().saturating_mul(1000);
            Duration::from_micros(prng.exp_sample(mean.as_micros(), cap))
        }
        Dist::Normal { mean, sd } => folded_normal(mean, sd, prng),
    }
}

/// A call to an optimistic row (BO-3) around `work` started now: the read reaches the row one
/// hop in; its reply, the work and the write follow. The write is the job's end (`on_finish`),
/// its reply comes after. Returns the job's whole duration and when the row was read.
#[inline(never)]
fn row_call(hop: Dist, now: SimTime, work: Duration, prng: &mut Prng) -> (Duration, SimTime) {
    let (to_row, back, write) = (sample(hop, prng), sample(hop, prng), sample(hop, prng));
    (to_row.plus(back).plus(work).plus(write), now.after(to_row))
}

/// `|N(mean, sd)|`, folded at zero as the AWS backoff simulator's `abs(normalvariate(…))` (BO-3).
#[inline(never)]
fn folded_normal(mean: Duration, sd: Duration, prng: &mut Prng) -> Duration {
    #[allow(clippy::cast_precision_loss)]
    let us = mean.as_micros() as f64 + sd.as_micros() as f64 * prng.normal_unit();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Duration::from_micros(libm::round(us.abs()) as u64)
}

/// The gap to the next arrival of a Poisson process with this mean inter-arrival time.
pub fn poisson_gap(mean_interval: Duration, prng: &mut Prng) -> Duration {
    sample(Dist::Exponential { mean: mean_interval }, prng)
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn ms_to_duration(ms: f64) -> Duration {
    Duration::from_micros(libm::round(ms.max(0.0) * 1000.0) as u64)
}

/// The consumers' side of the engine: receiving, processing, settling, crashing.
impl Sim {
    fn consumer_spec(&self, c: ConsumerId) -> &ConsumerSpec {
        &self.scenario.consumers[c as usize]
    }

    /// Keeps its bit in its queue's `room` (which of its consumers would take a message now)
    /// in step with `has_room`, so that dispatch finds the next consumer with room without a
    /// scan. Called after anything that changes what `has_room` reads; `check` recounts.
    #[inline]
    pub(crate) fn room_changed(&mut self, c: ConsumerId) {
        let spec = &self.scenario.consumers[c as usize];
        let consumer = &self.consumers[c as usize];
        self.broker.set_room(spec.queue, consumer.slot, consumer.has_room(spec));
    }

    /// A delivered message reaches its consumer.
    pub(crate) fn on_receive(&mut self, c: ConsumerId, msg: MsgId, receipt: u32, epoch: u32) {
        let consumer = &self.consumers[c as usize];
        if consumer.epoch != epoch {
            return; // delivered to an incarnation that has since crashed
        }
        if !self.lost.is_empty() && self.lost.iter().any(|l| l.msg == msg && l.receipt == receipt) {
            return; // the network lost it
        }
        let current = self.broker.holds(msg, c, receipt);
        self.take_in(c, Held { msg, receipt, auto_acked: false }, current);
    }

    /// The consumer has `held` in hand (`current`: its lease is still the broker's latest):
    /// acks it first with ack-before-processing, then starts it, or buffers it for a slot.
    #[inline]
    fn take_in(&mut self, c: ConsumerId, mut held: Held, current: bool) {
        let (now, msg, receipt) = (self.now, held.msg, held.receipt);
        if current && self.consumer_spec(c).ack == AckMode::BeforeProcessing {
            self.broker.auto_ack(&mut self.out, now, msg, c);
            held.auto_acked = true;
            if let Some(h) = self.consumers[c as usize].held.get_mut(msg, receipt) {
                h.auto_acked = true;
            }
        }
        if self.slot_free(c) {
            self.start_job(c, held);
        } else {
            self.enter_phase(c, held, Phase::Buffered);
            self.consumers[c as usize].buffer.push_back(held);
        }
    }

    /// Whether the consumer has a processing slot free (fewer jobs than its concurrency).
    #[inline]
    fn slot_free(&self, c: ConsumerId) -> bool {
        self.consumers[c as usize].slot_free(self.consumer_spec(c))
    }

    /// Moves `held` to `phase` on the broker's side, if the broker still counts it as this
    /// consumer's and it is not there already (delivered straight into it, no network delay).
    #[inline(always)]
    fn enter_phase(&mut self, c: ConsumerId, held: Held, phase: Phase) {
        if !self.broker.in_phase(held.msg, c, phase) && self.owns(c, held) {
            self.broker.advance_phase(held.msg, c, phase);
        }
    }

    /// Whether the broker still counts `held` as this consumer's (leased, or auto-acked and
    /// not yet settled).
    #[inline]
    fn owns(&self, c: ConsumerId, held: Held) -> bool {
        let m = self.broker.msg(held.msg);
        if held.auto_acked {
            m.lease().is_none() && m.state().holder() == Some(c)
        } else {
            self.broker.holds(held.msg, c, held.receipt)
        }
    }

    fn start_job(&mut self, c: ConsumerId, held: Held) {
        let now = self.now;
        let extra = self.broker.extra(held.msg);
        let (poison, last_error) = (extra.poison, extra.last_error);
        // A saga service's compensations and retriable steps have their own failure odds.
        let workflow = if self.workflows.tags.is_empty() { None } else { self.workflow_outcome(c, held.msg) };
        let spec = &self.scenario.consumers[c as usize];
        let consumer = &mut self.consumers[c as usize];
        let outcome = workflow.unwrap_or_else(|| consumer.draw_outcome(poison, last_error));
        let mut work = sample(consumer.processing, &mut consumer.prng);
        let mut read_at = SimTime::MAX;
        if let Some(hop) = self.scenario.row_hop(c) {
            (work, read_at) = row_call(hop, now, work, &mut consumer.prng);
        }
        let epoch = consumer.epoch;
        consumer.jobs.push(Job { msg: held.msg, receipt: held.receipt, outcome, read_at });
        let heartbeat = spec.heartbeat;
        let done_at = match outcome {
            Outcome::Hang => now.after(spec.hang),
            _ => now.after(work),
        };
        self.enter_phase(c, held, Phase::Processing);
        self.out.emit(TraceEvent::ProcessingStarted { at: now, msg: held.msg, consumer: c, done_at });
        match outcome {
            // A crash comes halfway through the work.
            Outcome::Crash => self.out.schedule(
                now.after(Duration::from_micros(work.as_micros() / 2)),
                Event::CrashNow { consumer: c, epoch },
            ),
            _ => self.out.schedule(done_at, Event::Finish { consumer: c, msg: held.msg, receipt: held.receipt, epoch }),
        }
        if let Some(every) = heartbeat {
            if !held.auto_acked {
                self.out.schedule(
                    now.after(every),
                    Event::Heartbeat { consumer: c, msg: held.msg, receipt: held.receipt, epoch },
                );
            }
        }
    }

    /// A job's work is done: apply the effect (or not), then settle.
    pub(crate) fn on_finish(&mut self, c: ConsumerId, msg: MsgId, receipt: u32, epoch: u32) {
        let now = self.now;
        let consumer = &self.consumers[c as usize];
        if consumer.epoch != epoch {
            return;
        }
        let Some(job) = consumer.jobs.get(msg, receipt) else {
            return;
        };
        let Some(held) = consumer.find(msg).filter(|h| h.receipt == receipt) else { return };
        let outcome = match job.outcome {
            Outcome::Success | Outcome::Hang => {
                self.dependency_error(c, job.read_at).map_or(Outcome::Success, Outcome::Fail)
            }
            other => other,
        };
        if outcome == Outcome::CrashAfterEffect {
            // The effect (and what the handler sends) happened; the ack did not. On an
            // optimistic row the effect is the conditional write, which may conflict.
            let on_row = self.scenario.row_hop(c).is_some();
            if (!on_row || self.dependency_error(c, job.read_at).is_none()) && self.apply_effect(c, msg) {
                self.on_handled(c, msg);
            }
            self.crash(c);
            return;
        }
        match outcome {
            Outcome::Success | Outcome::Hang => {
                if self.apply_effect(c, msg) {
                    self.on_handled(c, msg);
                }
                if held.auto_acked {
                    if self.owns(c, held) {
                        self.broker.finish_acked(&mut self.out, now, msg, c);
                    }
                } else {
                    self.broker.ack(&mut self.out, now, msg, c, receipt);
                }
            }
            Outcome::Fail(error) => self.on_failure(c, held, error),
            Outcome::Crash | Outcome::CrashAfterEffect => unreachable!("handled above or as its own event"),
        }
        self.consumers[c as usize].forget(msg, receipt);
        self.room_changed(c);
        self.next_job(c);
    }

    /// Whether the consumer's downstream call fails now: an outage window, a forced outage,
    /// the dependency's error rate, or, on an optimistic dependency's row, a write since the
    /// call read it (`read_at`). A write that succeeds is the row's new version. (Inline up to
    /// the call, so that a consumer without a dependency pays one test.)
    #[inline]
    fn dependency_error(&mut self, c: ConsumerId, read_at: SimTime) -> Option<ErrorClass> {
        let d = self.scenario.consumers[c as usize].dependency?;
        self.call_dependency(c, d, read_at)
    }

    /// Whether dependency `d` is up now: outside its outage windows, and not taken down.
    pub fn dependency_up(&self, d: u32) -> bool {
        let now = self.now;
        let in_outage =
            self.scenario.dependencies[d as usize].outages.iter().any(|&(from, to)| from <= now && now < to);
        !in_outage && !self.dependency_down[d as usize]
    }

    #[inline(never)]
    fn call_dependency(&mut self, c: ConsumerId, d: u32, read_at: SimTime) -> Option<ErrorClass> {
        if !self.dependency_up(d) {
            return Some(ErrorClass::DependencyDown);
        }
        let spec = &self.scenario.dependencies[d as usize];
        let now = self.now;
        if let Some(limit) = spec.rate_limit_per_s {
            // A token bucket of one second's worth, refilled continuously; integer millionths.
            let (tokens, last) = &mut self.dependency_tokens[d as usize];
            let full = u64::from(limit) * 1_000_000;
            *tokens = (*tokens + now.since(*last).as_micros().saturating_mul(u64::from(limit))).min(full);
            *last = now;
            if *tokens < 1_000_000 {
                return Some(ErrorClass::Throttled);
            }
            *tokens -= 1_000_000;
        }
        let rate = spec.error_rate;
        if rate.numerator > 0 && self.consumers[c as usize].prng.chance(rate) {
            return Some(ErrorClass::Transient);
        }
        if spec.optimistic.is_some() {
            // BO-3: the write succeeds iff the version it read is still the row's. A write in
            // the same microsecond as the read counts as before it (a boundary convention, as
            // SQS-8's: with continuous hops a tie is rare, and either order is a real one).
            let written_at = &mut self.dependency_written_at[d as usize];
            if *written_at > read_at {
                return Some(ErrorClass::Conflict);
            }
            *written_at = now;
        }
        None
    }

    /// Applies the message's business effect; false when an idempotent consumer skipped it.
    fn apply_effect(&mut self, c: ConsumerId, msg: MsgId) -> bool {
        let now = self.now;
        let key = self.broker.msg(msg).key;
        // The dedupe store is the service's database, shared by its consumers (IP-1, IP-2): a
        // redelivery to another worker finds the key too.
        if self.consumer_spec(c).idempotent && !self.dedupe_store.insert(key) {
            self.stats.duplicates_suppressed += 1;
            self.out.emit(TraceEvent::DuplicateSuppressed { at: now, msg, consumer: c, key });
            return false;
        }
        let slot = key as usize;
        let times = if slot < self.effects.len() {
            let times = &mut self.effects[slot];
            *times += 1;
            *times
        } else {
            // A key's first effect (keys are message ids but for redrives and workflows).
            self.effects.grow_to(slot, 0);
            self.effects.push(1);
            1
        };
        self.stats.effects_applied += 1;
        if times == 2 {
            self.stats.applied_twice += 1;
        }
        self.out.emit(TraceEvent::EffectApplied { at: now, msg, consumer: c, key, times });
        // Per-key order: the first effect of each message, in the order they were sent. With
        // competing consumers a later message of a key can finish first.
        if let (1, Some(order_key)) = (times, self.broker.extra(msg).order_key) {
            let queue = self.broker.msg(msg).queue;
            let newest = self.newest_applied.entry((queue, order_key)).or_insert(key);
            if *newest > key {
                let after = *newest;
                self.stats.order_violations += 1;
                self.out.emit(TraceEvent::MessageOutOfOrder { at: now, msg, queue, order_key, after });
            } else {
                *newest = key;
            }
        }
        true
    }

    /// An attempt failed: retry with backoff, give the message back, or dead-letter it.
    fn on_failure(&mut self, c: ConsumerId, held: Held, error: ErrorClass) {
        let now = self.now;
        let msg = held.msg;
        if held.auto_acked {
            // The broker forgot it on receipt: a failed attempt is a lost message.
            if self.owns(c, held) {
                self.stats.lost += 1;
                self.broker.lose(&mut self.out, now, msg);
            }
            return;
        }
        if !self.broker.holds(msg, c, held.receipt) {
            return; // the lease is gone; whatever we decide, the broker has moved on
        }
        let attempt = self.broker.note_failure(msg, error);
        self.out.emit(TraceEvent::Failed { at: now, msg, consumer: c, error, attempt });
        let spec = &self.scenario.consumers[c as usize];
        let lease_model = self.broker.queues[spec.queue as usize].spec.lease;
        let give_up = |reason: DeadReason| lease_model.give_up_reason(reason);
        let retry = spec.retry;
        let limit = match (error, retry) {
            (ErrorClass::Permanent, _) => 0,
            (ErrorClass::Unknown, Some(r)) => r.unknown_attempts_max.min(r.policy.attempts_max.saturating_sub(1)),
            (ErrorClass::Unknown, None) => 2,
            (_, Some(r)) => r.policy.attempts_max.saturating_sub(1),
            // No policy: give it straight back and let the broker's own limits decide.
            (_, None) => u32::MAX,
        };
        if attempt > limit {
            let reason = if error == ErrorClass::Permanent {
                give_up(DeadReason::PermanentError)
            } else {
                give_up(DeadReason::AttemptsExhausted)
            };
            if self.broker.reject(&mut self.out, now, msg, c, held.receipt, reason) {
                self.on_dead_lettered(msg);
            } else {
                // Refused (ASB-6: already a dead letter): give it back instead.
                self.broker.give_back(&mut self.out, now, msg, c, held.receipt, ReturnReason::Abandoned);
            }
            return;
        }
        // BO-3: a conflict's answer takes a hop back; the wait before the retry starts when
        // the consumer has it.
        let reply = match (error, self.scenario.row_hop(c)) {
            (ErrorClass::Conflict, Some(hop)) => sample(hop, &mut self.consumers[c as usize].prng),
            _ => Duration::ZERO,
        };
        match retry {
            Some(r) if r.policy.strategy != backoff::Strategy::Immediate => {
                // Decorrelated jitter grows from the message's previous sleep (BO-1).
                let previous = match self.broker.extra(msg).last_sleep.as_millis_f64() {
                    p if p > 0.0 => p,
                    _ => r.policy.base_ms,
                };
                let u = self.consumers[c as usize].prng.unit();
                let sleep = ms_to_duration(backoff::delay_ms(&r.policy, attempt, previous, u));
                self.broker.note_sleep(msg, sleep);
                let until = now.after(reply).after(sleep);
                self.broker.retry_later(&mut self.out, now, msg, c, held.receipt, until, r.via == RetryVia::RetryQueue);
            }
            Some(r) if reply > Duration::ZERO => {
                let via_retry_queue = r.via == RetryVia::RetryQueue;
                self.broker.retry_later(&mut self.out, now, msg, c, held.receipt, now.after(reply), via_retry_queue);
            }
            _ => {
                let reason = self.broker.queues[spec.queue as usize].spec.lease.retry_now_reason();
                self.broker.give_back(&mut self.out, now, msg, c, held.receipt, reason);
            }
        }
    }

    /// Starts the next buffered message if a slot is free, and lets the queue deliver more.
    fn next_job(&mut self, c: ConsumerId) {
        while self.slot_free(c) {
            let Some(next) = self.consumers[c as usize].buffer.pop_front() else { break };
            self.start_job(c, next);
        }
        self.broker.mark_dirty(self.consumer_spec(c).queue);
    }

    /// A heartbeat while processing: extend the lease by a full lease from now. Service Bus's
    /// processor stops renewing after MaxAutoLockRenewalDuration, 5 minutes (ASB-3).
    pub(crate) fn on_heartbeat(&mut self, c: ConsumerId, msg: MsgId, receipt: u32, epoch: u32) {
        let now = self.now;
        let consumer = &self.consumers[c as usize];
        if consumer.epoch != epoch || consumer.jobs.get(msg, receipt).is_none() {
            return;
        }
        let spec = self.consumer_spec(c);
        let Some(every) = spec.heartbeat else { return };
        let lease_model = self.broker.queues[self.broker.msg(msg).queue as usize].spec.lease;
        let Some(lease) = self.broker.msg(msg).lease().filter(|l| l.receipt == receipt) else { return };
        if lease_model.auto_renew_cap().is_some_and(|cap| now >= lease.received_at.after(cap)) {
            return;
        }
        let until = now.after(lease_model.lease_duration());
        if self.broker.extend(&mut self.out, now, msg, c, receipt, until) {
            self.out.schedule(now.after(every), Event::Heartbeat { consumer: c, msg, receipt, epoch });
        }
    }

    /// The consumer dies: its auto-acked messages are lost; RabbitMQ requeues everything
    /// unacked when the channel closes (RMQ-7); SQS and Service Bus leases run out on their own.
    pub(crate) fn crash(&mut self, c: ConsumerId) {
        let now = self.now;
        if !self.consumers[c as usize].alive {
            return;
        }
        let consumer = &mut self.consumers[c as usize];
        consumer.alive = false;
        consumer.epoch += 1;
        consumer.crashed_at = Some(now);
        let held = std::mem::take(&mut consumer.held);
        consumer.buffer.clear();
        consumer.jobs.clear();
        self.room_changed(c);
        self.out.emit(TraceEvent::ConsumerCrashed { at: now, consumer: c });
        let rmq = self.broker.queues[self.consumer_spec(c).queue as usize].spec.lease.channel_bound();
        for &h in held.iter() {
            if h.auto_acked {
                if self.owns(c, h) {
                    self.stats.lost += 1;
                    self.broker.lose(&mut self.out, now, h.msg);
                }
            } else if rmq {
                self.broker.give_back(&mut self.out, now, h.msg, c, h.receipt, ReturnReason::ChannelClosed);
            }
        }
        if !self.lost.is_empty() {
            self.forget_lost();
        }
        if let Some(after) = self.consumer_spec(c).restart_after {
            let epoch = self.consumers[c as usize].epoch;
            self.out.schedule(now.after(after), Event::Restart { consumer: c, epoch });
        }
    }

    pub(crate) fn restart(&mut self, c: ConsumerId) {
        let consumer = &mut self.consumers[c as usize];
        if consumer.alive {
            return;
        }
        consumer.alive = true;
        self.room_changed(c);
        self.out.emit(TraceEvent::ConsumerRestarted { at: self.now, consumer: c });
        self.broker.mark_dirty(self.consumer_spec(c).queue);
    }

    /// The autoscaler's check: above the high mark it starts `add` standby instances, below
    /// the low mark it drains `remove` (they take nothing new and finish what they hold).
    pub(crate) fn autoscale(&mut self, scaler: u32) {
        let now = self.now;
        let spec = &self.scenario.autoscalers[scaler as usize];
        let depth = self.broker.depth(spec.queue);
        let active: Vec<u32> = spec.instances.iter().copied().filter(|&c| self.consumers[c as usize].active).collect();
        let changes: Vec<(u32, bool)> = if depth > spec.scale_up_above {
            let standby = spec.instances.iter().copied().filter(|&c| !self.consumers[c as usize].active);
            standby.take(spec.add as usize).map(|c| (c, true)).collect()
        } else if depth < spec.scale_down_below && active.len() > spec.min as usize {
            let removable = active.len() - spec.min as usize;
            active.iter().rev().take(removable.min(spec.remove as usize)).map(|&c| (c, false)).collect()
        } else {
            Vec::new()
        };
        let (queue, every) = (spec.queue, spec.check_every);
        for (c, up) in changes {
            self.consumers[c as usize].active = up;
            self.room_changed(c);
            self.out.emit(TraceEvent::Scaled { at: now, consumer: c, active: up, depth });
        }
        self.broker.mark_dirty(queue);
        let next = now.after(every);
        if next <= self.scenario.end() {
            self.out.schedule(next, Event::Autoscale { scaler });
        }
    }

    /// RabbitMQ closed the consumer's channel (the consumer timeout, or a connection drop):
    /// every other unacked delivery on it goes back too (RMQ-7, RMQ-9, RMQ-52). The consumer
    /// works on; its settles no longer count. A delivery the network lost is gone from its
    /// hands with the channel.
    pub(crate) fn channel_closed(&mut self, c: ConsumerId, reason: ReturnReason) {
        let now = self.now;
        let held: Vec<Held> = self.consumers[c as usize].held.iter().copied().collect();
        for h in held.iter().filter(|h| !h.auto_acked) {
            self.broker.give_back(&mut self.out, now, h.msg, c, h.receipt, reason);
        }
        let ghosts: Vec<Lost> = self.lost.iter().copied().filter(|l| l.consumer == c).collect();
        for l in ghosts {
            self.consumers[c as usize].held.remove(l.msg, l.receipt);
        }
        self.forget_lost();
        self.room_changed(c);
    }

    /// Lost deliveries whose lease has ended (run out, or given back with a channel) are
    /// forgotten.
    pub(crate) fn forget_lost(&mut self) {
        let broker = &self.broker;
        self.lost.retain(|l| broker.msg(l.msg).lease().is_some_and(|lease| lease.receipt == l.receipt));
    }

    /// A fault: `msg`, on its way to its consumer, never arrives (`Op::DropDelivery`). The
    /// broker still counts it as delivered, so it stays in flight until its lease runs out
    /// (SQS-2, ASB-5) and then comes back. An SQS or Service Bus consumer counts what it has
    /// in hand, so its room is free at once; a RabbitMQ channel counts the delivery unacked,
    /// its prefetch slot taken, until the consumer timeout closes the channel (RMQ-9).
    pub(crate) fn drop_delivery(&mut self, msg: MsgId) {
        let Some(m) = self.broker.msgs.get(msg as usize) else { return };
        let (MsgState::InFlight { consumer: c, phase: Phase::Delivering }, Some(lease)) = (m.state(), m.lease()) else {
            return;
        };
        let (queue, receipt) = (m.queue, lease.receipt);
        if !self.consumers[c as usize].alive || self.lost.iter().any(|l| l.msg == msg && l.receipt == receipt) {
            return;
        }
        self.lost.push(Lost { msg, receipt, consumer: c });
        self.out.emit(TraceEvent::DeliveryLost { at: self.now, msg, consumer: c });
        if !self.broker.queues[queue as usize].spec.lease.channel_bound() {
            self.consumers[c as usize].held.remove(msg, receipt);
            self.room_changed(c);
            self.broker.mark_dirty(queue);
        }
    }

    /// A fault: the broker delivers `msg` again while its consumer holds it
    /// (`Op::DuplicateDelivery`). SQS standard (SQS-5) and Service Bus (a lock lost) return it
    /// alone; the first consumer finishes its copy and its settle is refused (SQS-28, a stale
    /// lock token). On RabbitMQ a delivery comes twice only when the connection drops (RMQ-52):
    /// every unacked delivery of the consumer is requeued, redelivered. An SQS FIFO queue does
    /// not deliver a message twice while it is in flight.
    pub(crate) fn duplicate_delivery(&mut self, msg: MsgId) {
        let Some(m) = self.broker.msgs.get(msg as usize) else { return };
        let (MsgState::InFlight { consumer: c, phase: Phase::Buffered | Phase::Processing }, Some(lease)) =
            (m.state(), m.lease())
        else {
            return;
        };
        let (queue, receipt) = (m.queue, lease.receipt);
        if !self.consumers[c as usize].alive {
            return;
        }
        let spec = &self.broker.queues[queue as usize].spec;
        match spec.lease.redelivery(spec.fifo) {
            Redelivery::ConnectionDrop => self.channel_closed(c, ReturnReason::ChannelClosed),
            Redelivery::Never => {}
            Redelivery::Alone => {
                self.broker.give_back(&mut self.out, self.now, msg, c, receipt, ReturnReason::Duplicated);
            }
        }
    }

    /// Hands visible messages to consumers with room, round-robin (RMQ-1). SQS and Service Bus
    /// consumers long-poll, so a waiting receive takes a message as soon as it is visible.
    pub(crate) fn dispatch(&mut self, queue: u32) {
        let now = self.now;
        loop {
            let (consumers, specs) = (&self.consumers, &self.scenario.consumers);
            let slot_free = |c: ConsumerId| consumers[c as usize].slot_free(&specs[c as usize]);
            match self.broker.dispatch_one(&mut self.out, now, queue, self.scenario.latency, slot_free) {
                None => return,
                Some(None) => {}
                // Its room changes before the broker picks the next consumer.
                Some(Some(d)) => self.take_delivery(d),
            }
        }
    }

    /// The consumer's side of one delivery `dispatch` made: it holds the message, and has it
    /// at once (no network delay) or when it arrives.
    #[inline]
    fn take_delivery(&mut self, d: Dispatched) {
        let Dispatched { msg, consumer: c, receipt, waited, arrives_at } = d;
        self.stats.deliveries += 1;
        self.stats.wait_total = self.stats.wait_total.plus(waited);
        self.stats.waited += u64::from(waited > Duration::ZERO);
        let consumer = &mut self.consumers[c as usize];
        consumer.held.push(Held { msg, receipt, auto_acked: false });
        let epoch = consumer.epoch;
        self.room_changed(c);
        if arrives_at == self.now {
            // No network delay: the consumer has it at once, by the lease just granted.
            self.take_in(c, Held { msg, receipt, auto_acked: false }, true);
        } else {
            self.out.schedule(arrives_at, Event::Receive { consumer: c, msg, receipt, epoch });
        }
    }
}

#[cfg(test)]
mod tracked_tests {
    use super::{Held, Tracked, TRACKED_SMALL_MAX};

    #[test]
    fn small_and_large_agree_on_order_lookup_and_removal() {
        for n in [3u32, u32::try_from(TRACKED_SMALL_MAX).expect("small") + 40] {
            let mut t: Tracked<Held> = Tracked::default();
            for i in 0..n {
                t.push(Held { msg: i % 7, receipt: i, auto_acked: false });
            }
            assert_eq!(t.len(), usize::try_from(n).expect("small"));
            assert_eq!(t.iter().map(|h| h.receipt).collect::<Vec<_>>(), (0..n).collect::<Vec<_>>(), "arrival order");
            let newest = (0..n).filter(|i| i % 7 == 1).max();
            assert_eq!(t.newest(1).map(|h| h.receipt), newest, "the newest of a message");
            t.get_mut(1, 1).expect("held").auto_acked = true;
            assert!(t.get(1, 1).expect("held").auto_acked);
            assert_eq!(t.remove(2, 2).map(|h| h.receipt), Some(2));
            assert_eq!((t.remove(2, 2), t.get(2, 2), t.len()), (None, None, usize::try_from(n - 1).expect("small")));
            let want: Vec<u32> = [0, 1, 3].into_iter().filter(|&r| r < n).collect();
            assert_eq!(t.iter().map(|h| h.receipt).filter(|&r| r < 4).collect::<Vec<_>>(), want);
            for i in 0..n {
                t.remove(i % 7, i);
            }
            assert!(t.is_empty() && t.iter().next().is_none());
            t.push(Held { msg: 9, receipt: 99, auto_acked: false });
            t.clear();
            assert!(t.is_empty());
        }
    }
}
