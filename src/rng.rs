//! Our own PRNG: xoshiro256** seeded through splitmix64. Its API is integer-first, so a run is
//! the same on every target. `rand`'s SmallRng is documented as non-portable (it changes
//! algorithm on 32-bit targets, and wasm32 is one), so we do not use it.
//!
//! The only floats here are the exponential draws: a ziggurat (Marsaglia and Tsang, 2000) whose
//! tables and rare slow paths use `libm`, the same Rust code natively and on wasm32, unlike
//! `f64::ln`/`exp`, which may call the platform's libm. IEEE basic arithmetic is exact on both.

use std::sync::OnceLock;

/// An exact probability, `numerator / denominator`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ratio {
    pub numerator: u64,
    pub denominator: u64,
}

impl Default for Ratio {
    /// Never.
    fn default() -> Self {
        Ratio { numerator: 0, denominator: 1 }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prng {
    s: [u64; 4],
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Prng {
    pub fn from_seed(seed: u64) -> Prng {
        let mut sm = seed;
        let s = [splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm)];
        // splitmix64 never yields four zeros in a row, so the state is never all zero.
        Prng { s }
    }

    /// An independent stream for one component, so that adding a consumer does not shift the
    /// numbers another component draws.
    pub fn fork(&mut self, stream: u64) -> Prng {
        Prng::from_seed(self.next_u64() ^ stream.wrapping_mul(0xd605_bbb5_8c8a_bbe5))
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..bound`, without modulo bias (Lemire's multiply-and-reject).
    #[allow(clippy::cast_possible_truncation)] // taking the halves of a 128-bit product
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "below(0) has no valid result");
        loop {
            let m = u128::from(self.next_u64()) * u128::from(bound);
            let low = m as u64;
            if low >= bound.wrapping_neg() % bound {
                return (m >> 64) as u64;
            }
        }
    }

    /// A uniform index into something of length `len` (> 0).
    pub fn index(&mut self, len: usize) -> usize {
        // `below` answers below `len`, so it fits back into usize.
        usize::try_from(self.below(len as u64)).unwrap_or(0)
    }

    /// Uniform in `lo..=hi`.
    pub fn range_inclusive(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "empty range {lo}..={hi}");
        match (hi - lo).checked_add(1) {
            Some(span) => lo + self.below(span),
            None => self.next_u64(),
        }
    }

    /// True with exactly the given probability.
    pub fn chance(&mut self, p: Ratio) -> bool {
        assert!(p.denominator > 0 && p.numerator <= p.denominator, "bad ratio {p:?}");
        self.below(p.denominator) < p.numerator
    }

    /// Uniform in [0, 1) with 53 random bits: the `u` of the backoff formulas.
    #[allow(clippy::cast_precision_loss)]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in the open interval (0, 1) with 53 random bits; never exactly 0 or 1.
    #[allow(clippy::cast_precision_loss)]
    fn open_unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// An exponential draw with mean 1, by the ziggurat method: one `u64` and a table lookup
    /// for 98.9% of draws; `libm` only on the wedge and tail paths.
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    pub fn exp_unit(&mut self) -> f64 {
        let z = ziggurat();
        loop {
            let bits = self.next_u64();
            let i = (bits & 0xff) as usize;
            // The top 53 bits, disjoint from the 8 that chose the layer.
            let x = ((bits >> 11) as f64 / (1u64 << 53) as f64) * z.x[i];
            if x < z.x[i + 1] {
                return x;
            }
            if i == 0 {
                // The tail beyond R is R plus an exponential (memorylessness).
                return ZIG_R - libm::log(self.open_unit());
            }
            if z.f[i + 1] + (z.f[i] - z.f[i + 1]) * self.unit() < libm::exp(-x) {
                return x;
            }
        }
    }

    /// A standard normal draw, by Box and Muller's transform of two uniform draws: `libm`'s
    /// `log`, `sqrt` and `cos`, the same bits on every target. (One of the pair is used, so
    /// each draw takes two `u64`s.)
    pub fn normal_unit(&mut self) -> f64 {
        let radius = libm::sqrt(-2.0 * libm::log(self.open_unit()));
        radius * libm::cos(std::f64::consts::TAU * self.unit())
    }

    /// An exponential sample with the given mean, in whole units (rounded to nearest).
    /// Capped at `cap` so that a huge draw cannot overflow.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        clippy::cast_possible_wrap
    )]
    pub fn exp_sample(&mut self, mean: u64, cap: u64) -> u64 {
        // Through i64, whose conversions are one instruction each on x86-64 (u64's are a
        // dozen); the scenario's limits keep every mean and cap far below 2^63.
        let (mean, cap) = (mean.min(i64::MAX as u64) as i64, cap.min(i64::MAX as u64) as i64);
        // Non-negative, so adding a half and truncating rounds to nearest.
        let rounded = mean as f64 * self.exp_unit() + 0.5;
        if rounded >= cap as f64 {
            cap as u64
        } else {
            rounded as i64 as u64
        }
    }
}

/// The exponential ziggurat's 256 layers of equal area `ZIG_V`; the base layer holds the tail
/// beyond `ZIG_R` (Marsaglia and Tsang, "The Ziggurat Method for Generating Random Variables").
const ZIG_R: f64 = 7.697_117_470_131_05;
const ZIG_V: f64 = 3.949_659_822_581_572e-3;

/// `x[i]` is layer i's right edge (x[0] the base's pseudo-width `V/f(R)`, x[1] = R, decreasing
/// to x[256] = 0); `f[i] = exp(-x[i])`.
#[derive(Debug)]
struct Ziggurat {
    x: [f64; 257],
    f: [f64; 257],
}

fn ziggurat() -> &'static Ziggurat {
    static TABLES: OnceLock<Ziggurat> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut x = [0.0; 257];
        x[0] = ZIG_V / libm::exp(-ZIG_R);
        x[1] = ZIG_R;
        for i in 2..256 {
            x[i] = -libm::log(ZIG_V / x[i - 1] + libm::exp(-x[i - 1]));
        }
        let f = x.map(|xi| libm::exp(-xi));
        Ziggurat { x, f }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_is_in_range_and_covers_it() {
        let mut r = Prng::from_seed(3);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            let x = r.below(7);
            seen[usize::try_from(x).unwrap_or(0)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800 && n < 1200), "{seen:?}");
    }

    #[test]
    fn exponential_mean_is_close() {
        let mut r = Prng::from_seed(11);
        let n = 200_000u64;
        let total: u64 = (0..n).map(|_| r.exp_sample(1_000_000, u64::MAX)).sum();
        let mean = total / n;
        assert!((990_000..1_010_000).contains(&mean), "mean {mean}");
    }

    /// Each draw is the unit draw scaled and rounded to nearest, and never above the cap.
    #[test]
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn exp_sample_rounds_the_unit_draw_and_caps_it() {
        let (mut a, mut b) = (Prng::from_seed(23), Prng::from_seed(23));
        let (mean, cap) = (1_000_000u64, 2_500_000u64);
        let mut capped = 0;
        for _ in 0..100_000 {
            let x = a.exp_sample(mean, cap);
            let want = (mean as f64 * b.exp_unit()).round().min(cap as f64) as u64;
            assert_eq!(x, want);
            capped += u32::from(x == cap);
        }
        // P(X > 2.5 means) = e^-2.5 = 8.2%.
        assert!((7_700..8_700).contains(&capped), "capped {capped}");
    }

    #[test]
    fn ziggurat_layers_have_equal_area_and_shrink() {
        let z = ziggurat();
        for i in 1..256 {
            assert!(z.x[i + 1] < z.x[i], "layer {i} does not shrink");
            // Layer i is the rectangle [0, x[i]] x [f[i], f[i+1]]... of area V (the top one
            // included, where x[256] = 0 and f = 1).
            let area = z.x[i] * (z.f[i + 1] - z.f[i]);
            assert!((area - ZIG_V).abs() < 1e-12, "layer {i} area {area}");
        }
        // The base: the rectangle under f(R) plus the tail beyond R, whose area is f(R).
        let base = ZIG_R * z.f[1] + z.f[1];
        assert!((base - ZIG_V).abs() < 1e-12, "base area {base}");
    }

    /// Kolmogorov-Smirnov against 1 - e^-x over a million draws, plus the far tail, which
    /// only the ziggurat's slow paths reach.
    #[test]
    #[allow(clippy::cast_precision_loss)]
    fn exponential_draws_follow_the_distribution() {
        let mut r = Prng::from_seed(17);
        let n = 1_000_000usize;
        let mut xs: Vec<f64> = (0..n).map(|_| r.exp_unit()).collect();
        xs.sort_by(f64::total_cmp);
        let mut d: f64 = 0.0;
        for (k, &x) in xs.iter().enumerate() {
            let cdf = 1.0 - libm::exp(-x);
            d = d.max((cdf - k as f64 / n as f64).abs()).max(((k + 1) as f64 / n as f64 - cdf).abs());
        }
        // The 0.1% critical value is 1.95 / sqrt(n).
        assert!(d < 1.95e-3, "KS distance {d}");
        let beyond_r = xs.iter().filter(|&&x| x > ZIG_R).count() as f64 / n as f64;
        let expected = libm::exp(-ZIG_R);
        assert!((beyond_r - expected).abs() < 5.0 * (expected / n as f64).sqrt(), "tail {beyond_r}");
    }

    /// Mean, variance and the 1.96-sigma tails of a million standard normal draws.
    #[test]
    #[allow(clippy::cast_precision_loss)]
    fn normal_draws_have_the_moments_and_tails_of_a_standard_normal() {
        let mut r = Prng::from_seed(29);
        let n = 1_000_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal_unit()).collect();
        let mean = xs.iter().sum::<f64>() / f64::from(n);
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / f64::from(n - 1);
        let beyond = xs.iter().filter(|x| x.abs() > 1.959_964).count() as f64 / f64::from(n);
        assert!(mean.abs() < 0.005, "mean {mean}");
        assert!((var - 1.0).abs() < 0.005, "variance {var}");
        assert!((beyond - 0.05).abs() < 0.001, "P(|Z| > 1.96) = {beyond}");
    }

    #[test]
    fn chance_is_exact_at_the_edges() {
        let mut r = Prng::from_seed(5);
        for _ in 0..1000 {
            assert!(!r.chance(Ratio { numerator: 0, denominator: 10 }));
            assert!(r.chance(Ratio { numerator: 10, denominator: 10 }));
        }
    }
}
