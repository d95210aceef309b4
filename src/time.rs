//! Simulated time. An integer count of microseconds since the start of the run, so that
//! ordering and arithmetic are exact on every target. It reaches JavaScript as f64
//! milliseconds, which is exact to the microsecond far past any run we allow.

use std::fmt;

/// A point in simulated time, in microseconds from the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(u64);

/// A span of simulated time, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(u64);

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    pub const MAX: SimTime = SimTime(u64::MAX);

    pub const fn from_micros(us: u64) -> SimTime {
        SimTime(us)
    }
    pub const fn from_millis(ms: u64) -> SimTime {
        SimTime(ms.saturating_mul(1000))
    }
    pub const fn as_micros(self) -> u64 {
        self.0
    }
    /// Milliseconds as f64, for JSON and JavaScript: exact below 2^53 µs (285 years).
    #[allow(clippy::cast_precision_loss)]
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
    /// Time after `d`; saturates instead of wrapping, so a huge delay means "never".
    pub const fn after(self, d: Duration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }
    /// The span from `earlier` to `self`; zero if `earlier` is later.
    pub const fn since(self, earlier: SimTime) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Duration {
    pub const ZERO: Duration = Duration(0);

    pub const fn from_micros(us: u64) -> Duration {
        Duration(us)
    }
    pub const fn from_millis(ms: u64) -> Duration {
        Duration(ms.saturating_mul(1000))
    }
    pub const fn as_micros(self) -> u64 {
        self.0
    }
    #[allow(clippy::cast_precision_loss)]
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
    pub const fn plus(self, other: Duration) -> Duration {
        Duration(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for SimTime {
    /// `12.345678s`: fixed width after the point, so trace lines sort and diff cleanly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_displays_fixed_width() {
        let t = SimTime::from_millis(1500);
        assert_eq!(t.after(Duration::from_micros(7)).as_micros(), 1_500_007);
        assert_eq!(SimTime::MAX.after(Duration::from_millis(1)), SimTime::MAX);
        assert_eq!(SimTime::ZERO.since(t), Duration::ZERO);
        assert_eq!(t.to_string(), "1.500000s");
        assert_eq!(t.as_millis_f64().to_bits(), 1500.0f64.to_bits());
    }
}
