//! Streams in a scenario: Kafka-style topics and consumer groups (issue 4), their JSON shape,
//! and their validation. Defaults cite `../shared/semantics.md` (KP-*, KC-*).

use super::validate::{check_count, check_new_name, dist, err, ms, probability, within_duration};
use super::{limits, Dist, ScenarioError};
use crate::kafka::assignor::Assignor;
use crate::rng::Ratio;
use crate::time::{Duration, SimTime};
use serde::Deserialize;
use serde_json::Value;

// --- The model ---------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicKind {
    /// A retained, replayable log.
    Log,
    /// A transient channel: a record reaches the groups subscribed when it is published and is
    /// gone once they have it; a late subscriber sees nothing of the past.
    PubSub,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicRole {
    Main,
    /// `<topic>.retry.<level>`: records wait `delay` here before another attempt.
    Retry {
        of: u32,
        level: u32,
        delay: Duration,
    },
    /// `<topic>.dlq`: records whose last retry failed.
    DeadLetter {
        of: u32,
    },
}

/// KP-6: where a record without a key goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NullKeys {
    /// Kafka ≥ 3.3: stay on one partition until `batch_bytes` were sent to it, then draw the
    /// next uniformly at random (it may be the same one).
    Sticky { batch_bytes: u32 },
    /// Before Kafka 2.4: one partition after another.
    RoundRobin,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: u32,
    pub kind: TopicKind,
    pub role: TopicRole,
    /// `retention.ms` (KC-11); `None` keeps records forever.
    pub retention: Option<Duration>,
    /// `retention.bytes`, per partition (KC-12); `None` for no limit.
    pub retention_bytes: Option<u64>,
    /// The size of each record, for size retention and segments.
    pub record_bytes: u32,
    /// `segment.bytes`: a new segment starts when the active one reaches this size (KC-12).
    pub segment_bytes: u64,
    /// `cleanup.policy` (KC-10): delete, compact, or both.
    pub delete: bool,
    pub compact: bool,
    /// `delete.retention.ms`: how long a tombstone outlives its cleaning (KC-13).
    pub delete_retention: Duration,
    /// How often retention (`retention.check.interval.ms`) and the cleaner look at the log.
    pub check_every: Duration,
    pub null_keys: NullKeys,
}

/// Where a producer sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Queue(u32),
    Topic(u32),
    /// A RabbitMQ exchange (`DEFAULT_EXCHANGE` for `""`); what it publishes is its `publish`.
    Exchange(u32),
}

/// A producer's record keys: `count` keys `key-0`…; one of them can be hot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySpec {
    pub count: u32,
    /// The share of all records that carry `key-0`; the rest are spread evenly.
    pub hot_share: Ratio,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitMode {
    /// Process the batch a poll returned, then commit: at-least-once (KC-6).
    AfterProcessing,
    /// Commit what a poll returned, then process it: at-most-once (KC-6).
    BeforeProcessing,
    /// `enable.auto.commit`: at a poll, commit the positions if `interval` has passed (KC-7).
    Auto { interval: Duration },
}

/// KC-9: where a group with no committed offset starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GroupSpec {
    pub name: String,
    /// The main topic, then its retry topics in order.
    pub topics: Vec<u32>,
    /// Where records go when the last retry fails, if there are retry topics.
    pub dead_letter: Option<u32>,
    /// Members at the start (named `<group>-1`, …).
    pub members: u32,
    pub assignor: Assignor,
    pub commit: CommitMode,
    pub offset_reset: OffsetReset,
    /// `max.poll.records` (KC-4: 500).
    pub max_poll_records: u32,
    pub processing: Dist,
    /// The chance that processing a record fails (it then moves on to the next retry topic,
    /// or is tried again in place). A poison record always fails.
    pub error_rate: Ratio,
    /// Retrying a failed record where it stands, as Spring Kafka's `DefaultErrorHandler` does
    /// with a `FixedBackOff`: the partition waits behind it; after the last attempt it goes
    /// to `<topic>.dlq`. `None`: failures go through retry topics.
    pub retry_in_place: Option<InPlaceRetry>,
    /// `session.timeout.ms` (KC-4: 45 s) and `heartbeat.interval.ms` (3 s).
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms` (KC-4: 300 s): a member that goes longer between polls leaves
    /// the group (KC-14); it is also how long the coordinator waits for members to rejoin a
    /// rebalance (KC-18).
    pub max_poll_interval: Duration,
    /// `group.initial.rebalance.delay.ms` (3 s): the first rebalance of an empty group waits
    /// this long for more members.
    pub initial_rebalance_delay: Duration,
    /// How long the leader's SyncGroup round takes, so that CompletingRebalance is visible.
    pub sync_time: Duration,
    /// When the group starts consuming: a group added later needs no change to the producer.
    pub start: SimTime,
}

/// A failed record tried again in place: `attempts_max` attempts in all, `backoff` apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InPlaceRetry {
    pub attempts_max: u32,
    pub backoff: Duration,
}

// --- The JSON shape ----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInPlace {
    pub attempts_max: i64,
    #[serde(default)]
    pub backoff_ms: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopic {
    pub name: String,
    pub partitions: i64,
    #[serde(default)]
    pub kind: Option<String>,
    /// Milliseconds, or -1 for no limit (KC-11: 7 days by default).
    #[serde(default)]
    pub retention_ms: Option<f64>,
    #[serde(default)]
    pub retention_bytes: Option<i64>,
    #[serde(default)]
    pub record_bytes: Option<i64>,
    #[serde(default)]
    pub segment_bytes: Option<i64>,
    #[serde(default)]
    pub cleanup_policy: Option<String>,
    #[serde(default)]
    pub delete_retention_ms: Option<f64>,
    #[serde(default)]
    pub check_every_ms: Option<f64>,
    #[serde(default)]
    pub null_keys: Option<String>,
    #[serde(default)]
    pub batch_bytes: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeys {
    pub count: i64,
    #[serde(default)]
    pub hot_key_share: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub name: String,
    pub topic: String,
    #[serde(default = "one")]
    pub members: i64,
    #[serde(default)]
    pub assignor: Option<String>,
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default)]
    pub auto_commit_interval_ms: Option<f64>,
    #[serde(default)]
    pub offset_reset: Option<String>,
    #[serde(default)]
    pub max_poll_records: Option<i64>,
    #[serde(default)]
    pub processing: Option<Value>,
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default)]
    pub retry_delays_ms: Vec<f64>,
    #[serde(default)]
    pub retry_in_place: Option<RawInPlace>,
    #[serde(default)]
    pub session_timeout_ms: Option<f64>,
    #[serde(default)]
    pub heartbeat_interval_ms: Option<f64>,
    #[serde(default)]
    pub max_poll_interval_ms: Option<f64>,
    #[serde(default)]
    pub initial_rebalance_delay_ms: Option<f64>,
    #[serde(default)]
    pub sync_ms: Option<f64>,
    #[serde(default)]
    pub start_ms: f64,
}

fn one() -> i64 {
    1
}

// --- Validation --------------------------------------------------------------------------------

fn choice<T: Copy>(path: &str, value: Option<&str>, default: T, options: &[(&str, T)]) -> Result<T, ScenarioError> {
    let Some(v) = value else { return Ok(default) };
    match options.iter().find(|(name, _)| *name == v) {
        Some((_, t)) => Ok(*t),
        None => {
            let names: Vec<String> = options.iter().map(|(n, _)| format!("\"{n}\"")).collect();
            err(path, format!("\"{v}\" is not one of {}", names.join(", ")))
        }
    }
}

fn whole(path: &str, value: Option<i64>, default: u64, min: u64, max: u64) -> Result<u64, ScenarioError> {
    match value.map(u64::try_from) {
        None => Ok(default),
        Some(Ok(n)) if (min..=max).contains(&n) => Ok(n),
        Some(_) => err(path, format!("must be a whole number from {min} to {max}")),
    }
}

fn small(path: &str, value: Option<i64>, default: u32, min: u32, max: u32) -> Result<u32, ScenarioError> {
    let n = whole(path, value, u64::from(default), u64::from(min), u64::from(max))?;
    Ok(u32::try_from(n).unwrap_or(max))
}

fn opt_ms(path: &str, value: Option<f64>, default_ms: u64, max_ms: u64) -> Result<Duration, ScenarioError> {
    match value {
        None => Ok(Duration::from_millis(default_ms)),
        #[allow(clippy::cast_precision_loss)]
        Some(v) => ms(path, v, max_ms as f64),
    }
}

/// The author's topics; retry and dead-letter topics are added by `groups`.
// long: one check per field of a topic, in the schema's order, each naming its path
pub(super) fn topics(raw: Vec<RawTopic>, queue_names: &[String]) -> Result<Vec<TopicSpec>, ScenarioError> {
    check_count("topics", raw.len(), 0, limits::TOPICS_MAX)?;
    let mut out: Vec<TopicSpec> = Vec::with_capacity(raw.len());
    for (i, t) in raw.into_iter().enumerate() {
        let at = format!("topics[{i}]");
        check_new_name(&format!("{at}.name"), &t.name, out.iter().map(|x| &x.name), "topic")?;
        if queue_names.contains(&t.name) {
            return err(format!("{at}.name"), format!("\"{}\" is already the name of a queue", t.name));
        }
        if t.name.ends_with(".dlq") || t.name.contains(".retry.") {
            return err(
                format!("{at}.name"),
                "names with \".retry.\" or ending in \".dlq\" are kept for the topics Brokerlab makes",
            );
        }
        let partitions = small(&format!("{at}.partitions"), Some(t.partitions), 1, 1, limits::PARTITIONS_MAX)?;
        let kind = choice(
            &format!("{at}.kind"),
            t.kind.as_deref(),
            TopicKind::Log,
            &[("log", TopicKind::Log), ("pubsub", TopicKind::PubSub)],
        )?;
        // KC-11: 7 days by default; -1 means no limit.
        let retention = match t.retention_ms {
            Some(v) if v < 0.0 && (v + 1.0).abs() < f64::EPSILON => None,
            v => Some(opt_ms(&format!("{at}.retention_ms"), v, 604_800_000, 10 * limits::DURATION_MS_MAX)?),
        };
        let retention_bytes = match t.retention_bytes {
            None | Some(-1) => None,
            Some(v) => Some(whole(&format!("{at}.retention_bytes"), Some(v), 0, 1, 1 << 50)?),
        };
        let record_bytes = small(&format!("{at}.record_bytes"), t.record_bytes, 1024, 1, 1 << 20)?;
        // KC-12: 1 GiB.
        let segment_bytes = whole(&format!("{at}.segment_bytes"), t.segment_bytes, 1 << 30, 1, 1 << 40)?;
        let (delete, compact) = choice(
            &format!("{at}.cleanup_policy"),
            t.cleanup_policy.as_deref(),
            (true, false),
            &[("delete", (true, false)), ("compact", (false, true)), ("delete,compact", (true, true))],
        )?;
        // KC-13: 24 hours.
        let delete_retention =
            opt_ms(&format!("{at}.delete_retention_ms"), t.delete_retention_ms, 86_400_000, limits::DURATION_MS_MAX)?;
        // retention.check.interval.ms: 5 minutes.
        let check_every = opt_ms(&format!("{at}.check_every_ms"), t.check_every_ms, 300_000, limits::DURATION_MS_MAX)?;
        if check_every < Duration::from_millis(100) {
            return err(format!("{at}.check_every_ms"), "must be at least 100");
        }
        let null_keys = match t.null_keys.as_deref() {
            None | Some("sticky") => {
                // KP-6: batch.size, 16 KiB.
                let batch_bytes = small(&format!("{at}.batch_bytes"), t.batch_bytes, 16_384, 1, 1 << 24)?;
                NullKeys::Sticky { batch_bytes }
            }
            Some("round_robin") => NullKeys::RoundRobin,
            Some(other) => {
                return err(format!("{at}.null_keys"), format!("\"{other}\" is not one of \"sticky\", \"round_robin\""))
            }
        };
        if kind == TopicKind::PubSub && compact {
            return err(format!("{at}.cleanup_policy"), "a pubsub channel keeps nothing to compact");
        }
        out.push(TopicSpec {
            name: t.name,
            partitions,
            kind,
            role: TopicRole::Main,
            retention,
            retention_bytes,
            record_bytes,
            segment_bytes,
            delete,
            compact,
            delete_retention,
            check_every,
            null_keys,
        });
    }
    Ok(out)
}

pub(super) fn keys(path: &str, raw: Option<RawKeys>) -> Result<Option<KeySpec>, ScenarioError> {
    let Some(k) = raw else { return Ok(None) };
    let count = small(&format!("{path}.count"), Some(k.count), 1, 1, limits::KEYS_MAX)?;
    let hot_share = probability(&format!("{path}.hot_key_share"), k.hot_key_share)?;
    Ok(Some(KeySpec { count, hot_share }))
}

/// The groups, adding each one's retry and dead-letter topics to `topics`.
// long: one check per field of a consumer group, in the schema's order, each naming its path
pub(super) fn groups(
    raw: Vec<RawGroup>,
    topics: &mut Vec<TopicSpec>,
    duration: Duration,
) -> Result<Vec<GroupSpec>, ScenarioError> {
    check_count("groups", raw.len(), 0, limits::GROUPS_MAX)?;
    let mut out: Vec<GroupSpec> = Vec::with_capacity(raw.len());
    for (i, g) in raw.into_iter().enumerate() {
        let at = format!("groups[{i}]");
        check_new_name(&format!("{at}.name"), &g.name, out.iter().map(|x| &x.name), "group")?;
        let Some(topic) = topics.iter().position(|t| t.name == g.topic && t.role == TopicRole::Main) else {
            return err(format!("{at}.topic"), format!("no topic is named \"{}\"", g.topic));
        };
        let topic = super::index_u32(topic);
        let members = small(&format!("{at}.members"), Some(g.members), 1, 0, limits::GROUP_MEMBERS_MAX)?;
        let names: Vec<(&str, Assignor)> = Assignor::ALL.iter().map(|a| (a.name(), *a)).collect();
        // KC-2a: the default list [range, cooperative-sticky] runs range, eagerly.
        let assignor = choice(&format!("{at}.assignor"), g.assignor.as_deref(), Assignor::Range, &names)?;
        // KC-7: auto-commit every 5 s is Kafka's default.
        let interval = opt_ms(
            &format!("{at}.auto_commit_interval_ms"),
            g.auto_commit_interval_ms,
            5_000,
            limits::DURATION_MS_MAX,
        )?;
        let commit = choice(
            &format!("{at}.commit"),
            g.commit.as_deref(),
            CommitMode::Auto { interval },
            &[
                ("after", CommitMode::AfterProcessing),
                ("before", CommitMode::BeforeProcessing),
                ("auto", CommitMode::Auto { interval }),
            ],
        )?;
        if g.auto_commit_interval_ms.is_some() && !matches!(commit, CommitMode::Auto { .. }) {
            return err(format!("{at}.auto_commit_interval_ms"), "applies only with commit: \"auto\"");
        }
        // KC-9: latest by default.
        let offset_reset = choice(
            &format!("{at}.offset_reset"),
            g.offset_reset.as_deref(),
            OffsetReset::Latest,
            &[("earliest", OffsetReset::Earliest), ("latest", OffsetReset::Latest)],
        )?;
        let max_poll_records = small(&format!("{at}.max_poll_records"), g.max_poll_records, 500, 1, 100_000)?;
        let processing = match g.processing {
            None => Dist::Constant(Duration::from_millis(10)),
            Some(v) => {
                let path = format!("{at}.processing");
                dist(&path, super::validate::tagged(&path, v, "kind")?)?
            }
        };
        let error_rate = probability(&format!("{at}.error_rate"), g.error_rate)?;
        let retry_in_place = match g.retry_in_place {
            None => None,
            Some(_) if !g.retry_delays_ms.is_empty() => {
                return err(
                    format!("{at}.retry_in_place"),
                    "a group retries in place or through retry topics (retry_delays_ms), not both",
                )
            }
            Some(r) => Some(InPlaceRetry {
                attempts_max: small(
                    &format!("{at}.retry_in_place.attempts_max"),
                    Some(r.attempts_max),
                    1,
                    1,
                    limits::ATTEMPTS_MAX,
                )?,
                backoff: ms(&format!("{at}.retry_in_place.backoff_ms"), r.backoff_ms, 3_600_000.0)?,
            }),
        };
        if error_rate.numerator > 0 && g.retry_delays_ms.is_empty() && retry_in_place.is_none() {
            return err(
                format!("{at}.error_rate"),
                "a failed record needs somewhere to go: give retry_delays_ms (one delay per retry topic) or retry_in_place",
            );
        }
        check_count(&format!("{at}.retry_delays_ms"), g.retry_delays_ms.len(), 0, limits::RETRY_TOPICS_MAX)?;
        let session_timeout = opt_ms(&format!("{at}.session_timeout_ms"), g.session_timeout_ms, 45_000, 1_800_000)?;
        let heartbeat_interval =
            opt_ms(&format!("{at}.heartbeat_interval_ms"), g.heartbeat_interval_ms, 3_000, 1_800_000)?;
        if heartbeat_interval == Duration::ZERO || heartbeat_interval >= session_timeout {
            return err(
                format!("{at}.heartbeat_interval_ms"),
                "must be greater than 0 and less than session_timeout_ms (KC-4)",
            );
        }
        let max_poll_interval =
            opt_ms(&format!("{at}.max_poll_interval_ms"), g.max_poll_interval_ms, 300_000, limits::DURATION_MS_MAX)?;
        if max_poll_interval == Duration::ZERO {
            return err(format!("{at}.max_poll_interval_ms"), "must be greater than 0");
        }
        let initial_rebalance_delay =
            opt_ms(&format!("{at}.initial_rebalance_delay_ms"), g.initial_rebalance_delay_ms, 3_000, 300_000)?;
        let sync_time = opt_ms(&format!("{at}.sync_ms"), g.sync_ms, 100, 60_000)?;
        let start = within_duration(&format!("{at}.start_ms"), g.start_ms, duration)?;

        // Retry topics as Uber, LinkedIn and Netflix run them: <topic>.retry.1 … then .dlq.
        let mut group_topics = vec![topic];
        let mut dead_letter = None;
        let main = topics[topic as usize].clone();
        let retries = if retry_in_place.is_some() { "retry_in_place" } else { "retry_delays_ms" };
        if (retry_in_place.is_some() || !g.retry_delays_ms.is_empty())
            && topics.iter().any(|t| matches!(t.role, TopicRole::DeadLetter { of } if of == topic))
        {
            return err(
                format!("{at}.{retries}"),
                format!("another group already dead-letters to {}.dlq; one group per topic may", main.name),
            );
        }
        if retry_in_place.is_some() {
            let name = format!("{}.dlq", main.name);
            dead_letter = Some(derived_topic(topics, &main, name, TopicRole::DeadLetter { of: topic }));
        }
        if !g.retry_delays_ms.is_empty() {
            for (level, &delay_ms) in g.retry_delays_ms.iter().enumerate() {
                let delay = ms(&format!("{at}.retry_delays_ms[{level}]"), delay_ms, 86_400_000.0)?;
                let level = super::index_u32(level + 1);
                let name = format!("{}.retry.{level}", main.name);
                group_topics.push(derived_topic(topics, &main, name, TopicRole::Retry { of: topic, level, delay }));
            }
            let name = format!("{}.dlq", main.name);
            dead_letter = Some(derived_topic(topics, &main, name, TopicRole::DeadLetter { of: topic }));
        }
        if topics.len() > limits::TOPICS_MAX * 4 {
            return err(format!("{at}.retry_delays_ms"), "makes too many topics in all");
        }
        out.push(GroupSpec {
            name: g.name,
            topics: group_topics,
            dead_letter,
            members,
            assignor,
            commit,
            offset_reset,
            max_poll_records,
            processing,
            error_rate,
            retry_in_place,
            session_timeout,
            heartbeat_interval,
            max_poll_interval,
            initial_rebalance_delay,
            sync_time,
            start,
        });
    }
    Ok(out)
}

/// The first group reading `topic` that has nowhere to put a failed record: a poison record
/// for it would have no outcome.
pub(super) fn cannot_fail(groups: &[GroupSpec], topic: u32) -> Option<&GroupSpec> {
    groups.iter().find(|g| g.topics.first() == Some(&topic) && g.dead_letter.is_none())
}

/// A retry or dead-letter topic for `main`: same partitions, so a key keeps its partition.
fn derived_topic(topics: &mut Vec<TopicSpec>, main: &TopicSpec, name: String, role: TopicRole) -> u32 {
    topics.push(TopicSpec { name, role, kind: TopicKind::Log, compact: false, delete: true, ..main.clone() });
    super::index_u32(topics.len() - 1)
}

/// A group name and a member name (`<group>-<n>`) to indices.
pub(super) fn member_ref(
    path: &str,
    groups: &[GroupSpec],
    group: &str,
    member: Option<&str>,
) -> Result<(u32, Option<u32>), ScenarioError> {
    let Some(g) = groups.iter().position(|x| x.name == group) else {
        return err(format!("{path}.group"), format!("no group is named \"{group}\""));
    };
    let Some(member) = member else { return Ok((super::index_u32(g), None)) };
    let n = member
        .strip_prefix(group)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| (1..=limits::GROUP_MEMBERS_MAX).contains(n));
    match n {
        Some(n) => Ok((super::index_u32(g), Some(n - 1))),
        None => err(
            format!("{path}.member"),
            format!("members are named \"{group}-1\" to \"{group}-{}\"", limits::GROUP_MEMBERS_MAX),
        ),
    }
}
