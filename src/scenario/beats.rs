//! Narrative beats as authors write them, checked into the model: what each beat is anchored
//! to (a moment, an event, a counter moving) and what it expects to be true there. The engine
//! side is `crate::beats`.
//!
//! ```json
//! { "on": {"event": "dead_lettered", "queue": "orders", "nth": 1},
//!   "text": "…", "expect": {"queue": "orders.dlq", "dead_lettered_at_least": 1} }
//! ```

use super::raw;
use super::validate::{err, ms};
use super::{index_u32, limits, Scenario, ScenarioError};
use crate::fields::{Field, EVENTS};
use crate::message::StateKind;
use crate::time::SimTime;
use crate::trace::GroupPhase;
use serde_json::{Map, Value};

/// A beat: where the page pauses, what it says, and what is true there.
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    pub text: String,
    pub anchor: Anchor,
    pub expect: Vec<Expect>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Anchor {
    /// A moment of simulated time.
    At(SimTime),
    /// The `nth` event of a kind, with some fields fixed, after the previous beat.
    On(EventAnchor),
    /// A counter moving, to at least `at_least`, after the previous beat.
    Counter { counter: Counter, at_least: u64 },
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventAnchor {
    /// The event's tag (`TraceEvent::tag`).
    pub tag: u8,
    /// Fields and the values they must have: ids, counts, or a word's code.
    pub conditions: Vec<(&'static str, u64)>,
    pub nth: u32,
    /// As the author wrote it, for a report that it never happened: `dead_lettered (queue orders)`.
    pub description: String,
}

impl EventAnchor {
    /// `dead_lettered (queue orders)`, or with an `nth`: `the 3rd dead_lettered … (2 happened)`.
    pub fn describe(&self, seen: u32) -> String {
        if self.nth == 1 {
            let vowel = self.description.starts_with(['a', 'e', 'i', 'o', 'u']);
            return format!("{} {}", if vowel { "an" } else { "a" }, self.description);
        }
        format!("the {} {} ({seen} happened)", ordinal(self.nth), self.description)
    }
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The run's counters, as the page's badges show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    Lost,
    AppliedTwice,
    OrderViolated,
    DuplicatesSuppressed,
    LeaseExpiredMidProcessing,
    DeadLettered,
    Expired,
}

impl Counter {
    pub const ALL: [Counter; 7] = [
        Counter::Lost,
        Counter::AppliedTwice,
        Counter::OrderViolated,
        Counter::DuplicatesSuppressed,
        Counter::LeaseExpiredMidProcessing,
        Counter::DeadLettered,
        Counter::Expired,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::Lost => "lost",
            Counter::AppliedTwice => "applied_twice",
            Counter::OrderViolated => "order_violated",
            Counter::DuplicatesSuppressed => "duplicates_suppressed",
            Counter::LeaseExpiredMidProcessing => "lease_expired_mid_processing",
            Counter::DeadLettered => "dead_lettered",
            Counter::Expired => "expired",
        }
    }
}

/// One thing a beat expects, with its path for the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Expect {
    pub path: String,
    pub subject: Subject,
    pub test: Test,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    Counter(Counter),
    Queue(u32),
    Consumer(u32),
    Msg(u32),
    Group(u32),
    Saga(u32),
    System(u32),
    Topic(u32),
    Dependency(u32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Test {
    AtLeast(String, u64),
    AtMost(String, u64),
    /// A state, phase or word: `crashed`, `PreparingRebalance`, `dead_lettered`, `down`.
    Is(&'static str),
}

const NTH_MAX: u64 = 100_000;
const EXPECTS_MAX: usize = 8;
const CONSUMER_STATES: [&str; 5] = ["crashed", "up", "busy", "idle", "standby"];

pub(super) fn markers(raw: Vec<raw::Marker>, s: &Scenario) -> Result<Vec<Marker>, ScenarioError> {
    super::validate::check_count("markers", raw.len(), 0, limits::MARKERS_MAX)?;
    let mut out: Vec<Marker> = Vec::with_capacity(raw.len());
    let mut last_at: Option<SimTime> = None;
    for (i, m) in raw.into_iter().enumerate() {
        let path = format!("markers[{i}]");
        let len = m.text.chars().count();
        if m.text.trim().is_empty() || len > limits::MARKER_CHARS_MAX {
            return err(format!("{path}.text"), format!("must be 1 to {} characters", limits::MARKER_CHARS_MAX));
        }
        let anchor = match (m.at_ms, m.on) {
            (Some(at_ms), None) => {
                // A beat past the end is not an error: a run reports it as not reached, so that
                // shortening `duration_ms` does not mean deleting every later beat first.
                #[allow(clippy::cast_precision_loss)]
                let max = limits::DURATION_MS_MAX as f64;
                let at = SimTime::ZERO.after(ms(&format!("{path}.at_ms"), at_ms, max)?);
                if last_at.is_some_and(|prev| prev >= at) {
                    return err(format!("{path}.at_ms"), "markers must be in time order, one per moment");
                }
                last_at = Some(at);
                Anchor::At(at)
            }
            (None, Some(on)) => anchor(&format!("{path}.on"), &on, s)?,
            (Some(_), Some(_)) => return err(&path, "has both at_ms and on: a beat is at a moment or at an event"),
            (None, None) => {
                return err(&path, "needs at_ms (a moment) or on (an event, such as {\"event\": \"delivered\"})")
            }
        };
        let expect = match m.expect {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                if items.is_empty() || items.len() > EXPECTS_MAX {
                    return err(format!("{path}.expect"), format!("must have 1 to {EXPECTS_MAX} entries"));
                }
                let mut all = Vec::new();
                for (j, item) in items.iter().enumerate() {
                    all.extend(expect(&format!("{path}.expect[{j}]"), item, s)?);
                }
                all
            }
            Some(item) => expect(&format!("{path}.expect"), &item, s)?,
        };
        out.push(Marker { text: m.text, anchor, expect });
    }
    Ok(out)
}

fn anchor(path: &str, on: &Map<String, Value>, s: &Scenario) -> Result<Anchor, ScenarioError> {
    if let Some(counter) = on.get("counter") {
        if let Some(key) = on.keys().find(|k| !matches!(k.as_str(), "counter" | "at_least")) {
            return err(format!("{path}.{key}"), "a counter anchor takes only counter and at_least");
        }
        let counter = counter_named(&format!("{path}.counter"), counter)?;
        let at_least = match on.get("at_least") {
            None => 1,
            Some(v) => whole(&format!("{path}.at_least"), v, 1, u64::MAX >> 11)?,
        };
        return Ok(Anchor::Counter { counter, at_least });
    }
    let Some(event) = on.get("event") else {
        return err(format!("{path}.event"), "is missing: name an event of the trace, or a counter");
    };
    let Some(&(kind, tag, fields)) = EVENTS.iter().find(|(k, _, _)| Some(*k) == event.as_str()) else {
        let names: Vec<&str> = EVENTS.iter().map(|(k, _, _)| *k).collect();
        return err(format!("{path}.event"), format!("must be one of {}", names.join(", ")));
    };
    let nth = match on.get("nth") {
        None => 1,
        Some(v) => u32::try_from(whole(&format!("{path}.nth"), v, 1, NTH_MAX)?).unwrap_or(1),
    };
    let mut conditions = Vec::new();
    let mut words = Vec::new();
    for (key, value) in on.iter().filter(|(k, _)| !matches!(k.as_str(), "event" | "nth")) {
        let at = format!("{path}.{key}");
        // `queue` names the queue an event is about, whatever its field is called there.
        let found = fields
            .iter()
            .find(|(f, _)| f == key)
            .or_else(|| (key == "queue").then(|| fields.iter().find(|(_, t)| *t == Field::Queue)).flatten());
        let Some(&(field, ty)) = found else {
            let names: Vec<&str> = fields.iter().filter(|(_, t)| *t != Field::Time).map(|(f, _)| *f).collect();
            return err(at, format!("{kind} has no field {key}; it has {}", names.join(", ")));
        };
        conditions.push((field, field_value(&at, ty, value, on, s)?));
        words.push(format!("{key} {}", plain(value)));
    }
    let description = if words.is_empty() { kind.to_string() } else { format!("{kind} ({})", words.join(", ")) };
    Ok(Anchor::On(EventAnchor { tag, conditions, nth, description }))
}

/// A JSON value as an author reads it: strings without quotes.
fn plain(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_string)
}

/// The value an anchor's field must have, as the trace holds it.
// long: one arm per kind of field an anchor can name, each resolving the author's word to its code
fn field_value(
    path: &str,
    ty: Field,
    value: &Value,
    on: &Map<String, Value>,
    s: &Scenario,
) -> Result<u64, ScenarioError> {
    let named = |list: Vec<&str>, what: &str| -> Result<u64, ScenarioError> {
        let Some(name) = value.as_str() else { return err(path, format!("must be the name of a {what}")) };
        match list.iter().position(|n| *n == name) {
            Some(i) => Ok(u64::from(index_u32(i))),
            None => err(path, format!("no {what} is named \"{name}\"")),
        }
    };
    // A member or a step is named within its group or saga, which the anchor must also name.
    let within = |key: &str, what: &str| -> Result<usize, ScenarioError> {
        let names: Vec<&str> = match key {
            "group" => s.groups.iter().map(|g| g.name.as_str()).collect(),
            "saga" => s.sagas.iter().map(|g| g.name.as_str()).collect(),
            _ => s.request_reply.iter().map(|g| g.name.as_str()).collect(),
        };
        on.get(key)
            .and_then(Value::as_str)
            .and_then(|n| names.iter().position(|x| *x == n))
            .map_or_else(|| err(path, format!("names a {what}, so the anchor must name its {key} too")), Ok)
    };
    let numbered = |prefix: String, max: u32| -> Result<u64, ScenarioError> {
        let n = value.as_str().and_then(|v| v.strip_prefix(prefix.as_str())).and_then(|n| n.parse::<u32>().ok());
        match n.filter(|n| (1..=max).contains(n)) {
            Some(n) => Ok(u64::from(n - 1)),
            None => err(path, format!("must be \"{prefix}1\" to \"{prefix}{max}\"")),
        }
    };
    match ty {
        Field::Num => whole(path, value, 0, u64::MAX >> 11),
        Field::Time => err(path, "is a time: anchor on the event, and let the run say when"),
        Field::Msg => super::validate::message_id(path, value).map(u64::from),
        Field::Queue => named(s.queues.iter().map(|q| q.name.as_str()).collect(), "queue"),
        Field::Consumer => named(s.consumers.iter().map(|q| q.name.as_str()).collect(), "consumer"),
        Field::Producer => named(s.producers.iter().map(|q| q.name.as_str()).collect(), "producer"),
        Field::Group => named(s.groups.iter().map(|q| q.name.as_str()).collect(), "group"),
        Field::Topic => named(s.topics.iter().map(|q| q.name.as_str()).collect(), "topic"),
        Field::Exchange => named(s.topology.exchanges.iter().map(|x| x.name.as_str()).collect(), "exchange"),
        Field::RoutingKey => {
            named(s.topology.keys.iter().map(String::as_str).collect(), "routing key messages are sent with")
        }
        Field::Dependency => named(s.dependencies.iter().map(|q| q.name.as_str()).collect(), "dependency"),
        Field::Saga => named(s.sagas.iter().map(|q| q.name.as_str()).collect(), "saga"),
        Field::Alert => named(s.alerts.iter().map(|a| a.name.as_str()).collect(), "alert"),
        Field::System => named(s.request_reply.iter().map(|q| q.name.as_str()).collect(), "request-reply system"),
        Field::Member => {
            let g = within("group", "member")?;
            numbered(format!("{}-", s.groups[g].name), limits::GROUP_MEMBERS_MAX)
        }
        Field::Requester => {
            let r = within("system", "requester")?;
            numbered(format!("{}.requester-", s.request_reply[r].name), limits::WORKFLOW_INSTANCES_MAX)
        }
        Field::Step => {
            let g = within("saga", "step")?;
            named(s.sagas[g].steps.iter().map(|st| st.service.as_str()).collect(), "service in this saga")
        }
        Field::Text(words) => {
            let found = value.as_str().and_then(|w| words.iter().find(|(_, text)| *text == w));
            match found {
                Some((code, _)) => Ok(u64::from(*code)),
                None => {
                    let all: Vec<String> = words.iter().map(|(_, w)| format!("\"{w}\"")).collect();
                    err(path, format!("must be one of {}", all.join(", ")))
                }
            }
        }
    }
}

fn counter_named(path: &str, value: &Value) -> Result<Counter, ScenarioError> {
    match Counter::ALL.iter().find(|c| Some(c.name()) == value.as_str()) {
        Some(c) => Ok(*c),
        None => {
            let names: Vec<&str> = Counter::ALL.iter().map(|c| c.name()).collect();
            err(path, format!("must be one of {}", names.join(", ")))
        }
    }
}

fn whole(path: &str, value: &Value, min: u64, max: u64) -> Result<u64, ScenarioError> {
    match value.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => err(path, format!("must be a whole number from {min} to {max}")),
    }
}

/// One `expect` object: a subject (`queue`, `counter`, …) and what is true of it.
// long: one arm per kind of expectation, each checking its fields with their paths
fn expect(path: &str, value: &Value, s: &Scenario) -> Result<Vec<Expect>, ScenarioError> {
    const SUBJECTS: [&str; 9] =
        ["counter", "queue", "consumer", "msg", "group", "saga", "system", "topic", "dependency"];
    let Value::Object(map) = value else {
        return err(path, "must be an object such as {\"counter\": \"lost\", \"at_least\": 1}");
    };
    let mut subjects = map.keys().filter(|k| SUBJECTS.contains(&k.as_str()));
    let (Some(key), None) = (subjects.next(), subjects.next()) else {
        return err(path, format!("must name exactly one of {}", SUBJECTS.join(", ")));
    };
    let name = &map[key];
    let at = format!("{path}.{key}");
    let index = |list: Vec<&str>, what: &str| -> Result<u32, ScenarioError> {
        let found = name.as_str().and_then(|n| list.iter().position(|x| *x == n));
        found.map(index_u32).map_or_else(|| err(&at, format!("must name a {what} of this scenario")), Ok)
    };
    let names = |f: fn(&Scenario) -> Vec<&str>| f(s);
    let (subject, numbers, words): (Subject, Vec<String>, Vec<&'static str>) = match key.as_str() {
        "counter" => (Subject::Counter(counter_named(&at, name)?), vec![String::new()], vec![]),
        "queue" => {
            let q = index(names(|s| s.queues.iter().map(|q| q.name.as_str()).collect()), "queue")?;
            let mut states: Vec<String> = StateKind::NAMES.iter().map(|n| (*n).to_string()).collect();
            states.push("in_flight".to_string());
            (Subject::Queue(q), states, vec![])
        }
        "consumer" => {
            let c = index(names(|s| s.consumers.iter().map(|q| q.name.as_str()).collect()), "consumer")?;
            (Subject::Consumer(c), vec!["jobs".to_string()], CONSUMER_STATES.to_vec())
        }
        "msg" => {
            let m = u32::try_from(whole(&at, name, 0, u64::from(u32::MAX))?).unwrap_or(0);
            (Subject::Msg(m), vec![], StateKind::NAMES.to_vec())
        }
        "group" => {
            let g = index(names(|s| s.groups.iter().map(|q| q.name.as_str()).collect()), "group")?;
            let mut fields = keys_of(&crate::stats::GroupStats::default());
            fields.extend(["generation", "members", "lag"].map(String::from));
            (Subject::Group(g), fields, GroupPhase::TEXTS.iter().map(|(_, t)| *t).collect())
        }
        "saga" => {
            let g = index(names(|s| s.sagas.iter().map(|q| q.name.as_str()).collect()), "saga")?;
            let mut fields = keys_of(&crate::stats::SagaStats::default());
            fields.extend(["running", "compensating", "open_windows"].map(String::from));
            (Subject::Saga(g), fields, vec![])
        }
        "system" => {
            let r =
                index(names(|s| s.request_reply.iter().map(|q| q.name.as_str()).collect()), "request-reply system")?;
            let mut fields = keys_of(&crate::stats::RequestStats::default());
            fields.push("pending".to_string());
            (Subject::System(r), fields, vec![])
        }
        "topic" => {
            let t = index(names(|s| s.topics.iter().map(|q| q.name.as_str()).collect()), "topic")?;
            (Subject::Topic(t), ["retained", "log_end", "log_start"].map(String::from).to_vec(), vec![])
        }
        _ => {
            let d = index(names(|s| s.dependencies.iter().map(|q| q.name.as_str()).collect()), "dependency")?;
            (Subject::Dependency(d), keys_of(&crate::stats::DependencyCalls::default()), vec!["up", "down"])
        }
    };
    let mut out = Vec::new();
    for (k, v) in map.iter().filter(|(k, _)| *k != key) {
        let at = format!("{path}.{k}");
        let bound = |suffix: &str| {
            let field = if k == suffix { Some("") } else { k.strip_suffix(&format!("_{suffix}")) };
            field.filter(|f| numbers.iter().any(|n| n == f)).map(str::to_string)
        };
        let test = if let Some(field) = bound("at_least") {
            Test::AtLeast(field, whole(&at, v, 0, u64::MAX >> 11)?)
        } else if let Some(field) = bound("at_most") {
            Test::AtMost(field, whole(&at, v, 0, u64::MAX >> 11)?)
        } else if matches!(k.as_str(), "state" | "phase") && !words.is_empty() {
            match words.iter().find(|w| Some(**w) == v.as_str()) {
                Some(w) => Test::Is(w),
                None => return err(at, format!("must be one of {}", words.join(", "))),
            }
        } else if k == "up" && matches!(subject, Subject::Dependency(_)) {
            match v.as_bool() {
                Some(up) => Test::Is(if up { "up" } else { "down" }),
                None => return err(at, "must be true or false"),
            }
        } else {
            let mut can: Vec<String> = numbers
                .iter()
                .flat_map(|n| {
                    if n.is_empty() {
                        vec!["at_least".to_string(), "at_most".to_string()]
                    } else {
                        vec![format!("{n}_at_least"), format!("{n}_at_most")]
                    }
                })
                .collect();
            if !words.is_empty() {
                can.push(if matches!(subject, Subject::Group(_)) { "phase" } else { "state" }.to_string());
            }
            if matches!(subject, Subject::Dependency(_)) {
                can.push("up".to_string());
            }
            return err(at, format!("is not something a {key} has; it takes {}", can.join(", ")));
        };
        out.push(Expect { path: at, subject, test });
    }
    if out.is_empty() {
        return err(path, format!("says nothing about its {key}: add a bound such as at_least"));
    }
    Ok(out)
}

/// A statistics struct's field names, as it serializes.
fn keys_of<T: serde::Serialize>(stats: &T) -> Vec<String> {
    match serde_json::to_value(stats) {
        Ok(Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}
