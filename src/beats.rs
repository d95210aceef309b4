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

use crate::scenario::{Counter, EventAnchor};
use crate::time::SimTime;
use crate::trace::TraceEvent;

/// The armed event anchor, watched in `Outbox::emit`: its conditions, and how many matching
/// events it has seen since it was armed.
#[derive(Clone, Debug)]
pub(crate) struct Watch {
    tag: u8,
    conditions: Vec<(&'static str, u64)>,
    nth: u32,
    pub(crate) seen: u32,
    /// Only events after this instant count (the previous beat's).
    after: Option<SimTime>,
}

impl Watch {
    pub(crate) fn new(anchor: &EventAnchor, after: Option<SimTime>) -> Watch {
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
    pub(crate) counter: Option<(Counter, u64, u64)>,
}

impl Beats {
    /// When the newest beat before beat `k` was reached: only what happens after counts for `k`.
    pub(crate) fn before(&self, k: usize) -> Option<SimTime> {
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
