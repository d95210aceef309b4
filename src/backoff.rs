//! Retry delays. Pure functions of (policy, attempt, previous sleep, u), where `u` in [0, 1) is
//! the only randomness, so every formula is checked against `shared/vectors/backoff.json`.
//! `uniform(a, b) = a + (b − a)·u`, as CPython's `random.uniform` computes it.
//!
//! - BO-1/BO-2: the AWS Architecture Blog formulas (capped exponential, full, equal and
//!   decorrelated jitter), with the blog simulator's numbering: the first retry is attempt 1,
//!   so its un-jittered sleep is `base · multiplier`.
//! - BO-6: gRPC connection backoff.
//! - BO-5: the AWS SDK "standard" retry mode delay (2.0 and 2.1) and its retry quota.
//!
//! Powers are repeated multiplication, never `powf`, so results are bit-identical on every
//! target.

/// How the delay before a retry grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Retry at once.
    Immediate,
    /// Always `base`.
    Fixed,
    /// `min(cap, base · multiplier^attempt)` (BO-1, capped exponential).
    Exponential,
    /// `uniform(0, min(cap, base · multiplier^attempt))` (BO-1).
    FullJitter,
    /// `t/2 + uniform(0, t/2)` with `t = min(cap, base · multiplier^attempt)` (BO-1).
    EqualJitter,
    /// `min(cap, uniform(base, previous · 3))`, the first previous being `base` (BO-1, BO-2b).
    Decorrelated,
    /// gRPC connection backoff: `base` first, then `min(cap, base · multiplier^i)` ± 20 % (BO-6).
    Grpc,
    /// AWS SDK standard mode 2.0: `u · min(2^(attempt−1) s, 20 s)` (BO-5).
    AwsSdkStandard,
}

/// A retry policy: the strategy and its parameters, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    pub strategy: Strategy,
    pub base_ms: f64,
    pub multiplier: f64,
    pub cap_ms: f64,
    /// Attempts in all, the first included; a message is given up after this many.
    pub attempts_max: u32,
}

/// The gRPC jitter fraction (BO-6).
const GRPC_JITTER: f64 = 0.2;
/// The AWS SDK's cap, in ms (BO-5).
const AWS_SDK_CAP_MS: f64 = 20_000.0;

fn uniform(a: f64, b: f64, u: f64) -> f64 {
    a + (b - a) * u
}

/// `base · multiplier^n`, saturating at `cap` as soon as it passes it (so a huge `n` costs
/// nothing and never overflows).
fn capped_growth(base: f64, multiplier: f64, n: u32, cap: f64) -> f64 {
    let mut v = base;
    for _ in 0..n {
        if v >= cap {
            return cap;
        }
        v *= multiplier;
    }
    v.min(cap)
}

/// The sleep before retry number `attempt` (1 = the first retry), in ms. `previous_ms` is the
/// sleep before the previous retry (only decorrelated jitter uses it; pass `base_ms` for the
/// first). `u` is uniform in [0, 1).
pub fn delay_ms(p: &Policy, attempt: u32, previous_ms: f64, u: f64) -> f64 {
    debug_assert!((0.0..1.0).contains(&u), "u = {u}");
    let exp = || capped_growth(p.base_ms, p.multiplier, attempt, p.cap_ms);
    match p.strategy {
        Strategy::Immediate => 0.0,
        Strategy::Fixed => p.base_ms,
        Strategy::Exponential => exp(),
        Strategy::FullJitter => uniform(0.0, exp(), u),
        Strategy::EqualJitter => {
            let t = exp();
            t / 2.0 + uniform(0.0, t / 2.0, u)
        }
        Strategy::Decorrelated => uniform(p.base_ms, previous_ms * 3.0, u).min(p.cap_ms),
        Strategy::Grpc => {
            // Index 0 is the first wait, exactly `base`; jitter comes after the clamp.
            let index = attempt.saturating_sub(1);
            if index == 0 {
                p.base_ms
            } else {
                let b = capped_growth(p.base_ms, p.multiplier, index, p.cap_ms);
                b + uniform(-GRPC_JITTER * b, GRPC_JITTER * b, u)
            }
        }
        Strategy::AwsSdkStandard => u * capped_growth(1000.0, 2.0, attempt.saturating_sub(1), AWS_SDK_CAP_MS),
    }
}

/// AWS SDK standard mode 2.1 delay, in seconds (BO-5): `u · min(scale · 2^(attempt−1), 20)`,
/// `scale` 1 for throttling errors, 0.05 otherwise.
pub fn aws_sdk_v2_1_delay_s(attempt: u32, u: f64, throttling: bool) -> f64 {
    let scale = if throttling { 1.0 } else { 0.05 };
    u * capped_growth(scale, 2.0, attempt.saturating_sub(1), 20.0)
}

/// The AWS SDK standard-mode retry quota, a token bucket (BO-5, 2.0 costs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryQuota {
    pub capacity: u32,
    max: u32,
}

impl Default for RetryQuota {
    fn default() -> Self {
        RetryQuota { capacity: 500, max: 500 }
    }
}

impl RetryQuota {
    pub const RETRY_COST: u32 = 5;
    pub const TIMEOUT_RETRY_COST: u32 = 10;

    /// Takes the cost of one retry; `None` means "do not retry" (the quota is insufficient).
    pub fn acquire(&mut self, timeout: bool) -> Option<u32> {
        let cost = if timeout { Self::TIMEOUT_RETRY_COST } else { Self::RETRY_COST };
        self.capacity = self.capacity.checked_sub(cost)?;
        Some(cost)
    }

    /// A success refunds what its last retry acquired, or 1 if it needed no retry.
    pub fn release(&mut self, acquired: Option<u32>) {
        self.capacity = (self.capacity + acquired.unwrap_or(1)).min(self.max);
    }
}
