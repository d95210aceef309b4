//! Narrative beats, as the run meets them. A beat is anchored to a moment, to an event of the
//! run (the nth `dead_lettered` from `orders`…) or to a counter moving; the engine resolves it
//! to the instant it happens in this run, for this seed and these inputs. Beats come in order:
//! beat k is armed once beat k − 1 is reached, and only what happens after that instant counts,
//! so each beat has a moment of its own and a narration never runs backwards.
//!
//! The resolution is part of the run's state (a snapshot carries it), so a seek, a step back or
//! a replayed link agrees with a run played straight through. It is not part of the trace and
//! not part of the trace hash: rewording a preset's narration changes no golden.
//!
//! An `expect` says what is true at a beat (a counter has moved, a queue holds a dead letter,
//! a consumer is down); `Sim::expect_failures` checks it there, for the CLI and the tests.

use crate::message::StateKind;
use crate::scenario::{Anchor, Counter, EventAnchor, Expect, Subject, Test};
use crate::sim::Sim;
use crate::time::SimTime;
use crate::trace::{
    DeadReason, DropReason, ErrorClass, GroupPhase, LossReason, MemberChange, RecordOutcome, ReturnReason,
    RevokeReason, SagaNote, StopReason, TraceEvent, UnmatchedReason,
};

/// What a field of a trace event holds, so that an anchor can name it in the author's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// A plain number: an offset, a count, an attempt.
    Num,
    /// A time; an anchor cannot name one.
    Time,
    /// A message id, `4` or `"m4"`.
    Msg,
    Queue,
    Consumer,
    Producer,
    Group,
    /// A group's member, `"eager-2"`.
    Member,
    Topic,
    Dependency,
    Saga,
    /// A saga's step, by its service's name.
    Step,
    /// A request-reply system.
    System,
    /// A requester instance, `"local.requester-1"`.
    Requester,
    /// One of a closed set of words (a reason, a phase), by code.
    Text(&'static [(u8, &'static str)]),
}

const UP: &[(u8, &str)] = &[(0, "down"), (1, "up")];
const ACTIVE: &[(u8, &str)] = &[(0, "draining"), (1, "started")];
const TOMBSTONE: &[(u8, &str)] = &[(0, "value"), (1, "tombstone")];
const RETRIED: &[(u8, &str)] = &[(0, "given up"), (1, "retried")];

use Field::{Consumer as C, Dependency as D, Group as G, Member as M, Msg as Id, Num as N, Queue as Q, Time as T};

/// A trace event's name, its tag (`TraceEvent::tag`) and its fields in order.
pub type EventFields = (&'static str, u8, &'static [(&'static str, Field)]);

/// Every trace event by its name in the trace, with its tag and its fields in order. A test
/// holds this list to what the events serialize to.
pub const EVENTS: &[EventFields] = &[
    ("published", 1, &[("msg", Id), ("producer", Field::Producer), ("queue", Q), ("arrives_at_ms", T)]),
    ("enqueued", 2, &[("msg", Id), ("queue", Q), ("depth", N)]),
    (
        "delivered",
        3,
        &[
            ("msg", Id),
            ("queue", Q),
            ("consumer", C),
            ("receipt", N),
            ("receive_count", N),
            ("lease_until_ms", T),
            ("arrives_at_ms", T),
        ],
    ),
    ("processing_started", 4, &[("msg", Id), ("consumer", C), ("done_at_ms", T)]),
    ("acked", 5, &[("msg", Id), ("queue", Q), ("consumer", C)]),
    ("producer_stopped", 6, &[("producer", Field::Producer), ("reason", Field::Text(StopReason::TEXTS))]),
    ("deduplicated", 7, &[("queue", Q), ("original", Id)]),
    ("delayed", 8, &[("msg", Id), ("queue", Q), ("until_ms", T)]),
    ("auto_acked", 9, &[("msg", Id), ("consumer", C)]),
    ("lease_extended", 10, &[("msg", Id), ("consumer", C), ("until_ms", T)]),
    ("failed", 11, &[("msg", Id), ("consumer", C), ("error", Field::Text(ErrorClass::TEXTS)), ("attempt", N)]),
    ("effect_applied", 12, &[("msg", Id), ("consumer", C), ("key", N), ("times", N)]),
    ("duplicate_suppressed", 13, &[("msg", Id), ("consumer", C), ("key", N)]),
    ("ack_refused", 14, &[("msg", Id), ("consumer", C), ("receipt", N)]),
    ("returned", 15, &[("msg", Id), ("queue", Q), ("consumer", C), ("reason", Field::Text(ReturnReason::TEXTS))]),
    ("dead_lettered", 16, &[("msg", Id), ("from", Q), ("dlq", Q), ("reason", Field::Text(DeadReason::TEXTS))]),
    ("expired", 17, &[("msg", Id), ("queue", Q)]),
    ("dropped", 18, &[("msg", Id), ("queue", Q), ("reason", Field::Text(DropReason::TEXTS))]),
    ("redriven", 19, &[("msg", Id), ("new_msg", Id), ("to", Q)]),
    ("received_nothing", 20, &[("consumer", C), ("queue", Q)]),
    ("consumer_crashed", 21, &[("consumer", C)]),
    ("consumer_restarted", 22, &[("consumer", C)]),
    ("dependency_changed", 23, &[("dependency", D), ("up", Field::Text(UP))]),
    ("scaled", 24, &[("consumer", C), ("active", Field::Text(ACTIVE)), ("depth", N)]),
    (
        "record_appended",
        25,
        &[
            ("topic", Field::Topic),
            ("partition", N),
            ("offset", N),
            ("record", N),
            ("key", N),
            ("producer", Field::Producer),
            ("tombstone", Field::Text(TOMBSTONE)),
        ],
    ),
    (
        "records_fetched",
        26,
        &[("group", G), ("member", M), ("topic", Field::Topic), ("partition", N), ("from", N), ("count", N)],
    ),
    (
        "record_started",
        27,
        &[("group", G), ("member", M), ("topic", Field::Topic), ("partition", N), ("offset", N), ("done_at_ms", T)],
    ),
    (
        "record_done",
        28,
        &[
            ("group", G),
            ("member", M),
            ("topic", Field::Topic),
            ("partition", N),
            ("offset", N),
            ("record", N),
            ("times", N),
            ("outcome", Field::Text(RecordOutcome::TEXTS)),
        ],
    ),
    ("offset_committed", 29, &[("group", G), ("member", M), ("topic", Field::Topic), ("partition", N), ("offset", N)]),
    (
        "records_lost",
        30,
        &[
            ("group", G),
            ("topic", Field::Topic),
            ("partition", N),
            ("from", N),
            ("to", N),
            ("count", N),
            ("reason", Field::Text(LossReason::TEXTS)),
        ],
    ),
    ("group_changed", 31, &[("group", G), ("phase", Field::Text(GroupPhase::TEXTS)), ("generation", N)]),
    ("member_changed", 32, &[("group", G), ("member", M), ("change", Field::Text(MemberChange::TEXTS))]),
    (
        "partition_assigned",
        33,
        &[("group", G), ("member", M), ("topic", Field::Topic), ("partition", N), ("generation", N), ("offset", N)],
    ),
    (
        "partition_revoked",
        34,
        &[
            ("group", G),
            ("member", M),
            ("topic", Field::Topic),
            ("partition", N),
            ("reason", Field::Text(RevokeReason::TEXTS)),
        ],
    ),
    ("segments_deleted", 35, &[("topic", Field::Topic), ("partition", N), ("log_start", N)]),
    ("compacted", 36, &[("topic", Field::Topic), ("partition", N), ("removed", N), ("cleaned_to", N)]),
    ("order_violated", 37, &[("group", G), ("key", N), ("record", N), ("after", N)]),
    ("message_out_of_order", 38, &[("msg", Id), ("queue", Q), ("order_key", N), ("after", Id)]),
    (
        "request_sent",
        39,
        &[("msg", Id), ("system", Field::System), ("requester", Field::Requester), ("corr", N), ("attempt", N)],
    ),
    (
        "reply_matched",
        40,
        &[("msg", Id), ("system", Field::System), ("requester", Field::Requester), ("corr", N), ("request", Id)],
    ),
    (
        "reply_unmatched",
        41,
        &[
            ("msg", Id),
            ("system", Field::System),
            ("requester", Field::Requester),
            ("corr", N),
            ("reason", Field::Text(UnmatchedReason::TEXTS)),
        ],
    ),
    (
        "request_timed_out",
        42,
        &[("system", Field::System), ("requester", Field::Requester), ("corr", N), ("retried", Field::Text(RETRIED))],
    ),
    ("requester_killed", 43, &[("system", Field::System), ("requester", Field::Requester)]),
    (
        "saga_event",
        44,
        &[("saga", Field::Saga), ("instance", N), ("step", Field::Step), ("note", Field::Text(SagaNote::TEXTS))],
    ),
    ("delivery_lost", 45, &[("msg", Id), ("consumer", C)]),
];

/// The armed event anchor, watched in `Outbox::emit`: its conditions, and how many matching
/// events it has seen since it was armed.
#[derive(Clone, Debug)]
pub(crate) struct Watch {
    tag: u8,
    conditions: Vec<(&'static str, u64)>,
    nth: u32,
    seen: u32,
    /// Only events after this instant count (the previous beat's).
    after: Option<SimTime>,
}

impl Watch {
    fn new(anchor: &EventAnchor, after: Option<SimTime>) -> Watch {
        Watch { tag: anchor.tag, conditions: anchor.conditions.clone(), nth: anchor.nth, seen: 0, after }
    }

    /// Whether `event` is the one this anchor waits for.
    #[cold]
    pub(crate) fn observe(&mut self, event: &TraceEvent) -> bool {
        if event.tag() != self.tag || self.after.is_some_and(|t| event.at() <= t) {
            return false;
        }
        let mut m = Matcher { conditions: &self.conditions, matched: 0 };
        event.fields(&mut m);
        if m.matched.count_ones() as usize != self.conditions.len() {
            return false;
        }
        self.seen += 1;
        self.seen == self.nth
    }
}

/// Sets a bit for each condition a visited field meets.
struct Matcher<'a> {
    conditions: &'a [(&'static str, u64)],
    matched: u64,
}

impl Matcher<'_> {
    fn field(&mut self, name: &str, value: u64) {
        for (i, (field, want)) in self.conditions.iter().enumerate() {
            if *field == name && *want == value {
                self.matched |= 1 << i;
            }
        }
    }
}

impl crate::trace::FieldVisitor for Matcher<'_> {
    fn id(&mut self, name: &'static str, value: u32) -> &mut Self {
        self.field(name, u64::from(value));
        self
    }
    fn count(&mut self, name: &'static str, value: u64) -> &mut Self {
        self.field(name, value);
        self
    }
    fn time(&mut self, _name: &'static str, _value: SimTime) -> &mut Self {
        self
    }
    fn reason(&mut self, name: &'static str, code: u8, _text: &'static str) -> &mut Self {
        self.field(name, u64::from(code));
        self
    }
}

/// How far the run has come through its beats.
#[derive(Clone, Debug, Default)]
pub(crate) struct Beats {
    /// Per beat reached so far, in order: when (`None`: a beat by time that came before the
    /// beat before it, skipped).
    pub(crate) reached: Vec<Option<SimTime>>,
    /// The armed beat by time: its moment (`SimTime::MAX` when the armed beat is not one).
    pub(crate) due: SimTime,
    /// The armed beat by counter: which, how far, and its value when last looked at.
    counter: Option<(Counter, u64, u64)>,
}

impl Beats {
    /// When the newest beat before beat `k` was reached: only what happens after counts for `k`.
    fn before(&self, k: usize) -> Option<SimTime> {
        self.reached[..k.min(self.reached.len())].iter().rev().find_map(|r| *r)
    }
}

/// `Outbox::beat_poll`: the armed event anchor fired.
pub(crate) const CAUGHT: u8 = 1;
/// `Outbox::beat_poll`: a counter beat is armed; look at the counter after each event.
pub(crate) const COUNTING: u8 = 2;

/// A beat as the run stands: reached (when), or not, and if it never will be, why.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BeatStatus {
    pub at_ms: Option<f64>,
    /// Why a beat was not reached, once it cannot be any more: the path and the reason.
    pub missed: Option<String>,
    /// What its `expect` found false when the run stopped there (`Sim::run_checking_beats`).
    pub failed: Vec<String>,
}

impl Sim {
    /// Arms the next beat after the ones reached: a beat by time that would come before the
    /// previous one is skipped (and reported), so that one bad beat does not hold up the rest.
    pub(crate) fn arm_beat(&mut self) {
        let after = self.beats.before(self.beats.reached.len());
        self.beats.due = SimTime::MAX;
        self.beats.counter = None;
        self.out.watch = None;
        self.out.beat_poll = 0;
        loop {
            let Some(marker) = self.scenario.markers.get(self.beats.reached.len()) else { return };
            match &marker.anchor {
                Anchor::At(t) if after.is_some_and(|a| *t <= a) => self.beats.reached.push(None),
                Anchor::At(t) => {
                    self.beats.due = *t;
                    return;
                }
                Anchor::On(event) => {
                    self.out.watch = Some(Box::new(Watch::new(event, after)));
                    return;
                }
                Anchor::Counter { counter, at_least } => {
                    self.beats.counter = Some((*counter, *at_least, self.counters().get(*counter)));
                    self.out.beat_poll = COUNTING;
                    return;
                }
            }
        }
    }

    fn reach_beat(&mut self, at: SimTime) {
        self.beats.reached.push(Some(at));
        self.arm_beat();
    }

    /// After an event or an input: the armed event anchor fired, or the armed counter moved.
    #[cold]
    pub(crate) fn beat_after_step(&mut self) {
        if self.out.beat_poll & CAUGHT != 0 {
            self.out.beat_poll &= !CAUGHT;
            self.reach_beat(self.now);
        } else if let Some((counter, at_least, before)) = self.beats.counter {
            let value = self.counters().get(counter);
            let after = self.beats.before(self.beats.reached.len());
            if value > before && value >= at_least && after.is_none_or(|a| self.now > a) {
                self.reach_beat(self.now);
            } else {
                self.beats.counter = Some((counter, at_least, value));
            }
        }
    }

    /// The armed beat by time is due: every event up to its moment has been handled.
    #[cold]
    pub(crate) fn reach_due_beats(&mut self, upto: SimTime) {
        while self.beats.due <= upto {
            let due = self.beats.due;
            self.reach_beat(due);
        }
    }

    /// Like `run_until`, but stops at the end of the instant a beat is reached (its moment, with
    /// everything else that happens then), and says which beat. `Ok(None)`: `until` reached.
    pub fn run_to_beat(&mut self, until: SimTime, budget: u64) -> Result<Option<u32>, crate::RunError> {
        let before = self.beats.reached.len();
        let mut handled = 0;
        loop {
            let next = self.next_event_at().filter(|&t| t <= until);
            if self.beats.due <= until && next.is_none_or(|t| t > self.beats.due) {
                self.now = self.now.max(self.beats.due);
                let index = self.beats.reached.len();
                self.reach_due_beats(self.now);
                return Ok(Some(crate::scenario::index_u32(index)));
            }
            let newest = self.beats.reached.iter().enumerate().skip(before).rev().find_map(|(i, r)| r.map(|t| (i, t)));
            if let Some((index, at)) = newest {
                if next.is_none_or(|t| t > at) {
                    return Ok(Some(crate::scenario::index_u32(index)));
                }
            }
            if next.is_none() {
                break;
            }
            if handled == budget {
                return Err(crate::RunError::BudgetExhausted { budget, now: self.now, until });
            }
            self.step();
            handled += 1;
        }
        self.now = self.now.max(until);
        Ok(None)
    }

    /// Every beat of the scenario, as the run stands now.
    pub fn beats(&self) -> Vec<BeatStatus> {
        (0..self.scenario.markers.len())
            .map(|k| BeatStatus {
                at_ms: self.beats.reached.get(k).copied().flatten().map(SimTime::as_millis_f64),
                missed: self.missed(k),
                failed: Vec::new(),
            })
            .collect()
    }

    /// Why beat `k` was not reached, once it cannot be any more: its path and the reason.
    fn missed(&self, k: usize) -> Option<String> {
        let reached = &self.beats.reached;
        let after = self.beats.before(k).map_or_else(String::new, |t| format!(" after beat {k} ({})", seconds(t)));
        let seed = self.seed();
        match (reached.get(k), &self.scenario.markers[k].anchor) {
            (Some(Some(_)), _) => None,
            (Some(None), Anchor::At(t)) => Some(format!(
                "markers[{k}].at_ms: {} comes before beat {k}, which this run reached at {}",
                seconds(*t),
                seconds(self.beats.before(k).unwrap_or(SimTime::ZERO))
            )),
            _ if self.now < self.scenario.end() => None,
            _ if k > reached.len() => {
                Some(format!("markers[{k}]: not reached, because markers[{}] never happened", reached.len()))
            }
            (_, Anchor::On(e)) => {
                let seen = self.out.watch.as_ref().map_or(0, |w| w.seen);
                Some(format!("markers[{k}].on: {}{after} never happened in this run (seed {seed})", e.describe(seen)))
            }
            (_, Anchor::Counter { counter, at_least }) => Some(format!(
                "markers[{k}].on: {} never moved to at least {at_least}{after} in this run (seed {seed})",
                counter.name()
            )),
            (_, Anchor::At(t)) => Some(format!("markers[{k}].at_ms: {} is past the end of the run", seconds(*t))),
        }
    }

    /// Runs to `until`, stopping at every beat to check its `expect` there; returns every
    /// beat's status with what was found false. For the CLI and the tests.
    pub fn run_checking_beats(&mut self, until: SimTime, budget: u64) -> Result<Vec<BeatStatus>, crate::RunError> {
        let mut failed = vec![Vec::new(); self.scenario.markers.len()];
        let mut left = budget;
        loop {
            let before = self.events_processed();
            let stop =
                self.run_to_beat(until, left).map_err(|crate::RunError::BudgetExhausted { now, until, .. }| {
                    crate::RunError::BudgetExhausted { budget, now, until }
                });
            left -= self.events_processed() - before;
            match stop? {
                Some(k) => failed[k as usize] = self.expect_failures(&self.scenario.markers[k as usize].expect),
                None => break,
            }
        }
        let mut beats = self.beats();
        for (b, f) in beats.iter_mut().zip(failed) {
            b.failed = f;
        }
        Ok(beats)
    }

    /// The beats reached so far, in order: `None` for one skipped.
    pub fn beats_reached(&self) -> &[Option<SimTime>] {
        &self.beats.reached
    }

    /// What an `expect` finds false now, one line each (empty when it holds).
    pub fn expect_failures(&self, expect: &[Expect]) -> Vec<String> {
        expect.iter().filter_map(|e| self.expect_failure(e).map(|why| format!("{}: {why}", e.path))).collect()
    }

    fn expect_failure(&self, e: &Expect) -> Option<String> {
        let s = &self.scenario;
        let measured: Result<u64, String> = match (&e.subject, &e.test) {
            (Subject::Consumer(c), Test::Is(what)) => {
                let c = &self.consumers[*c as usize];
                let now = match (c.alive, c.jobs.is_empty() && c.held.is_empty(), c.active) {
                    (false, _, _) => "crashed",
                    (true, _, false) => "standby",
                    (true, true, true) => "idle",
                    (true, false, true) => "busy",
                };
                let up = *what == "up" && c.alive;
                return (now != *what && !up).then(|| format!("is {now}"));
            }
            (Subject::Msg(m), Test::Is(what)) => {
                let now = self.message_state(*m).map_or("not yet published", |st| StateKind::NAMES[st.kind() as usize]);
                return (now != *what).then(|| format!("m{m} is {now}"));
            }
            (Subject::Group(g), Test::Is(what)) => {
                let now = self.streams().groups[*g as usize].phase.as_str();
                return (now != *what).then(|| format!("{} is {now}", s.groups[*g as usize].name));
            }
            (Subject::Dependency(d), Test::Is(what)) => {
                let now = if self.dependency_is_up(*d) { "up" } else { "down" };
                return (now != *what).then(|| format!("is {now}"));
            }
            (subject, Test::AtLeast(field, _) | Test::AtMost(field, _)) => self.measure(subject, field),
            (_, Test::Is(_)) => Err("cannot be told apart by a word".to_string()),
        };
        let value = match measured {
            Ok(v) => v,
            Err(why) => return Some(why),
        };
        match e.test {
            Test::AtLeast(_, n) if value < n => Some(format!("is {value}, not at least {n}")),
            Test::AtMost(_, n) if value > n => Some(format!("is {value}, not at most {n}")),
            _ => None,
        }
    }

    /// A number an `expect` can bound, by subject and field (validated with the scenario).
    fn measure(&self, subject: &Subject, field: &str) -> Result<u64, String> {
        match *subject {
            Subject::Counter(c) => Ok(self.counters().get(c)),
            Subject::Queue(q) => {
                let counts = self.counts(q);
                match field {
                    "in_flight" => Ok(u64::from(
                        counts.get(StateKind::Delivering)
                            + counts.get(StateKind::Buffered)
                            + counts.get(StateKind::Processing),
                    )),
                    _ => number_in(&counts, field),
                }
            }
            Subject::Consumer(c) => match field {
                "jobs" => Ok(self.consumers[c as usize].jobs.len() as u64),
                _ => Err(format!("has no number {field}")),
            },
            Subject::Group(g) => {
                let group = &self.streams().groups[g as usize];
                match field {
                    "generation" => Ok(u64::try_from(group.generation).unwrap_or(0)),
                    "members" => Ok(group.members.iter().filter(|m| m.alive && m.in_group).count() as u64),
                    "lag" => Ok(self.lag_table().iter().filter(|r| r.group == g).filter_map(|r| r.lag).sum()),
                    _ => number_in(&group.stats, field),
                }
            }
            Subject::Saga(k) => {
                let summary = &self.saga_summaries(&[])[k as usize];
                match field {
                    "running" => Ok(summary.running),
                    "compensating" => Ok(summary.compensating),
                    "open_windows" => Ok(summary.windows.iter().map(|w| w.open).sum()),
                    _ => number_in(&summary.stats, field),
                }
            }
            Subject::System(k) => {
                let summary = &self.request_summaries()[k as usize];
                match field {
                    "pending" => Ok(summary.pending),
                    _ => number_in(&summary.stats, field),
                }
            }
            Subject::Topic(t) => {
                let logs = &self.streams().topics[t as usize].logs;
                match field {
                    "retained" => Ok(logs.iter().map(|l| l.retained()).sum()),
                    "log_end" => Ok(logs.iter().map(|l| l.end()).sum()),
                    _ => Ok(logs.iter().map(|l| l.log_start).sum()),
                }
            }
            Subject::Msg(_) | Subject::Dependency(_) => Err(format!("has no number {field}")),
        }
    }

    /// Up unless in one of its outage windows or taken down by hand.
    fn dependency_is_up(&self, d: u32) -> bool {
        let now = self.now;
        let spec = &self.scenario.dependencies[d as usize];
        !(spec.outages.iter().any(|&(from, to)| from <= now && now < to) || self.dependency_down[d as usize])
    }
}

/// A statistics struct's field, by its serialized name.
fn number_in<T: serde::Serialize>(stats: &T, field: &str) -> Result<u64, String> {
    serde_json::to_value(stats)
        .ok()
        .and_then(|v| v.get(field).and_then(serde_json::Value::as_u64))
        .ok_or_else(|| format!("has no number {field}"))
}

fn seconds(t: SimTime) -> String {
    format!("{:.1} s", t.as_millis_f64() / 1000.0)
}
