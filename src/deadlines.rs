//! Deadlines that come in order. A queue's lease deadline is always `now + its lease`, and a
//! queue's own TTL deadline `now + its TTL`, so a list of them in the order they were made is
//! sorted, and one timer armed at its front stands for all of them. The agenda then holds one
//! check per queue instead of one timer per message, and an entry whose message has moved on
//! is dropped when it reaches the front.

use crate::time::SimTime;
use crate::trace::MsgId;
use std::collections::VecDeque;

/// Entries `(deadline, message, tag)`, oldest first; the tag is the caller's (a receipt).
#[derive(Clone, Debug, Default)]
pub struct Deadlines {
    list: VecDeque<(SimTime, MsgId, u32)>,
    /// The check scheduled, if any: never later than the front's deadline.
    armed: Option<SimTime>,
}

impl Deadlines {
    /// Adds a deadline no earlier than the last. Returns whether the caller should `arm`:
    /// nothing is armed, or the list's length reached a multiple of 64 (time to drop the
    /// settled entries at its front, so that it stays as short as what is live).
    #[inline]
    pub fn push(&mut self, at: SimTime, msg: MsgId, tag: u32) -> bool {
        debug_assert!(self.list.back().is_none_or(|&(last, _, _)| last <= at), "deadlines out of order");
        self.list.push_back((at, msg, tag));
        self.armed.is_none() || self.list.len().is_multiple_of(64)
    }

    /// Drops the entries at the front that `live` says are over. Returns when to schedule a
    /// check: the front's deadline, if nothing is armed at or before it.
    pub fn arm(&mut self, live: impl Fn(SimTime, MsgId, u32) -> bool) -> Option<SimTime> {
        while let Some(&(at, msg, tag)) = self.list.front() {
            if live(at, msg, tag) {
                break;
            }
            self.list.pop_front();
        }
        let &(front, _, _) = self.list.front()?;
        if self.armed.is_some_and(|t| t <= front) {
            return None;
        }
        self.armed = Some(front);
        Some(front)
    }

    /// The check armed for `now` fired: takes every entry due by `now`, and returns those
    /// `live` keeps, in order. The caller handles them, then calls `arm` again.
    pub fn due(&mut self, now: SimTime, live: impl Fn(SimTime, MsgId, u32) -> bool) -> Vec<(MsgId, u32)> {
        if self.armed == Some(now) {
            self.armed = None;
        }
        let mut due = Vec::new();
        while let Some(&(at, msg, tag)) = self.list.front() {
            if at > now {
                break;
            }
            self.list.pop_front();
            if live(at, msg, tag) {
                due.push((msg, tag));
            }
        }
        due
    }

    /// Entries kept, settled or not (for tests).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::Deadlines;
    use crate::rng::Prng;
    use crate::time::{Duration, SimTime};
    use crate::trace::MsgId;

    /// Fires the armed checks due by `upto`, earliest first, as the agenda would: each hands
    /// back what is due (recorded with its time) and re-arms.
    fn fire(d: &mut Deadlines, checks: &mut Vec<SimTime>, settled: &[bool], upto: SimTime) -> Vec<(SimTime, MsgId)> {
        let live = |_, m: MsgId, _| !settled[m.index()];
        let mut fired = Vec::new();
        checks.sort_unstable();
        while checks.first().is_some_and(|&t| t <= upto) {
            let t = checks.remove(0);
            fired.extend(d.due(t, live).into_iter().map(|(m, _)| (t, m)));
            checks.extend(d.arm(live));
            checks.sort_unstable();
        }
        fired
    }

    /// Model-based: driven as the broker drives it, every live deadline is handed back exactly
    /// at its time, none that was settled before it, and the list never keeps an entry past
    /// its deadline.
    #[test]
    fn every_live_deadline_fires_at_its_time_and_settled_ones_never() {
        for seed in 0..50 {
            let mut r = Prng::from_seed(seed);
            let mut d = Deadlines::default();
            let mut settled = vec![false; 2_000];
            let (mut fired, mut expected, mut checks) = (Vec::new(), Vec::new(), Vec::new());
            let (mut made, mut past) = (Vec::new(), 0);
            let mut now = SimTime::ZERO;
            let ttl = Duration::from_micros(1 + r.below(500));
            for msg in 0..2_000u32 {
                now = now.after(Duration::from_micros(r.below(3)));
                fired.extend(fire(&mut d, &mut checks, &settled, now));
                let at = now.after(ttl);
                settled[msg as usize] = r.below(10) != 0; // most settle before their deadline
                if !settled[msg as usize] {
                    expected.push((at, MsgId(msg)));
                }
                if d.push(at, MsgId(msg), 0) {
                    checks.extend(d.arm(|_, m: MsgId, _| !settled[m.index()]));
                }
                made.push(at);
                while made[past] <= now {
                    past += 1;
                }
                let pending = made.len() - past;
                assert!(d.len() <= pending, "seed {seed}: {} kept, {pending} not yet due", d.len());
            }
            fired.extend(fire(&mut d, &mut checks, &settled, SimTime::MAX));
            assert_eq!(fired, expected, "seed {seed}");
            assert!(d.is_empty(), "seed {seed}: all handled");
        }
    }
}
