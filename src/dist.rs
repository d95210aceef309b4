//! The distributions the scenario's numbers are drawn from: durations (constant, uniform,
//! exponential, folded normal), Poisson gaps and order keys. Pure apart from the PRNG each is
//! given; integer or correctly rounded math only (see `crate::rng`).

use crate::rng::Prng;
use crate::scenario::{Dist, KeySpec};
use crate::time::Duration;

/// One draw from a distribution. Pure apart from the PRNG it is given. (Inline: the hot path
/// draws an exponential processing time, and the rarer arms stay out of its way.)
#[inline]
pub fn sample(dist: Dist, prng: &mut Prng) -> Duration {
    match dist {
        Dist::Constant(d) => d,
        Dist::Uniform { min, max } => Duration::from_micros(prng.range_inclusive(min.as_micros(), max.as_micros())),
        Dist::Exponential { mean } => {
            // Capped at 1000 means so that one astronomically unlikely draw cannot stall a run.
            let cap = mean.as_micros().saturating_mul(1000);
            Duration::from_micros(prng.exp_sample(mean.as_micros(), cap))
        }
        Dist::Normal { mean, sd } => folded_normal(mean, sd, prng),
    }
}

/// `|N(mean, sd)|`, folded at zero as the AWS backoff simulator's `abs(normalvariate(…))` (BO-3).
#[inline(never)]
fn folded_normal(mean: Duration, sd: Duration, prng: &mut Prng) -> Duration {
    #[allow(clippy::cast_precision_loss)]
    let us = mean.as_micros() as f64 + sd.as_micros() as f64 * prng.normal_unit();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Duration::from_micros(libm::round(us.abs()) as u64)
}

/// The gap to the next arrival of a Poisson process with this mean inter-arrival time.
pub fn poisson_gap(mean_interval: Duration, prng: &mut Prng) -> Duration {
    sample(Dist::Exponential { mean: mean_interval }, prng)
}

/// A producer's next key: `key-0` with the hot share, the rest spread evenly over the others.
pub fn draw_key(keys: KeySpec, prng: &mut Prng) -> u32 {
    if keys.count > 1 && keys.hot_share.numerator > 0 {
        if prng.chance(keys.hot_share) {
            0
        } else {
            1 + u32::try_from(prng.below(u64::from(keys.count - 1))).unwrap_or(0)
        }
    } else {
        u32::try_from(prng.below(u64::from(keys.count))).unwrap_or(0)
    }
}
