//! Streams, as Kafka does them (issue 4): topics of partitioned, append-only logs with
//! offsets, retention by time and size, compaction; consumer groups that move through Empty,
//! PreparingRebalance, CompletingRebalance and Stable, assign partitions with the real
//! assignors, poll, process, commit, and rebalance eagerly or cooperatively.
//!
//! The member loop follows the Java consumer: everything a member does to its partitions
//! (rejoining, revoking, taking new ones, committing) happens inside `poll`, which it calls
//! when it has processed the batch the previous poll returned. A crashed member stops at once;
//! the coordinator notices at its session timeout. `Streams` is a component: it owns its
//! topics and groups and handles its events in `Streams::handle(cx, StreamEvent)`, writing to
//! the outbox of the `Ctx` the driver lends it; nothing here knows the rest of the run.
//!
//! `log` stores the partitions, `coordinator` runs the groups, `member` is each member's loop.

mod coordinator;
mod log;
mod member;

use crate::dist::{draw_key, sample};
use crate::event::{Ctx, Event, StreamEvent};
use crate::ids::{MemberId, ProducerId};
use crate::kafka::assignor::{self, TopicPartition, NO_GENERATION};
use crate::kafka::partitioner::partition_for_key;
use crate::rng::Prng;
use crate::scenario::{CommitMode, GroupSpec, NullKeys, OffsetReset, Scenario, TopicKind, TopicRole, TopicSpec};
use crate::stats::GroupStats;
use crate::time::{Duration, SimTime};
use crate::trace::{GroupPhase, LossReason, MemberChange, RecordOutcome, RevokeReason, TraceEvent};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A partition of a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Part {
    pub topic: u32,
    pub partition: u32,
}

/// The producer id of records a group forwards to a retry or dead-letter topic.
pub const FORWARDED: u32 = u32::MAX - 1;
/// The key of a record without one.
pub const NULL_KEY: u32 = u32::MAX;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The logical record: the same through retry topics, so order is checked across them.
    pub id: u32,
    pub key: Option<u32>,
    pub tombstone: bool,
    pub at: SimTime,
    /// Still in the log: not past retention, not compacted away.
    pub retained: bool,
    /// It fails every time it is processed (a payload no consumer can parse).
    pub poison: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub base: u64,
    pub end: u64,
    pub bytes: u64,
    pub largest_at: SimTime,
}

/// One partition's log. Offsets are indices into `records` and never change (KC-13).
#[derive(Clone, Debug, Default)]
pub struct Log {
    pub records: crate::cow::CowVec<Record>,
    pub log_start: u64,
    /// Oldest first; the last is the active segment.
    pub segments: VecDeque<Segment>,
    /// The cleaner's checkpoint: below it the log has been compacted.
    pub cleaned_to: u64,
    pub deleted: u64,
    pub compacted: u64,
}

impl Log {
    pub fn end(&self) -> u64 {
        self.records.len() as u64
    }

    fn record(&self, offset: u64) -> &Record {
        &self.records[usize::try_from(offset).unwrap_or(usize::MAX)]
    }

    /// The first retained offset at or after `from` (a compacted offset reads as the next).
    fn next_retained(&self, from: u64) -> u64 {
        (from.max(self.log_start)..self.end()).find(|&o| self.record(o).retained).unwrap_or(self.end())
    }

    pub fn retained(&self) -> u64 {
        self.end() - self.deleted - self.compacted
    }
}

#[derive(Clone, Debug)]
pub struct Topic {
    pub logs: Vec<Log>,
    /// KP-6: the sticky partition for null keys and the bytes sent to it.
    sticky: Option<(u32, u64)>,
    round_robin: u32,
    prng: Prng,
}

#[derive(Clone, Debug)]
pub struct Member {
    pub alive: bool,
    /// The coordinator counts it (a crashed member stays until its session times out).
    pub in_group: bool,
    pub epoch: u32,
    /// What it consumes now, and the generation it got them in.
    pub owned: Vec<Part>,
    pub owned_generation: i32,
    /// Rejoined the rebalance in progress.
    pub joined: bool,
    pub leaving: bool,
    /// What the leader assigned it in the rebalance being completed (before SyncGroup).
    pub proposed: Option<Vec<Part>>,
    /// The assignment of the last completed rebalance, taken up at its next poll.
    pub assignment: Option<Vec<Part>>,
    /// Eager: blocked in poll until the rebalance completes.
    pub blocked: bool,
    /// Idle in poll, waiting for records.
    pub waiting: bool,
    pub batch: VecDeque<(Part, u64)>,
    /// The record being processed and when it will be done.
    pub current: Option<(Part, u64, SimTime)>,
    /// The next offset to fetch, per owned partition.
    pub positions: BTreeMap<Part, u64>,
    /// When it last joined: heartbeats run every `heartbeat.interval.ms` from here.
    pub heartbeat_base: SimTime,
    pub last_auto_commit: SimTime,
    /// A wake-up already scheduled for a record that is not due yet.
    pub wake_at: Option<SimTime>,
    pub fetch_cursor: usize,
    /// KC-14: when it last called poll, how many polls it has made (so that a stale poll
    /// timer is ignored), and whether a timer is set for this one.
    pub last_poll: SimTime,
    pub polls: u32,
    pub poll_timer: bool,
    /// Attempts at the current record so far, when it retries in place.
    pub attempt: u32,
    /// The eager sticky assignor's userData: the assignment this process last took and its
    /// generation, which an eager revocation does not erase (KA-7).
    pub remembered: (Vec<Part>, i32),
    pub prng: Prng,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub phase: GroupPhase,
    pub generation: i32,
    pub started: bool,
    pub members: Vec<Member>,
    pub committed: BTreeMap<Part, u64>,
    /// Rebalance rounds, so that a stale timer is ignored.
    round: u32,
    /// The first rebalance of an empty group completes no earlier than this.
    hold_until: SimTime,
    /// Per partition, how often each offset has been handled, from where the group started.
    handled: BTreeMap<Part, (u64, crate::cow::CowVec<u8>)>,
    /// Per partition, below this offset every record has been accounted for.
    accounted_to: BTreeMap<Part, u64>,
    /// Logical records handled successfully, and per key the newest of them.
    done: BTreeSet<u32>,
    newest_by_key: BTreeMap<u32, u32>,
    /// Who last owned each partition, so that a move to another member is counted.
    last_owner: BTreeMap<Part, MemberId>,
    pub stats: GroupStats,
}

#[derive(Clone, Debug)]
pub struct Streams {
    pub topics: Vec<Topic>,
    pub groups: Vec<Group>,
    next_record: u32,
    /// The run's seed: a member's PRNG is drawn from it and its slot.
    seed: u64,
}

impl Streams {
    pub fn new(scenario: &Scenario, seed: u64, root: &mut Prng) -> Streams {
        let topics = scenario
            .topics
            .iter()
            .enumerate()
            .map(|(i, t)| Topic {
                logs: (0..t.partitions)
                    .map(|_| Log {
                        segments: VecDeque::from([Segment { base: 0, end: 0, bytes: 0, largest_at: SimTime::ZERO }]),
                        ..Log::default()
                    })
                    .collect(),
                sticky: None,
                round_robin: 0,
                prng: root.fork(0x2_0000 + i as u64),
            })
            .collect();
        let groups = scenario
            .groups
            .iter()
            .map(|_| Group {
                phase: GroupPhase::Empty,
                generation: 0,
                started: false,
                members: Vec::new(),
                committed: BTreeMap::new(),
                round: 0,
                hold_until: SimTime::ZERO,
                handled: BTreeMap::new(),
                accounted_to: BTreeMap::new(),
                done: BTreeSet::new(),
                newest_by_key: BTreeMap::new(),
                last_owner: BTreeMap::new(),
                stats: GroupStats::default(),
            })
            .collect();
        Streams { topics, groups, next_record: 0, seed }
    }

    pub fn log(&self, part: Part) -> &Log {
        &self.topics[part.topic as usize].logs[part.partition as usize]
    }

    fn log_mut(&mut self, part: Part) -> &mut Log {
        &mut self.topics[part.topic as usize].logs[part.partition as usize]
    }

    /// KC-8: log end offset − committed offset; `None` when the group has not committed.
    pub fn lag(&self, group: u32, part: Part) -> Option<u64> {
        let committed = *self.groups[group as usize].committed.get(&part)?;
        Some(self.log(part).end().saturating_sub(committed))
    }

    /// How often the group handled `offset` of `part`.
    pub fn handled(&self, group: u32, part: Part, offset: u64) -> u8 {
        let Some((origin, counts)) = self.groups[group as usize].handled.get(&part) else { return 0 };
        offset.checked_sub(*origin).and_then(|i| counts.get(usize::try_from(i).ok()?)).copied().unwrap_or(0)
    }

    /// Which live member of the group owns `part`, if any.
    pub fn owner(&self, group: u32, part: Part) -> Option<u32> {
        let g = &self.groups[group as usize];
        (0..g.members.len())
            .find(|&m| g.members[m].alive && g.members[m].owned.contains(&part))
            .map(crate::scenario::index_u32)
    }
}

/// The partitions of a group's topics, in order.
fn group_parts(scenario: &Scenario, spec: &GroupSpec) -> Vec<Part> {
    spec.topics
        .iter()
        .flat_map(|&t| (0..scenario.topics[t as usize].partitions).map(move |p| Part { topic: t, partition: p }))
        .collect()
}

fn member_name(spec: &GroupSpec, m: usize) -> String {
    format!("{}-{}", spec.name, m + 1)
}

fn group_spec(scenario: &Scenario, group: u32) -> &GroupSpec {
    &scenario.groups[group as usize]
}

fn due(spec: &TopicSpec, record: &Record) -> SimTime {
    match spec.role {
        TopicRole::Retry { delay, .. } => record.at.after(delay),
        _ => record.at,
    }
}

impl Streams {
    fn member(&mut self, group: u32, member: MemberId) -> &mut Member {
        &mut self.groups[group as usize].members[member.index()]
    }
}

/// Per group, per partition: the rows of a lag table, like `kafka-consumer-groups --describe`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LagRow {
    pub group: u32,
    pub topic: u32,
    pub partition: u32,
    pub log_start: u64,
    pub log_end: u64,
    pub committed: Option<u64>,
    pub lag: Option<u64>,
    pub owner: Option<u32>,
    pub position: Option<u64>,
}

impl Streams {
    /// The lag table: every group's partitions with their offsets, lag and owner (KC-8).
    /// A group's total lag: summed over its partitions that have a committed offset (KC-8).
    pub fn group_lag(&self, scenario: &Scenario, group: u32) -> u64 {
        let spec = &scenario.groups[group as usize];
        group_parts(scenario, spec).into_iter().filter_map(|part| self.lag(group, part)).sum()
    }

    pub fn lag_table(&self, scenario: &Scenario) -> Vec<LagRow> {
        let mut rows = Vec::new();
        for (gi, spec) in scenario.groups.iter().enumerate() {
            let group = crate::scenario::index_u32(gi);
            for part in group_parts(scenario, spec) {
                let log = self.log(part);
                let owner = self.owner(group, part);
                let position = owner.and_then(|m| self.groups[gi].members[m as usize].positions.get(&part).copied());
                rows.push(LagRow {
                    group,
                    topic: part.topic,
                    partition: part.partition,
                    log_start: log.log_start,
                    log_end: log.end(),
                    committed: self.groups[gi].committed.get(&part).copied(),
                    lag: self.lag(group, part),
                    owner,
                    position,
                });
            }
        }
        rows
    }
}

impl Streams {
    /// The streams' one match: each event goes to the coordinator, a member or the cleaner.
    pub(crate) fn handle(&mut self, cx: &mut Ctx, event: StreamEvent) {
        match event {
            StreamEvent::GroupStart { group } => self.start_group(cx, group),
            StreamEvent::StreamWork { group, member, epoch } => self.stream_work(cx, group, member, epoch),
            StreamEvent::JoinDeadline { group, round } => self.join_deadline(cx, group, round),
            StreamEvent::SyncDone { group, round } => self.sync_done(cx, group, round),
            StreamEvent::SessionExpired { group, member, epoch } => self.session_expired(cx, group, member, epoch),
            StreamEvent::PollTimeout { group, member, epoch, poll } => {
                self.poll_timeout(cx, group, member, (epoch, poll))
            }
            StreamEvent::LogCleanup { topic } => self.clean_topic(cx, topic),
        }
    }
}
