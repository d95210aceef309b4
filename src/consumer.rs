//! Consumers: the agents that receive, process and settle. Each holds up to `prefetch`
//! unsettled messages and processes up to `concurrency` at once. What happens to one attempt
//! is drawn when it starts: success, a transient, permanent or unknown error, a crash or a hang
//! (a poison message always crashes). The retry policy then decides between retrying with
//! backoff, giving the message back, and dead-lettering it.
//!
//! A consumer keeps what it holds even after its lease is gone: a hung worker still works on a
//! message the broker has handed to someone else, and its ack is then refused. That is how
//! "effect applied twice" happens, and the idempotent store is how it is avoided (IP-1).
//!
//! `Consumers` is a component: it handles its events in `Consumers::handle(cx, ports, event)`
//! and acts on the broker, the services and the run's totals through the `Ports` the driver
//! lends it. What a workflow message's handler does besides its effect is the `Handlers`
//! trait, which the workflows implement from above.

use crate::backoff;
use crate::breaker::{Breaker, BreakerState};
use crate::broker::{Broker, Dispatched, Publisher};
use crate::dist::sample;
use crate::event::{ConsumerEvent, Ctx, Delivery, Event};
use crate::ids::QueueId;
use crate::lease::Redelivery;
use crate::message::{MsgState, Phase};
use crate::rng::Prng;
use crate::scenario::{AckMode, ConsumerSpec, Dist, LeaseModel, Outcomes, RetryVia, Scenario};
use crate::service::{Effect, Services};
use crate::stats::Stats;
use crate::time::{Duration, SimTime};
use crate::trace::{BreakerPhase, ConsumerId, DeadReason, ErrorClass, MsgId, ReturnReason, TraceEvent};
use std::collections::{BTreeMap, VecDeque};
use std::ops::{Index, IndexMut};

/// The consumers: each one's state, and the deliveries the network lost on their way to them.
#[derive(Clone, Debug, Default)]
pub struct Consumers {
    pub list: Vec<Consumer>,
    /// Deliveries the network lost whose lease still runs (faults; usually none).
    pub lost: Vec<Lost>,
}

/// What the consumers act on besides themselves: the driver keeps these components together
/// and lends them whole for one event (so that reaching one is an offset, not a pointer).
#[derive(Clone, Debug)]
pub struct Ports<H> {
    /// The broker they take messages from and settle them with.
    pub broker: Broker,
    /// The dependencies their handlers call and the store their effects land in.
    pub services: Services,
    pub stats: Stats,
    /// What a workflow message's handler does besides its effect (`workflow::Workflows`).
    pub handlers: H,
}

/// What a handler does for workflow messages (request-reply, sagas) besides the effect every
/// message has: implemented by the workflows, which sit above the consumers.
pub trait Handlers {
    /// No workflow message was ever sent: nothing to look up (the common case, one test).
    fn idle(&self) -> bool;
    /// An outcome of its own for this attempt, drawn from the consumer's PRNG, if `msg` is a
    /// workflow message that has one (a saga's compensations and retriable steps).
    fn outcome(&mut self, scenario: &Scenario, c: ConsumerId, msg: MsgId, prng: &mut Prng) -> Option<Outcome>;
    /// Consumer `c` applied `msg`'s effect: its role's handler runs (a reply, the saga's next
    /// step), publishing through `publisher`.
    fn handled(&mut self, cx: &mut Ctx, publisher: &mut Publisher<'_>, prng: &mut Prng, c: ConsumerId, msg: MsgId);
    /// `msg` went to a dead-letter queue.
    fn dead_lettered(&mut self, cx: &mut Ctx, msg: MsgId);
}

impl Index<usize> for Consumers {
    type Output = Consumer;
    fn index(&self, c: usize) -> &Consumer {
        &self.list[c]
    }
}

impl IndexMut<usize> for Consumers {
    fn index_mut(&mut self, c: usize) -> &mut Consumer {
        &mut self.list[c]
    }
}

fn consumer_spec(scenario: &Scenario, c: ConsumerId) -> &ConsumerSpec {
    &scenario.consumers[c.index()]
}

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

/// Whether a consumer still holds a message after its failed attempt is dealt with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keep {
    Done,
    /// It waits out its backoff with the delivery in hand, unacked (D3).
    Holding,
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
    /// How many of `held` are acked already (ack before processing).
    acked_in_hand: u32,
    /// Whether those still take a prefetch slot (`LeaseModel::acked_delivery_holds_a_slot`).
    acked_hold_slots: bool,
    /// Arrived and waiting for a processing slot, oldest first.
    pub buffer: VecDeque<Held>,
    pub jobs: Tracked<Job>,
    /// Deployed a fix: poison no longer crashes it (or fails it).
    pub fixed: bool,
    /// A poison message is a payload it cannot parse: a permanent error, not a crash.
    poison_fails: bool,
    /// Its place in its queue's `consumers`, and so its bit in the queue's `room`.
    pub slot: usize,
    /// Its processing time and outcome odds: the scenario's, until a user changes them live.
    pub processing: Dist,
    pub outcomes: Outcomes,
    pub prng: Prng,
    /// Its circuit breaker around its dependency calls, if it has one; it pauses while the
    /// breaker permits no call.
    pub breaker: Option<Breaker>,
}

impl Consumer {
    pub fn new(prng: Prng, spec: &ConsumerSpec, lease: LeaseModel, slot: usize) -> Consumer {
        Consumer {
            acked_in_hand: 0,
            acked_hold_slots: lease.acked_delivery_holds_a_slot(),
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
            poison_fails: spec.poison_fails,
            slot,
            prng,
            breaker: spec.breaker.map(|_| Breaker::default()),
        }
    }

    /// Whether its breaker, if it has one, lets a call start now.
    #[inline]
    fn breaker_permits(&self) -> bool {
        self.breaker.as_ref().is_none_or(Breaker::permits)
    }

    /// Whether it has a processing slot free (its concurrency).
    #[inline]
    pub fn slot_free(&self, spec: &ConsumerSpec) -> bool {
        self.jobs.len() < spec.concurrency as usize && self.breaker_permits()
    }

    /// Whether it would take another message now.
    #[inline]
    pub fn has_room(&self, spec: &ConsumerSpec) -> bool {
        self.alive && self.active && !spec.manual && self.unacked() < spec.prefetch as usize && self.breaker_permits()
    }

    /// What counts against its prefetch: what it holds, less what it acked on receipt where
    /// that frees the slot (RMQ-49).
    #[inline]
    fn unacked(&self) -> usize {
        let acked = if self.acked_hold_slots { 0 } else { self.acked_in_hand as usize };
        self.held.len().saturating_sub(acked)
    }

    /// It acked `msg` on receipt.
    fn mark_auto_acked(&mut self, msg: MsgId, receipt: u32) {
        if let Some(h) = self.held.get_mut(msg, receipt) {
            if !h.auto_acked {
                h.auto_acked = true;
                self.acked_in_hand += 1;
            }
        }
    }

    /// It lets go of what it held by `(msg, receipt)`.
    pub fn drop_held(&mut self, msg: MsgId, receipt: u32) {
        if self.held.remove(msg, receipt).is_some_and(|h| h.auto_acked) {
            self.acked_in_hand -= 1;
        }
    }

    /// It lets go of everything it held (a crash), oldest first.
    fn take_held(&mut self) -> Tracked<Held> {
        self.acked_in_hand = 0;
        std::mem::take(&mut self.held)
    }

    #[inline]
    pub fn find(&self, msg: MsgId) -> Option<Held> {
        self.held.newest(msg)
    }

    #[inline]
    fn forget(&mut self, msg: MsgId, receipt: u32) {
        self.drop_held(msg, receipt);
        self.jobs.remove(msg, receipt);
    }

    /// Draws the outcome of one attempt from the consumer's outcome table. Integer math only.
    /// An unknown error repeats when the same message is retried: it is the kind of failure
    /// nobody has diagnosed, which is why it gets only a retry or two before the DLQ.
    pub fn draw_outcome(&mut self, poison: bool, last_error: Option<ErrorClass>) -> Outcome {
        if poison && !self.fixed {
            return if self.poison_fails { Outcome::Fail(ErrorClass::Permanent) } else { Outcome::Crash };
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

/// A call to an optimistic row (BO-3) around `work` started now: the read reaches the row one
/// hop in; its reply, the work and the write follow. The write is the job's end (`on_finish`),
/// its reply comes after. Returns the job's whole duration and when the row was read.
#[inline(never)]
fn row_call(hop: Dist, now: SimTime, work: Duration, prng: &mut Prng) -> (Duration, SimTime) {
    let (to_row, back, write) = (sample(hop, prng), sample(hop, prng), sample(hop, prng));
    (to_row.plus(back).plus(work).plus(write), now.after(to_row))
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn ms_to_duration(ms: f64) -> Duration {
    Duration::from_micros(libm::round(ms.max(0.0) * 1000.0) as u64)
}

/// The consumers' side of the engine: receiving, processing, settling, crashing.
impl Consumers {
    /// The consumers' one match. A timer of an incarnation that has since crashed is ignored.
    pub(crate) fn handle<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, event: ConsumerEvent) {
        match event {
            ConsumerEvent::Receive(d) => self.on_receive(cx, p, d),
            ConsumerEvent::Finish(d) => self.on_finish(cx, p, d),
            ConsumerEvent::CrashNow { consumer, epoch } => {
                if self.list[consumer.index()].epoch == epoch {
                    self.crash(cx, p, consumer);
                }
            }
            ConsumerEvent::Heartbeat(d) => self.on_heartbeat(cx, p, d),
            ConsumerEvent::Restart { consumer, epoch } => {
                if self.list[consumer.index()].epoch == epoch {
                    self.restart(cx, p, consumer);
                }
            }
            ConsumerEvent::Autoscale { scaler } => self.autoscale(cx, p, scaler),
            ConsumerEvent::Requeue(d) => self.on_requeue(cx, p, d),
            ConsumerEvent::BreakerWake { consumer, epoch } => {
                if self.list[consumer.index()].epoch == epoch {
                    self.breaker_wake(cx, p, consumer);
                }
            }
        }
    }

    /// The broker let `c`'s lease on `msg` run out: counted if the consumer was still working
    /// on it. RabbitMQ's consumer timeout closes the consumer's channel.
    pub(crate) fn lease_lapsed<H: Handlers>(
        &mut self,
        cx: &mut Ctx,
        p: &mut Ports<H>,
        c: ConsumerId,
        (msg, receipt): (MsgId, u32),
        channel_bound: bool,
    ) {
        let busy = self.list[c.index()].jobs.get(msg, receipt).is_some();
        p.stats.lease_expired_mid_processing += u64::from(busy);
        if channel_bound {
            self.channel_closed(cx, p, c, ReturnReason::ConsumerTimeout);
        }
        if !self.lost.is_empty() {
            self.forget_lost(&p.broker);
        }
    }

    /// Keeps its bit in its queue's `room` (which of its consumers would take a message now)
    /// in step with `has_room`, so that dispatch finds the next consumer with room without a
    /// scan. Called after anything that changes what `has_room` reads; `check` recounts.
    #[inline]
    pub(crate) fn room_changed<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, c: ConsumerId) {
        let spec = &cx.scenario.consumers[c.index()];
        let consumer = &self.list[c.index()];
        let mut room = consumer.has_room(spec);
        if room && cx.scenario.queues[spec.queue as usize].single_active {
            room = self.single_active(&cx.scenario, spec.queue) == Some(c);
        }
        p.broker.set_room(QueueId(spec.queue), consumer.slot, room);
    }

    /// RMQ-57: the one consumer of a single-active-consumer queue that takes messages: the
    /// earliest registered (scenario order) that is up, subscribed and not manual.
    fn single_active(&self, scenario: &Scenario, queue: u32) -> Option<ConsumerId> {
        let up = |(i, s): &(usize, &ConsumerSpec)| {
            s.queue == queue && !s.manual && self.list[*i].alive && self.list[*i].active
        };
        scenario.consumers.iter().enumerate().find(up).map(|(i, _)| ConsumerId(crate::scenario::index_u32(i)))
    }

    /// After a consumer of a single-active-consumer queue came or went, the active one may
    /// have changed: every consumer of the queue looks at its room again.
    fn single_active_changed<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, c: ConsumerId) {
        let queue = consumer_spec(&cx.scenario, c).queue;
        if !cx.scenario.queues[queue as usize].single_active {
            return;
        }
        for i in 0..self.list.len() {
            if cx.scenario.consumers[i].queue == queue {
                self.room_changed(cx, p, ConsumerId(crate::scenario::index_u32(i)));
            }
        }
        p.broker.mark_dirty(QueueId(queue));
    }

    /// A delivered message reaches its consumer.
    pub(crate) fn on_receive<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, d: Delivery) {
        let Delivery { consumer: c, msg, receipt, epoch } = d;
        let consumer = &self.list[c.index()];
        if consumer.epoch != epoch {
            return; // delivered to an incarnation that has since crashed
        }
        if !self.lost.is_empty() && self.lost.iter().any(|l| l.msg == msg && l.receipt == receipt) {
            return; // the network lost it
        }
        let current = p.broker.holds(msg, c, receipt);
        self.take_in(cx, p, c, Held { msg, receipt, auto_acked: false }, current);
    }

    /// The consumer has `held` in hand (`current`: its lease is still the broker's latest):
    /// acks it first with ack-before-processing, then starts it, or buffers it for a slot.
    #[inline]
    fn take_in<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, c: ConsumerId, mut held: Held, current: bool) {
        let (now, msg, receipt) = (cx.now(), held.msg, held.receipt);
        if current && consumer_spec(&cx.scenario, c).ack == AckMode::BeforeProcessing {
            p.broker.auto_ack(&mut cx.out, now, msg, c);
            held.auto_acked = true;
            self.list[c.index()].mark_auto_acked(msg, receipt);
            self.room_changed(cx, p, c);
        }
        if self.slot_free(&cx.scenario, c) {
            self.start_job(cx, p, c, held);
        } else {
            Self::enter_phase(&mut p.broker, c, held, Phase::Buffered);
            self.list[c.index()].buffer.push_back(held);
        }
    }

    /// Whether the consumer has a processing slot free (fewer jobs than its concurrency).
    #[inline]
    fn slot_free(&self, scenario: &Scenario, c: ConsumerId) -> bool {
        self.list[c.index()].slot_free(consumer_spec(scenario, c))
    }

    /// Moves `held` to `phase` on the broker's side, if the broker still counts it as this
    /// consumer's and it is not there already (delivered straight into it, no network delay).
    #[inline(always)]
    fn enter_phase(broker: &mut Broker, c: ConsumerId, held: Held, phase: Phase) {
        if !broker.in_phase(held.msg, c, phase) && Self::owns(broker, c, held) {
            broker.advance_phase(held.msg, c, phase);
        }
    }

    /// Whether the broker still counts `held` as this consumer's (leased, or auto-acked and
    /// not yet settled).
    #[inline]
    fn owns(broker: &Broker, c: ConsumerId, held: Held) -> bool {
        let m = broker.msg(held.msg);
        if held.auto_acked {
            m.lease().is_none() && m.state().holder() == Some(c)
        } else {
            broker.holds(held.msg, c, held.receipt)
        }
    }

    fn start_job<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, c: ConsumerId, held: Held) {
        let now = cx.now();
        let extra = p.broker.extra(held.msg);
        let (poison, last_error) = (extra.poison, extra.last_error);
        // A saga service's compensations and retriable steps have their own failure odds.
        let workflow = if p.handlers.idle() {
            None
        } else {
            p.handlers.outcome(&cx.scenario, c, held.msg, &mut self.list[c.index()].prng)
        };
        let spec = &cx.scenario.consumers[c.index()];
        let consumer = &mut self.list[c.index()];
        let outcome = workflow.unwrap_or_else(|| consumer.draw_outcome(poison, last_error));
        let mut work = sample(consumer.processing, &mut consumer.prng);
        let mut read_at = SimTime::MAX;
        if let Some(hop) = cx.scenario.row_hop(c.0) {
            (work, read_at) = row_call(hop, now, work, &mut consumer.prng);
        }
        let epoch = consumer.epoch;
        consumer.jobs.push(Job { msg: held.msg, receipt: held.receipt, outcome, read_at });
        let (heartbeat, hang) = (spec.heartbeat, spec.hang);
        self.take_permit(cx, p, c);
        let done_at = match outcome {
            Outcome::Hang => now.after(hang),
            _ => now.after(work),
        };
        Self::enter_phase(&mut p.broker, c, held, Phase::Processing);
        cx.out.emit(TraceEvent::ProcessingStarted { at: now, msg: held.msg, consumer: c, done_at });
        match outcome {
            // A crash comes halfway through the work.
            Outcome::Crash => cx.out.schedule(
                now.after(Duration::from_micros(work.as_micros() / 2)),
                Event::Consumer(ConsumerEvent::CrashNow { consumer: c, epoch }),
            ),
            _ => cx.out.schedule(
                done_at,
                Event::Consumer(ConsumerEvent::Finish(Delivery {
                    consumer: c,
                    msg: held.msg,
                    receipt: held.receipt,
                    epoch,
                })),
            ),
        }
        if let Some(every) = heartbeat {
            if !held.auto_acked {
                cx.out.schedule(
                    now.after(every),
                    Event::Consumer(ConsumerEvent::Heartbeat(Delivery {
                        consumer: c,
                        msg: held.msg,
                        receipt: held.receipt,
                        epoch,
                    })),
                );
            }
        }
    }

    /// A job's work is done: apply the effect (or not), then settle.
    pub(crate) fn on_finish<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, d: Delivery) {
        let Delivery { consumer: c, msg, receipt, epoch } = d;
        let now = cx.now();
        let consumer = &self.list[c.index()];
        if consumer.epoch != epoch {
            return;
        }
        let Some(job) = consumer.jobs.get(msg, receipt) else {
            return;
        };
        let Some(held) = consumer.find(msg).filter(|h| h.receipt == receipt) else { return };
        let outcome = self.call_outcome(cx, p, c, job);
        if outcome == Outcome::CrashAfterEffect {
            // The effect (and what the handler sends) happened; the ack did not. On an
            // optimistic row the effect is the conditional write, which may conflict.
            let on_row = cx.scenario.row_hop(c.0).is_some();
            if !on_row || self.dependency_error(cx, p, c, job.read_at).is_none() {
                self.apply_effect(cx, p, c, msg);
            }
            self.crash(cx, p, c);
            return;
        }
        match outcome {
            Outcome::Success | Outcome::Hang => {
                self.apply_effect(cx, p, c, msg);
                if held.auto_acked {
                    if Self::owns(&p.broker, c, held) {
                        p.broker.finish_processed(&mut cx.out, now, msg, c);
                    }
                } else {
                    p.broker.ack(&mut cx.out, now, msg, c, receipt);
                }
            }
            Outcome::Fail(error) => {
                if self.on_failure(cx, p, c, held, error) == Keep::Holding {
                    // It waits out its backoff in the consumer's hands: the job ends, the
                    // delivery stays unacked.
                    self.list[c.index()].jobs.remove(msg, receipt);
                    self.room_changed(cx, p, c);
                    self.next_job(cx, p, c);
                    return;
                }
            }
            Outcome::Crash | Outcome::CrashAfterEffect => unreachable!("handled above or as its own event"),
        }
        self.list[c.index()].forget(msg, receipt);
        self.room_changed(cx, p, c);
        self.next_job(cx, p, c);
    }

    /// Whether the consumer's downstream call fails now: an outage window, a forced outage,
    /// the dependency's error rate, or, on an optimistic dependency's row, a write since the
    /// call read it (`read_at`). A write that succeeds is the row's new version. (Inline up to
    /// the call, so that a consumer without a dependency pays one test.)
    #[inline]
    fn dependency_error<H: Handlers>(
        &mut self,
        cx: &mut Ctx,
        p: &mut Ports<H>,
        c: ConsumerId,
        read_at: SimTime,
    ) -> Option<ErrorClass> {
        let d = cx.scenario.consumers[c.index()].dependency?;
        p.services.call(cx, d, read_at, &mut self.list[c.index()].prng)
    }

    /// Applies the message's business effect through the services' store (an idempotent
    /// consumer may skip it); then a workflow message's handler runs.
    fn apply_effect<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, c: ConsumerId, msg: MsgId) {
        let m = p.broker.msg(msg);
        let order = p.broker.extra(msg).order_key.map(|k| (m.queue, k));
        let spec = consumer_spec(&cx.scenario, c);
        let (key, idempotent, kind, born) = (m.key, spec.idempotent, spec.effect, p.broker.born(msg));
        let versioned = spec.version_check;
        let effect = Effect { msg, consumer: c, key, order, idempotent, kind, versioned, born };
        if p.services.apply(cx, &mut p.stats, effect) && !p.handlers.idle() {
            let mut publisher = Publisher { broker: &mut p.broker, stats: &mut p.stats };
            p.handlers.handled(cx, &mut publisher, &mut self.list[c.index()].prng, c, msg);
        }
    }

    /// A job's outcome at its end: one that would succeed makes its dependency call, which
    /// may fail it, and its breaker records the call; one that failed on its own made no call,
    /// and gives back a half-open trial permit.
    fn call_outcome<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, c: ConsumerId, job: Job) -> Outcome {
        match job.outcome {
            Outcome::Success | Outcome::Hang => {
                let error = self.dependency_error(cx, p, c, job.read_at);
                self.breaker_record(cx, p, c, error.is_some());
                error.map_or(Outcome::Success, Outcome::Fail)
            }
            other => {
                let consumer = &mut self.list[c.index()];
                if let (Some(b), Some(spec)) = (&mut consumer.breaker, cx.scenario.consumers[c.index()].breaker) {
                    b.release(&spec);
                }
                other
            }
        }
    }

    /// A job starts: where the consumer's breaker is half-open, it takes a trial permit
    /// (CB-7), and with the last one the consumer has no room.
    fn take_permit<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, c: ConsumerId) {
        if let Some(b) = &mut self.list[c.index()].breaker {
            if b.state != BreakerState::Closed {
                b.acquire();
                self.room_changed(cx, p, c);
            }
        }
    }

    /// Records a dependency call's outcome in the consumer's breaker, if it has one. Opened,
    /// it pauses (no message taken) until its wait is over; closed, it takes work again.
    fn breaker_record<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, c: ConsumerId, failed: bool) {
        let (Some(spec), Some(d)) =
            (cx.scenario.consumers[c.index()].breaker, cx.scenario.consumers[c.index()].dependency)
        else {
            return;
        };
        let now = cx.now();
        let consumer = &mut self.list[c.index()];
        let Some(t) = consumer.breaker.as_mut().and_then(|b| b.record(&spec, now, failed)) else { return };
        let phase = match t.to {
            BreakerState::Open { until } => {
                let epoch = consumer.epoch;
                cx.out.schedule(until, Event::Consumer(ConsumerEvent::BreakerWake { consumer: c, epoch }));
                BreakerPhase::Open
            }
            _ => BreakerPhase::Closed,
        };
        let failure_rate_pct = t.failure_rate_pct;
        cx.out.emit(TraceEvent::BreakerChanged { at: now, consumer: c, dependency: d, phase, failure_rate_pct });
        self.room_changed(cx, p, c);
    }

    /// A breaker's open wait is over: half-open, it takes as many messages as it has trial
    /// calls (CB-6, CB-7).
    fn breaker_wake<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, c: ConsumerId) {
        let spec = &cx.scenario.consumers[c.index()];
        let (Some(b), Some(bs), Some(d)) = (self.list[c.index()].breaker.as_mut(), spec.breaker, spec.dependency)
        else {
            return;
        };
        let now = cx.now();
        if b.wake(&bs, now).is_some() {
            let phase = BreakerPhase::HalfOpen;
            cx.out.emit(TraceEvent::BreakerChanged { at: now, consumer: c, dependency: d, phase, failure_rate_pct: 0 });
            self.room_changed(cx, p, c);
            self.next_job(cx, p, c);
        }
    }

    /// An attempt failed: retry with backoff, give the message back, or dead-letter it.
    fn on_failure<H: Handlers>(
        &mut self,
        cx: &mut Ctx,
        p: &mut Ports<H>,
        c: ConsumerId,
        held: Held,
        error: ErrorClass,
    ) -> Keep {
        let now = cx.now();
        let msg = held.msg;
        if held.auto_acked {
            // The broker forgot it on receipt: a failed attempt is a lost message.
            if Self::owns(&p.broker, c, held) {
                p.stats.lost += 1;
                p.broker.lose(&mut cx.out, now, msg);
            }
            return Keep::Done;
        }
        if !p.broker.holds(msg, c, held.receipt) {
            return Keep::Done; // the lease is gone; whatever we decide, the broker has moved on
        }
        let attempt = p.broker.note_failure(msg, error);
        let spec = &cx.scenario.consumers[c.index()];
        let (park, attempt) = loop_attempt(&p.broker, spec, msg, attempt);
        cx.out.emit(TraceEvent::Failed { at: now, msg, consumer: c, error, attempt });
        let lease_model = p.broker.queues[spec.queue as usize].spec.lease;
        let give_up = |reason: DeadReason| lease_model.give_up_reason(reason);
        let limit = retries_allowed(error, spec.retry);
        // A retry loop: within its attempts, rejected without requeue (the DLX takes it to
        // wait); past them, republished to the parking lot and acked.
        match park {
            Some(park) if attempt > limit => p.broker.park(&mut cx.out, now, msg, c, held.receipt, park),
            Some(_) => p.broker.reject(&mut cx.out, now, msg, c, held.receipt, DeadReason::Rejected),
            None => false,
        };
        if park.is_some() {
            return Keep::Done;
        }
        if attempt > limit {
            let reason = if error == ErrorClass::Permanent {
                give_up(DeadReason::PermanentError)
            } else {
                give_up(DeadReason::AttemptsExhausted)
            };
            if p.broker.reject(&mut cx.out, now, msg, c, held.receipt, reason) {
                p.handlers.dead_lettered(cx, msg);
            } else {
                // Refused (ASB-6: already a dead letter): give it back instead.
                p.broker.give_back(&mut cx.out, now, msg, c, held.receipt, ReturnReason::Abandoned);
            }
            return Keep::Done;
        }
        self.retry(cx, p, c, held, error, attempt)
    }

    /// A failed attempt within its retry limit: back after a backoff (BO-1), or at once, by
    /// the retry policy. A queue that cannot hold a message back (RabbitMQ, D3) leaves the
    /// backoff to the consumer: it keeps the delivery unacked and requeues it afterwards
    /// (`Keep::Holding`), and that return counts toward a quorum queue's delivery limit.
    fn retry<H: Handlers>(
        &mut self,
        cx: &mut Ctx,
        p: &mut Ports<H>,
        c: ConsumerId,
        held: Held,
        error: ErrorClass,
        attempt: u32,
    ) -> Keep {
        let (now, msg) = (cx.now(), held.msg);
        let spec = &cx.scenario.consumers[c.index()];
        let lease = p.broker.queues[spec.queue as usize].spec.lease;
        // BO-3: a conflict's answer takes a hop back; the wait before the retry starts when
        // the consumer has it.
        let reply = match (error, cx.scenario.row_hop(c.0)) {
            (ErrorClass::Conflict, Some(hop)) => sample(hop, &mut self.list[c.index()].prng),
            _ => Duration::ZERO,
        };
        match spec.retry {
            Some(r) if r.policy.strategy != backoff::Strategy::Immediate => {
                // Decorrelated jitter grows from the message's previous sleep (BO-1).
                let previous = match p.broker.extra(msg).last_sleep.as_millis_f64() {
                    p if p > 0.0 => p,
                    _ => r.policy.base_ms,
                };
                let u = self.list[c.index()].prng.unit();
                let sleep = ms_to_duration(backoff::delay_ms(&r.policy, attempt, previous, u));
                p.broker.note_sleep(msg, sleep);
                self.retry_at(cx, p, c, held, now.after(reply).after(sleep), r.via)
            }
            Some(r) if reply > Duration::ZERO => self.retry_at(cx, p, c, held, now.after(reply), r.via),
            _ => {
                p.broker.give_back(&mut cx.out, now, msg, c, held.receipt, lease.retry_now_reason());
                Keep::Done
            }
        }
    }

    /// The message is tried again at `until`: it waits in its queue or its retry queue, or,
    /// where the queue cannot hold it back, in the consumer's hands until `Requeue`.
    fn retry_at<H: Handlers>(
        &mut self,
        cx: &mut Ctx,
        p: &mut Ports<H>,
        c: ConsumerId,
        held: Held,
        until: SimTime,
        via: RetryVia,
    ) -> Keep {
        let lease = p.broker.queues[consumer_spec(&cx.scenario, c).queue as usize].spec.lease;
        if via == RetryVia::Delay && !lease.delays_in_queue() {
            let d = Delivery { consumer: c, msg: held.msg, receipt: held.receipt, epoch: self.list[c.index()].epoch };
            cx.out.schedule(until, Event::Consumer(ConsumerEvent::Requeue(d)));
            return Keep::Holding;
        }
        let (now, via_retry_queue) = (cx.now(), via == RetryVia::RetryQueue);
        p.broker.retry_later(&mut cx.out, now, held.msg, c, held.receipt, until, via_retry_queue);
        Keep::Done
    }

    /// A backoff the consumer waited out with the message in hand is over: it nacks it with
    /// requeue (D3), unless its channel closed meanwhile and took the message back already.
    fn on_requeue<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, d: Delivery) {
        let Delivery { consumer: c, msg, receipt, epoch } = d;
        if self.list[c.index()].epoch != epoch {
            return; // it crashed: its channel took the message back, and it holds nothing
        }
        // Its channel may have closed meanwhile (the consumer timeout) and taken it back; it
        // lets go of it either way.
        if p.broker.holds(msg, c, receipt) {
            let reason = p.broker.queues[consumer_spec(&cx.scenario, c).queue as usize].spec.lease.retry_now_reason();
            let now = cx.now();
            p.broker.give_back(&mut cx.out, now, msg, c, receipt, reason);
        }
        self.list[c.index()].drop_held(msg, receipt);
        self.room_changed(cx, p, c);
        p.broker.mark_dirty(QueueId(consumer_spec(&cx.scenario, c).queue));
    }

    /// Starts the next buffered message if a slot is free, and lets the queue deliver more.
    fn next_job<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, c: ConsumerId) {
        while self.slot_free(&cx.scenario, c) {
            let Some(next) = self.list[c.index()].buffer.pop_front() else { break };
            self.start_job(cx, p, c, next);
        }
        p.broker.mark_dirty(QueueId(consumer_spec(&cx.scenario, c).queue));
    }

    /// A heartbeat while processing: extend the lease by a full lease from now. Service Bus's
    /// processor stops renewing after MaxAutoLockRenewalDuration, 5 minutes (ASB-3).
    pub(crate) fn on_heartbeat<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, d: Delivery) {
        let Delivery { consumer: c, msg, receipt, epoch } = d;
        let now = cx.now();
        let consumer = &self.list[c.index()];
        if consumer.epoch != epoch || consumer.jobs.get(msg, receipt).is_none() {
            return;
        }
        let spec = consumer_spec(&cx.scenario, c);
        let Some(every) = spec.heartbeat else { return };
        let lease_model = p.broker.queues[p.broker.msg(msg).queue.index()].spec.lease;
        let Some(lease) = p.broker.msg(msg).lease().filter(|l| l.receipt == receipt) else { return };
        if lease_model.auto_renew_cap().is_some_and(|cap| now >= lease.received_at.after(cap)) {
            return;
        }
        let until = now.after(lease_model.lease_duration());
        if p.broker.extend(&mut cx.out, now, msg, c, receipt, until) {
            cx.out.schedule(
                now.after(every),
                Event::Consumer(ConsumerEvent::Heartbeat(Delivery { consumer: c, msg, receipt, epoch })),
            );
        }
    }

    /// The consumer dies: its auto-acked messages are lost; RabbitMQ requeues everything
    /// unacked when the channel closes (RMQ-7); SQS and Service Bus leases run out on their own.
    pub(crate) fn crash<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, c: ConsumerId) {
        let now = cx.now();
        if !self.list[c.index()].alive {
            return;
        }
        let consumer = &mut self.list[c.index()];
        consumer.alive = false;
        consumer.epoch += 1;
        consumer.crashed_at = Some(now);
        let held = consumer.take_held();
        consumer.buffer.clear();
        consumer.jobs.clear();
        // A new process starts with a closed breaker and no calls remembered.
        if let Some(b) = &mut consumer.breaker {
            *b = Breaker::default();
        }
        self.room_changed(cx, p, c);
        self.single_active_changed(cx, p, c);
        cx.out.emit(TraceEvent::ConsumerCrashed { at: now, consumer: c });
        let rmq = p.broker.queues[consumer_spec(&cx.scenario, c).queue as usize].spec.lease.channel_bound();
        for &h in held.iter() {
            if h.auto_acked {
                if Self::owns(&p.broker, c, h) {
                    p.stats.lost += 1;
                    p.broker.lose(&mut cx.out, now, h.msg);
                }
            } else if rmq {
                p.broker.give_back(&mut cx.out, now, h.msg, c, h.receipt, ReturnReason::ChannelClosed);
            }
        }
        if !self.lost.is_empty() {
            self.forget_lost(&p.broker);
        }
        if let Some(after) = consumer_spec(&cx.scenario, c).restart_after {
            let epoch = self.list[c.index()].epoch;
            cx.out.schedule(now.after(after), Event::Consumer(ConsumerEvent::Restart { consumer: c, epoch }));
        }
    }

    pub(crate) fn restart<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, c: ConsumerId) {
        let consumer = &mut self.list[c.index()];
        if consumer.alive {
            return;
        }
        consumer.alive = true;
        self.room_changed(cx, p, c);
        self.single_active_changed(cx, p, c);
        cx.out.emit(TraceEvent::ConsumerRestarted { at: cx.now(), consumer: c });
        p.broker.mark_dirty(QueueId(consumer_spec(&cx.scenario, c).queue));
    }

    /// basic.cancel (RMQ-53): no new deliveries; what it holds stays unacked and can still be
    /// settled, and goes back only when its channel closes.
    pub(crate) fn cancel<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, c: ConsumerId) {
        self.list[c.index()].active = false;
        self.room_changed(cx, p, c);
        self.single_active_changed(cx, p, c);
    }

    /// The autoscaler's check: above the high mark it starts `add` standby instances, below
    /// the low mark it drains `remove` (they take nothing new and finish what they hold).
    pub(crate) fn autoscale<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, scaler: u32) {
        let now = cx.now();
        let spec = &cx.scenario.autoscalers[scaler as usize];
        let depth = p.broker.depth(QueueId(spec.queue));
        let active: Vec<u32> = spec.instances.iter().copied().filter(|&c| self.list[c as usize].active).collect();
        let changes: Vec<(u32, bool)> = if depth > spec.scale_up_above {
            let standby = spec.instances.iter().copied().filter(|&c| !self.list[c as usize].active);
            standby.take(spec.add as usize).map(|c| (c, true)).collect()
        } else if depth < spec.scale_down_below && active.len() > spec.min as usize {
            let removable = active.len() - spec.min as usize;
            active.iter().rev().take(removable.min(spec.remove as usize)).map(|&c| (c, false)).collect()
        } else {
            Vec::new()
        };
        let (queue, every) = (spec.queue, spec.check_every);
        for (c, up) in changes {
            self.list[c as usize].active = up;
            self.room_changed(cx, p, ConsumerId(c));
            cx.out.emit(TraceEvent::Scaled { at: now, consumer: ConsumerId(c), active: up, depth });
        }
        p.broker.mark_dirty(QueueId(queue));
        let next = now.after(every);
        if next <= cx.scenario.end() {
            cx.out.schedule(next, Event::Consumer(ConsumerEvent::Autoscale { scaler }));
        }
    }

    /// RabbitMQ closed the consumer's channel (the consumer timeout, or a connection drop):
    /// every other unacked delivery on it goes back too (RMQ-7, RMQ-9, RMQ-52). The consumer
    /// works on; its settles no longer count. A delivery the network lost is gone from its
    /// hands with the channel.
    pub(crate) fn channel_closed<H: Handlers>(
        &mut self,
        cx: &mut Ctx,
        p: &mut Ports<H>,
        c: ConsumerId,
        reason: ReturnReason,
    ) {
        let now = cx.now();
        let held: Vec<Held> = self.list[c.index()].held.iter().copied().collect();
        for h in held.iter().filter(|h| !h.auto_acked) {
            p.broker.give_back(&mut cx.out, now, h.msg, c, h.receipt, reason);
        }
        let ghosts: Vec<Lost> = self.lost.iter().copied().filter(|l| l.consumer == c).collect();
        for l in ghosts {
            self.list[c.index()].drop_held(l.msg, l.receipt);
        }
        self.forget_lost(&p.broker);
        self.room_changed(cx, p, c);
    }

    /// Lost deliveries whose lease has ended (run out, or given back with a channel) are
    /// forgotten.
    pub(crate) fn forget_lost(&mut self, broker: &Broker) {
        self.lost.retain(|l| broker.msg(l.msg).lease().is_some_and(|lease| lease.receipt == l.receipt));
    }

    /// A fault: `msg`, on its way to its consumer, never arrives (`Op::DropDelivery`). The
    /// broker still counts it as delivered, so it stays in flight until its lease runs out
    /// (SQS-2, ASB-5) and then comes back. An SQS or Service Bus consumer counts what it has
    /// in hand, so its room is free at once; a RabbitMQ channel counts the delivery unacked,
    /// its prefetch slot taken, until the consumer timeout closes the channel (RMQ-9).
    pub(crate) fn drop_delivery<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, msg: MsgId) {
        let Some(m) = p.broker.msgs.get(msg.index()) else { return };
        let (MsgState::InFlight { consumer: c, phase: Phase::Delivering }, Some(lease)) = (m.state(), m.lease()) else {
            return;
        };
        let (queue, receipt) = (m.queue, lease.receipt);
        if !self.list[c.index()].alive || self.lost.iter().any(|l| l.msg == msg && l.receipt == receipt) {
            return;
        }
        self.lost.push(Lost { msg, receipt, consumer: c });
        cx.out.emit(TraceEvent::DeliveryLost { at: cx.now(), msg, consumer: c });
        if !p.broker.queues[queue.index()].spec.lease.channel_bound() {
            self.list[c.index()].drop_held(msg, receipt);
            self.room_changed(cx, p, c);
            p.broker.mark_dirty(queue);
        }
    }

    /// A fault: the broker delivers `msg` again while its consumer holds it
    /// (`Op::DuplicateDelivery`). SQS standard (SQS-5) and Service Bus (a lock lost) return it
    /// alone; the first consumer finishes its copy and its settle is refused (SQS-28, a stale
    /// lock token). On RabbitMQ a delivery comes twice only when the connection drops (RMQ-52):
    /// every unacked delivery of the consumer is requeued, redelivered. An SQS FIFO queue does
    /// not deliver a message twice while it is in flight.
    pub(crate) fn duplicate_delivery<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, msg: MsgId) {
        let Some(m) = p.broker.msgs.get(msg.index()) else { return };
        let (MsgState::InFlight { consumer: c, phase: Phase::Buffered | Phase::Processing }, Some(lease)) =
            (m.state(), m.lease())
        else {
            return;
        };
        let (queue, receipt) = (m.queue, lease.receipt);
        if !self.list[c.index()].alive {
            return;
        }
        let spec = &p.broker.queues[queue.index()].spec;
        match spec.lease.redelivery(spec.fifo) {
            Redelivery::ConnectionDrop => self.channel_closed(cx, p, c, ReturnReason::ChannelClosed),
            Redelivery::Never => {}
            Redelivery::Alone => {
                let now = cx.now();
                p.broker.give_back(&mut cx.out, now, msg, c, receipt, ReturnReason::Duplicated);
            }
        }
    }

    /// Hands visible messages to consumers with room, round-robin (RMQ-1). SQS and Service Bus
    /// consumers long-poll, so a waiting receive takes a message as soon as it is visible.
    pub(crate) fn dispatch<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, queue: u32) {
        let now = cx.now();
        loop {
            let (consumers, specs) = (&self.list, &cx.scenario.consumers);
            let slot_free = |c: ConsumerId| consumers[c.index()].slot_free(&specs[c.index()]);
            match p.broker.dispatch_one(&mut cx.out, now, QueueId(queue), cx.scenario.latency, slot_free) {
                None => return,
                Some(None) => {}
                // Its room changes before the broker picks the next consumer.
                Some(Some(d)) => self.take_delivery(cx, p, d),
            }
        }
    }

    /// The consumer's side of one delivery `dispatch` made: it holds the message, and has it
    /// at once (no network delay) or when it arrives.
    #[inline]
    fn take_delivery<H: Handlers>(&mut self, cx: &mut Ctx, p: &mut Ports<H>, d: Dispatched) {
        let Dispatched { msg, consumer: c, receipt, waited, arrives_at } = d;
        p.stats.deliveries += 1;
        p.stats.wait_total_us += waited.as_micros();
        p.stats.waited += u64::from(waited > Duration::ZERO);
        let consumer = &mut self.list[c.index()];
        consumer.held.push(Held { msg, receipt, auto_acked: false });
        let epoch = consumer.epoch;
        self.room_changed(cx, p, c);
        if arrives_at == cx.now() {
            // No network delay: the consumer has it at once, by the lease just granted.
            self.take_in(cx, p, c, Held { msg, receipt, auto_acked: false }, true);
        } else {
            cx.out.schedule(
                arrives_at,
                Event::Consumer(ConsumerEvent::Receive(Delivery { consumer: c, msg, receipt, epoch })),
            );
        }
    }
}

/// How many failed attempts of this kind a consumer's policy retries.
fn retries_allowed(error: ErrorClass, retry: Option<crate::scenario::RetrySpec>) -> u32 {
    match (error, retry) {
        (ErrorClass::Permanent, _) => 0,
        (ErrorClass::Unknown, Some(r)) => r.unknown_attempts_max.min(r.policy.attempts_max.saturating_sub(1)),
        (ErrorClass::Unknown, None) => 2,
        (_, Some(r)) => r.policy.attempts_max.saturating_sub(1),
        // No policy: give it straight back and let the broker's own limits decide.
        (_, None) => u32::MAX,
    }
}

/// A consumer retrying through dead-letter exchanges (`RetryVia::DeadLetter`): its parking
/// lot, and the attempt as the application counts it, by the message's own x-death entry for
/// (its queue, rejected) (RMQ-42). Any other consumer: no parking lot, its own count.
fn loop_attempt(broker: &Broker, spec: &ConsumerSpec, msg: MsgId, attempt: u32) -> (Option<QueueId>, u32) {
    match spec.retry.map(|r| r.via) {
        Some(RetryVia::DeadLetter { park }) => {
            (Some(QueueId(park)), broker.x_death_count(msg, QueueId(spec.queue), DeadReason::Rejected) + 1)
        }
        _ => (None, attempt),
    }
}

#[cfg(test)]
mod tracked_tests {
    use super::{Held, Tracked, TRACKED_SMALL_MAX};
    use crate::ids::MsgId;

    #[test]
    fn small_and_large_agree_on_order_lookup_and_removal() {
        for n in [3u32, u32::try_from(TRACKED_SMALL_MAX).expect("small") + 40] {
            let mut t: Tracked<Held> = Tracked::default();
            for i in 0..n {
                t.push(Held { msg: MsgId(i % 7), receipt: i, auto_acked: false });
            }
            assert_eq!(t.len(), usize::try_from(n).expect("small"));
            assert_eq!(t.iter().map(|h| h.receipt).collect::<Vec<_>>(), (0..n).collect::<Vec<_>>(), "arrival order");
            let newest = (0..n).filter(|i| i % 7 == 1).max();
            assert_eq!(t.newest(MsgId(1)).map(|h| h.receipt), newest, "the newest of a message");
            t.get_mut(MsgId(1), 1).expect("held").auto_acked = true;
            assert!(t.get(MsgId(1), 1).expect("held").auto_acked);
            assert_eq!(t.remove(MsgId(2), 2).map(|h| h.receipt), Some(2));
            assert_eq!(
                (t.remove(MsgId(2), 2), t.get(MsgId(2), 2), t.len()),
                (None, None, usize::try_from(n - 1).expect("small"))
            );
            let want: Vec<u32> = [0, 1, 3].into_iter().filter(|&r| r < n).collect();
            assert_eq!(t.iter().map(|h| h.receipt).filter(|&r| r < 4).collect::<Vec<_>>(), want);
            for i in 0..n {
                t.remove(MsgId(i % 7), i);
            }
            assert!(t.is_empty() && t.iter().next().is_none());
            t.push(Held { msg: MsgId(9), receipt: 99, auto_acked: false });
            t.clear();
            assert!(t.is_empty());
        }
    }
}
