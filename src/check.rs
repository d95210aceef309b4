//! Invariant checkers. Tests call `check` after every step. Two independent views must agree:
//!
//! - `check` recomputes everything from the engine's own state: each message sits in exactly
//!   one place that matches its state, the per-queue counts add up (nothing lost or
//!   invented), and no consumer holds more than its prefetch.
//! - `Ledger` replays only the trace, as the page and the CLI see it, and rejects any event
//!   that does not follow from the ones before it.

use crate::message::{MsgState, StateCounts, StateKind};
use crate::sim::Sim;
use crate::time::SimTime;
use crate::trace::{MsgId, TraceEvent};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub at: SimTime,
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant violated at {}: {}", self.at, self.what)
    }
}

impl std::error::Error for Violation {}

fn fail<T>(sim: &Sim, what: String) -> Result<T, Violation> {
    Err(Violation { at: sim.now(), what })
}

/// Checks every invariant of the engine's state. O(messages); meant for tests.
pub fn check(sim: &Sim) -> Result<(), Violation> {
    // Conservation: recount every message by queue and state.
    let mut recount = vec![StateCounts::default(); sim.queues.len()];
    for m in &sim.messages {
        recount[m.queue as usize].add(m.state.kind());
    }
    if recount != sim.counts {
        return fail(sim, format!("state counts {:?} differ from a recount {recount:?}", sim.counts));
    }
    let total: u64 = recount.iter().map(StateCounts::total).sum();
    if total != sim.stats().published {
        return fail(sim, format!("{total} messages accounted for, {} published", sim.stats().published));
    }
    let acked: u64 = recount.iter().map(|c| u64::from(c.get(StateKind::Acked))).sum();
    if acked != sim.stats().acked {
        return fail(sim, format!("{acked} messages acked, the stats say {}", sim.stats().acked));
    }

    // Placement: each ready list holds exactly that queue's Ready messages, once each.
    let mut placed = vec![false; sim.messages.len()];
    let mut place = |msg: MsgId, want: MsgState, queue: u32, whose: &str| -> Result<(), Violation> {
        let Some(m) = sim.messages.get(msg as usize) else {
            return fail(sim, format!("{whose} holds m{msg}, which was never published"));
        };
        if m.state != want || m.queue != queue {
            return fail(sim, format!("{whose} holds m{msg}, whose state is {:?} in queue {}", m.state, m.queue));
        }
        if std::mem::replace(&mut placed[msg as usize], true) {
            return fail(sim, format!("m{msg} is held in two places"));
        }
        Ok(())
    };
    for (qi, q) in sim.queues.iter().enumerate() {
        let qid = crate::scenario::index_u32(qi);
        for &msg in &q.ready {
            place(msg, MsgState::Ready, qid, &format!("ready list of queue {qi}"))?;
        }
        let ready = recount[qi].get(StateKind::Ready) as usize;
        if q.ready.len() != ready {
            return fail(sim, format!("queue {qi} lists {} ready, {ready} are Ready", q.ready.len()));
        }
    }

    // Consumers: the buffer and the processing slot match the states, and what each holds is
    // exactly its unacked count, within its prefetch.
    let mut held = vec![0u32; sim.consumers.len()];
    for m in &sim.messages {
        if let Some(c) = m.state.holder() {
            held[c as usize] += 1;
        }
    }
    for (ci, c) in sim.consumers.iter().enumerate() {
        let cid = crate::scenario::index_u32(ci);
        let queue = sim.scenario.consumers[ci].queue;
        for &msg in &c.buffer {
            place(msg, MsgState::Buffered(cid), queue, &format!("buffer of consumer {ci}"))?;
        }
        if let Some(msg) = c.processing {
            place(msg, MsgState::Processing(cid), queue, &format!("consumer {ci}"))?;
        }
        if held[ci] != c.unacked {
            return fail(sim, format!("consumer {ci} holds {} messages, its unacked count is {}", held[ci], c.unacked));
        }
        if c.unacked > c.prefetch {
            return fail(sim, format!("consumer {ci} holds {} unacked, over its prefetch {}", c.unacked, c.prefetch));
        }
        if c.processing.is_none() && !c.buffer.is_empty() {
            return fail(sim, format!("consumer {ci} is idle with {} buffered", c.buffer.len()));
        }
    }
    Ok(())
}

/// Replays a trace and checks that every event follows from the ones before: each message is
/// published once, then moves only along the legal path, and is acked at most once.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    states: Vec<MsgState>,
    queues: Vec<u32>,
    last_at: SimTime,
}

impl Ledger {
    pub fn apply(&mut self, event: &TraceEvent) -> Result<(), Violation> {
        let at = event.at();
        let bad = |what: String| Err(Violation { at, what });
        if at < self.last_at {
            return bad(format!("event at {at} after one at {}", self.last_at));
        }
        self.last_at = at;
        let next = match *event {
            TraceEvent::Published { msg, queue, .. } => {
                if msg as usize != self.states.len() {
                    return bad(format!("m{msg} published out of sequence (expected m{})", self.states.len()));
                }
                self.states.push(MsgState::Publishing);
                self.queues.push(queue);
                return Ok(());
            }
            TraceEvent::Enqueued { .. } => MsgState::Ready,
            TraceEvent::Delivered { consumer, .. } => MsgState::Delivering(consumer),
            // The trace does not record arrival into a consumer's buffer, so in the ledger a
            // start always comes from Delivering.
            TraceEvent::ProcessingStarted { consumer, .. } => MsgState::Processing(consumer),
            TraceEvent::Acked { .. } => MsgState::Acked,
            TraceEvent::ProducerStopped { .. } => return Ok(()),
        };
        let Some(msg) = event.msg() else { return Ok(()) };
        let Some(state) = self.states.get_mut(msg as usize) else {
            return bad(format!("{} for m{msg}, which was never published", event.kind()));
        };
        if !state.can_become(next) {
            return bad(format!("m{msg}: {} while {:?}", event.kind(), state));
        }
        *state = next;
        Ok(())
    }

    /// Messages per state per queue as the trace tells it. Buffered messages show as
    /// Delivering, since the trace does not mark their arrival.
    pub fn counts(&self, queues: usize) -> Vec<StateCounts> {
        let mut counts = vec![StateCounts::default(); queues];
        for (state, &q) in self.states.iter().zip(&self.queues) {
            counts[q as usize].add(state.kind());
        }
        counts
    }
}
