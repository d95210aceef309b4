//! The engine: an agenda ordered by (time, sequence), and the one `match` on `Event`.
//! Time and randomness come in as parameters (the seed); nothing here reads a clock or does
//! I/O. Every state change goes through `transition` and is recorded as a `TraceEvent`.

use crate::message::{Message, MsgState, StateCounts, StateKind};
use crate::queue::{self, Consumer, Queue};
use crate::rng::Prng;
use crate::scenario::{limits, Scenario, Schedule};
use crate::time::{Duration, SimTime};
use crate::trace::{ConsumerId, MsgId, ProducerId, QueueId, StopReason, TraceEvent, TraceHash};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt;

/// What the agenda holds: things that will happen at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A producer sends its next message.
    Produce { producer: ProducerId },
    /// A published message reaches the broker.
    Arrive { msg: MsgId },
    /// A delivered message reaches its consumer.
    Receive { msg: MsgId, consumer: ConsumerId },
    /// A consumer finishes processing and acks.
    Finish { msg: MsgId, consumer: ConsumerId },
}

#[derive(Debug)]
struct Scheduled {
    at: SimTime,
    seq: u64,
    event: Event,
}

// BinaryHeap is a max-heap; reverse so the earliest (time, seq) pops first.
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}

#[derive(Clone, Debug)]
pub(crate) struct Producer {
    pub sent: u64,
    /// Next index into a scripted schedule.
    pub next_script: usize,
    pub prng: Prng,
    pub stopped: bool,
}

/// Running totals, kept as integers so they are exact on every target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub published: u64,
    pub acked: u64,
    /// Deliveries out of the ready list, and the summed time messages waited there.
    pub deliveries: u64,
    /// Deliveries that waited at all (Erlang C's P(wait) is `waited / deliveries`).
    pub waited: u64,
    pub wait_total: Duration,
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

#[derive(Debug)]
pub struct Sim {
    pub(crate) scenario: Scenario,
    seed: u64,
    now: SimTime,
    seq: u64,
    agenda: BinaryHeap<Scheduled>,
    pub(crate) messages: Vec<Message>,
    pub(crate) queues: Vec<Queue>,
    pub(crate) consumers: Vec<Consumer>,
    pub(crate) producers: Vec<Producer>,
    pub(crate) counts: Vec<StateCounts>,
    stats: Stats,
    events_processed: u64,
    hash: TraceHash,
    trace: Vec<TraceEvent>,
    recording: bool,
}

impl Sim {
    /// A run of `scenario` with `seed`. The scenario is already validated, so this cannot fail.
    pub fn new(scenario: Scenario, seed: u64) -> Sim {
        let mut root = Prng::from_seed(seed);
        let producers = (0..scenario.producers.len())
            .map(|i| Producer { sent: 0, next_script: 0, prng: root.fork(i as u64), stopped: false })
            .collect();
        let mut queues = vec![Queue::default(); scenario.queues.len()];
        let consumers = scenario
            .consumers
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                queues[spec.queue as usize].consumers.push(crate::scenario::index_u32(i));
                Consumer {
                    prefetch: spec.prefetch,
                    unacked: 0,
                    buffer: Default::default(),
                    processing: None,
                    dist: spec.processing,
                    prng: root.fork(0x1_0000 + i as u64),
                }
            })
            .collect();
        let mut sim = Sim {
            counts: vec![StateCounts::default(); scenario.queues.len()],
            scenario,
            seed,
            now: SimTime::ZERO,
            seq: 0,
            agenda: BinaryHeap::new(),
            messages: Vec::new(),
            queues,
            consumers,
            producers,
            stats: Stats::default(),
            events_processed: 0,
            hash: TraceHash::default(),
            trace: Vec::new(),
            recording: true,
        };
        for p in 0..sim.producers.len() {
            let producer = crate::scenario::index_u32(p);
            let first = sim.first_send(producer);
            sim.next_send(producer, first);
        }
        sim
    }

    // --- Driving the run -----------------------------------------------------------------

    /// When the next event will happen, if anything is scheduled.
    pub fn next_event_at(&self) -> Option<SimTime> {
        self.agenda.peek().map(|s| s.at)
    }

    /// Handles exactly one event, the earliest. Returns its time, or `None` when the agenda
    /// is empty.
    pub fn step(&mut self) -> Option<SimTime> {
        let Scheduled { at, event, .. } = self.agenda.pop()?;
        debug_assert!(at >= self.now, "time went backwards: {at} < {}", self.now);
        self.now = at;
        self.events_processed += 1;
        self.handle(event);
        Some(at)
    }

    /// Handles every event up to and including `until`, then sets the clock to `until`.
    /// Stops with an error after `budget` events, so that no call can hang its caller.
    pub fn run_until(&mut self, until: SimTime, budget: u64) -> Result<u64, RunError> {
        let mut handled = 0;
        while self.next_event_at().is_some_and(|at| at <= until) {
            if handled == budget {
                return Err(RunError::BudgetExhausted { budget, now: self.now, until });
            }
            self.step();
            handled += 1;
        }
        self.now = self.now.max(until);
        Ok(handled)
    }

    /// Turns trace storage off (or on). The hash is kept either way; benchmarks and the CLI
    /// without `--trace` need only the hash and the counts.
    pub fn set_recording(&mut self, on: bool) {
        self.recording = on;
    }

    /// Takes the trace events recorded since the last drain.
    pub fn drain_trace(&mut self) -> Vec<TraceEvent> {
        std::mem::take(&mut self.trace)
    }

    // --- Reading the state ---------------------------------------------------------------

    pub fn now(&self) -> SimTime {
        self.now
    }
    pub fn seed(&self) -> u64 {
        self.seed
    }
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }
    pub fn events_processed(&self) -> u64 {
        self.events_processed
    }
    pub fn trace_hash(&self) -> TraceHash {
        self.hash
    }
    pub fn stats(&self) -> Stats {
        self.stats
    }
    /// Messages per state, for one queue.
    pub fn counts(&self, queue: QueueId) -> StateCounts {
        self.counts[queue as usize]
    }
    pub fn message_state(&self, msg: MsgId) -> Option<MsgState> {
        self.messages.get(msg as usize).map(|m| m.state)
    }

    pub fn summary(&self) -> Summary {
        let waits = self.stats.deliveries.max(1);
        #[allow(clippy::cast_precision_loss)]
        let mean_wait_ms = self.stats.wait_total.as_millis_f64() / waits as f64;
        Summary {
            scenario: self.scenario.name.clone(),
            seed: self.seed,
            time_ms: self.now.as_millis_f64(),
            events: self.events_processed,
            trace_hash: self.hash.hex(),
            queues: self
                .scenario
                .queues
                .iter()
                .zip(&self.counts)
                .map(|(q, c)| QueueSummary { name: q.name.clone(), messages: *c })
                .collect(),
            published: self.stats.published,
            acked: self.stats.acked,
            mean_wait_ms,
        }
    }

    // --- The one match -------------------------------------------------------------------

    fn handle(&mut self, event: Event) {
        match event {
            Event::Produce { producer } => self.produce(producer),
            Event::Arrive { msg } => {
                let queue = self.messages[msg as usize].queue;
                self.transition(msg, MsgState::Ready);
                self.messages[msg as usize].enqueued_at = self.now;
                let ready = &mut self.queues[queue as usize].ready;
                ready.push_back(msg);
                let depth = crate::scenario::index_u32(ready.len());
                self.emit(TraceEvent::Enqueued { at: self.now, msg, queue, depth });
                self.dispatch(queue);
            }
            Event::Receive { msg, consumer } => {
                if self.consumers[consumer as usize].processing.is_none() {
                    self.start_processing(consumer, msg);
                } else {
                    self.consumers[consumer as usize].buffer.push_back(msg);
                    self.transition(msg, MsgState::Buffered(consumer));
                }
            }
            Event::Finish { msg, consumer } => {
                let queue = self.messages[msg as usize].queue;
                self.transition(msg, MsgState::Acked);
                let c = &mut self.consumers[consumer as usize];
                assert_eq!(c.processing, Some(msg), "finished a message the consumer was not processing");
                c.processing = None;
                c.unacked -= 1;
                let next = c.buffer.pop_front();
                self.stats.acked += 1;
                self.emit(TraceEvent::Acked { at: self.now, msg, queue, consumer });
                if let Some(next) = next {
                    self.start_processing(consumer, next);
                }
                self.dispatch(queue);
            }
        }
    }

    // --- Producers -----------------------------------------------------------------------

    fn first_send(&mut self, producer: ProducerId) -> Option<SimTime> {
        let p = &mut self.producers[producer as usize];
        match &self.scenario.producers[producer as usize].schedule {
            Schedule::FixedRate { start, .. } => Some(*start),
            Schedule::Poisson { mean_interval, start, .. } => {
                Some(start.after(queue::poisson_gap(*mean_interval, &mut p.prng)))
            }
            Schedule::Scripted { at } => at.first().copied(),
        }
    }

    fn produce(&mut self, producer: ProducerId) {
        if self.stats.published >= limits::MESSAGES_MAX {
            self.stop_producer(producer, StopReason::MessageLimit);
            return;
        }
        self.publish(producer);
        let spec = &self.scenario.producers[producer as usize];
        let p = &mut self.producers[producer as usize];
        p.sent += 1;
        let next = match &spec.schedule {
            Schedule::FixedRate { count: Some(n), .. } | Schedule::Poisson { count: Some(n), .. } if p.sent >= *n => {
                None
            }
            Schedule::FixedRate { interval, .. } => Some(self.now.after(*interval)),
            Schedule::Poisson { mean_interval, .. } => {
                Some(self.now.after(queue::poisson_gap(*mean_interval, &mut p.prng)))
            }
            Schedule::Scripted { at } => {
                p.next_script += 1;
                at.get(p.next_script).copied()
            }
        };
        self.next_send(producer, next);
    }

    /// Schedules the producer's next send, or records why there is none.
    fn next_send(&mut self, producer: ProducerId, at: Option<SimTime>) {
        match at {
            Some(t) if t <= self.scenario.end() => self.schedule(t, Event::Produce { producer }),
            Some(_) => self.stop_producer(producer, StopReason::DurationEnded),
            None => self.stop_producer(producer, StopReason::ScheduleDone),
        }
    }

    fn publish(&mut self, producer: ProducerId) {
        let queue = self.scenario.producers[producer as usize].queue;
        let msg = crate::scenario::index_u32(self.messages.len());
        self.messages.push(Message { queue, state: MsgState::Publishing, enqueued_at: self.now });
        self.counts[queue as usize].add(StateKind::Publishing);
        self.stats.published += 1;
        let arrives_at = self.now.after(self.scenario.latency);
        self.emit(TraceEvent::Published { at: self.now, msg, producer, queue, arrives_at });
        self.schedule(arrives_at, Event::Arrive { msg });
    }

    fn stop_producer(&mut self, producer: ProducerId, reason: StopReason) {
        let p = &mut self.producers[producer as usize];
        if !p.stopped {
            p.stopped = true;
            self.emit(TraceEvent::ProducerStopped { at: self.now, producer, reason });
        }
    }

    // --- Broker and consumers ------------------------------------------------------------

    /// Delivers ready messages, oldest first, to consumers with room, round-robin.
    fn dispatch(&mut self, queue: QueueId) {
        loop {
            let consumers = &self.consumers;
            let q = &mut self.queues[queue as usize];
            if q.ready.is_empty() {
                return;
            }
            let Some(consumer) = q.pick_consumer(|c| consumers[c as usize].has_room()) else {
                return;
            };
            let Some(msg) = q.ready.pop_front() else { return };
            self.consumers[consumer as usize].unacked += 1;
            self.transition(msg, MsgState::Delivering(consumer));
            self.stats.deliveries += 1;
            let waited = self.now.since(self.messages[msg as usize].enqueued_at);
            self.stats.wait_total = self.stats.wait_total.plus(waited);
            self.stats.waited += u64::from(waited > Duration::ZERO);
            let arrives_at = self.now.after(self.scenario.latency);
            self.emit(TraceEvent::Delivered { at: self.now, msg, queue, consumer, arrives_at });
            self.schedule(arrives_at, Event::Receive { msg, consumer });
        }
    }

    fn start_processing(&mut self, consumer: ConsumerId, msg: MsgId) {
        self.transition(msg, MsgState::Processing(consumer));
        let c = &mut self.consumers[consumer as usize];
        c.processing = Some(msg);
        let done_at = self.now.after(c.processing_time());
        self.emit(TraceEvent::ProcessingStarted { at: self.now, msg, consumer, done_at });
        self.schedule(done_at, Event::Finish { msg, consumer });
    }

    // --- Plumbing ------------------------------------------------------------------------

    /// The only place a message changes state. An illegal move is an engine bug, not bad
    /// input, so it panics (and the tests' checkers would catch it first).
    fn transition(&mut self, msg: MsgId, next: MsgState) {
        let m = &mut self.messages[msg as usize];
        assert!(m.state.can_become(next), "m{msg}: illegal move {:?} -> {next:?}", m.state);
        self.counts[m.queue as usize].shift(m.state.kind(), next.kind());
        m.state = next;
    }

    fn schedule(&mut self, at: SimTime, event: Event) {
        self.seq += 1;
        self.agenda.push(Scheduled { at, seq: self.seq, event });
    }

    fn emit(&mut self, event: TraceEvent) {
        self.hash.add(&event);
        if self.recording {
            self.trace.push(event);
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
    pub published: u64,
    pub acked: u64,
    pub mean_wait_ms: f64,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct QueueSummary {
    pub name: String,
    pub messages: StateCounts,
}
