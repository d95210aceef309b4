//! Scenarios as data. Authors write JSON; `Scenario::from_json` deserializes it with unknown
//! fields rejected, then validates it into a resolved model (names turned into indices, times
//! into microseconds). Every error names the path and the reason:
//! `consumers[1].prefetch: must be at least 1`.
//!
//! The built-in presets are JSON files in `scenarios/`, embedded by `build.rs`.

use crate::time::{Duration, SimTime};
use serde::Deserialize;
use std::fmt;

/// Hard limits. A scenario that asks for more is refused with a path-specific error, so that
/// no input can make the engine (or a browser tab) run out of memory or time.
pub mod limits {
    /// The largest scenario text accepted, in bytes.
    pub const SCENARIO_BYTES_MAX: usize = 1 << 20;
    pub const DURATION_MS_MAX: u64 = 7 * 24 * 3_600_000;
    pub const QUEUES_MAX: usize = 16;
    pub const PRODUCERS_MAX: usize = 64;
    pub const CONSUMERS_MAX: usize = 256;
    pub const PREFETCH_MAX: u32 = 10_000;
    /// Upper bound on the messages one run may publish, summed over producers.
    pub const MESSAGES_MAX: u64 = 2_000_000;
    pub const SCRIPTED_SENDS_MAX: usize = 100_000;
    pub const LATENCY_MS_MAX: f64 = 60_000.0;
    pub const PROCESSING_MS_MAX: f64 = 3_600_000.0;
    pub const RATE_PER_S_MAX: f64 = 100_000.0;
    pub const NAME_CHARS_MAX: usize = 40;
    /// 2^53 − 1: the largest seed JavaScript holds exactly, so the page can replay any run.
    pub const SEED_MAX: u64 = (1 << 53) - 1;
    pub const TEXT_CHARS_MAX: usize = 2_000;
}

/// A scenario problem, located by its JSON path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

impl std::error::Error for ScenarioError {}

fn err<T>(path: impl Into<String>, reason: impl Into<String>) -> Result<T, ScenarioError> {
    Err(ScenarioError { path: path.into(), reason: reason.into() })
}

// ---------------------------------------------------------------------------------------------
// The JSON shape, as authors write it.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    seed: Option<u64>,
    duration_ms: i64,
    #[serde(default)]
    network: RawNetwork,
    queues: Vec<RawQueue>,
    producers: Vec<RawProducer>,
    consumers: Vec<RawConsumer>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[serde(default)]
    latency_ms: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProducer {
    name: String,
    to: String,
    schedule: serde_json::Value,
}

/// Written `{"kind": "fixed_rate", …}`; see `tagged` for why it is not `#[serde(tag)]`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum RawSchedule {
    FixedRate {
        interval_ms: f64,
        #[serde(default)]
        start_ms: f64,
        #[serde(default)]
        count: Option<i64>,
    },
    Poisson {
        rate_per_s: f64,
        #[serde(default)]
        start_ms: f64,
        #[serde(default)]
        count: Option<i64>,
    },
    Scripted {
        at_ms: Vec<f64>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsumer {
    name: String,
    from: String,
    #[serde(default = "one")]
    prefetch: i64,
    processing: serde_json::Value,
}

fn one() -> i64 {
    1
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum RawDist {
    Constant { ms: f64 },
    Uniform { min_ms: f64, max_ms: f64 },
    Exponential { mean_ms: f64 },
}

// ---------------------------------------------------------------------------------------------
// The validated model the engine runs.

#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub seed: Option<u64>,
    pub duration: Duration,
    pub latency: Duration,
    pub queues: Vec<QueueSpec>,
    pub producers: Vec<ProducerSpec>,
    pub consumers: Vec<ConsumerSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSpec {
    pub name: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProducerSpec {
    pub name: String,
    pub queue: u32,
    pub schedule: Schedule,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    FixedRate {
        interval: Duration,
        start: SimTime,
        count: Option<u64>,
    },
    /// Exponential inter-arrival times with this mean.
    Poisson {
        mean_interval: Duration,
        start: SimTime,
        count: Option<u64>,
    },
    /// Sends at these times, sorted.
    Scripted {
        at: Vec<SimTime>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerSpec {
    pub name: String,
    pub queue: u32,
    /// The most unacknowledged messages this consumer holds at once (RMQ basic.qos).
    pub prefetch: u32,
    pub processing: Dist,
}

/// A processing-time distribution, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dist {
    Constant(Duration),
    Uniform { min: Duration, max: Duration },
    Exponential { mean: Duration },
}

impl Scenario {
    /// Parses and validates a scenario. Never panics; every error names its path.
    pub fn from_json(text: &str) -> Result<Scenario, ScenarioError> {
        if text.len() > limits::SCENARIO_BYTES_MAX {
            return err(
                "scenario",
                format!("is {} bytes; the limit is {} bytes", text.len(), limits::SCENARIO_BYTES_MAX),
            );
        }
        if !text.trim_start().starts_with('{') {
            return err("scenario", "must be a JSON object, starting with {");
        }
        let de = &mut serde_json::Deserializer::from_str(text);
        let raw: RawScenario = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = located("scenario", &e.path().to_string());
            let inner = e.into_inner();
            // The path locates data errors; a syntax error has no path, so keep its line.
            let reason = if inner.is_syntax() || inner.is_eof() { inner.to_string() } else { without_position(&inner) };
            ScenarioError { path, reason }
        })?;
        validate(raw)
    }

    /// The most messages this scenario can publish (fixed and scripted schedules exactly,
    /// Poisson by its expectation; the engine also stops producers at `limits::MESSAGES_MAX`).
    pub fn messages_bound(&self) -> u64 {
        let end = SimTime::ZERO.after(self.duration);
        self.producers.iter().map(|p| schedule_bound(&p.schedule, end)).fold(0, u64::saturating_add)
    }

    pub fn end(&self) -> SimTime {
        SimTime::ZERO.after(self.duration)
    }
}

fn schedule_bound(schedule: &Schedule, end: SimTime) -> u64 {
    let within = |start: SimTime, every: Duration| -> u64 {
        if start > end {
            0
        } else {
            end.since(start).as_micros() / every.as_micros().max(1) + 1
        }
    };
    match schedule {
        Schedule::FixedRate { interval, start, count } => count.unwrap_or(u64::MAX).min(within(*start, *interval)),
        Schedule::Poisson { mean_interval, start, count } => {
            count.unwrap_or(u64::MAX).min(within(*start, *mean_interval))
        }
        Schedule::Scripted { at } => at.iter().filter(|t| **t <= end).count() as u64,
    }
}

// ---------------------------------------------------------------------------------------------
// Validation.

fn validate(raw: RawScenario) -> Result<Scenario, ScenarioError> {
    check_name("name", &raw.name)?;
    if raw.description.chars().count() > limits::TEXT_CHARS_MAX {
        return err("description", format!("must be at most {} characters", limits::TEXT_CHARS_MAX));
    }
    if raw.seed.is_some_and(|s| s > limits::SEED_MAX) {
        return err(
            "seed",
            format!("must be at most {} (2^53 − 1), so that the page keeps it exact", limits::SEED_MAX),
        );
    }
    let duration_ms = match u64::try_from(raw.duration_ms) {
        Ok(0) | Err(_) => return err("duration_ms", "must be at least 1"),
        Ok(ms) if ms > limits::DURATION_MS_MAX => {
            return err("duration_ms", format!("must be at most {} (7 days)", limits::DURATION_MS_MAX))
        }
        Ok(ms) => ms,
    };
    let duration = Duration::from_millis(duration_ms);
    let latency = ms("network.latency_ms", raw.network.latency_ms, limits::LATENCY_MS_MAX)?;

    check_count("queues", raw.queues.len(), 1, limits::QUEUES_MAX)?;
    let mut queues: Vec<QueueSpec> = Vec::with_capacity(raw.queues.len());
    for (i, q) in raw.queues.into_iter().enumerate() {
        check_new_name(&format!("queues[{i}].name"), &q.name, queues.iter().map(|x| &x.name), "queue")?;
        queues.push(QueueSpec { name: q.name });
    }
    let queue_index = |path: String, name: &str| -> Result<u32, ScenarioError> {
        match queues.iter().position(|q| q.name == name) {
            Some(i) => Ok(index_u32(i)),
            None => err(path, format!("no queue is named \"{name}\"; add it to queues or fix the name")),
        }
    };

    check_count("producers", raw.producers.len(), 1, limits::PRODUCERS_MAX)?;
    let mut producers: Vec<ProducerSpec> = Vec::with_capacity(raw.producers.len());
    for (i, p) in raw.producers.into_iter().enumerate() {
        let at = format!("producers[{i}]");
        check_new_name(&format!("{at}.name"), &p.name, producers.iter().map(|x| &x.name), "producer")?;
        let queue = queue_index(format!("{at}.to"), &p.to)?;
        let path = format!("{at}.schedule");
        let schedule = schedule(&path, tagged(&path, p.schedule)?)?;
        producers.push(ProducerSpec { name: p.name, queue, schedule });
    }

    check_count("consumers", raw.consumers.len(), 1, limits::CONSUMERS_MAX)?;
    let mut consumers: Vec<ConsumerSpec> = Vec::with_capacity(raw.consumers.len());
    for (i, c) in raw.consumers.into_iter().enumerate() {
        let at = format!("consumers[{i}]");
        check_new_name(&format!("{at}.name"), &c.name, consumers.iter().map(|x| &x.name), "consumer")?;
        let queue = queue_index(format!("{at}.from"), &c.from)?;
        if c.prefetch < 1 {
            return err(format!("{at}.prefetch"), "must be at least 1");
        }
        let prefetch = match u32::try_from(c.prefetch) {
            Ok(p) if p <= limits::PREFETCH_MAX => p,
            _ => return err(format!("{at}.prefetch"), format!("must be at most {}", limits::PREFETCH_MAX)),
        };
        let path = format!("{at}.processing");
        let processing = dist(&path, tagged(&path, c.processing)?)?;
        consumers.push(ConsumerSpec { name: c.name, queue, prefetch, processing });
    }

    let scenario = Scenario {
        name: raw.name,
        description: raw.description,
        seed: raw.seed,
        duration,
        latency,
        queues,
        producers,
        consumers,
    };
    for (i, p) in scenario.producers.iter().enumerate() {
        let bound = schedule_bound(&p.schedule, scenario.end());
        if bound > limits::MESSAGES_MAX {
            return err(
                format!("producers[{i}].schedule"),
                format!(
                    "would publish about {bound} messages; the limit is {} per run (lower the rate, add a count or shorten duration_ms)",
                    limits::MESSAGES_MAX
                ),
            );
        }
    }
    if scenario.messages_bound() > limits::MESSAGES_MAX {
        return err(
            "producers",
            format!(
                "together would publish about {} messages; the limit is {} per run",
                scenario.messages_bound(),
                limits::MESSAGES_MAX
            ),
        );
    }
    Ok(scenario)
}

fn schedule(path: &str, raw: RawSchedule) -> Result<Schedule, ScenarioError> {
    let count_ok = |count: Option<i64>| -> Result<Option<u64>, ScenarioError> {
        match count.map(u64::try_from) {
            None => Ok(None),
            Some(Ok(0) | Err(_)) => err(format!("{path}.count"), "must be at least 1 (leave it out for no limit)"),
            Some(Ok(n)) if n > limits::MESSAGES_MAX => {
                err(format!("{path}.count"), format!("must be at most {}", limits::MESSAGES_MAX))
            }
            Some(Ok(n)) => Ok(Some(n)),
        }
    };
    let start_of = |start_ms: f64| -> Result<SimTime, ScenarioError> {
        let d = ms(&format!("{path}.start_ms"), start_ms, as_f64(limits::DURATION_MS_MAX))?;
        Ok(SimTime::ZERO.after(d))
    };
    Ok(match raw {
        RawSchedule::FixedRate { interval_ms, start_ms, count } => {
            let interval = ms(&format!("{path}.interval_ms"), interval_ms, as_f64(limits::DURATION_MS_MAX))?;
            if interval == Duration::ZERO {
                return err(format!("{path}.interval_ms"), "must be at least 0.001 (one microsecond)");
            }
            Schedule::FixedRate { interval, start: start_of(start_ms)?, count: count_ok(count)? }
        }
        RawSchedule::Poisson { rate_per_s, start_ms, count } => {
            let rate_path = format!("{path}.rate_per_s");
            if !rate_per_s.is_finite() || rate_per_s <= 0.0 {
                return err(rate_path, "must be a number greater than 0");
            }
            if rate_per_s > limits::RATE_PER_S_MAX {
                return err(rate_path, format!("must be at most {}", limits::RATE_PER_S_MAX));
            }
            let mean_interval = micros_of(1_000_000.0 / rate_per_s);
            Schedule::Poisson { mean_interval, start: start_of(start_ms)?, count: count_ok(count)? }
        }
        RawSchedule::Scripted { at_ms } => {
            if at_ms.len() > limits::SCRIPTED_SENDS_MAX {
                return err(
                    format!("{path}.at_ms"),
                    format!("has {} entries; the limit is {}", at_ms.len(), limits::SCRIPTED_SENDS_MAX),
                );
            }
            let mut at = Vec::with_capacity(at_ms.len());
            for (i, t) in at_ms.into_iter().enumerate() {
                let d = ms(&format!("{path}.at_ms[{i}]"), t, as_f64(limits::DURATION_MS_MAX))?;
                at.push(SimTime::ZERO.after(d));
            }
            at.sort_unstable();
            Schedule::Scripted { at }
        }
    })
}

fn dist(path: &str, raw: RawDist) -> Result<Dist, ScenarioError> {
    let max = limits::PROCESSING_MS_MAX;
    Ok(match raw {
        RawDist::Constant { ms: v } => Dist::Constant(ms(&format!("{path}.ms"), v, max)?),
        RawDist::Uniform { min_ms, max_ms } => {
            let min = ms(&format!("{path}.min_ms"), min_ms, max)?;
            let max = ms(&format!("{path}.max_ms"), max_ms, max)?;
            if max < min {
                return err(format!("{path}.max_ms"), "must be at least min_ms");
            }
            Dist::Uniform { min, max }
        }
        RawDist::Exponential { mean_ms } => {
            let mean = ms(&format!("{path}.mean_ms"), mean_ms, max)?;
            if mean == Duration::ZERO {
                return err(format!("{path}.mean_ms"), "must be greater than 0");
            }
            Dist::Exponential { mean }
        }
    })
}

/// Deserializes an object written `{"kind": "k", …fields}` into an externally tagged enum, by
/// rewriting it to `{"k": {…fields}}`. serde's internally tagged enums buffer their content and
/// lose the path inside it; this keeps `producers[0].schedule.count` in every error.
fn tagged<T: serde::de::DeserializeOwned>(path: &str, value: serde_json::Value) -> Result<T, ScenarioError> {
    let serde_json::Value::Object(mut fields) = value else {
        return err(path, "must be an object with a \"kind\" field");
    };
    let kind = match fields.remove("kind") {
        Some(serde_json::Value::String(kind)) => kind,
        Some(_) => return err(format!("{path}.kind"), "must be a string"),
        None => return err(format!("{path}.kind"), "is missing"),
    };
    let mut outer = serde_json::Map::new();
    outer.insert(kind.clone(), serde_json::Value::Object(fields));
    serde_path_to_error::deserialize(serde_json::Value::Object(outer)).map_err(|e| {
        let inner_path = e.path().to_string();
        let inner = e.into_inner();
        // Only the variant name is at the root, so an error there is about `kind`.
        let located = match inner_path.strip_prefix(kind.as_str()) {
            Some(rest) if !rest.is_empty() => format!("{path}{rest}"),
            _ => format!("{path}.kind"),
        };
        ScenarioError { path: located, reason: without_position(&inner) }
    })
}

/// serde_path_to_error writes `.` for the root and `?` where it lost track.
fn located(root: &str, path: &str) -> String {
    match path {
        "." | "?" | "" => root.to_string(),
        p => p.to_string(),
    }
}

/// A serde_json error's message without its trailing "at line L column C", and with Rust's
/// type names turned into words an author knows.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" at line ") {
        Some(i) => &text[..i],
        None => &text,
    };
    // serde names our private types ("struct RawQueue"); an author knows them as objects.
    let text = match text.find("struct Raw") {
        Some(i) => format!("{}an object", &text[..i]),
        None => text.to_string(),
    };
    text.replace("expected i64", "expected a whole number")
        .replace("expected u64", "expected a whole number ≥ 0")
        .replace("expected f64", "expected a number")
}

/// Milliseconds (possibly fractional) to a duration, checked to be finite, ≥ 0 and ≤ `max`.
fn ms(path: &str, value: f64, max: f64) -> Result<Duration, ScenarioError> {
    if !value.is_finite() {
        return err(path, "must be a finite number of milliseconds");
    }
    if value < 0.0 {
        return err(path, "must not be negative");
    }
    if value > max {
        return err(path, format!("must be at most {max} ms"));
    }
    Ok(micros_of(value * 1000.0))
}

/// Rounds a non-negative, finite, bounded microsecond count to an integer.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn micros_of(us: f64) -> Duration {
    Duration::from_micros(libm::round(us) as u64)
}

#[allow(clippy::cast_precision_loss)]
fn as_f64(n: u64) -> f64 {
    n as f64
}

fn check_count(path: &str, n: usize, min: usize, max: usize) -> Result<(), ScenarioError> {
    if n < min {
        return err(path, format!("needs at least {min} entry"));
    }
    if n > max {
        return err(path, format!("has {n} entries; the limit is {max}"));
    }
    Ok(())
}

/// A valid name that no earlier entry of the same list (`taken`) has.
fn check_new_name<'a>(
    path: &str,
    name: &str,
    mut taken: impl Iterator<Item = &'a String>,
    kind: &str,
) -> Result<(), ScenarioError> {
    check_name(path, name)?;
    if taken.any(|other| other == name) {
        return err(path, format!("\"{name}\" is already the name of another {kind}"));
    }
    Ok(())
}

fn check_name(path: &str, name: &str) -> Result<(), ScenarioError> {
    if name.trim().is_empty() {
        return err(path, "must not be empty");
    }
    if name.chars().count() > limits::NAME_CHARS_MAX {
        return err(path, format!("must be at most {} characters", limits::NAME_CHARS_MAX));
    }
    if name.chars().any(char::is_control) {
        return err(path, "must not contain control characters");
    }
    Ok(())
}

/// Indices are bounded by the limits above, so they always fit in u32.
pub(crate) fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------------------------
// Presets: every file in scenarios/, embedded at build time (see build.rs).

/// A built-in scenario: its file stem as id, and its JSON text.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    pub id: &'static str,
    pub json: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/presets.rs"));

/// All presets, ordered by id.
pub fn presets() -> &'static [Preset] {
    PRESETS
}

pub fn preset(id: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.id == id)
}
