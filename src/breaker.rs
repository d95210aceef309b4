//! A circuit breaker around a consumer's calls to its dependency, as resilience4j's state
//! machine keeps one (CB-1 to CB-8): closed, open and half-open, over a count-based window of
//! the last calls. Pure: the consumer asks it for a permit before a call, records each call's
//! outcome, and wakes it when the open wait is over.
//!
//! The consumer that owns it pauses while it is open (it takes no message, so none burns an
//! attempt on a call it may not make), so the open → half-open move is the timed one
//! (`automaticTransitionFromOpenToHalfOpenEnabled`, CB-6) rather than the lazy one.

use crate::time::{Duration, SimTime};
use std::collections::VecDeque;

/// The breaker's settings, resilience4j's names in the comments (CB-2 gives the defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerSpec {
    /// `failureRateThreshold`, in percent (1 to 100).
    pub failure_rate_pct: u32,
    /// `slidingWindowSize`: the last this many calls (COUNT_BASED).
    pub window: u32,
    /// `minimumNumberOfCalls`, already capped at the window (CB-3).
    pub minimum_calls: u32,
    /// `waitDurationInOpenState`.
    pub wait_open: Duration,
    /// `permittedNumberOfCallsInHalfOpenState`.
    pub half_open_calls: u32,
}

/// Where the breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    /// Calls are not permitted until `until` (CB-6).
    Open {
        until: SimTime,
    },
    /// `permits` trial calls are left to hand out (CB-7).
    HalfOpen {
        permits: u32,
    },
}

/// One consumer's breaker: its state and the outcomes its state has recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breaker {
    pub state: BreakerState,
    /// The recorded outcomes of the current state, oldest first (true: failed). At most the
    /// window (closed) or the trial calls (half-open), so bounded by the spec.
    outcomes: VecDeque<bool>,
    failures: u32,
}

/// What a recorded outcome did to the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub to: BreakerState,
    /// The failure rate that decided it, in percent, rounded down.
    pub failure_rate_pct: u32,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker { state: BreakerState::Closed, outcomes: VecDeque::new(), failures: 0 }
    }
}

impl Breaker {
    /// Whether a call may start now: closed, or half-open with a trial left. (Open: not
    /// permitted, CB-6.)
    pub fn permits(&self) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Open { .. } => false,
            BreakerState::HalfOpen { permits } => permits > 0,
        }
    }

    /// A call starts: in half-open it takes one of the trial permits (CB-7).
    pub fn acquire(&mut self) {
        if let BreakerState::HalfOpen { permits } = &mut self.state {
            *permits = permits.saturating_sub(1);
        }
    }

    /// A permit taken for a call that was never made goes back (as CB-10's ignored call).
    pub fn release(&mut self, spec: &BreakerSpec) {
        if let BreakerState::HalfOpen { permits } = &mut self.state {
            *permits = (*permits + 1).min(spec.half_open_calls);
        }
    }

    /// The open wait is over: half-open, with fresh metrics (CB-6, CB-8). Returns the new state
    /// if it moved.
    pub fn wake(&mut self, spec: &BreakerSpec, now: SimTime) -> Option<BreakerState> {
        match self.state {
            BreakerState::Open { until } if now >= until => {
                Some(self.enter(BreakerState::HalfOpen { permits: spec.half_open_calls }))
            }
            _ => None,
        }
    }

    /// Records a call's outcome (`failed`) at `now`, and moves the breaker if it decides:
    /// closed → open at the failure threshold once the minimum is in (CB-4, equality trips);
    /// half-open → open or closed once its trial calls are in (CB-7). An outcome that comes
    /// back while open is discarded with that state's metrics (CB-8).
    pub fn record(&mut self, spec: &BreakerSpec, now: SimTime, failed: bool) -> Option<Transition> {
        let (size, minimum) = match self.state {
            BreakerState::Open { .. } => return None,
            BreakerState::Closed => (spec.window, spec.minimum_calls),
            // CB-7: a count-based window of the trial calls, its minimum capped at them.
            BreakerState::HalfOpen { .. } => (spec.half_open_calls, spec.minimum_calls.min(spec.half_open_calls)),
        };
        self.outcomes.push_back(failed);
        self.failures += u32::from(failed);
        if self.outcomes.len() > size as usize {
            let oldest = self.outcomes.pop_front().unwrap_or(false);
            self.failures -= u32::from(oldest);
        }
        let total = u32::try_from(self.outcomes.len()).unwrap_or(u32::MAX);
        if total < minimum {
            return None; // CB-4 (1): no decision below the minimum, even at 100 %
        }
        let rate = self.failures * 100 / total;
        let trips = u64::from(self.failures) * 100 >= u64::from(spec.failure_rate_pct) * u64::from(total);
        let to = match (self.state, trips) {
            (_, true) => BreakerState::Open { until: now.after(spec.wait_open) },
            (BreakerState::HalfOpen { .. }, false) => BreakerState::Closed,
            (_, false) => return None,
        };
        Some(Transition { to: self.enter(to), failure_rate_pct: rate })
    }

    /// Every transition starts its state with empty metrics (CB-8).
    fn enter(&mut self, state: BreakerState) -> BreakerState {
        (self.state, self.failures) = (state, 0);
        self.outcomes.clear();
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(window: u32, minimum: u32, half_open: u32) -> BreakerSpec {
        BreakerSpec {
            failure_rate_pct: 50,
            window,
            minimum_calls: minimum,
            wait_open: Duration::from_millis(5000),
            half_open_calls: half_open,
        }
    }

    /// 0 closed, 1 open, 2 half-open: as the trace's `BreakerPhase` codes them.
    fn code(state: BreakerState) -> u8 {
        match state {
            BreakerState::Closed => 0,
            BreakerState::Open { .. } => 1,
            BreakerState::HalfOpen { .. } => 2,
        }
    }

    fn feed(b: &mut Breaker, s: &BreakerSpec, outcomes: &str) -> Vec<Option<u8>> {
        outcomes.chars().map(|c| b.record(s, SimTime::ZERO, c == 'F').map(|t| code(t.to))).collect()
    }

    /// CB-4's test cases (resilience4j `shouldOpenAfterFailureRateThresholdExceeded`, `…2`):
    /// minimum 5, threshold 50 %. F F F S S opens on the 5th call (60 %); S S S F F stays
    /// closed (40 %), and a further F opens it at exactly 3/6 = 50 %: equality trips.
    #[test]
    fn the_breaker_trips_at_the_threshold_once_the_minimum_is_in() {
        let s = spec(100, 5, 10);
        let mut b = Breaker::default();
        assert_eq!(feed(&mut b, &s, "FFFS"), vec![None; 4], "no decision below the minimum, even at 100 %");
        let t = b.record(&s, SimTime::ZERO, false).expect("opens on the 5th call");
        assert_eq!((code(t.to), t.failure_rate_pct), (1, 60));
        let mut b = Breaker::default();
        assert_eq!(feed(&mut b, &s, "SSSFF"), vec![None; 5], "40 %: closed");
        let t = b.record(&s, SimTime::ZERO, true).expect("opens at 50 %");
        assert_eq!((t.to, t.failure_rate_pct), (BreakerState::Open { until: SimTime::from_millis(5000) }, 50));
        assert!(!b.permits());
    }

    /// CB-7's test cases (`shouldOnlyPermitFourCallsInHalfOpenState`, `…BackToOpenState…`,
    /// `…ToClosedState…`): 4 permits, a 5th denied; F F S F (75 %) opens again; F S S S
    /// (25 %) closes, with empty metrics (CB-8). The open wait is over at exactly `until`.
    #[test]
    fn half_open_hands_out_its_permits_and_decides_on_them() {
        let s = spec(100, 100, 4);
        let mut b = Breaker { state: BreakerState::Open { until: SimTime::from_millis(5000) }, ..Breaker::default() };
        assert_eq!(b.wake(&s, SimTime::from_micros(4_999_999)), None, "still open before its wait is over");
        assert_eq!(b.wake(&s, SimTime::from_millis(5000)), Some(BreakerState::HalfOpen { permits: 4 }));
        for _ in 0..4 {
            assert!(b.permits());
            b.acquire();
        }
        assert!(!b.permits(), "a 5th call is not permitted");
        assert_eq!(feed(&mut b, &s, "FFSF"), vec![None, None, None, Some(1)], "75 %: open again");
        b.wake(&s, SimTime::from_millis(20_000));
        assert_eq!(feed(&mut b, &s, "FSSS"), vec![None, None, None, Some(0)], "25 %: closed");
        assert_eq!((b.outcomes.len(), b.failures), (0, 0), "CB-8: fresh metrics");
        // The closed window starts empty: three failures alone do not reach the minimum.
        assert_eq!(feed(&mut b, &s, "FFF"), vec![None; 3]);
    }

    /// COUNT_BASED: only the last `window` calls count; old failures slide out.
    #[test]
    fn the_window_slides() {
        let s = BreakerSpec { failure_rate_pct: 60, ..spec(4, 4, 2) };
        let mut b = Breaker::default();
        assert_eq!(feed(&mut b, &s, "FFSSSS"), vec![None; 6], "50 % at the 4th, then the failures slide out");
        assert_eq!(feed(&mut b, &s, "FF"), vec![None, None], "2 of 4");
        assert_eq!(feed(&mut b, &s, "F"), vec![Some(1)], "3 of 4 = 75 %");
        assert_eq!(b.record(&s, SimTime::ZERO, true), None, "an outcome while open is discarded");
    }
}
