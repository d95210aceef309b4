//! The driver: the agenda ordered by (time, class, sequence), and the one `match` on `Event`,
//! which routes each event to the component it belongs to (the broker, the consumers, the
//! producers, the streams, the workflows); the script and live inputs are routed here too.
//! It is the only module that knows every component; each of them is lent the `Ctx` (the
//! time, the outbox, the scenario) and, where it must act on another, a narrow port. Time and
//! randomness come in as parameters (the seed); nothing here reads a clock or does I/O.

mod beats;

use crate::broker::{Broker, Publisher, SendAttrs, Sent};
use crate::consumer::{Consumer, Consumers, Ports};
use crate::event::{ConsumerEvent, Ctx, Event, Outbox, Scheduled, StreamEvent};
use crate::exchange::Route;
use crate::ids::MemberId;
use crate::message::{Message, Phase, StateCounts, StateKind};
use crate::producer::{Producers, Send};
use crate::rng::Prng;
use crate::scenario::{index_u32, Op, Scenario};
use crate::service::Services;
use crate::stats::Stats;
use crate::stream::Streams;
use crate::time::{Duration, SimTime};
use crate::trace::{
    ConsumerId, DeadReason, MsgId, ProducerId, QueueId, ReturnReason, StopReason, TraceEvent, TraceHash, SCRIPT,
};
use crate::workflow::Workflows;
use serde::Serialize;
use std::fmt;

/// The page's badges, one number each (`Sim::counters`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub lost: u64,
    pub applied_twice: u64,
    pub order_violated: u64,
    pub duplicates_suppressed: u64,
    pub lease_expired_mid_processing: u64,
    pub dead_lettered: u64,
    pub expired: u64,
}

impl Counters {
    pub fn get(&self, c: crate::scenario::Counter) -> u64 {
        use crate::scenario::Counter;
        match c {
            Counter::Lost => self.lost,
            Counter::AppliedTwice => self.applied_twice,
            Counter::OrderViolated => self.order_violated,
            Counter::DuplicatesSuppressed => self.duplicates_suppressed,
            Counter::LeaseExpiredMidProcessing => self.lease_expired_mid_processing,
            Counter::DeadLettered => self.dead_lettered,
            Counter::Expired => self.expired,
        }
    }
}

/// `run_until` stopped before reaching its target time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError {
    BudgetExhausted { budget: u64, now: SimTime, until: SimTime },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::BudgetExhausted { budget, now, until } => write!(
                f,
                "stopped at {now} before reaching {until}: the budget of {budget} events per call is used up; \
                 call again to continue, or raise the budget"
            ),
        }
    }
}

impl std::error::Error for RunError {}

/// A run. Cloning it is a snapshot: the clone continues exactly as the original would.
#[derive(Clone, Debug)]
pub struct Sim {
    /// The time, the outbox and the scenario: what each component is lent with each event.
    pub(crate) cx: Ctx,
    seed: u64,
    pub(crate) streams: Streams,
    pub(crate) consumers: Consumers,
    /// What the consumers act on: the broker, the services (their dependencies and the store
    /// their effects land in), the run's totals, and the workflows (their handlers).
    pub(crate) ports: Ports<Workflows>,
    pub(crate) producers: Producers,
    /// The messages the script has named, by name index.
    names: Vec<Option<MsgId>>,
    events_processed: u64,
    /// How far the run has come through the scenario's narrative beats.
    pub(crate) beats: crate::beats::Beats,
    /// Per alert: whether it is firing, and how often it has fired.
    alerts: Vec<AlertState>,
}

/// An alert's state, for the summary and the page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AlertState {
    pub firing: bool,
    pub fired: u64,
    /// When it first fired, in µs (the summary gives ms).
    #[serde(skip)]
    pub first_fired: Option<SimTime>,
}

impl Sim {
    /// A run of `scenario` with `seed`. The scenario is already validated, so this cannot fail.
    pub fn new(scenario: Scenario, seed: u64) -> Sim {
        let mut root = Prng::from_seed(seed);
        let producers = Producers::new(&scenario, &mut root);
        let broker = Broker::new(&scenario);
        let consumers = scenario
            .consumers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let slot = broker.queues[c.queue as usize].consumers.iter().position(|&s| s.index() == i);
                let lease = scenario.queues[c.queue as usize].lease;
                Consumer::new(root.fork(0x1_0000 + i as u64), c, lease, slot.expect("the broker lists every consumer"))
            })
            .collect();
        let streams = Streams::new(&scenario, seed, &mut root);
        let workflows = crate::workflow::Workflows::new(&scenario);
        let mut sim = Sim {
            ports: Ports { broker, services: Services::new(&scenario), stats: Stats::default(), handlers: workflows },
            streams,
            names: vec![None; scenario.message_names.len()],
            cx: Ctx::new(scenario, Outbox { recording: true, ..Outbox::default() }),
            seed,
            consumers: Consumers { list: consumers, lost: Vec::new() },
            producers,
            events_processed: 0,
            beats: crate::beats::Beats::default(),
            alerts: Vec::new(),
        };
        sim.alerts = vec![AlertState::default(); sim.cx.scenario.alerts.len()];
        sim.start();
        sim
    }

    /// What a run starts with: the first beat armed, every consumer's room, each producer's
    /// first send, the groups' starts, the log cleaners', autoscalers' and script's first turns.
    fn start(&mut self) {
        self.arm_beat();
        for c in 0..self.consumers.list.len() {
            self.with_consumers(|cs, cx, p| cs.room_changed(cx, p, ConsumerId(index_u32(c))));
        }
        for p in 0..self.producers.list.len() {
            let producer = index_u32(p);
            let first = self.producers.first_send(&self.cx.scenario, ProducerId(producer));
            self.producers.next_send(&mut self.cx, ProducerId(producer), first);
        }
        for (i, g) in self.cx.scenario.groups.iter().enumerate() {
            self.cx.out.schedule(g.start, Event::Stream(StreamEvent::GroupStart { group: index_u32(i) }));
        }
        for (i, t) in self.cx.scenario.topics.iter().enumerate() {
            self.cx.out.schedule(
                SimTime::ZERO.after(t.check_every),
                Event::Stream(StreamEvent::LogCleanup { topic: index_u32(i) }),
            );
        }
        for (i, a) in self.cx.scenario.autoscalers.iter().enumerate() {
            self.cx.out.schedule(
                SimTime::ZERO.after(a.check_every),
                Event::Consumer(ConsumerEvent::Autoscale { scaler: index_u32(i) }),
            );
        }
        // Steps are scheduled one at a time, each after the previous ran, so that a step at t
        // sees everything an earlier step at t caused (a zero-latency send has arrived).
        if let Some(first) = self.cx.scenario.script.first() {
            self.cx.out.schedule(first.at, Event::Script { step: 0 });
        }
    }

    // --- Driving the run -----------------------------------------------------------------

    /// When the next event will happen, if anything is scheduled.
    pub fn next_event_at(&self) -> Option<SimTime> {
        self.cx.out.agenda.peek().map(|s| s.at)
    }

    /// Handles exactly one event, the earliest, then lets consumers take what became
    /// deliverable. Returns its time, or `None` when the agenda is empty.
    pub fn step(&mut self) -> Option<SimTime> {
        let Scheduled { at, event, .. } = *self.cx.out.agenda.peek()?;
        debug_assert!(at >= self.cx.now(), "time went backwards: {at} < {}", self.cx.now());
        if at > self.beats.due {
            self.reach_due_beats(SimTime::from_micros(at.as_micros() - 1));
        }
        self.cx.set_now(at);
        self.events_processed += 1;
        self.cx.out.top_spent = true;
        self.handle(event);
        self.dispatch_dirty();
        if !self.alerts.is_empty() {
            self.check_alerts();
        }
        if self.cx.out.beat_poll != 0 {
            self.beat_after_step();
        }
        if std::mem::take(&mut self.cx.out.top_spent) {
            self.cx.out.agenda.pop();
        }
        Some(at)
    }

    /// Handles every event up to and including `until`, then sets the clock to `until`.
    /// Stops with an error after `budget` events, so that no call can hang its caller.
    pub fn run_until(&mut self, until: SimTime, budget: u64) -> Result<u64, RunError> {
        let mut handled = 0;
        while self.next_event_at().is_some_and(|at| at <= until) {
            if handled == budget {
                return Err(RunError::BudgetExhausted { budget, now: self.cx.now(), until });
            }
            self.step();
            handled += 1;
        }
        self.cx.set_now(self.cx.now().max(until));
        if self.beats.due <= self.cx.now() {
            self.reach_due_beats(self.cx.now());
        }
        Ok(handled)
    }

    /// Handles up to `n` events (fewer if the agenda runs dry); returns how many.
    pub fn run_events(&mut self, n: u64) -> u64 {
        let mut handled = 0;
        while handled < n && self.step().is_some() {
            handled += 1;
        }
        handled
    }

    /// Moves the clock to `to` without handling anything, but never past the next event: a
    /// replay puts a live input back at the instant it was made, which may be later than the
    /// last event before it (the user acted between events).
    pub fn advance_clock(&mut self, to: SimTime) {
        let cap = self.next_event_at().map_or(to, |next| next.min(to));
        self.cx.set_now(self.cx.now().max(cap));
        if self.beats.due <= self.cx.now() {
            self.reach_due_beats(self.cx.now());
        }
    }

    /// A live input, applied now, after every event up to now: a user (or the swarm) crashes a
    /// consumer, takes a dependency down, redrives a DLQ… The same operations as the script.
    /// Like `step`, it lets consumers take what became deliverable.
    pub fn input(&mut self, op: Op) {
        self.events_processed += 1;
        self.apply_op(op);
        self.dispatch_dirty();
        if !self.alerts.is_empty() {
            self.check_alerts();
        }
        if self.cx.out.beat_poll != 0 {
            self.beat_after_step();
        }
    }

    /// Each alert's value now against its bound: crossing it either way is an `AlertChanged`.
    #[inline(never)]
    fn check_alerts(&mut self) {
        let now = self.cx.now();
        for (i, a) in self.cx.scenario.alerts.iter().enumerate() {
            let value = match a.on {
                crate::scenario::AlertOn::Queue(q) => u64::from(self.ports.broker.depth(QueueId(q))),
                crate::scenario::AlertOn::Group(g) => self.streams.group_lag(&self.cx.scenario, g),
            };
            let state = &mut self.alerts[i];
            let firing = value > a.above;
            if firing != state.firing {
                state.firing = firing;
                if firing {
                    state.fired += 1;
                    state.first_fired.get_or_insert(now);
                }
                self.cx.out.emit(TraceEvent::AlertChanged { at: now, alert: index_u32(i), firing, value });
            }
        }
    }

    /// Each alert's state now: whether it fires, how often it has, since when.
    pub fn alerts(&self) -> &[AlertState] {
        &self.alerts
    }

    /// Lets consumers take what the last change made deliverable, queue by queue.
    fn dispatch_dirty(&mut self) {
        let mut dirty = self.ports.broker.take_dirty();
        while dirty != 0 {
            let queue = dirty.trailing_zeros();
            dirty &= dirty - 1;
            self.with_consumers(|cs, cx, p| cs.dispatch(cx, p, queue));
        }
    }

    /// Turns trace storage off (or on). The hash is kept either way; benchmarks and the CLI
    /// without `--trace` need only the hash and the counts.
    pub fn set_recording(&mut self, on: bool) {
        self.cx.out.recording = on;
    }

    /// Takes the trace events recorded since the last drain.
    pub fn drain_trace(&mut self) -> Vec<TraceEvent> {
        if let Some(d) = &mut self.cx.out.deliveries {
            d.clear();
        }
        std::mem::take(&mut self.cx.out.trace)
    }

    /// Records, beside the trace, what each delivery carried (`Broker::delivery_meta`).
    pub fn record_deliveries(&mut self) {
        self.cx.out.deliveries = Some(Vec::new());
    }

    /// `drain_trace`, with what each delivery among them carried, by its index there (with
    /// `record_deliveries`).
    pub fn drain_trace_with_deliveries(&mut self) -> (Vec<TraceEvent>, Vec<(usize, crate::message::DeliveryMeta)>) {
        let deliveries = self.cx.out.deliveries.as_mut().map(std::mem::take).unwrap_or_default();
        (std::mem::take(&mut self.cx.out.trace), deliveries)
    }

    // --- Reading the state ---------------------------------------------------------------

    pub fn now(&self) -> SimTime {
        self.cx.now()
    }
    pub fn seed(&self) -> u64 {
        self.seed
    }
    pub fn scenario(&self) -> &Scenario {
        &self.cx.scenario
    }
    pub fn events_processed(&self) -> u64 {
        self.events_processed
    }
    pub fn trace_hash(&self) -> TraceHash {
        self.cx.out.hash
    }
    pub fn stats(&self) -> Stats {
        self.ports.stats
    }
    /// The counters the page's badges show, over queues and consumer groups alike: a stream
    /// record handled twice counts as applied twice; one committed but never processed, or
    /// deleted by retention before it was read, as lost.
    pub fn counters(&self) -> Counters {
        let s = self.ports.stats;
        let groups =
            |f: fn(&crate::stats::GroupStats) -> u64| self.streams.groups.iter().map(|g| f(&g.stats)).sum::<u64>();
        let queues = |k: StateKind| self.ports.broker.counts.iter().map(|c| u64::from(c.get(k))).sum::<u64>();
        Counters {
            lost: s.lost + groups(|g| g.lost + g.lost_to_retention),
            applied_twice: s.applied_twice + groups(|g| g.duplicates),
            order_violated: s.order_violations + groups(|g| g.order_violations),
            duplicates_suppressed: s.duplicates_suppressed,
            lease_expired_mid_processing: s.lease_expired_mid_processing,
            dead_lettered: queues(StateKind::DeadLettered) + groups(|g| g.dead_lettered),
            expired: self.ports.broker.expired_total,
        }
    }
    /// Per dependency, the calls made to it and how many failed.
    pub fn dependency_calls(&self) -> &[crate::stats::DependencyCalls] {
        &self.ports.services.calls
    }
    pub fn streams(&self) -> &Streams {
        &self.streams
    }
    /// The lag table: every group's partitions with their offsets, lag and owner (KC-8).
    pub fn lag_table(&self) -> Vec<crate::stream::LagRow> {
        self.streams.lag_table(&self.cx.scenario)
    }
    pub fn workflows(&self) -> &Workflows {
        &self.ports.handlers
    }
    /// Every saga block's summary; `selected[b]`, where given, is the instance of block `b`
    /// the user put in focus.
    pub fn saga_summaries(&self, selected: &[Option<u32>]) -> Vec<crate::workflow::SagaSummary> {
        self.ports.handlers.saga_summaries(&self.cx.scenario, self.cx.now(), selected)
    }
    pub fn request_summaries(&self) -> Vec<crate::workflow::RequestSummary> {
        self.ports.handlers.request_summaries(&self.cx.scenario)
    }
    /// Whether dependency `d` is up now: outside its outage windows, and not taken down.
    pub fn dependency_up(&self, d: u32) -> bool {
        self.ports.services.up(&self.cx.scenario, self.cx.now(), d)
    }
    pub fn broker(&self) -> &Broker {
        &self.ports.broker
    }
    /// Messages per state, for one queue.
    pub fn counts(&self, queue: QueueId) -> StateCounts {
        self.ports.broker.counts[queue.index()]
    }
    pub fn message_state(&self, msg: MsgId) -> Option<crate::message::MsgState> {
        self.ports.broker.msgs.get(msg.index()).map(Message::state)
    }
    /// The message the script named `name`, once it has been sent.
    /// The script's name for `msg`: the named message it shares its business key with, or
    /// (a routed or dead-lettered copy) the one it is a copy of.
    pub fn name_of(&self, msg: MsgId) -> Option<&str> {
        let broker = &self.ports.broker;
        let own = broker.msgs.get(msg.index())?.key;
        let key = broker.extra(msg).copy_of.unwrap_or(own);
        let i = self.names.iter().position(|n| n.is_some_and(|m| self.ports.broker.msg(m).key == key))?;
        Some(self.cx.scenario.message_names[i].as_str())
    }

    pub fn named(&self, name: &str) -> Option<MsgId> {
        let i = self.cx.scenario.message_names.iter().position(|n| n == name)?;
        self.names[i]
    }

    // long: one field per part of the summary, in the order its JSON shows them
    pub fn summary(&self) -> Summary {
        let s = &self.ports.stats;
        #[allow(clippy::cast_precision_loss)]
        let mean_ms = |total_us: u64, n: u64| total_us as f64 / 1000.0 / n.max(1) as f64;
        let mean_wait_ms = mean_ms(s.wait_total_us, s.deliveries);
        let mean_latency_ms = mean_ms(s.latency_total_us, s.effects_first);
        Summary {
            scenario: self.cx.scenario.name.clone(),
            seed: self.seed,
            time_ms: self.cx.now().as_millis_f64(),
            events: self.events_processed,
            trace_hash: self.cx.out.hash.hex(),
            queues: self
                .cx
                .scenario
                .queues
                .iter()
                .zip(&self.ports.broker.counts)
                .enumerate()
                .map(|(i, (q, c))| QueueSummary {
                    name: q.name.clone(),
                    messages: *c,
                    dead_letters: self.ports.broker.dead_letter_report(QueueId(index_u32(i))),
                })
                .collect(),
            topics: self
                .cx
                .scenario
                .topics
                .iter()
                .zip(&self.streams.topics)
                .map(|(t, st)| TopicSummary {
                    name: t.name.clone(),
                    partitions: st
                        .logs
                        .iter()
                        .map(|l| PartitionSummary { log_start: l.log_start, log_end: l.end(), retained: l.retained() })
                        .collect(),
                })
                .collect(),
            groups: self
                .cx
                .scenario
                .groups
                .iter()
                .zip(&self.streams.groups)
                .enumerate()
                .map(|(i, (spec, g))| GroupSummary {
                    name: spec.name.clone(),
                    state: g.phase.as_str(),
                    generation: g.generation,
                    members: g.members.iter().filter(|m| m.alive && m.in_group).count(),
                    lag: self.lag_table().iter().filter(|r| r.group == index_u32(i)).filter_map(|r| r.lag).sum(),
                    stats: g.stats,
                })
                .collect(),
            dependencies: self
                .cx
                .scenario
                .dependencies
                .iter()
                .zip(self.dependency_calls())
                .map(|(d, c)| DependencySummary { name: d.name.clone(), calls: *c })
                .collect(),
            request_reply: self.request_summaries(),
            sagas: self.saga_summaries(&[]),
            stats: self.ports.stats,
            counters: self.counters(),
            alerts: self
                .cx
                .scenario
                .alerts
                .iter()
                .zip(&self.alerts)
                .map(|(a, st)| AlertSummary {
                    name: a.name.clone(),
                    above: a.above,
                    state: *st,
                    first_fired_ms: st.first_fired.map(SimTime::as_millis_f64),
                })
                .collect(),
            mean_wait_ms,
            mean_latency_ms,
            beats: self.beats(),
        }
    }

    // --- The one match -------------------------------------------------------------------

    fn handle(&mut self, event: Event) {
        let now = self.cx.now();
        match event {
            Event::Produce { producer } => self.produce(producer),
            Event::Arrive { msg } => self.ports.broker.arrive(&mut self.cx.out, now, msg),
            Event::Consumer(e) => self.with_consumers(|cs, cx, p| cs.handle(cx, p, e)),
            Event::LeaseExpiry { msg, receipt } => self.lease_expired(msg, receipt),
            Event::LeaseCheck { queue } => {
                for (msg, receipt) in self.ports.broker.due_leases(now, queue) {
                    self.lease_expired(msg, receipt);
                }
                self.ports.broker.arm_lease_check(&mut self.cx.out, queue);
            }
            Event::Visible { msg } => self.ports.broker.visible_timer(&mut self.cx.out, now, msg),
            Event::TtlExpiry { msg } => self.ports.broker.ttl_timer(&mut self.cx.out, now, msg),
            Event::TtlCheck { queue } => self.ports.broker.ttl_check(&mut self.cx.out, now, queue),
            Event::RedriveNext { from, to, every } => {
                if self.ports.broker.redrive_one(&mut self.cx.out, now, from, to) {
                    self.cx.out.schedule(now.after(every), Event::RedriveNext { from, to, every });
                }
            }
            Event::Script { step } => self.script_step(step),
            Event::Stream(e) => self.streams.handle(&mut self.cx, e),
            Event::RequestTimeout { system, corr } => {
                self.with_workflows(|w, cx, pb| w.request_timeout(cx, pb, system, corr));
            }
        }
    }

    /// A lease ran out, if it is still the current one (visible at t >= deadline, SQS-8). For
    /// RabbitMQ it is the consumer timeout, which closes the consumer's channel.
    fn lease_expired(&mut self, msg: MsgId, receipt: u32) {
        let rmq_timeout = self.ports.broker.queues[self.ports.broker.msg(msg).queue.index()].spec.lease.channel_bound();
        let now = self.cx.now();
        if let Some(c) = self.ports.broker.lease_timer(&mut self.cx.out, now, msg, receipt) {
            self.with_consumers(|cs, cx, p| cs.lease_lapsed(cx, p, c, (msg, receipt), rmq_timeout));
        }
    }

    /// Runs `f` on the consumers, with their context and the ports they act on.
    #[inline(always)]
    fn with_consumers<R>(&mut self, f: impl FnOnce(&mut Consumers, &mut Ctx, &mut Ports<Workflows>) -> R) -> R {
        f(&mut self.consumers, &mut self.cx, &mut self.ports)
    }

    /// Runs `f` on the workflows, with their context and the broker to publish to.
    fn with_workflows<R>(&mut self, f: impl FnOnce(&mut Workflows, &mut Ctx, &mut Publisher<'_>) -> R) -> R {
        let mut publisher = Publisher { broker: &mut self.ports.broker, stats: &mut self.ports.stats };
        f(&mut self.ports.handlers, &mut self.cx, &mut publisher)
    }

    // --- Producers -----------------------------------------------------------------------

    /// A producer's turn, routed to where its send goes; then its next turn is scheduled.
    fn produce(&mut self, producer: ProducerId) {
        let made = self.ports.stats.published + self.ports.stats.records;
        let Some(turn) = self.producers.turn(&mut self.cx, producer, made) else { return };
        match turn.send {
            Send::Request { system, instance } => {
                self.with_workflows(|w, cx, pb| w.send_request(cx, pb, system, instance, 0));
            }
            Send::Saga { saga } => self.with_workflows(|w, cx, pb| w.start_saga(cx, pb, saga)),
            Send::Queue { queue } => {
                let (attrs, now) = (&self.producers.attrs, self.cx.now());
                if let Sent::Stored(_) = self.ports.broker.publish(&mut self.cx.out, now, queue, producer, attrs) {
                    self.ports.stats.published += 1;
                }
            }
            Send::Exchange { route, mandatory } => {
                let attrs = self.producers.attrs.clone();
                self.publish_routed(producer, &attrs, (route, mandatory));
            }
            Send::Record { topic } => {
                self.ports.stats.records += 1;
                let poison = self.producers.attrs.poison;
                let prng = &mut self.producers.list[producer.index()].prng;
                self.streams.produce_record(&mut self.cx, prng, (producer.0, poison), topic);
            }
        }
        self.producers.next_send(&mut self.cx, producer, turn.next);
    }

    /// A publish to an exchange, counted: the messages it made, or one unroutable or
    /// returned publish. Returns the first message it made.
    fn publish_routed(
        &mut self,
        producer: ProducerId,
        attrs: &SendAttrs,
        (route, mandatory): (Route, bool),
    ) -> Option<MsgId> {
        let (now, first) = (self.cx.now(), MsgId(crate::scenario::index_u32(self.ports.broker.msgs.len())));
        let made = self.ports.broker.publish_routed(&mut self.cx.out, now, producer, attrs, (route, mandatory));
        let stats = &mut self.ports.stats;
        stats.published += u64::from(made);
        match (made, mandatory) {
            (0, true) => stats.returned += 1,
            (0, false) => stats.unroutable += 1,
            _ => return Some(first),
        }
        None
    }

    /// A producer and a consumer that belong to one process that died for good.
    pub(crate) fn stop_for_good(&mut self, producer: ProducerId, consumer: u32) {
        self.producers.stop(&mut self.cx, producer, StopReason::Killed);
        if self.consumers[consumer as usize].alive {
            self.with_consumers(|cs, cx, p| cs.crash(cx, p, ConsumerId(consumer)));
        }
    }

    // --- The script ----------------------------------------------------------------------

    fn script_step(&mut self, step: u32) {
        self.apply_op(self.cx.scenario.script[step as usize].op.clone());
        if let Some(next) = self.cx.scenario.script.get(step as usize + 1) {
            self.cx.out.schedule(next.at, Event::Script { step: step + 1 });
        }
    }

    // long: one arm per script operation, each a call into the component it concerns
    fn apply_op(&mut self, op: Op) {
        let now = self.cx.now();
        match op {
            Op::Send { queue, name, group, dedup_id, ttl, delay, poison, resend } => {
                // A resend is the same business message: its effect counts against the first.
                let key = resend.and_then(|n| self.names[n as usize]).map(|m| self.ports.broker.msg(m).key);
                let attrs = SendAttrs { group, dedup_id, ttl, delay, poison, key, order_key: None };
                let msg = match self.ports.broker.publish(&mut self.cx.out, now, QueueId(queue), SCRIPT, &attrs) {
                    Sent::Stored(msg) => {
                        self.ports.stats.published += 1;
                        msg
                    }
                    // A duplicate send answers with the original's id (SQS-23).
                    Sent::Duplicate(original) => original,
                };
                if let Some(n) = name {
                    self.names[n as usize] = Some(msg);
                }
            }
            Op::Publish { route, name, mandatory, ttl } => {
                let attrs = SendAttrs { ttl, ..SendAttrs::default() };
                let first = self.publish_routed(SCRIPT, &attrs, (route, mandatory));
                if let Some(n) = name {
                    self.names[n as usize] = first;
                }
            }
            Op::Receive { consumer, queue, max } => self.script_receive(ConsumerId(consumer), QueueId(queue), max),
            Op::Ack { consumer, name, multiple } => {
                let ack = |b: &mut Broker, out: &mut Outbox, msg, receipt| {
                    b.ack(out, now, msg, ConsumerId(consumer), receipt);
                };
                let settled = if multiple {
                    self.settle_multiple(ConsumerId(consumer), name, ack)
                } else {
                    self.settle(ConsumerId(consumer), name, ack)
                };
                if !settled {
                    self.refuse(ConsumerId(consumer), name);
                }
            }
            Op::Nack { consumer, name, requeue, reject, multiple } => {
                let nack = |b: &mut Broker, out: &mut Outbox, msg, receipt| {
                    if requeue {
                        let reason = if reject { ReturnReason::Rejected } else { ReturnReason::Nacked };
                        b.give_back(out, now, msg, ConsumerId(consumer), receipt, reason);
                    } else {
                        b.reject(out, now, msg, ConsumerId(consumer), receipt, DeadReason::Rejected);
                    }
                };
                if multiple {
                    self.settle_multiple(ConsumerId(consumer), name, nack);
                } else {
                    self.settle(ConsumerId(consumer), name, nack);
                }
            }
            Op::Cancel { consumer } => self.with_consumers(|cs, cx, p| cs.cancel(cx, p, ConsumerId(consumer))),
            Op::Abandon { consumer, name } => {
                self.settle(ConsumerId(consumer), name, |b, out, msg, receipt| {
                    b.give_back(out, now, msg, ConsumerId(consumer), receipt, ReturnReason::Abandoned);
                });
            }
            Op::ChangeVisibility { consumer, name, timeout } => {
                self.settle(ConsumerId(consumer), name, |b, out, msg, receipt| {
                    b.change_visibility(out, now, msg, ConsumerId(consumer), receipt, timeout);
                });
            }
            Op::RenewLock { consumer, name } => {
                self.settle(ConsumerId(consumer), name, |b, out, msg, receipt| {
                    let lease = b.queues[b.msg(msg).queue.index()].spec.lease;
                    b.extend(out, now, msg, ConsumerId(consumer), receipt, now.after(lease.lease_duration()));
                });
            }
            Op::DeadLetter { consumer, name } => {
                self.settle(ConsumerId(consumer), name, |b, out, msg, receipt| {
                    b.reject(out, now, msg, ConsumerId(consumer), receipt, DeadReason::Rejected);
                });
            }
            Op::Crash { consumer } => self.with_consumers(|cs, cx, p| cs.crash(cx, p, ConsumerId(consumer))),
            Op::DeployFix { consumer } => self.consumers[consumer as usize].fixed = true,
            Op::SetProcessing { consumer, processing } => self.consumers[consumer as usize].processing = processing,
            Op::SetOutcomes { consumer, outcomes } => self.consumers[consumer as usize].outcomes = outcomes,
            Op::PoisonNext { producer } => self.producers.list[producer as usize].poison_next = true,
            Op::Restart { consumer } => self.with_consumers(|cs, cx, p| cs.restart(cx, p, ConsumerId(consumer))),
            Op::Redrive { from, to, rate_per_s } => match rate_per_s {
                // The messages there when the move starts: a redriven message that comes
                // straight back (a full drop-head queue, say) is not moved again.
                None => {
                    for _ in 0..self.ports.broker.depth(QueueId(from)) {
                        self.ports.broker.redrive_one(&mut self.cx.out, now, QueueId(from), QueueId(to));
                    }
                }
                Some(rate) => {
                    let every = Duration::from_micros(1_000_000 / u64::from(rate));
                    self.cx.out.schedule(now, Event::RedriveNext { from: QueueId(from), to: QueueId(to), every });
                }
            },
            Op::Resubmit { msg, edit } => {
                self.ports.broker.resubmit(&mut self.cx.out, now, MsgId(msg), edit);
            }
            Op::CrashMember { group, member } => self.streams.crash_member(&mut self.cx, group, MemberId(member)),
            Op::RestartMember { group, member } => self.streams.restart_member(&mut self.cx, group, MemberId(member)),
            Op::RemoveMember { group, member } => self.streams.remove_member(&mut self.cx, group, MemberId(member)),
            Op::AddMember { group } => self.streams.add_member(&mut self.cx, group),
            Op::ResetOffsets { group } => self.streams.reset_offsets(&mut self.cx, group),
            Op::KillRequester { system, instance } => {
                let dead = self.ports.handlers.kill_requester(&mut self.cx, system, instance);
                if let Some((producer, reader)) = dead {
                    self.stop_for_good(ProducerId(producer), reader);
                }
            }
            Op::DropDelivery { msg } => self.with_consumers(|cs, cx, p| cs.drop_delivery(cx, p, MsgId(msg))),
            Op::DuplicateDelivery { msg } => self.with_consumers(|cs, cx, p| cs.duplicate_delivery(cx, p, MsgId(msg))),
            Op::DependencyDown { dependency } | Op::DependencyUp { dependency } => {
                let up = matches!(op, Op::DependencyUp { .. });
                self.ports.services.set_down(dependency, !up);
                self.cx.out.emit(TraceEvent::DependencyChanged { at: now, dependency, up });
            }
        }
    }

    /// A receive by hand: up to `max` visible messages, in hand at once (no network leg).
    fn script_receive(&mut self, consumer: ConsumerId, queue: QueueId, max: u32) {
        let now = self.cx.now();
        let mut got = 0;
        self.ports.broker.expire_heads(&mut self.cx.out, now, queue);
        for msg in self.ports.broker.batch(queue, max) {
            // RMQ-21: each delivery moves the head; what expired behind it expires now instead.
            self.ports.broker.expire_heads(&mut self.cx.out, now, queue);
            if !matches!(self.ports.broker.msg(msg).kind(), StateKind::Ready | StateKind::DeadLettered) {
                continue;
            }
            if let Some(receipt) =
                self.ports.broker.deliver(&mut self.cx.out, now, msg, consumer, Phase::Processing, now)
            {
                self.ports.stats.deliveries += 1;
                let h = crate::consumer::Held { msg, receipt, auto_acked: false };
                self.consumers[consumer.index()].held.push(h);
                self.with_consumers(|cs, cx, p| cs.room_changed(cx, p, consumer));
                got += 1;
            }
        }
        self.ports.broker.expire_heads(&mut self.cx.out, now, queue);
        if got == 0 {
            self.cx.out.emit(TraceEvent::ReceivedNothing { at: now, consumer, queue });
        }
    }

    /// A scripted operation on a message `consumer` holds (the step names it): `op` gets the
    /// broker and the message's current receipt. Afterwards the consumer lets go of it if the
    /// lease is gone; it keeps it when the lease is still its own (extended, or a refused
    /// settle, ASB-6). Returns false when the consumer does not hold the named message.
    fn settle(
        &mut self,
        consumer: ConsumerId,
        name: u32,
        op: impl FnOnce(&mut Broker, &mut Outbox, MsgId, u32),
    ) -> bool {
        let Some(h) = self.names[name as usize].and_then(|msg| self.consumers[consumer.index()].find(msg)) else {
            return false;
        };
        op(&mut self.ports.broker, &mut self.cx.out, h.msg, h.receipt);
        if !self.ports.broker.holds(h.msg, consumer, h.receipt) {
            self.consumers[consumer.index()].drop_held(h.msg, h.receipt);
            self.with_consumers(|cs, cx, p| cs.room_changed(cx, p, consumer));
        }
        true
    }

    /// `settle` with `multiple` (RMQ-51): every delivery `consumer` holds, in the order they
    /// came (delivery tags grow with it), up to and including the named message's.
    fn settle_multiple(
        &mut self,
        consumer: ConsumerId,
        name: u32,
        op: impl Fn(&mut Broker, &mut Outbox, MsgId, u32),
    ) -> bool {
        let c = consumer.index();
        let Some(last) = self.names[name as usize].and_then(|msg| self.consumers[c].find(msg)) else {
            return false;
        };
        let upto = self.consumers[c].held.iter().position(|h| *h == last).unwrap_or(0);
        let settle: Vec<crate::consumer::Held> =
            self.consumers[c].held.iter().take(upto + 1).filter(|h| !h.auto_acked).copied().collect();
        for h in settle {
            op(&mut self.ports.broker, &mut self.cx.out, h.msg, h.receipt);
            if !self.ports.broker.holds(h.msg, consumer, h.receipt) {
                self.consumers[c].drop_held(h.msg, h.receipt);
            }
        }
        self.with_consumers(|cs, cx, p| cs.room_changed(cx, p, consumer));
        true
    }

    fn refuse(&mut self, consumer: ConsumerId, name: u32) {
        if let Some(msg) = self.names[name as usize] {
            self.cx.out.emit(TraceEvent::AckRefused { at: self.cx.now(), msg, consumer, receipt: 0 });
        }
    }
}

/// What a run reached: the CLI prints it as JSON, the page shows it, tests compare it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    pub scenario: String,
    pub seed: u64,
    pub time_ms: f64,
    pub events: u64,
    pub trace_hash: String,
    pub queues: Vec<QueueSummary>,
    pub topics: Vec<TopicSummary>,
    pub groups: Vec<GroupSummary>,
    /// Per downstream dependency, the calls made to it and how many failed.
    pub dependencies: Vec<DependencySummary>,
    pub request_reply: Vec<crate::workflow::RequestSummary>,
    pub sagas: Vec<crate::workflow::SagaSummary>,
    pub stats: Stats,
    /// The page's badges, by the definitions its help gives (`Sim::counters`).
    pub counters: Counters,
    /// Each alert: its bound, whether it fires now, how often it fired and first when.
    pub alerts: Vec<AlertSummary>,
    /// Mean time a delivery waited in its queue (Wq).
    pub mean_wait_ms: f64,
    /// Mean time from a publish to its first effect: the end-to-end latency.
    pub mean_latency_ms: f64,
    /// Every narrative beat: when this run reached it, or why it will not.
    pub beats: Vec<crate::beats::BeatStatus>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AlertSummary {
    pub name: String,
    pub above: u64,
    #[serde(flatten)]
    pub state: AlertState,
    pub first_fired_ms: Option<f64>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DependencySummary {
    pub name: String,
    #[serde(flatten)]
    pub calls: crate::stats::DependencyCalls,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TopicSummary {
    pub name: String,
    pub partitions: Vec<PartitionSummary>,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct PartitionSummary {
    pub log_start: u64,
    pub log_end: u64,
    pub retained: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct GroupSummary {
    pub name: String,
    pub state: &'static str,
    pub generation: i32,
    pub members: usize,
    /// Summed over its partitions that have a committed offset (KC-8).
    pub lag: u64,
    pub stats: crate::stats::GroupStats,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct QueueSummary {
    pub name: String,
    pub messages: StateCounts,
    /// A dead-letter queue's report: how many, the oldest's time of death, the reasons.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letters: Option<crate::broker::DeadLetterReport>,
}
