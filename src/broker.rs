//! The broker: queues, messages and the three lease models. Every rule cites its number in
//! `docs/rules.md`. The broker reacts to calls (from consumers, the script and its
//! own timers) and answers through the `Outbox`: trace events and timers. It never decides
//! what a consumer does.

use crate::deadlines::Deadlines;
use crate::event::{Ctx, Event, Outbox};
use crate::exchange::{Reached, Route, Topology};
use crate::lease::DeadLetterMetadata;
use crate::message::{DeliveryMeta, Extra, Message, MsgState, Phase, StateCounts, StateKind, XDeathMeta};
use crate::ready::ReadySet;
use crate::scenario::{index_u32, limits, DlxSpec, Overflow, QueueRole, QueueSpec, Scenario};
use crate::stats::Stats;
use crate::time::{Duration, SimTime};
use crate::trace::{
    ConsumerId, DeadReason, DropReason, ErrorClass, MsgId, ProducerId, QueueId, ReturnReason, TraceEvent,
    DEAD_LETTERING,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a dead letter carries (issue 3 §5), and RabbitMQ's `x-death` (RMQ-14).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadInfo {
    pub from: QueueId,
    pub reason: DeadReason,
    pub last_error: Option<ErrorClass>,
    pub receive_count: u32,
    pub attempts: u32,
    pub first_attempt_at: Option<SimTime>,
    pub last_attempt_at: Option<SimTime>,
    pub dead_at: SimTime,
    /// Newest first, one entry per (queue, reason) (RMQ-14).
    pub x_death: Vec<XDeath>,
}

impl DeadInfo {
    /// RMQ-14: bumps the (queue, reason) entry and moves it to the front, keeping its first
    /// time, or adds one there.
    /// `route`: the exchange and routing key it was last published with (RMQ-41).
    fn record_x_death(&mut self, queue: QueueId, reason: DeadReason, now: SimTime, route: Route) {
        let entry = match self.x_death.iter().position(|d| d.queue == queue && d.reason == reason) {
            Some(i) => {
                let mut d = self.x_death.remove(i);
                d.count += 1;
                d
            }
            None => XDeath { queue, reason, count: 1, time: now, exchange: route.exchange, routing_key: route.key },
        };
        self.x_death.insert(0, entry);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XDeath {
    pub queue: QueueId,
    pub reason: DeadReason,
    pub count: u32,
    /// The first time, kept on later deaths (RMQ-14).
    pub time: SimTime,
    /// The exchange it was published to before its first death here, and its routing key
    /// (an index into `Topology::keys`), also kept (RMQ-41, RMQ-42).
    pub exchange: u32,
    pub routing_key: u32,
}

/// What a send came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// A new message, with this id.
    Stored(MsgId),
    /// A duplicate by its deduplication id: nothing stored; this is the original (SQS-23).
    Duplicate(MsgId),
}

/// One delivery dispatch made: the message, its consumer and receipt, how long it waited
/// visible, and when it reaches the consumer.
#[derive(Clone, Copy, Debug)]
pub struct Dispatched {
    pub msg: MsgId,
    pub consumer: ConsumerId,
    pub receipt: u32,
    pub waited: Duration,
    pub arrives_at: SimTime,
}

/// A set of queues, one bit each: every queue a scenario can have must fit.
pub type QueueMask = u64;
const _: () =
    assert!(crate::scenario::limits::ALL_QUEUES_MAX <= QueueMask::BITS as usize, "a QueueMask holds a bit per queue");

/// What a send carries beyond its queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendAttrs {
    pub group: Option<u32>,
    pub dedup_id: Option<String>,
    pub ttl: Option<Duration>,
    pub delay: Option<Duration>,
    pub poison: bool,
    /// The business key; `None` makes it the new message's own id.
    pub key: Option<u32>,
    /// What order is kept per (a customer, say); a FIFO queue's message group is one.
    pub order_key: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct QueueState {
    pub spec: QueueSpec,
    /// Visible messages by position: the order of delivery. A returned message goes back to
    /// its own position (RMQ-6, ASB-4, SQS visibility).
    pub ready: ReadySet,
    next_pos: u64,
    /// Consumers subscribed to this queue, in scenario order, and the round-robin cursor.
    pub consumers: Vec<ConsumerId>,
    pub next_rr: usize,
    /// Which of them would take a message now, a bit per place in `consumers`
    /// (`Consumers::room_changed` keeps it): dispatch finds the next one in a word, not a scan.
    pub room: Vec<u64>,
    /// With consumers of more than one priority (RMQ-2): a mask of places per priority,
    /// highest first. Empty when all are equal, the common case.
    pub tiers: Vec<Vec<u64>>,
    /// FIFO: in-flight messages per group; a group with any is blocked (SQS-21).
    pub groups_in_flight: BTreeMap<u32, u32>,
    /// The first accepted send per deduplication id (SQS-23, ASB-9), in `spec.dedup_window`.
    dedup: BTreeMap<String, (SimTime, MsgId)>,
}

impl QueueState {
    /// The first place at or after `from`, round the list, whose consumer has room.
    pub fn next_with_room(&self, from: usize) -> Option<usize> {
        if self.tiers.is_empty() {
            return Self::next_in(&self.room, from);
        }
        // RMQ-2: the highest priority with room first; round-robin within it.
        let mut masked = [0u64; limits::CONSUMERS_MAX.div_ceil(64)];
        let masked = &mut masked[..self.room.len()];
        self.tiers.iter().find_map(|tier| {
            for ((out, room), mask) in masked.iter_mut().zip(&self.room).zip(tier) {
                *out = room & mask;
            }
            Self::next_in(masked, from)
        })
    }

    /// Whether the consumer at place `slot` has room, as its bit says.
    pub fn has_room_at(&self, slot: usize) -> bool {
        self.room[slot / 64] >> (slot % 64) & 1 == 1
    }

    fn next_in(room: &[u64], from: usize) -> Option<usize> {
        let (first, bit) = (from / 64, from % 64);
        let at = |i: usize, w: u64| i * 64 + w.trailing_zeros() as usize;
        if let Some(&w) = room.get(first) {
            let ahead = w & (u64::MAX << bit);
            if ahead != 0 {
                return Some(at(first, ahead));
            }
        }
        let later = room.iter().enumerate().skip(first + 1);
        let wrapped = room.iter().enumerate().take(first + 1);
        later.chain(wrapped).find(|&(_, &w)| w != 0).map(|(i, &w)| at(i, w))
    }

    fn take_pos(&mut self) -> u64 {
        self.next_pos += 1;
        self.next_pos
    }
}

#[derive(Clone, Debug)]
pub struct Broker {
    pub queues: Vec<QueueState>,
    pub msgs: crate::cow::CowVec<Message>,
    /// Per message, when the publish it carries was first made: its own send, or for a copy
    /// (a dead-letter exchange's, a parking lot's, a redrive's) its original's. The
    /// end-to-end latency runs from here to the effect.
    born: crate::cow::CowVec<SimTime>,
    /// What some messages carry beyond their record (`Message::extra` points here).
    extras: crate::cow::CowVec<Extra>,
    pub counts: Vec<StateCounts>,
    pub dead: BTreeMap<MsgId, DeadInfo>,
    pub latency: Duration,
    /// The exchanges and bindings, shared by every checkpoint.
    pub topology: Arc<Topology>,
    /// Messages a dead-letter exchange made as copies for its second and later queues.
    pub dead_letter_copies: u64,
    /// Messages consumers republished to a parking lot at the end of a retry loop.
    pub republished: u64,
    next_receipt: u32,
    /// Queues that may have deliverable messages or consumers with room since the last
    /// dispatch (`mark_dirty`), one bit each.
    dirty: QueueMask,
    /// Queues (one bit each) that have held a message with a TTL: only they can have an
    /// expired head, so `expire_heads` costs the hot path one test.
    with_ttl: QueueMask,
    /// Per queue, the deadlines of the leases it granted: a delivery's deadline is always
    /// `now + that queue's lease`, so they come in order, and one `LeaseCheck` per queue
    /// stands for them all. (Extensions, which break the order, schedule their own
    /// `LeaseExpiry`.) This keeps the agenda as small as what is in flight.
    leases: Vec<Deadlines>,
    /// Per queue, the expiry deadlines set by the queue's own TTL (retention on SQS), in the
    /// same way, checked by one `TtlCheck`. A per-message TTL lower than the queue's, and a
    /// standard SQS DLQ's deadline from the original enqueue time, have their own `TtlExpiry`.
    ttls: Vec<Deadlines>,
    /// Messages whose time to live ran out, deleted or dead-lettered for it: the `expired`
    /// counter (a dead letter leaves its DLQ by a redrive, and still expired once).
    pub expired_total: u64,
}

impl Broker {
    pub fn new(scenario: &Scenario) -> Broker {
        let mut queues: Vec<QueueState> = scenario
            .queues
            .iter()
            .map(|spec| QueueState {
                spec: spec.clone(),
                ready: ReadySet::default(),
                next_pos: 0,
                consumers: Vec::new(),
                next_rr: 0,
                room: Vec::new(),
                tiers: Vec::new(),
                groups_in_flight: BTreeMap::new(),
                dedup: BTreeMap::new(),
            })
            .collect();
        for (i, c) in scenario.consumers.iter().enumerate() {
            queues[c.queue as usize].consumers.push(ConsumerId(index_u32(i)));
        }
        for q in &mut queues {
            let words = q.consumers.len().div_ceil(64);
            q.room = vec![0; words];
            let priority = |slot: usize| scenario.consumers[q.consumers[slot].index()].priority;
            let mut priorities: Vec<i32> = (0..q.consumers.len()).map(priority).collect();
            priorities.sort_unstable_by(|a, b| b.cmp(a));
            priorities.dedup();
            if priorities.len() > 1 {
                q.tiers = priorities
                    .iter()
                    .map(|&p| {
                        let mut mask = vec![0; words];
                        for slot in (0..q.consumers.len()).filter(|&s| priority(s) == p) {
                            mask[slot / 64] |= 1 << (slot % 64);
                        }
                        mask
                    })
                    .collect();
            }
        }
        Broker {
            counts: vec![StateCounts::default(); queues.len()],
            queues,
            msgs: crate::cow::CowVec::new(),
            born: crate::cow::CowVec::new(),
            extras: crate::cow::CowVec::new(),
            dead: BTreeMap::new(),
            latency: scenario.latency,
            topology: Arc::new(scenario.topology.clone()),
            dead_letter_copies: 0,
            republished: 0,
            next_receipt: 0,
            dirty: 0,
            with_ttl: 0,
            leases: vec![Deadlines::default(); scenario.queues.len()],
            ttls: vec![Deadlines::default(); scenario.queues.len()],
            expired_total: 0,
        }
    }

    #[inline]
    pub fn msg(&self, msg: MsgId) -> &Message {
        &self.msgs[msg.index()]
    }

    /// What `msg` carries beyond its record (groups, failures, retries).
    #[inline]
    pub fn extra(&self, msg: MsgId) -> &Extra {
        match self.msgs[msg.index()].extra {
            0 => &Extra::NONE,
            i => &self.extras[i as usize - 1],
        }
    }

    fn extra_mut(&mut self, msg: MsgId) -> &mut Extra {
        let m = &mut self.msgs[msg.index()];
        if m.extra == 0 {
            self.extras.push(Extra::NONE);
            m.extra = index_u32(self.extras.len());
        }
        let i = m.extra as usize - 1;
        &mut self.extras[i]
    }

    /// When `msg` was first received, if ever.
    pub fn first_received(&self, msg: MsgId) -> Option<SimTime> {
        self.extra(msg).first_received_at.or(self.msgs[msg.index()].last_received())
    }

    fn spec(&self, queue: QueueId) -> &QueueSpec {
        &self.queues[queue.index()].spec
    }

    /// Visible messages in a queue now.
    pub fn depth(&self, queue: QueueId) -> u32 {
        index_u32(self.queues[queue.index()].ready.len())
    }

    // --- The one way a message changes state -------------------------------------------------

    /// Moves `msg` to `next`, in `queue`. An illegal move is an engine bug and panics.
    /// (Inline, so that each caller's constant `next` becomes its kind at compile time.)
    #[inline(always)]
    fn set_state(&mut self, msg: MsgId, queue: QueueId, next: MsgState) {
        self.set_parts(msg, queue, next.kind(), next.holder().unwrap_or(ConsumerId(0)));
    }

    #[inline]
    fn set_parts(&mut self, msg: MsgId, queue: QueueId, kind: StateKind, holder: ConsumerId) {
        move_to(&mut self.msgs[msg.index()], &mut self.counts, msg, queue, kind, holder);
    }

    /// When the publish `msg` carries was first made (its original's send, for a copy).
    pub fn born(&self, msg: MsgId) -> SimTime {
        self.born[msg.index()]
    }

    // --- Sending ---------------------------------------------------------------------------

    /// A send: the message exists from now, publishing, until it arrives. A FIFO
    /// deduplication id can make it a duplicate: accepted, but nothing is stored, and the
    /// answer is the original's id (SQS-23).
    // long: a send in the order the broker applies it: deduplication, the TTL and the delay, the message, its arrival
    pub fn publish(
        &mut self,
        out: &mut Outbox,
        now: SimTime,
        queue: QueueId,
        producer: ProducerId,
        attrs: &SendAttrs,
    ) -> Sent {
        self.publish_via(out, now, queue, producer, attrs, None)
    }

    /// A publish to an exchange (RMQ-24): one message per queue the route reaches, in queue
    /// order, each with its own life; none reached: an `Unroutable`, returned to a mandatory
    /// publisher or dropped (RMQ-34, RMQ-35). Returns how many messages it made.
    pub fn publish_routed(
        &mut self,
        out: &mut Outbox,
        now: SimTime,
        producer: ProducerId,
        attrs: &SendAttrs,
        (route, mandatory): (Route, bool),
    ) -> u32 {
        let topology = Arc::clone(&self.topology);
        let (key, headers) = (&topology.keys[route.key as usize], &topology.headers[route.headers as usize]);
        let reached = topology.route(route.exchange, key, headers);
        if reached.is_empty() {
            let (exchange, key) = (route.exchange, route.key);
            out.emit(TraceEvent::Unroutable { at: now, producer, exchange, key, returned: mandatory });
        }
        // Each queue's copy is a message of its own (RMQ-24): the first keeps the publish's
        // business key, the others get their own, so that the services behind two queues each
        // apply it once, which is no duplicate; each remembers whose copy it is.
        let mut first = None;
        for r in &reached {
            let sent = if let Some(original) = first {
                let copy = SendAttrs { key: None, ..attrs.clone() };
                let sent = self.publish_via(out, now, QueueId(r.queue), producer, &copy, Some((route, r.binding)));
                if let Sent::Stored(m) = sent {
                    self.extra_mut(m).copy_of = Some(original);
                }
                sent
            } else {
                self.publish_via(out, now, QueueId(r.queue), producer, attrs, Some((route, r.binding)))
            };
            if let (None, Sent::Stored(m)) = (first, sent) {
                first = Some(self.msgs[m.index()].key);
            }
        }
        index_u32(reached.len())
    }

    /// `publish`, and through which exchange and binding, if any.
    // long: a send's whole arrival at the broker: deduplication, TTL, delay, the record and its extras
    fn publish_via(
        &mut self,
        out: &mut Outbox,
        now: SimTime,
        queue: QueueId,
        producer: ProducerId,
        attrs: &SendAttrs,
        routed: Option<(Route, u32)>,
    ) -> Sent {
        let id = index_u32(self.msgs.len());
        let q = &mut self.queues[queue.index()];
        if let (Some(dedup_id), Some(window)) = (&attrs.dedup_id, q.spec.dedup_window) {
            // The window is anchored at the first accepted send; a duplicate iff
            // t_new < t_first + window (SQS-23, vector sqs-fifo-dedup-window; ASB-9: on Service
            // Bus the id is the MessageId, and the duplicate is accepted, then dropped).
            match q.dedup.get(dedup_id) {
                Some(&(first, original)) if now < first.after(window) => {
                    out.emit(TraceEvent::Deduplicated { at: now, queue, original });
                    return Sent::Duplicate(original);
                }
                _ => {
                    q.dedup.insert(dedup_id.clone(), (now, MsgId(id)));
                }
            }
        }
        let spec = &q.spec;
        let ttl = match (spec.ttl, attrs.ttl) {
            // RMQ-20: when both are set, the lower wins.
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // A TTL runs from the enqueue, when the message reaches the queue: RMQ-19 (older than
        // the TTL in that queue), SQS-17 (older than the retention period).
        let arrives_at = now.after(self.latency);
        let expires_at = ttl.map_or(SimTime::MAX, |t| arrives_at.after(t));
        // SQS-18: a per-message delay overrides the queue's.
        let delay = attrs.delay.unwrap_or(spec.delay);
        self.msgs.push(Message::publishing(queue, attrs.key.unwrap_or(id), now.after(delay), expires_at));
        self.born.push(now);
        let order_key = attrs.order_key.or(attrs.group);
        if attrs.group.is_some() || order_key.is_some() || attrs.poison {
            let extra = self.extra_mut(MsgId(id));
            (extra.group, extra.order_key, extra.poison) = (attrs.group, order_key, attrs.poison);
        }
        self.counts[queue.index()].add(StateKind::Publishing);
        out.emit(TraceEvent::Published { at: now, msg: MsgId(id), producer, queue, arrives_at });
        if let Some((route, binding)) = routed {
            self.extra_mut(MsgId(id)).route = Some(route);
            out.emit(TraceEvent::Routed { at: now, msg: MsgId(id), exchange: route.exchange, key: route.key, binding });
        }
        if arrives_at == now {
            // No network delay: nothing can happen in between, so arrive now.
            self.arrive(out, now, MsgId(id));
        } else {
            out.schedule(arrives_at, Event::Arrive { msg: MsgId(id) });
        }
        Sent::Stored(MsgId(id))
    }

    /// The message reaches its queue: refused or dropped-at-head if the queue is full,
    /// delayed if it must wait, visible otherwise.
    pub fn arrive(&mut self, out: &mut Outbox, now: SimTime, msg: MsgId) {
        let queue = self.msgs[msg.index()].queue;
        let spec = self.spec(queue);
        if let Some(max) = spec.max_length {
            // RMQ-23: only messages waiting in the queue count towards its length.
            let c = &self.counts[queue.index()];
            let waiting = c.get(MsgState::Ready.kind()) + c.get(MsgState::Delayed.kind());
            if waiting >= max {
                match spec.overflow {
                    Overflow::RejectPublish => {
                        self.set_state(msg, queue, MsgState::Dropped);
                        out.emit(TraceEvent::Dropped { at: now, msg, queue, reason: DropReason::RejectPublish });
                        return;
                    }
                    // RMQ-38: refused, and dead-lettered as maxlen (dropped without a DLX).
                    Overflow::RejectPublishDlx => {
                        self.dead_letter_or_drop(out, now, msg, DeadReason::MaxLength, DropReason::RejectPublish);
                        return;
                    }
                    Overflow::DropHead => {
                        if let Some(head) = self.queues[queue.index()].ready.first() {
                            self.dead_letter_or_drop(out, now, head, DeadReason::MaxLength, DropReason::DropHead);
                            self.expire_heads(out, now, queue);
                        }
                    }
                }
            }
        }
        let pos = self.queues[queue.index()].take_pos();
        let m = &mut self.msgs[msg.index()];
        m.pos = pos;
        let (expires_at, until) = (m.expires_at, m.available_at);
        if expires_at != SimTime::MAX {
            self.watch_expiry(out, now, msg, queue, expires_at);
        }
        if until > now {
            self.delay(out, now, msg, queue, until);
        } else {
            self.make_visible_at_arrival(out, now, msg, queue, true);
        }
    }

    /// Arms the expiry of `msg`, waiting in `queue` until `expires_at`: on the queue's list
    /// when the deadline is the queue's own TTL from now (those come in order), else its own
    /// timer (a lower per-message TTL, a dead letter's retention from its original enqueue).
    fn watch_expiry(&mut self, out: &mut Outbox, now: SimTime, msg: MsgId, queue: QueueId, expires_at: SimTime) {
        self.with_ttl |= 1 << queue.0;
        if self.spec(queue).ttl.is_some_and(|t| now.after(t) == expires_at) {
            if self.ttls[queue.index()].push(expires_at, msg, 0) {
                self.arm_ttl_check(out, queue);
            }
        } else {
            out.schedule(expires_at, Event::TtlExpiry { msg });
        }
    }

    /// Drops the settled messages (and those whose expiry changed) from the front of the
    /// queue's expiry list, and arms one `TtlCheck` at the first deadline still to come.
    fn arm_ttl_check(&mut self, out: &mut Outbox, queue: QueueId) {
        if let Some(at) = self.ttls[queue.index()].arm(|at, msg, _| expiry_due(&self.msgs, msg, at, queue)) {
            out.schedule(at, Event::TtlCheck { queue });
        }
    }

    /// How many expiry deadlines `queue`'s list keeps, settled ones not yet dropped included.
    pub fn expiries_listed(&self, queue: QueueId) -> usize {
        self.ttls[queue.index()].len()
    }

    /// A `TtlCheck`: each message of the list due now expires as its own timer would have it.
    pub fn ttl_check(&mut self, out: &mut Outbox, now: SimTime, queue: QueueId) {
        for (msg, _) in self.ttls[queue.index()].due(now, |at, msg, _| expiry_due(&self.msgs, msg, at, queue)) {
            self.ttl_timer(out, now, msg);
        }
        self.arm_ttl_check(out, queue);
    }

    /// Hides `msg` in `queue` until `until`; a `Visible` timer brings it back.
    fn delay(&mut self, out: &mut Outbox, now: SimTime, msg: MsgId, queue: QueueId, until: SimTime) {
        self.set_state(msg, queue, MsgState::Delayed);
        self.msgs[msg.index()].available_at = until;
        out.emit(TraceEvent::Delayed { at: now, msg, queue, until });
        out.schedule(until, Event::Visible { msg });
    }

    /// Makes `msg` visible in `queue` at its own position (waiting, in a DLQ). A message whose
    /// TTL ran out while it was away expires instead: it is never delivered (RMQ-19). One that
    /// arrives with its TTL running out right now (a TTL of 0) is visible for this instant
    /// only: delivered if a consumer can take it at once, expired by its timer otherwise.
    fn make_visible(&mut self, out: &mut Outbox, now: SimTime, msg: MsgId, queue: QueueId) {
        self.make_visible_at_arrival(out, now, msg, queue, false);
    }

    #[inline]
    fn make_visible_at_arrival(&mut self, out: &mut Outbox, now: SimTime, msg: MsgId, queue: QueueId, arriving: bool) {
        let m = &self.msgs[msg.index()];
        let expired = m.expires_at < now || (m.expires_at == now && !arriving);
        // RMQ-21: a RabbitMQ queue expires a message only at its head; one returned behind
        // the head past its TTL waits there (and counts in the queue's length) until then.
        if expired
            && !(self.expires_at_head(queue)
                && self.queues[queue.index()].ready.first().is_some_and(|head| self.msgs[head.index()].pos < m.pos))
        {
            self.set_state(msg, queue, MsgState::Delayed);
            self.expire(out, now, msg);
            return;
        }
        let q = &mut self.queues[queue.index()];
        let kind = if q.spec.is_dead_letter() { StateKind::DeadLettered } else { StateKind::Ready };
        let m = &mut self.msgs[msg.index()];
        move_to(m, &mut self.counts, msg, queue, kind, ConsumerId(0));
        m.available_at = now;
        let pos = m.pos;
        let placed = q.ready.insert(pos, msg);
        assert!(placed, "m{msg}: position {pos} in queue {queue} was taken");
        let depth = index_u32(q.ready.len());
        self.dirty |= 1 << queue.0;
        out.emit(TraceEvent::Enqueued { at: now, msg, queue, depth });
    }

    /// A `Visible` timer: a delay or backoff is over. A message waiting in a retry queue goes
    /// back to the end of its source queue.
    pub fn visible_timer(&mut self, out: &mut Outbox, now: SimTime, msg: MsgId) {
        let m = &self.msgs[msg.index()];
        if m.kind != StateKind::Delayed || m.available_at != now {
            return; // a stale timer: the message moved on
        }
        let queue = m.queue;
        match self.spec(queue).role {
            QueueRole::Retry { of } => {
                self.msgs[msg.index()].pos = self.queues[of as usize].take_pos();
                self.make_visible(out, now, msg, QueueId(of));
            }
            _ => self.make_visible(out, now, msg, queue),
        }
    }

    /// A `TtlExpiry` timer. Only a waiting message expires now; one in flight expires when it
    /// comes back (`make_visible`). In a RabbitMQ queue a ready message expires only at the
    /// head (RMQ-21): behind it, it waits for `expire_heads`.
    pub fn ttl_timer(&mut self, out: &mut Outbox, now: SimTime, msg: MsgId) {
        let m = &self.msgs[msg.index()];
        // SQS-13: a dead letter expires in an SQS DLQ by that queue's retention.
        if m.expires_at != now || !matches!(m.kind, StateKind::Ready | StateKind::Delayed | StateKind::DeadLettered) {
            return;
        }
        let queue = m.queue;
        if m.kind == StateKind::Ready
            && self.expires_at_head(queue)
            && self.queues[queue.index()].ready.first() != Some(msg)
        {
            return;
        }
        self.take_from_ready(msg);
        self.expire(out, now, msg);
        self.expire_heads(out, now, queue);
    }

    /// RMQ-21: RabbitMQ removes (or dead-letters) expired messages only when they reach the
    /// head of the queue. The other models expire a message at its TTL wherever it is.
    /// (A dead letter does not expire in its DLQ here, whatever the model.)
    fn expires_at_head(&self, queue: QueueId) -> bool {
        let spec = self.spec(queue);
        spec.lease.expires_at_head() && !spec.is_dead_letter()
    }

    /// RMQ-21: expires the messages at the head of a RabbitMQ queue whose TTL has run out, as
    /// the queue does whenever its head changes. Never one that arrived this instant with a TTL
    /// that ends now: it may still be delivered at once (RMQ-19, TTL 0), else its timer
    /// expires it.
    #[inline]
    pub fn expire_heads(&mut self, out: &mut Outbox, now: SimTime, queue: QueueId) {
        if self.with_ttl & (1 << queue.0) == 0 || !self.expires_at_head(queue) {
            return;
        }
        while let Some(head) = self.queues[queue.index()].ready.first() {
            let m = &self.msgs[head.index()];
            if !(m.expires_at < now || (m.expires_at == now && m.available_at < now)) {
                return;
            }
            self.take_from_ready(head);
            self.expire(out, now, head);
        }
    }

    fn expire(&mut self, out: &mut Outbox, now: SimTime, msg: MsgId) {
        let queue = self.msgs[msg.index()].queue;
        self.expired_total += 1;
        if self.spec(queue).expire_to_dlq {
            let reason = self.spec(queue).lease.ttl_dead_reason();
            self.dead_letter(out, now, msg, reason);
        } else {
            self.set_state(msg, queue, MsgState::Expired);
            out.emit(TraceEvent::Expired { at: now, msg, queue });
        }
    }

    #[inline]
    fn take_from_ready(&mut self, msg: MsgId) {
        let m = &self.msgs[msg.index()];
        if matches!(m.kind, StateKind::Ready | StateKind::DeadLettered) {
            let removed = self.queues[m.queue.index()].ready.remove(m.pos);
            assert_eq!(removed, Some(msg), "m{msg} was not at its position");
        }
    }

    // --- Delivering ----------------------------------------------------------------------

    /// What one receive of up to `max` returns, in order. FIFO (SQS-22): as many as possible
    /// from the group of the first message available, then others, in order within each
    /// group; never from a group that already has a message in flight (SQS-21).
    pub fn batch(&self, queue: QueueId, max: u32) -> Vec<MsgId> {
        let q = &self.queues[queue.index()];
        let max = max as usize;
        if !q.spec.fifo {
            return q.ready.values().take(max).collect();
        }
        let group = |m: MsgId| self.extra(m).group;
        let open = |m: &MsgId| group(*m).is_none_or(|g| !q.groups_in_flight.contains_key(&g));
        let Some(first) = self.fifo_window(queue).find(open) else { return Vec::new() };
        let mut out: Vec<MsgId> =
            self.fifo_window(queue).filter(open).filter(|&m| group(m) == group(first)).take(max).collect();
        for m in self.fifo_window(queue).filter(open) {
            if out.len() == max {
                break;
            }
            if group(m) != group(first) {
                out.push(m);
            }
        }
        out
    }

    /// Dispatch (RMQ-1), one delivery at a time: the next visible message of `queue` to the
    /// next subscriber with room, round-robin from the cursor, leased (`deliver`). `None` when
    /// nothing is deliverable or no one has room; `Some(None)` when the message went elsewhere
    /// instead (SQS's maxReceiveCount dead-letters it at this receive). `slot_free(c)` is the
    /// driver's narrow query on the consumer: with no network delay a delivery goes straight
    /// into the phase the consumer would give it, a processing slot or its buffer. The caller
    /// accounts the room the delivery takes (`set_room`) before asking for the next.
    #[inline]
    pub fn dispatch_one(
        &mut self,
        out: &mut Outbox,
        now: SimTime,
        queue: QueueId,
        latency: Duration,
        slot_free: impl Fn(ConsumerId) -> bool,
    ) -> Option<Option<Dispatched>> {
        self.expire_heads(out, now, queue);
        let q = &self.queues[queue.index()];
        let at = q.next_with_room(q.next_rr)?;
        let msg = self.next_deliverable(queue)?;
        let q = &mut self.queues[queue.index()];
        let c = q.consumers[at];
        q.next_rr = if at + 1 == q.consumers.len() { 0 } else { at + 1 };
        let arrives_at = now.after(latency);
        let waited = now.since(self.msg(msg).available_at);
        let phase = if arrives_at != now {
            Phase::Delivering
        } else if slot_free(c) {
            Phase::Processing
        } else {
            Phase::Buffered
        };
        let receipt = self.deliver(out, now, msg, c, phase, arrives_at);
        Some(receipt.map(|receipt| Dispatched { msg, consumer: c, receipt, waited, arrives_at }))
    }

    /// Whether the consumer at `slot` of `queue` would take a message now: its bit in the
    /// queue's `room`, which dispatch reads to find the next one without a scan.
    #[inline]
    pub fn set_room(&mut self, queue: QueueId, slot: usize, has_room: bool) {
        let word = &mut self.queues[queue.index()].room[slot / 64];
        let bit = 1u64 << (slot % 64);
        *word = if has_room { *word | bit } else { *word & !bit };
    }

    /// The first visible message a receive may take: in queue order, skipping FIFO groups
    /// that have a message in flight (SQS-21).
    #[inline]
    pub fn next_deliverable(&self, queue: QueueId) -> Option<MsgId> {
        let q = &self.queues[queue.index()];
        if !q.spec.fifo {
            return q.ready.first();
        }
        self.fifo_window(queue).find(|&m| self.extra(m).group.is_none_or(|g| !q.groups_in_flight.contains_key(&g)))
    }

    /// The visible messages a FIFO queue looks through for an available group: those among
    /// its first 20,000, counting the ones in flight (SQS-25). A backlog in one group can hide
    /// the groups behind it.
    fn fifo_window(&self, queue: QueueId) -> impl Iterator<Item = MsgId> + '_ {
        let in_flight = self.counts[queue.index()].in_flight() as usize;
        self.queues[queue.index()].ready.values().take(limits::FIFO_GROUP_SCAN.saturating_sub(in_flight))
    }

    /// A receive of `msg` by `consumer`. Returns the new receipt, or `None` when the receive
    /// dead-letters it instead (SQS-11: the move is lazy, on the receive that would exceed
    /// maxReceiveCount, and that receive does not return the message).
    /// `phase` is Delivering for a push over the network, Processing for a message in hand.
    pub fn deliver(
        &mut self,
        out: &mut Outbox,
        now: SimTime,
        msg: MsgId,
        consumer: ConsumerId,
        phase: Phase,
        arrives_at: SimTime,
    ) -> Option<u32> {
        let m = &self.msgs[msg.index()];
        let queue = m.queue;
        let lease_model = self.spec(queue).lease;
        if let Some(n) = lease_model.max_receive_count() {
            if m.receive_count + 1 > n {
                self.take_from_ready(msg);
                self.dead_letter(out, now, msg, DeadReason::MaxReceiveCount);
                return None;
            }
        }
        self.take_from_ready(msg);
        self.next_receipt += 1;
        let receipt = self.next_receipt;
        // The lease runs from the receive: the visibility timeout (SQS-2), the lock (ASB-1), or
        // RabbitMQ's consumer timeout (RMQ-9).
        let expires_at = now.after(lease_model.lease_duration());
        let m = &self.msgs[msg.index()];
        if m.receive_count == 1 || m.extra != 0 {
            self.note_delivery(msg, queue);
        }
        // The state first: the leaseholder is the consumer the message is in flight with.
        let m = &mut self.msgs[msg.index()];
        move_to(m, &mut self.counts, msg, queue, (MsgState::InFlight { consumer, phase }).kind(), consumer);
        m.receive_count += 1;
        m.last_received_at = now;
        (m.receipt, m.lease_until) = (receipt, expires_at);
        let receive_count = m.receive_count;
        if self.leases[queue.index()].push(expires_at, msg, receipt) {
            self.arm_lease_check(out, queue);
        }
        out.emit(TraceEvent::Delivered {
            at: now,
            msg,
            queue,
            consumer,
            receipt,
            receive_count,
            lease_until: expires_at,
            arrives_at,
        });
        if out.deliveries.is_some() && out.recording {
            let (meta, at) = (self.delivery_meta(msg), out.trace.len() - 1);
            out.deliveries.get_or_insert_with(Vec::new).push((at, meta));
        }
        Some(receipt)
    }

    /// What a consumer reads on `msg` as it is delivered now: its counters in its system's
    /// words, and on RabbitMQ its exchange, routing key and `x-death` (RMQ-8, RMQ-40).
    pub fn delivery_meta(&self, msg: MsgId) -> DeliveryMeta {
        let t = &self.topology;
        let queue = self.msgs[msg.index()].queue;
        let key = |k: u32| t.keys.get(k as usize).cloned().unwrap_or_default();
        let exchange =
            |x: u32| if x == crate::exchange::DEFAULT_EXCHANGE { String::new() } else { t.exchange_name(x).to_owned() };
        let rabbit = self.spec(queue).lease.dead_letter_metadata() == DeadLetterMetadata::XDeath;
        let route = rabbit.then(|| self.route_of(msg));
        let x_death = self.dead.get(&msg).map_or_else(Vec::new, |d| {
            d.x_death
                .iter()
                .map(|x| XDeathMeta {
                    queue: self.spec(x.queue).name.clone(),
                    reason: x.reason.as_str(),
                    count: x.count,
                    time_ms: x.time.as_millis_f64(),
                    exchange: exchange(x.exchange),
                    routing_keys: vec![key(x.routing_key)],
                })
                .collect()
        });
        DeliveryMeta {
            message_id: None,
            headers: self.delivery_headers(msg).into_iter().collect(),
            exchange: route.map(|r| exchange(r.exchange)),
            routing_key: route.map(|r| key(r.key)),
            x_death,
        }
    }

    /// What a delivery changes beyond the message's record: the first receive's time, kept
    /// aside on the second; the FIFO group's count in flight.
    #[inline(never)]
    fn note_delivery(&mut self, msg: MsgId, queue: QueueId) {
        let m = &self.msgs[msg.index()];
        if m.receive_count == 1 {
            // The second receive: keep the first's time aside before it is overwritten.
            let first = m.last_received_at;
            self.extra_mut(msg).first_received_at = Some(first);
        }
        if let Some(g) = self.extra(msg).group {
            *self.queues[queue.index()].groups_in_flight.entry(g).or_insert(0) += 1;
        }
    }

    /// Drops settled or extended leases from the front of the queue's deadline list, and arms
    /// one `LeaseCheck` at the first deadline still due.
    pub fn arm_lease_check(&mut self, out: &mut Outbox, queue: QueueId) {
        let live = |deadline, msg, receipt| lease_due(&self.msgs, msg, receipt, deadline);
        if let Some(at) = self.leases[queue.index()].arm(live) {
            out.schedule(at, Event::LeaseCheck { queue });
        }
    }

    /// A `LeaseCheck`: the leases of `queue` due now, in the order they were granted. The
    /// caller expires each (`lease_timer`), then calls `arm_lease_check`.
    pub fn due_leases(&mut self, now: SimTime, queue: QueueId) -> Vec<(MsgId, u32)> {
        let live = |deadline, msg, receipt| lease_due(&self.msgs, msg, receipt, deadline);
        self.leases[queue.index()].due(now, live)
    }

    /// Whether `receipt` is `consumer`'s current lease on `msg`.
    #[inline]
    pub fn holds(&self, msg: MsgId, consumer: ConsumerId, receipt: u32) -> bool {
        let m = &self.msgs[msg.index()];
        // Its lease (a receipt, 0 for none), held by the consumer it is in flight with.
        m.receipt != 0 && m.receipt == receipt && ConsumerId(u32::from(m.holder)) == consumer
    }

    /// What the consumer of `msg`'s latest delivery read about its deliveries, in its system's
    /// own words: SQS's `ApproximateReceiveCount` (SQS-9); RabbitMQ's `redeliver` flag (RMQ-8)
    /// and, on a quorum queue's redelivery after a counted return, `x-delivery-count` (RMQ-18,
    /// counted as the delivery limit counts, RMQ-16/RMQ-17), shown while that delivery is in
    /// flight (once it is returned, the count has moved past what it carried); Service Bus's
    /// `DeliveryCount` (ASB-5). Empty before the first delivery.
    pub fn delivery_headers(&self, msg: MsgId) -> Vec<(&'static str, String)> {
        let m = &self.msgs[msg.index()];
        if m.receive_count == 0 {
            return Vec::new();
        }
        self.spec(m.queue).lease.delivery_headers(m.receive_count, self.extra(msg).returns_counted, m.kind.in_flight())
    }

    /// When `msg`, not yet settled, expires, in its system's own words: SQS's retention
    /// period ends (SQS-17, in a DLQ SQS-13), Service Bus's `ExpiresAtUtc`, RabbitMQ's TTL
    /// (RMQ-19). `None` when it never does.
    pub fn expiry(&self, msg: MsgId) -> Option<(&'static str, SimTime)> {
        let m = &self.msgs[msg.index()];
        if m.expires_at == SimTime::MAX || m.kind.is_final() {
            return None;
        }
        Some((self.spec(m.queue).lease.expiry_word(), m.expires_at))
    }

    /// Whether `msg` is in flight with `consumer` in `phase`.
    #[inline]
    pub fn in_phase(&self, msg: MsgId, consumer: ConsumerId, phase: Phase) -> bool {
        let m = &self.msgs[msg.index()];
        m.kind == (MsgState::InFlight { consumer, phase }).kind() && ConsumerId(u32::from(m.holder)) == consumer
    }

    /// Moves a held message along the consumer's side (arrived, started).
    #[inline]
    pub fn advance_phase(&mut self, msg: MsgId, consumer: ConsumerId, phase: Phase) {
        let queue = self.msgs[msg.index()].queue;
        self.set_state(msg, queue, MsgState::InFlight { consumer, phase });
    }

    /// Ends `consumer`'s lease on `msg` if `receipt` is still current; false (and nothing
    /// changes) when it is not: the first step of every settle.
    #[inline]
    fn surrender(&mut self, msg: MsgId, consumer: ConsumerId, receipt: u32) -> bool {
        if !self.holds(msg, consumer, receipt) {
            return false;
        }
        self.release(msg);
        true
    }

    /// Ends the lease without settling: the message leaves the lease's books (FIFO group freed).
    #[inline]
    fn release(&mut self, msg: MsgId) {
        let m = &mut self.msgs[msg.index()];
        m.receipt = 0;
        if m.extra != 0 {
            self.release_group(msg);
        }
    }

    #[inline(never)]
    fn release_group(&mut self, msg: MsgId) {
        let queue = self.msgs[msg.index()].queue;
        if let Some(g) = self.extra(msg).group {
            let groups = &mut self.queues[queue.index()].groups_in_flight;
            if let Some(n) = groups.get_mut(&g) {
                *n -= 1;
                if *n == 0 {
                    groups.remove(&g);
                }
            }
        }
    }

    /// Ack before processing: the broker deletes its record of the lease on receipt, so
    /// nothing will ever redeliver the message (at-most-once).
    pub fn auto_ack(&mut self, out: &mut Outbox, now: SimTime, msg: MsgId, consumer: ConsumerId) {
        self.release(msg);
        out.emit(TraceEvent::AutoAcked { at: now, msg, consumer });
    }

    /// DeleteMessage / basic.ack / Complete. Refused (the message stays) when the receipt is
    /// no longer current (SQS-6, a lost Service Bus lock). Returns whether it was deleted.
    #[inline]
    pub fn ack(&mut self, out: &mut Outbox, now: SimTime, msg: MsgId, consumer: ConsumerId, receipt: u32) -> bool {
        if !self.surrender(msg, consumer, receipt) {
            out.emit(TraceEvent::AckRefused { at: now, msg, consumer, receipt });
            return false;
        }
        self.finish_acked(out, now, msg, consumer);
        true
    }

    /// The end of a message whose processing succeeded, leased or auto-acked.
    #[inline]
    pub fn finish_acked(&mut self, out: &mut Outbox, now: SimTime, msg: MsgId, consumer: ConsumerId) {
        let m = &mut self.msgs[msg.index()];
        let queue = m.queue;
        move_to(m, &mut self.counts, msg, queue, StateKind::Acked, ConsumerId(0));
        out.emit(TraceEvent::Acked { at: now, msg, queue, consumer });
    }

    /// The end of a message acked on receipt whose processing succeeded: the broker forgot it
    /// then, so there is no second ack, only the consumer's word that it is done.
    pub fn finish_processed(&mut self, out: &mut Outbox, now: SimTime, msg: MsgId, consumer: ConsumerId) {
        let m = &mut self.msgs[msg.index()];
        let queue = m.queue;
        move_to(m, &mut self.counts, msg, queue, StateKind::Acked, ConsumerId(0));
        out.emit(TraceEvent::Processed { at: now, msg, queue, consumer });
    }

    /// An auto-acked message whose consumer crashed: nothing can bring it back.
    pub fn lose(&mut self, out: &mut Outbox, now: SimTime, msg: MsgId) {
        let queue = self.msgs[msg.index()].queue;
        self.set_state(msg, queue, MsgState::Dropped);
        out.emit(TraceEvent::Dropped { at: now, msg, queue, reason: DropReason::LostAfterAutoAck });
    }

    /// The message comes back unsettled: nack with requeue, abandon, visibility 0, a lease that
    /// ran out, a closed channel. Each system counts this its own way, which may dead-letter.
    /// Returns false (and does nothing) when `receipt` is not the current lease.
    pub fn give_back(
        &mut self,
        out: &mut Outbox,
        now: SimTime,
        msg: MsgId,
        consumer: ConsumerId,
        receipt: u32,
        reason: ReturnReason,
    ) -> bool {
        if !self.surrender(msg, consumer, receipt) {
            return false;
        }
        let queue = self.msgs[msg.index()].queue;
        let lease_model = self.spec(queue).lease;
        let in_dlq = self.spec(queue).is_dead_letter();
        let receive_count = self.msgs[msg.index()].receive_count;
        let extra = self.extra_mut(msg);
        extra.returns_counted += u32::from(lease_model.counts_return(reason));
        let dead = lease_model.dead_after_return(reason, extra.returns_counted, receive_count, in_dlq);
        if let Some(dead) = dead {
            self.dead_letter(out, now, msg, dead);
            return true;
        }
        out.emit(TraceEvent::Returned { at: now, msg, queue, consumer, reason });
        // RMQ-6: a quorum queue without a delivery limit returns a message to the back.
        if lease_model.returns_to_back() {
            self.msgs[msg.index()].pos = self.queues[queue.index()].take_pos();
        }
        self.make_visible(out, now, msg, queue);
        true
    }

    /// A `LeaseExpiry` timer: if that lease is still the current one and has not been
    /// extended, the message comes back (visible at t >= deadline, SQS-8). For RabbitMQ this
    /// is the consumer timeout, which closes the channel: the caller returns the rest.
    /// Returns the consumer whose lease ran out.
    pub fn lease_timer(&mut self, out: &mut Outbox, now: SimTime, msg: MsgId, receipt: u32) -> Option<ConsumerId> {
        let lease = self.msgs[msg.index()].lease()?;
        if lease.receipt != receipt || lease.expires_at != now {
            return None;
        }
        let reason = self.spec(self.msgs[msg.index()].queue).lease.timeout_reason();
        self.give_back(out, now, msg, lease.consumer, receipt, reason);
        Some(lease.consumer)
    }

    /// Extends the current lease to `until` (SQS ChangeMessageVisibility, SB RenewLock).
    /// SQS-4c: one receipt's visibility may not pass 12 hours from its receive; a request past
    /// that is an error, not clamped. (Service Bus has no such cap on RenewLock; ASB-3's
    /// 5 minutes bound only the processor's automatic renewal.) Returns whether it was extended.
    pub fn extend(
        &mut self,
        out: &mut Outbox,
        now: SimTime,
        msg: MsgId,
        consumer: ConsumerId,
        receipt: u32,
        until: SimTime,
    ) -> bool {
        if !self.holds(msg, consumer, receipt) {
            return false;
        }
        let cap = self.spec(self.msgs[msg.index()].queue).lease.visibility_cap();
        let m = &mut self.msgs[msg.index()];
        if cap.is_some_and(|cap| until > m.last_received_at.after(cap)) {
            return false;
        }
        m.lease_until = until;
        out.schedule(until, Event::LeaseExpiry { msg, receipt });
        out.emit(TraceEvent::LeaseExtended { at: now, msg, consumer, until });
        true
    }

    /// SQS ChangeMessageVisibility(v): the new timeout runs from now (SQS-4a); 0 makes the
    /// message visible at once (SQS-4d).
    pub fn change_visibility(
        &mut self,
        out: &mut Outbox,
        now: SimTime,
        msg: MsgId,
        consumer: ConsumerId,
        receipt: u32,
        timeout: Duration,
    ) -> bool {
        if timeout == Duration::ZERO {
            self.give_back(out, now, msg, consumer, receipt, ReturnReason::MadeVisible)
        } else {
            self.extend(out, now, msg, consumer, receipt, now.after(timeout))
        }
    }

    /// A consumer gives a message back to wait out a retry backoff: in its own queue, or in the
    /// queue's retry queue. Returns false when the receipt is stale.
    #[allow(clippy::too_many_arguments)] // a lease is (msg, consumer, receipt); the rest is the retry
    pub fn retry_later(
        &mut self,
        out: &mut Outbox,
        now: SimTime,
        msg: MsgId,
        consumer: ConsumerId,
        receipt: u32,
        until: SimTime,
        via_retry_queue: bool,
    ) -> bool {
        if !self.surrender(msg, consumer, receipt) {
            return false;
        }
        let queue = self.msgs[msg.index()].queue;
        let target = match self.spec(queue).retry_queue {
            Some(r) if via_retry_queue => r,
            _ => queue.0,
        };
        self.delay(out, now, msg, QueueId(target), until);
        true
    }

    /// Records a failed attempt's error, for the dead-letter metadata.
    pub fn note_failure(&mut self, msg: MsgId, error: ErrorClass) -> u32 {
        let extra = self.extra_mut(msg);
        extra.attempts += 1;
        extra.last_error = Some(error);
        extra.attempts
    }

    pub fn note_sleep(&mut self, msg: MsgId, sleep: Duration) {
        self.extra_mut(msg).last_sleep = sleep;
    }

    /// Queues that may have deliverable messages or consumers with room since the last
    /// dispatch.
    #[inline]
    pub fn mark_dirty(&mut self, queue: QueueId) {
        self.dirty |= 1 << queue.0;
    }

    /// Takes the set of dirty queues, as a bit mask.
    pub fn take_dirty(&mut self) -> QueueMask {
        std::mem::take(&mut self.dirty)
    }

    /// Dead-letters a held message for the consumer (nack without requeue, DeadLetter).
    pub fn reject(
        &mut self,
        out: &mut Outbox,
        now: SimTime,
        msg: MsgId,
        consumer: ConsumerId,
        receipt: u32,
        reason: DeadReason,
    ) -> bool {
        // ASB-6: a message in a Service Bus dead-letter queue cannot be dead-lettered again; the
        // call fails and the message stays locked.
        let queue = self.spec(self.msgs[msg.index()].queue);
        if queue.is_dead_letter() && !queue.lease.dead_letters_from_its_dlq() {
            return false;
        }
        if !self.surrender(msg, consumer, receipt) {
            return false;
        }
        self.dead_letter_or_drop(out, now, msg, reason, DropReason::NoDeadLetterQueue);
        true
    }

    /// Dead-letters if the queue has a DLQ; otherwise the message is discarded (RMQ-5, RMQ-23).
    fn dead_letter_or_drop(
        &mut self,
        out: &mut Outbox,
        now: SimTime,
        msg: MsgId,
        reason: DeadReason,
        drop: DropReason,
    ) {
        let queue = self.msgs[msg.index()].queue;
        if self.spec(queue).dead_letter.is_some() || self.spec(queue).dlx.is_some() {
            self.take_from_ready(msg);
            self.dead_letter(out, now, msg, reason);
        } else {
            self.take_from_ready(msg);
            self.set_state(msg, queue, MsgState::Dropped);
            out.emit(TraceEvent::Dropped { at: now, msg, queue, reason: drop });
        }
    }

    /// Moves a message (not in any ready set, no lease) to its queue's DLQ, with its metadata.
    /// Without a DLQ it is discarded.
    pub fn dead_letter(&mut self, out: &mut Outbox, now: SimTime, msg: MsgId, reason: DeadReason) {
        let from = self.msgs[msg.index()].queue;
        if let Some(dlx) = self.spec(from).dlx {
            return self.dead_letter_via(out, now, msg, reason, dlx);
        }
        let Some(dlq) = self.spec(from).dead_letter.map(QueueId) else {
            self.set_state(msg, from, MsgState::Dropped);
            out.emit(TraceEvent::Dropped { at: now, msg, queue: from, reason: DropReason::NoDeadLetterQueue });
            return;
        };
        self.note_death(msg, from, reason, now);
        self.move_dead(out, now, msg, (from, reason), dlq);
    }

    /// The route a message was last published with: its own, or (sent straight to a queue)
    /// the default exchange with the queue's name as its key (RMQ-25).
    fn route_of(&self, msg: MsgId) -> Route {
        self.extra(msg).route.unwrap_or_else(|| {
            let name = &self.spec(self.msgs[msg.index()].queue).name;
            let key = self.topology.keys.iter().position(|k| k == name).map_or(0, index_u32);
            Route { exchange: crate::exchange::DEFAULT_EXCHANGE, key, headers: 0 }
        })
    }

    /// Dead-lettering through `from`'s dead-letter exchange (RMQ-39): routed with the
    /// dead-letter routing key or its own, to every queue the exchange reaches but those a
    /// cycle with no rejection would bring it back to (RMQ-46). The message moves to the
    /// first; each other gets a copy. None left: dropped.
    fn dead_letter_via(&mut self, out: &mut Outbox, now: SimTime, msg: MsgId, reason: DeadReason, dlx: DlxSpec) {
        let from = self.msgs[msg.index()].queue;
        let old = self.route_of(msg);
        self.note_death(msg, from, reason, now);
        let route = Route { exchange: dlx.exchange, key: dlx.routing_key.unwrap_or(old.key), headers: old.headers };
        let topology = Arc::clone(&self.topology);
        let reached = topology.route(
            route.exchange,
            &topology.keys[route.key as usize],
            &topology.headers[route.headers as usize],
        );
        let deaths = self.dead.get(&msg).map_or(&[][..], |d| d.x_death.as_slice());
        let cycle = |q: u32| {
            // RMQ-46: newest first, up to and including its first entry for q, no rejection.
            reason != DeadReason::Rejected
                && deaths
                    .iter()
                    .position(|d| d.queue.0 == q)
                    .is_some_and(|i| deaths[..=i].iter().all(|d| d.reason != DeadReason::Rejected))
        };
        let targets: Vec<_> = reached.iter().filter(|r| !cycle(r.queue)).copied().collect();
        let Some((first, rest)) = targets.split_first() else {
            let drop = if reached.is_empty() { DropReason::DeadLetterUnroutable } else { DropReason::DeadLetterCycle };
            self.set_state(msg, from, MsgState::Dropped);
            out.emit(TraceEvent::Dropped { at: now, msg, queue: from, reason: drop });
            return;
        };
        for r in rest {
            if self.msgs.len() as u64 >= limits::MESSAGES_MAX {
                break; // the run's message limit: no more copies
            }
            self.copy_dead(out, now, msg, route, *r);
        }
        self.extra_mut(msg).route = Some(route);
        self.move_dead(out, now, msg, (from, reason), QueueId(first.queue));
        out.emit(TraceEvent::Routed { at: now, msg, exchange: route.exchange, key: route.key, binding: first.binding });
    }

    /// Another queue's copy of a dead letter (RMQ-24): a new message, published by the
    /// dead-lettering, with the same key, route and death history.
    fn copy_dead(&mut self, out: &mut Outbox, now: SimTime, msg: MsgId, route: Route, to: Reached) {
        let queue = QueueId(to.queue);
        let copy = self.new_copy(msg, queue, now, now);
        self.extra_mut(copy).route = Some(route);
        self.dead_letter_copies += 1;
        out.emit(TraceEvent::Published { at: now, msg: copy, producer: DEAD_LETTERING, queue, arrives_at: now });
        out.emit(TraceEvent::Routed {
            at: now,
            msg: copy,
            exchange: route.exchange,
            key: route.key,
            binding: to.binding,
        });
        self.arrive(out, now, copy);
    }

    /// A copy of `msg` on its way to `queue` (it arrives at `arrives_at`; a queue TTL runs from
    /// then): a new message with a key of its own, that remembers whose copy it is, and with
    /// its death history (its `x-death`).
    fn new_copy(&mut self, msg: MsgId, queue: QueueId, now: SimTime, arrives_at: SimTime) -> MsgId {
        let copy = MsgId(index_u32(self.msgs.len()));
        let expires_at = self.spec(queue).ttl.map_or(SimTime::MAX, |t| arrives_at.after(t));
        self.msgs.push(Message::publishing(queue, copy.0, now, expires_at));
        self.born.push(self.born[msg.index()]);
        let original = self.extra(msg).copy_of.unwrap_or(self.msgs[msg.index()].key);
        self.extra_mut(copy).copy_of = Some(original);
        if let Some(info) = self.dead.get(&msg).cloned() {
            self.dead.insert(copy, info);
        }
        self.counts[queue.index()].add(StateKind::Publishing);
        copy
    }

    /// The count of `msg`'s `x-death` entry for (`queue`, `reason`): how many times it died
    /// there for that reason (RMQ-42); 0 if never.
    pub fn x_death_count(&self, msg: MsgId, queue: QueueId, reason: DeadReason) -> u32 {
        let deaths = self.dead.get(&msg).map_or(&[][..], |d| d.x_death.as_slice());
        deaths.iter().find(|x| x.queue == queue && x.reason == reason).map_or(0, |x| x.count)
    }

    /// The end of a retry loop: the consumer republishes the message to `park`, through the
    /// default exchange, with its headers (its `x-death` among them), then acks it. The copy
    /// is a new message (`REPUBLISHED`) that remembers whose copy it is. False, and nothing
    /// done, when the consumer no longer holds it.
    pub fn park(
        &mut self,
        out: &mut Outbox,
        now: SimTime,
        msg: MsgId,
        consumer: ConsumerId,
        receipt: u32,
        park: QueueId,
    ) -> bool {
        if !self.ack(out, now, msg, consumer, receipt) {
            return false;
        }
        if self.msgs.len() as u64 >= limits::MESSAGES_MAX {
            return true; // the run's message limit: the copy is not made
        }
        let arrives_at = now.after(self.latency);
        let copy = self.new_copy(msg, park, now, arrives_at);
        self.republished += 1;
        out.emit(TraceEvent::Published {
            at: now,
            msg: copy,
            producer: crate::trace::REPUBLISHED,
            queue: park,
            arrives_at,
        });
        if arrives_at == now {
            self.arrive(out, now, copy);
        } else {
            out.schedule(arrives_at, Event::Arrive { msg: copy });
        }
        true
    }

    /// Records a death of `msg` in `from`: its dead-letter metadata, and on RabbitMQ its
    /// `x-death` (D5).
    fn note_death(&mut self, msg: MsgId, from: QueueId, reason: DeadReason, now: SimTime) {
        let lease = self.spec(from).lease;
        let route = self.route_of(msg);
        let m = &self.msgs[msg.index()];
        let (last_error, attempts) = (self.extra(msg).last_error, self.extra(msg).attempts);
        let (first, last) = (self.first_received(msg), m.last_received());
        let info = self.dead.entry(msg).or_insert_with(|| DeadInfo {
            from,
            reason,
            last_error: None,
            receive_count: 0,
            attempts: 0,
            first_attempt_at: None,
            last_attempt_at: None,
            dead_at: now,
            x_death: Vec::new(),
        });
        info.from = from;
        info.reason = reason;
        info.last_error = last_error;
        info.receive_count = m.receive_count;
        info.attempts = attempts;
        info.first_attempt_at = first;
        info.last_attempt_at = last;
        info.dead_at = now;
        // Only RabbitMQ writes `x-death`; the others say it their own way (D5).
        if lease.dead_letter_metadata() == DeadLetterMetadata::XDeath {
            info.record_x_death(from, reason, now, route);
        }
    }

    /// Moves a dead letter from `from` to `dlq`, where it is visible now.
    fn move_dead(
        &mut self,
        out: &mut Outbox,
        now: SimTime,
        msg: MsgId,
        (from, reason): (QueueId, DeadReason),
        dlq: QueueId,
    ) {
        let lease = self.spec(from).lease;
        let expires_at = self.dead_letter_expiry(msg, from, dlq, now);
        let m = &mut self.msgs[msg.index()];
        m.expires_at = expires_at;
        m.pos = self.queues[dlq.index()].take_pos();
        // RMQ-13 (D6): RabbitMQ republishes it; the copy's delivery counts start again.
        if lease.dead_letter_republishes() {
            m.receive_count = 0;
            if m.extra != 0 {
                self.extra_mut(msg).returns_counted = 0;
            }
        }
        if expires_at != SimTime::MAX && expires_at > now {
            self.watch_expiry(out, now, msg, dlq, expires_at);
        }
        // Through Delayed, the one state from which any queue may take it.
        self.set_state(msg, dlq, MsgState::Delayed);
        out.emit(TraceEvent::DeadLettered { at: now, msg, from, dlq, reason });
        self.make_visible(out, now, msg, dlq);
    }

    /// When a dead letter moved from `from` to `dlq` now expires there. Only an SQS DLQ has
    /// a retention period of its own (ASB-6: a Service Bus dead-letter queue observes no TTL;
    /// RabbitMQ drops the message's expiry when it dead-letters it, RMQ-14). SQS-13: from a
    /// standard queue, the original enqueue time still counts, so a message 1 day old goes
    /// from a 4-day DLQ 3 days after the move (and at once if it is already older); from a
    /// FIFO queue the enqueue time resets with the move.
    fn dead_letter_expiry(&self, msg: MsgId, from: QueueId, dlq: QueueId, now: SimTime) -> SimTime {
        // `from` is the queue whose DLQ this is, or (RabbitMQ) one its DLX reached.
        let Some(retention) = self.spec(dlq).ttl else { return SimTime::MAX };
        let sqs = self.spec(from).lease.ttl_is_retention();
        match self.spec(from).ttl {
            // SQS has no per-message TTL, so the source's deadline is its enqueue + retention.
            Some(kept) if sqs && !self.spec(from).fifo => {
                let expires_at = self.msgs[msg.index()].expires_at.as_micros();
                SimTime::from_micros(expires_at.saturating_sub(kept.as_micros())).after(retention)
            }
            _ => now.after(retention),
        }
    }

    /// Redrive (SQS-15): the oldest message of `dlq` goes to `to` as a new message: a new id,
    /// a new enqueue time and retention, a fresh receive count; the business key is kept. No
    /// deduplication id goes with it: in a FIFO DLQ it was replaced by the message id (SQS-14),
    /// so the copy is never a duplicate of the original's sends.
    /// Returns false when the DLQ is empty.
    pub fn redrive_one(&mut self, out: &mut Outbox, now: SimTime, dlq: QueueId, to: QueueId) -> bool {
        let Some(old) = self.queues[dlq.index()].ready.first() else {
            return false;
        };
        self.redrive_msg(out, now, old, to, false);
        true
    }

    /// Resubmit: dead letter `msg`, if it waits in a dead-letter queue now, goes back to the
    /// queue it died in as a redrive moves one, its payload fixed first with `edit`. False,
    /// and nothing done, otherwise.
    pub fn resubmit(&mut self, out: &mut Outbox, now: SimTime, msg: MsgId, edit: bool) -> bool {
        let Some(m) = self.msgs.get(msg.index()) else { return false };
        let Some(info) = self.dead.get(&msg) else { return false };
        if m.kind != StateKind::DeadLettered || !self.spec(m.queue).is_dead_letter() {
            return false;
        }
        let to = info.from;
        self.redrive_msg(out, now, msg, to, edit);
        true
    }

    /// Moves dead letter `old` (waiting in its DLQ) to `to` as a new message: `redrive_one`.
    fn redrive_msg(&mut self, out: &mut Outbox, now: SimTime, old: MsgId, to: QueueId, edit: bool) {
        let dlq = self.msgs[old.index()].queue;
        self.take_from_ready(old);
        let extra = self.extra(old);
        let attrs = SendAttrs {
            group: extra.group,
            poison: extra.poison && !edit,
            key: Some(self.msgs[old.index()].key),
            order_key: extra.order_key,
            ..SendAttrs::default()
        };
        // A redrive is a server-side move: the new message is visible in `to` at once.
        let new_msg = index_u32(self.msgs.len());
        self.set_state(old, dlq, MsgState::Moved);
        out.emit(TraceEvent::Redriven { at: now, msg: old, new_msg: MsgId(new_msg), to });
        let latency = std::mem::replace(&mut self.latency, Duration::ZERO);
        let published = self.publish(out, now, to, crate::trace::SCRIPT, &attrs);
        self.latency = latency;
        debug_assert_eq!(published, Sent::Stored(MsgId(new_msg)));
        self.born[new_msg as usize] = self.born[old.index()];
    }
}

/// What a dead-letter queue holds now, for operators: how many, the oldest one's time of
/// death, and the mix of reasons with the last error each died of.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DeadLetterReport {
    pub count: u64,
    /// When the oldest dead letter in it died (its age is now minus this), in ms.
    pub oldest_dead_at_ms: Option<f64>,
    /// Per (reason, last error), most first: how many.
    pub mix: Vec<DeadMix>,
    /// How many of the oldest the mix was taken over (all, up to `DEAD_LETTER_SCAN_MAX`).
    pub scanned: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeadMix {
    pub reason: &'static str,
    pub error: Option<&'static str>,
    pub count: u64,
}

/// The most dead letters a report looks through, oldest first, so that it stays cheap on a
/// DLQ of millions.
pub const DEAD_LETTER_SCAN_MAX: usize = 10_000;

impl Broker {
    /// The dead-letter report of `queue` (nothing for a queue that is not a DLQ).
    pub fn dead_letter_report(&self, queue: QueueId) -> Option<DeadLetterReport> {
        let q = &self.queues[queue.index()];
        if !q.spec.is_dead_letter() {
            return None;
        }
        let mut mix: BTreeMap<(u8, u8), u64> = BTreeMap::new();
        let mut scanned = 0;
        for msg in q.ready.values().take(DEAD_LETTER_SCAN_MAX) {
            if let Some(d) = self.dead.get(&msg) {
                *mix.entry((d.reason.code(), d.last_error.map_or(u8::MAX, ErrorClass::code))).or_insert(0) += 1;
                scanned += 1;
            }
        }
        let text = |texts: &'static [(u8, &'static str)], code: u8| texts.iter().find(|t| t.0 == code).map(|t| t.1);
        let mut mix: Vec<DeadMix> = mix
            .into_iter()
            .map(|((r, e), count)| DeadMix {
                reason: text(DeadReason::TEXTS, r).unwrap_or("?"),
                error: text(ErrorClass::TEXTS, e),
                count,
            })
            .collect();
        mix.sort_by_key(|m| std::cmp::Reverse(m.count)); // stable: ties keep the codes' order
        let oldest_dead_at_ms = q.ready.first().and_then(|m| self.dead.get(&m)).map(|d| d.dead_at.as_millis_f64());
        Some(DeadLetterReport { count: q.ready.len() as u64, oldest_dead_at_ms, mix, scanned })
    }
}

/// `Broker::set_parts` on a message already in hand (the counts are the broker's): the hot
/// paths borrow a message once and move it without looking it up again.
#[inline(always)]
fn move_to(
    m: &mut Message,
    counts: &mut [StateCounts],
    msg: MsgId,
    queue: QueueId,
    kind: StateKind,
    holder: ConsumerId,
) {
    if !MsgState::can_move(m.kind, ConsumerId(u32::from(m.holder)), kind, holder) {
        illegal_move(msg, m.state(), MsgState::from_parts(kind, holder));
    }
    counts[m.queue.index()].remove(m.kind);
    counts[queue.index()].add(kind);
    m.kind = kind;
    m.holder = u16::try_from(holder.0).expect("consumers are bounded (limits::CONSUMERS_MAX)");
    m.queue = queue;
}

/// An engine bug: out of line, so that the check on every move costs a compare and a branch.
#[cold]
#[inline(never)]
fn illegal_move(msg: MsgId, from: MsgState, to: MsgState) -> ! {
    panic!("m{msg}: illegal move {from:?} -> {to:?}")
}

/// Whether `msg` may still expire at `deadline` by `queue`'s list: not settled, that is still
/// its expiry, and it is not a dead letter elsewhere (its DLQ watches it from the move on, even
/// where the deadline stayed the same, so that it does not hold up the source's list).
fn expiry_due(msgs: &crate::cow::CowVec<Message>, msg: MsgId, deadline: SimTime, queue: QueueId) -> bool {
    let m = &msgs[msg.index()];
    m.expires_at == deadline && !m.kind.is_final() && (m.kind != StateKind::DeadLettered || m.queue == queue)
}

/// Whether the lease `(msg, receipt)` is current and still due at `deadline`.
fn lease_due(msgs: &crate::cow::CowVec<Message>, msg: MsgId, receipt: u32, deadline: SimTime) -> bool {
    let m = &msgs[msg.index()];
    m.receipt == receipt && m.lease_until == deadline
}

/// The broker as a publisher sees it (the producers, the workflows' handlers): a send, counted
/// in the run's totals when it is stored.
#[derive(Debug)]
pub struct Publisher<'a> {
    pub broker: &'a mut Broker,
    pub stats: &'a mut Stats,
}

impl Publisher<'_> {
    pub fn publish(&mut self, cx: &mut Ctx, queue: QueueId, producer: ProducerId, attrs: &SendAttrs) -> Sent {
        let now = cx.now();
        let sent = self.broker.publish(&mut cx.out, now, queue, producer, attrs);
        if let Sent::Stored(_) = sent {
            self.stats.published += 1;
        }
        sent
    }

    /// A message's business key (a duplicate publish reuses it).
    pub fn key(&self, msg: MsgId) -> u32 {
        self.broker.msg(msg).key
    }
}

#[cfg(test)]
mod tests {
    use super::QueueState;
    use crate::rng::Prng;

    /// Model-based: the word search agrees with the scan it replaced, round the list from
    /// any cursor, for lists that span several words.
    #[test]
    fn next_with_room_is_the_round_robin_scan() {
        let mut r = Prng::from_seed(7);
        for n in [1usize, 5, 63, 64, 65, 130, 256] {
            for _ in 0..200 {
                let has: Vec<bool> = (0..n).map(|_| r.below(4) == 0).collect();
                let mut room = vec![0u64; n.div_ceil(64)];
                for (i, _) in has.iter().enumerate().filter(|(_, &h)| h) {
                    room[i / 64] |= 1 << (i % 64);
                }
                let from = usize::try_from(r.below(n as u64)).expect("small");
                let scan = (0..n).map(|k| (from + k) % n).find(|&i| has[i]);
                assert_eq!(QueueState::next_in(&room, from), scan, "n {n}, from {from}, {has:?}");
            }
        }
    }
}
