//! What a consumer's handler touches outside the broker: the downstream dependencies it calls
//! (outage windows, outages by hand, a rate limit, an optimistic row) and the store its effects
//! land in (how often each key was applied, the idempotent consumers' dedupe store, and per
//! order key the newest message applied). The consumers reach it through their `Ports`.

use crate::cow::CowVec;
use crate::event::Ctx;
use crate::rng::Prng;
use crate::scenario::{EffectKind, Scenario};
use crate::stats::{DependencyCalls, Stats};
use crate::time::SimTime;
use crate::trace::{ConsumerId, ErrorClass, MsgId, QueueId, TraceEvent};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug)]
pub struct Services {
    /// Dependencies taken down by hand (the script, or a user).
    down: Vec<bool>,
    /// Rate-limited dependencies' buckets: tokens in millionths, and when they were topped up.
    tokens: Vec<(u64, SimTime)>,
    /// Optimistic dependencies' rows (BO-3): when each was last written. A write succeeds only
    /// if there was none since its call read the row.
    written_at: Vec<SimTime>,
    /// Per dependency, the calls made to it and how many of them failed.
    pub calls: Vec<DependencyCalls>,
    /// How often each message key's effect was applied.
    pub effects: CowVec<u32>,
    /// Keys the idempotent consumers have applied (their shared dedupe store, IP-1).
    dedupe_store: BTreeSet<u32>,
    /// Per (queue, order key), the newest message whose effect has been applied.
    newest_applied: BTreeMap<(QueueId, u32), u32>,
}

/// One effect to apply: the message, its business key, its queue and order key if it has one.
#[derive(Clone, Copy, Debug)]
pub struct Effect {
    pub msg: MsgId,
    pub consumer: ConsumerId,
    pub key: u32,
    pub order: Option<(QueueId, u32)>,
    pub idempotent: bool,
    pub kind: EffectKind,
    /// The write is conditional on the row's version: only a newer one applies.
    pub versioned: bool,
    /// When the publish it carries was made, for the end-to-end latency.
    pub born: SimTime,
}

impl Services {
    pub fn new(scenario: &Scenario) -> Services {
        let n = scenario.dependencies.len();
        Services {
            down: vec![false; n],
            tokens: scenario
                .dependencies
                .iter()
                .map(|d| (u64::from(d.rate_limit_per_s.unwrap_or(0)) * 1_000_000, SimTime::ZERO))
                .collect(),
            written_at: vec![SimTime::ZERO; n],
            calls: vec![DependencyCalls::default(); n],
            effects: CowVec::new(),
            dedupe_store: BTreeSet::new(),
            newest_applied: BTreeMap::new(),
        }
    }

    /// Takes dependency `d` down by hand, or brings it back.
    pub fn set_down(&mut self, d: u32, down: bool) {
        self.down[d as usize] = down;
    }

    /// Whether dependency `d` is up at `now`: outside its outage windows, and not taken down.
    pub fn up(&self, scenario: &Scenario, now: SimTime, d: u32) -> bool {
        let in_outage = scenario.dependencies[d as usize].outages.iter().any(|&(from, to)| from <= now && now < to);
        !in_outage && !self.down[d as usize]
    }

    /// A call to dependency `d` now, by a consumer whose PRNG is `prng`: whether it fails, and
    /// how. On an optimistic row, a write since the call read it (`read_at`) is a conflict; a
    /// write that succeeds is the row's new version.
    #[inline(never)]
    pub fn call(&mut self, cx: &Ctx, d: u32, read_at: SimTime, prng: &mut Prng) -> Option<ErrorClass> {
        let error = self.answer(cx, d, read_at, prng);
        let calls = &mut self.calls[d as usize];
        calls.calls += 1;
        calls.failed += u64::from(error.is_some());
        error
    }

    /// What a call to `d` gets back now (`call`, before it is counted).
    fn answer(&mut self, cx: &Ctx, d: u32, read_at: SimTime, prng: &mut Prng) -> Option<ErrorClass> {
        let now = cx.now();
        if !self.up(&cx.scenario, now, d) {
            return Some(ErrorClass::DependencyDown);
        }
        let spec = &cx.scenario.dependencies[d as usize];
        if let Some(limit) = spec.rate_limit_per_s {
            // A token bucket of one second's worth, refilled continuously; integer millionths.
            let (tokens, last) = &mut self.tokens[d as usize];
            let full = u64::from(limit) * 1_000_000;
            *tokens = (*tokens + now.since(*last).as_micros().saturating_mul(u64::from(limit))).min(full);
            *last = now;
            if *tokens < 1_000_000 {
                return Some(ErrorClass::Throttled);
            }
            *tokens -= 1_000_000;
        }
        let rate = spec.error_rate;
        if rate.numerator > 0 && prng.chance(rate) {
            return Some(ErrorClass::Transient);
        }
        if spec.optimistic.is_some() {
            // BO-3: the write succeeds iff the version it read is still the row's. A write in
            // the same microsecond as the read counts as before it (a boundary convention, as
            // SQS-8's: with continuous hops a tie is rare, and either order is a real one).
            let written_at = &mut self.written_at[d as usize];
            if *written_at > read_at {
                return Some(ErrorClass::Conflict);
            }
            *written_at = now;
        }
        None
    }

    /// A version check: the row keeps the newest message's write, so an older or equal one is
    /// dropped and neither a repeat nor a late one changes it. The message whose write the
    /// row has, if this one must be dropped.
    fn stale_version(&self, versioned: bool, order: Option<(QueueId, u32)>, key: u32) -> Option<u32> {
        let newest = self.newest_applied.get(&order.filter(|_| versioned)?)?;
        (*newest >= key).then_some(*newest)
    }

    /// Applies a message's business effect; false when an idempotent consumer skipped it.
    pub fn apply(&mut self, cx: &mut Ctx, stats: &mut Stats, e: Effect) -> bool {
        let (now, Effect { msg, consumer, key, order, idempotent, kind, versioned, born }) = (cx.now(), e);
        // The dedupe store is the service's database, shared by its consumers (IP-1, IP-2): a
        // redelivery to another worker finds the key too.
        if idempotent && !self.dedupe_store.insert(key) {
            stats.duplicates_suppressed += 1;
            cx.out.emit(TraceEvent::DuplicateSuppressed { at: now, msg, consumer, key });
            return false;
        }
        if let Some(newer) = self.stale_version(versioned, order, key) {
            stats.stale_dropped += 1;
            cx.out.emit(TraceEvent::StaleDropped { at: now, msg, consumer, key, newer: MsgId(newer) });
            return false;
        }
        let slot = key as usize;
        let times = if slot < self.effects.len() {
            let times = &mut self.effects[slot];
            *times += 1;
            *times
        } else {
            // A key's first effect (keys are message ids but for redrives and workflows).
            self.effects.grow_to(slot, 0);
            self.effects.push(1);
            1
        };
        stats.effects_applied += 1;
        if times == 1 {
            stats.effects_first += 1;
            stats.latency_total_us += now.since(born).as_micros();
        }
        // Older than the newest message applied to its order key's row.
        let stale = order.and_then(|o| self.newest_applied.get(&o)).is_some_and(|&newest| newest > key);
        match kind {
            EffectKind::Set if times > 1 && !stale => stats.harmless_repeats += 1,
            EffectKind::Set => {}
            _ if times == 2 => stats.applied_twice += 1,
            _ => {}
        }
        cx.out.emit(TraceEvent::EffectApplied { at: now, msg, consumer, key, times });
        // Per-key order: the first effect of each message (and a set's every write), in the
        // order they were sent. With competing consumers a later message of a key can finish
        // first. An increment does not care.
        let checked = match kind {
            EffectKind::Increment => false,
            EffectKind::Set => true,
            EffectKind::Any => times == 1,
        };
        if let (true, Some((queue, order_key))) = (checked, order) {
            let newest = self.newest_applied.entry((queue, order_key)).or_insert(key);
            if *newest > key {
                let after = *newest;
                stats.order_violations += 1;
                cx.out.emit(TraceEvent::MessageOutOfOrder { at: now, msg, queue, order_key, after: MsgId(after) });
            } else {
                *newest = key;
            }
        }
        true
    }
}
