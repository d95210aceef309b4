//! The driver's side of the beats (`crate::beats`): arming each beat in turn, resolving it to
//! the instant it happens, and checking its `expect` there. It reads every component, so it
//! belongs to the driver.

use super::Sim;
use crate::beats::{BeatStatus, Watch, CAUGHT, COUNTING};
use crate::ids::{MsgId, QueueId};
use crate::message::StateKind;
use crate::scenario::{Anchor, Expect, Subject, Test};
use crate::time::SimTime;

impl Sim {
    /// Arms the next beat after the ones reached: a beat by time that would come before the
    /// previous one is skipped (and reported), so that one bad beat does not hold up the rest.
    pub(crate) fn arm_beat(&mut self) {
        let after = self.beats.before(self.beats.reached.len());
        self.beats.due = SimTime::MAX;
        self.beats.counter = None;
        self.cx.out.watch = None;
        self.cx.out.beat_poll = 0;
        loop {
            let Some(marker) = self.cx.scenario.markers.get(self.beats.reached.len()) else { return };
            match &marker.anchor {
                Anchor::At(t) if after.is_some_and(|a| *t <= a) => self.beats.reached.push(None),
                Anchor::At(t) => {
                    self.beats.due = *t;
                    return;
                }
                Anchor::On(event) => {
                    self.cx.out.watch = Some(Box::new(Watch::new(event, after)));
                    return;
                }
                Anchor::Counter { counter, at_least } => {
                    self.beats.counter = Some((*counter, *at_least, self.counters().get(*counter)));
                    self.cx.out.beat_poll = COUNTING;
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
        if self.cx.out.beat_poll & CAUGHT != 0 {
            self.cx.out.beat_poll &= !CAUGHT;
            self.reach_beat(self.cx.now());
        } else if let Some((counter, at_least, before)) = self.beats.counter {
            let value = self.counters().get(counter);
            let after = self.beats.before(self.beats.reached.len());
            if value > before && value >= at_least && after.is_none_or(|a| self.cx.now() > a) {
                self.reach_beat(self.cx.now());
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
    pub fn run_to_beat(&mut self, until: SimTime, budget: u64) -> Result<Option<u32>, crate::sim::RunError> {
        let before = self.beats.reached.len();
        let mut handled = 0;
        loop {
            let next = self.next_event_at().filter(|&t| t <= until);
            if self.beats.due <= until && next.is_none_or(|t| t > self.beats.due) {
                self.cx.set_now(self.cx.now().max(self.beats.due));
                let index = self.beats.reached.len();
                self.reach_due_beats(self.cx.now());
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
                return Err(crate::sim::RunError::BudgetExhausted { budget, now: self.cx.now(), until });
            }
            self.step();
            handled += 1;
        }
        self.cx.set_now(self.cx.now().max(until));
        Ok(None)
    }

    /// Every beat of the scenario, as the run stands now.
    pub fn beats(&self) -> Vec<BeatStatus> {
        (0..self.cx.scenario.markers.len())
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
        match (reached.get(k), &self.cx.scenario.markers[k].anchor) {
            (Some(Some(_)), _) => None,
            (Some(None), Anchor::At(t)) => Some(format!(
                "markers[{k}].at_ms: {} comes before beat {k}, which this run reached at {}",
                seconds(*t),
                seconds(self.beats.before(k).unwrap_or(SimTime::ZERO))
            )),
            _ if self.cx.now() < self.cx.scenario.end() => None,
            _ if k > reached.len() => {
                Some(format!("markers[{k}]: not reached, because markers[{}] never happened", reached.len()))
            }
            (_, Anchor::On(e)) => {
                let seen = self.cx.out.watch.as_ref().map_or(0, |w| w.seen);
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
    pub fn run_checking_beats(&mut self, until: SimTime, budget: u64) -> Result<Vec<BeatStatus>, crate::sim::RunError> {
        let mut failed = vec![Vec::new(); self.cx.scenario.markers.len()];
        let mut left = budget;
        loop {
            let before = self.events_processed();
            let stop = self.run_to_beat(until, left).map_err(
                |crate::sim::RunError::BudgetExhausted { now, until, .. }| crate::sim::RunError::BudgetExhausted {
                    budget,
                    now,
                    until,
                },
            );
            left -= self.events_processed() - before;
            match stop? {
                Some(k) => failed[k as usize] = self.expect_failures(&self.cx.scenario.markers[k as usize].expect),
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
        let s = &self.cx.scenario;
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
                let now = self
                    .message_state(MsgId(*m))
                    .map_or("not yet published", |st| StateKind::NAMES[st.kind() as usize]);
                return (now != *what).then(|| format!("m{m} is {now}"));
            }
            (Subject::Group(g), Test::Is(what)) => {
                let now = self.streams().groups[*g as usize].phase.as_str();
                return (now != *what).then(|| format!("{} is {now}", s.groups[*g as usize].name));
            }
            (Subject::Dependency(d), Test::Is(what)) => {
                let now = if self.dependency_up(*d) { "up" } else { "down" };
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
                let counts = self.counts(QueueId(q));
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
            Subject::Dependency(d) => number_in(&self.ports.services.calls[d as usize], field),
            Subject::Msg(_) => Err(format!("has no number {field}")),
        }
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
