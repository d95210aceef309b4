//! Streams, as Kafka does them (issue 4): topics of partitioned, append-only logs with
//! offsets, retention by time and size, compaction; consumer groups that move through Empty,
//! PreparingRebalance, CompletingRebalance and Stable, assign partitions with the real
//! assignors, poll, process, commit, and rebalance eagerly or cooperatively.
//!
//! The member loop follows the Java consumer: everything a member does to its partitions
//! (rejoining, revoking, taking new ones, committing) happens inside `poll`, which it calls
//! when it has processed the batch the previous poll returned. A crashed member stops at once;
//! the coordinator notices at its session timeout. The state lives here; `impl Sim` below
//! drives it, because a poll, a commit or a forward to a retry topic touches the run's
//! outbox and clock.

use crate::consumer::sample;
use crate::kafka::assignor::{self, TopicPartition, NO_GENERATION};
use crate::kafka::partitioner::partition_for_key;
use crate::rng::Prng;
use crate::scenario::{
    CommitMode, GroupSpec, KeySpec, NullKeys, OffsetReset, Scenario, TopicKind, TopicRole, TopicSpec,
};
use crate::sim::{Event, Sim};
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
    pub prng: Prng,
}

/// A group's counters, for the page and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GroupStats {
    pub processed: u64,
    /// Records handled more than once (at-least-once after a crash or rebalance).
    pub duplicates: u64,
    /// Records committed before they were processed, then never processed (at-most-once).
    pub lost: u64,
    /// Records deleted by retention before the group read them.
    pub lost_to_retention: u64,
    pub order_violations: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub rebalances: u64,
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
    pub stats: GroupStats,
}

#[derive(Clone, Debug)]
pub struct Streams {
    pub topics: Vec<Topic>,
    pub groups: Vec<Group>,
    next_record: u32,
}

impl Streams {
    pub fn new(scenario: &Scenario, root: &mut Prng) -> Streams {
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
                stats: GroupStats::default(),
            })
            .collect();
        Streams { topics, groups, next_record: 0 }
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

/// A producer's next key: `key-0` with the hot share, the rest spread evenly over the others.
pub(crate) fn draw_key(keys: KeySpec, prng: &mut Prng) -> u32 {
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

fn member_name(spec: &GroupSpec, m: usize) -> String {
    format!("{}-{}", spec.name, m + 1)
}

fn due(spec: &TopicSpec, record: &Record) -> SimTime {
    match spec.role {
        TopicRole::Retry { delay, .. } => record.at.after(delay),
        _ => record.at,
    }
}

impl Sim {
    fn group_spec(&self, group: u32) -> &GroupSpec {
        &self.scenario.groups[group as usize]
    }

    fn member(&mut self, group: u32, member: u32) -> &mut Member {
        &mut self.streams.groups[group as usize].members[member as usize]
    }

    // --- Producing ---------------------------------------------------------------------------

    /// A producer's record to `topic`: keyed records go by murmur2 (KP-1), null keys stick to
    /// a partition per KP-6 (or go round-robin).
    pub(crate) fn produce_record(&mut self, producer: u32, topic: u32) {
        let spec = &self.scenario.producers[producer as usize];
        let (keys, tombstones) = (spec.keys, spec.tombstones);
        let prng = &mut self.producers[producer as usize].prng;
        let key = keys.map(|k| draw_key(k, prng));
        let tombstone = key.is_some() && tombstones.numerator > 0 && prng.chance(tombstones);
        let tspec = &self.scenario.topics[topic as usize];
        let partitions = tspec.partitions;
        let partition = match key {
            Some(k) => partition_for_key(format!("key-{k}").as_bytes(), partitions),
            None => {
                let t = &mut self.streams.topics[topic as usize];
                match tspec.null_keys {
                    NullKeys::RoundRobin => {
                        t.round_robin = (t.round_robin + 1) % partitions;
                        t.round_robin
                    }
                    NullKeys::Sticky { batch_bytes } => {
                        let p = match t.sticky {
                            Some((p, bytes)) if bytes < u64::from(batch_bytes) => p,
                            _ => u32::try_from(t.prng.below(u64::from(partitions))).unwrap_or(0),
                        };
                        let sent = t.sticky.filter(|s| s.0 == p && s.1 < u64::from(batch_bytes)).map_or(0, |s| s.1);
                        t.sticky = Some((p, sent + u64::from(tspec.record_bytes)));
                        p
                    }
                }
            }
        };
        let id = self.streams.next_record;
        self.streams.next_record += 1;
        self.append(Part { topic, partition }, Record { id, key, tombstone, at: self.now, retained: true }, producer);
    }

    /// Appends a record, rolling the segment when it is full (KC-12), and wakes the member
    /// of each group that waits on this partition.
    fn append(&mut self, part: Part, record: Record, producer: u32) {
        let now = self.now;
        let spec = &self.scenario.topics[part.topic as usize];
        let (record_bytes, segment_bytes, pubsub) =
            (u64::from(spec.record_bytes), spec.segment_bytes, spec.kind == TopicKind::PubSub);
        let (id, key, tombstone) = (record.id, record.key, record.tombstone);
        let log = self.streams.log_mut(part);
        let offset = log.end();
        let active = log.segments.back().map_or(0, |s| s.bytes);
        if active > 0 && active + record_bytes > segment_bytes {
            log.segments.push_back(Segment { base: offset, end: offset, bytes: 0, largest_at: now });
        }
        if let Some(seg) = log.segments.back_mut() {
            seg.end = offset + 1;
            seg.bytes += record_bytes;
            seg.largest_at = now;
        }
        log.records.push(record);
        self.out.emit(TraceEvent::RecordAppended {
            at: now,
            topic: part.topic,
            partition: part.partition,
            offset,
            record: id,
            key: key.unwrap_or(NULL_KEY),
            producer,
            tombstone,
        });
        if pubsub && !self.subscribed(part.topic) {
            // A transient channel with nobody listening: the record is gone at once.
            self.advance_log_start(part, offset + 1);
        }
        for g in 0..self.streams.groups.len() {
            let g = crate::scenario::index_u32(g);
            if let Some(m) = self.streams.owner(g, part) {
                if self.streams.groups[g as usize].members[m as usize].waiting {
                    self.poll(g, m);
                }
            }
        }
    }

    fn subscribed(&self, topic: u32) -> bool {
        self.scenario.groups.iter().zip(&self.streams.groups).any(|(spec, g)| g.started && spec.topics.contains(&topic))
    }

    // --- Groups and rebalancing ----------------------------------------------------------------

    /// A group starts: its members join, and the first rebalance waits
    /// `group.initial.rebalance.delay.ms` for more of them.
    pub(crate) fn start_group(&mut self, group: u32) {
        if self.streams.groups[group as usize].started {
            return;
        }
        self.streams.groups[group as usize].started = true;
        for _ in 0..self.group_spec(group).members {
            self.add_member(group);
        }
    }

    /// A new member (or a restarted one, in its old slot) joins the group.
    pub(crate) fn add_member(&mut self, group: u32) {
        let g = &self.streams.groups[group as usize];
        if !g.started || g.members.len() >= crate::scenario::limits::GROUP_MEMBERS_MAX as usize {
            return;
        }
        let m = crate::scenario::index_u32(g.members.len());
        let prng = self.member_prng(group, m);
        self.streams.groups[group as usize].members.push(Member {
            alive: true,
            in_group: false,
            epoch: 0,
            owned: Vec::new(),
            owned_generation: NO_GENERATION,
            joined: false,
            leaving: false,
            proposed: None,
            assignment: None,
            blocked: false,
            waiting: false,
            batch: VecDeque::new(),
            current: None,
            positions: BTreeMap::new(),
            heartbeat_base: self.now,
            last_auto_commit: self.now,
            wake_at: None,
            fetch_cursor: 0,
            prng,
        });
        self.join(group, m, MemberChange::Joined);
    }

    fn member_prng(&self, group: u32, member: u32) -> Prng {
        Prng::from_seed(
            self.seed() ^ (0x3_0000 + u64::from(group) * 64 + u64::from(member)).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        )
    }

    fn join(&mut self, group: u32, m: u32, change: MemberChange) {
        let now = self.now;
        let member = self.member(group, m);
        member.in_group = true;
        member.heartbeat_base = now;
        self.out.emit(TraceEvent::MemberChanged { at: now, group, member: m, change });
        self.rebalance(group);
        self.poll(group, m);
    }

    /// Something changed membership: the group (re)starts a rebalance (PreparingRebalance).
    /// Members rejoin at their next poll; the join phase ends when all have, or when the
    /// coordinator stops waiting.
    fn rebalance(&mut self, group: u32) {
        let now = self.now;
        let spec = self.group_spec(group).clone();
        if !self.streams.groups[group as usize].members.iter().any(|m| m.in_group) {
            self.set_phase(group, GroupPhase::Empty);
            return;
        }
        let g = &mut self.streams.groups[group as usize];
        if g.phase == GroupPhase::PreparingRebalance {
            return;
        }
        let wait = if g.phase == GroupPhase::Empty { spec.initial_rebalance_delay } else { spec.max_poll_interval };
        g.hold_until = if g.phase == GroupPhase::Empty { now.after(wait) } else { now };
        g.round += 1;
        g.stats.rebalances += 1;
        for m in &mut g.members {
            m.joined = false;
        }
        let round = g.round;
        self.set_phase(group, GroupPhase::PreparingRebalance);
        self.out.schedule(now.after(wait), Event::JoinDeadline { group, round });
        self.poll_idle(group);
    }

    /// Members idle in poll, or blocked in it, see the group's change at once.
    fn poll_idle(&mut self, group: u32) {
        for m in 0..self.streams.groups[group as usize].members.len() {
            let member = &self.streams.groups[group as usize].members[m];
            if member.alive && member.in_group && (member.waiting || member.blocked) {
                self.poll(group, crate::scenario::index_u32(m));
            }
        }
    }

    /// Moves the group to `phase`, in its current generation, if it is not there already.
    fn set_phase(&mut self, group: u32, phase: GroupPhase) {
        let g = &mut self.streams.groups[group as usize];
        if g.phase != phase {
            g.phase = phase;
            let generation = g.generation;
            self.out.emit(TraceEvent::GroupChanged { at: self.now, group, phase, generation });
        }
    }

    /// A member rejoins the rebalance in progress, inside poll. Eager: it revokes everything
    /// first and stops (KC-1). Cooperative: it keeps what it owns and goes on (KC-2).
    fn rejoin(&mut self, group: u32, m: u32) {
        let cooperative = self.group_spec(group).assignor.cooperative();
        if !cooperative {
            let owned = std::mem::take(&mut self.member(group, m).owned);
            self.revoke(group, m, &owned, RevokeReason::Rebalance);
            self.member(group, m).blocked = true;
        }
        self.member(group, m).joined = true;
        self.maybe_end_join(group, false);
    }

    /// Gives up partitions cleanly: commits what was processed (unless commits come before
    /// processing, when they are committed already), then forgets them.
    fn revoke(&mut self, group: u32, m: u32, parts: &[Part], reason: RevokeReason) {
        let now = self.now;
        let commit = self.group_spec(group).commit;
        for &part in parts {
            if !matches!(commit, CommitMode::BeforeProcessing) && reason != RevokeReason::Lost {
                if let Some(&offset) = self.member(group, m).positions.get(&part) {
                    self.commit(group, m, part, offset);
                }
            }
            let member = self.member(group, m);
            member.positions.remove(&part);
            member.owned.retain(|p| *p != part);
            member.batch.retain(|(p, _)| *p != part);
            self.out.emit(TraceEvent::PartitionRevoked {
                at: now,
                group,
                member: m,
                topic: part.topic,
                partition: part.partition,
                reason,
            });
        }
    }

    fn commit(&mut self, group: u32, m: u32, part: Part, offset: u64) {
        let g = &mut self.streams.groups[group as usize];
        if g.committed.get(&part) == Some(&offset) {
            return;
        }
        g.committed.insert(part, offset);
        self.out.emit(TraceEvent::OffsetCommitted {
            at: self.now,
            group,
            member: m,
            topic: part.topic,
            partition: part.partition,
            offset,
        });
        if self.scenario.topics[part.topic as usize].kind == TopicKind::PubSub {
            self.drop_delivered(part);
        }
    }

    /// A pubsub channel keeps a record only until every group listening has it.
    fn drop_delivered(&mut self, part: Part) {
        let end = self.streams.log(part).end();
        let delivered = self
            .scenario
            .groups
            .iter()
            .zip(&self.streams.groups)
            .filter(|(s, g)| g.started && s.topics.contains(&part.topic))
            .map(|(_, g)| {
                // What the group still needs: from its commit, or from where its owner reads.
                let position = g.members.iter().filter(|m| m.alive).filter_map(|m| m.positions.get(&part)).min();
                g.committed.get(&part).copied().or(position.copied()).unwrap_or(end)
            })
            .min()
            .unwrap_or(end);
        self.advance_log_start(part, delivered);
    }

    /// The join phase ends when every member in the group has rejoined (or, at the deadline,
    /// without those that have not): the leader assigns, and SyncGroup takes `sync_time`.
    fn maybe_end_join(&mut self, group: u32, deadline: bool) {
        let now = self.now;
        let g = &mut self.streams.groups[group as usize];
        if g.phase != GroupPhase::PreparingRebalance {
            return;
        }
        if deadline {
            let late: Vec<u32> = (0..g.members.len())
                .filter(|&m| g.members[m].in_group && !g.members[m].joined)
                .map(crate::scenario::index_u32)
                .collect();
            for m in late {
                self.member(group, m).in_group = false;
                self.out.emit(TraceEvent::MemberChanged { at: now, group, member: m, change: MemberChange::Removed });
                let owned = std::mem::take(&mut self.member(group, m).owned);
                self.revoke(group, m, &owned, RevokeReason::Lost);
            }
        }
        let g = &mut self.streams.groups[group as usize];
        if g.members.iter().any(|m| m.in_group && !m.joined) || (!deadline && now < g.hold_until) {
            return;
        }
        if !g.members.iter().any(|m| m.in_group) {
            self.set_phase(group, GroupPhase::Empty);
            return;
        }
        g.generation += 1;
        let round = g.round;
        self.set_phase(group, GroupPhase::CompletingRebalance);
        self.assign(group);
        let sync = self.group_spec(group).sync_time;
        self.out.schedule(now.after(sync), Event::SyncDone { group, round });
    }

    /// The leader runs the group's assignor over the members' subscriptions and what they
    /// own (KA-*). Cooperative-sticky withholds partitions that change owner (KA-12).
    fn assign(&mut self, group: u32) {
        let spec = self.group_spec(group).clone();
        let scenario = &self.scenario;
        let names: BTreeMap<String, u32> =
            scenario.topics.iter().enumerate().map(|(i, t)| (t.name.clone(), crate::scenario::index_u32(i))).collect();
        let topics: Vec<String> = spec.topics.iter().map(|&t| scenario.topics[t as usize].name.clone()).collect();
        let ppt: BTreeMap<String, u32> = spec
            .topics
            .iter()
            .map(|&t| (scenario.topics[t as usize].name.clone(), scenario.topics[t as usize].partitions))
            .collect();
        let g = &self.streams.groups[group as usize];
        let in_group: Vec<usize> = (0..g.members.len()).filter(|&m| g.members[m].in_group).collect();
        let members: Vec<assignor::Member> = in_group
            .iter()
            .map(|&m| assignor::Member {
                id: member_name(&spec, m),
                instance_id: None,
                topics: topics.clone(),
                owned: g.members[m]
                    .owned
                    .iter()
                    .map(|p| TopicPartition::new(&scenario.topics[p.topic as usize].name, p.partition))
                    .collect(),
                generation: g.members[m].owned_generation,
            })
            .collect();
        let result = assignor::assign(spec.assignor, &ppt, &members);
        let g = &mut self.streams.groups[group as usize];
        for &m in &in_group {
            let parts = result
                .get(&member_name(&spec, m))
                .map(|l| {
                    l.iter()
                        .filter_map(|tp| names.get(&tp.topic.0).map(|&topic| Part { topic, partition: tp.partition }))
                        .collect()
                })
                .unwrap_or_default();
            g.members[m].proposed = Some(parts);
        }
    }

    /// SyncGroup answers: the group is Stable in its new generation. Members blocked in poll
    /// take their assignment now; the others at their next poll.
    pub(crate) fn sync_done(&mut self, group: u32, round: u32) {
        let g = &mut self.streams.groups[group as usize];
        if g.round != round || g.phase != GroupPhase::CompletingRebalance {
            return;
        }
        for m in &mut g.members {
            if m.in_group {
                m.assignment = m.proposed.take();
            }
        }
        self.set_phase(group, GroupPhase::Stable);
        self.poll_idle(group);
    }

    pub(crate) fn join_deadline(&mut self, group: u32, round: u32) {
        if self.streams.groups[group as usize].round == round {
            self.maybe_end_join(group, true);
        }
    }

    /// Takes up a new assignment inside poll: revokes what is no longer its own (cooperative:
    /// then rejoins at once, so a second rebalance hands those out, KC-2), and starts each new
    /// partition at the committed offset, or per `auto.offset.reset` (KC-9).
    fn take_assignment(&mut self, group: u32, m: u32) {
        let Some(assigned) = self.member(group, m).assignment.take() else { return };
        let now = self.now;
        let generation = self.streams.groups[group as usize].generation;
        let owned = self.member(group, m).owned.clone();
        let revoked: Vec<Part> = owned.iter().filter(|p| !assigned.contains(p)).copied().collect();
        self.revoke(group, m, &revoked, RevokeReason::Rebalance);
        for &part in assigned.iter().filter(|p| !owned.contains(p)) {
            let start = self.start_offset(group, part);
            let member = self.member(group, m);
            member.owned.push(part);
            member.positions.insert(part, start);
            self.out.emit(TraceEvent::PartitionAssigned {
                at: now,
                group,
                member: m,
                topic: part.topic,
                partition: part.partition,
                generation: u32::try_from(generation).unwrap_or(0),
                offset: start,
            });
        }
        let member = self.member(group, m);
        member.owned.sort();
        member.owned_generation = generation;
        member.blocked = false;
        if !revoked.is_empty() && self.group_spec(group).assignor.cooperative() {
            self.rebalance(group);
        }
    }

    /// Where a group resumes a partition: its committed offset, or per `auto.offset.reset`
    /// when it has none or it is out of range (KC-9). A pubsub channel has no past to replay.
    /// Records between where the group had got to and here that it never handled are counted:
    /// committed before processing (lost), or deleted by retention first.
    fn start_offset(&mut self, group: u32, part: Part) -> u64 {
        let spec = self.group_spec(group);
        let (reset, pubsub) = (spec.offset_reset, self.scenario.topics[part.topic as usize].kind == TopicKind::PubSub);
        let log = self.streams.log(part);
        let (log_start, end) = (log.log_start, log.end());
        let committed = self.streams.groups[group as usize].committed.get(&part).copied();
        let start = match committed {
            Some(c) if c >= log_start && c <= end => c,
            _ if pubsub => end,
            _ => match reset {
                OffsetReset::Earliest => log_start,
                OffsetReset::Latest => end,
            },
        };
        let g = &mut self.streams.groups[group as usize];
        g.handled.entry(part).or_insert((start, crate::cow::CowVec::new()));
        let from = *g.accounted_to.entry(part).or_insert(start);
        self.account_skipped(group, part, from, start);
        start
    }

    /// Counts the records in `[from, to)` the group never handled, and marks them accounted.
    fn account_skipped(&mut self, group: u32, part: Part, from: u64, to: u64) {
        if to <= from {
            return;
        }
        let (mut lost, mut expired) = (0u64, 0u64);
        let log = self.streams.log(part);
        for o in from..to {
            if self.streams.handled(group, part, o) > 0 {
                continue;
            }
            if o < log.log_start {
                expired += 1;
            } else if log.record(o).retained {
                lost += 1;
            }
        }
        let g = &mut self.streams.groups[group as usize];
        g.accounted_to.insert(part, to);
        g.stats.lost += lost;
        g.stats.lost_to_retention += expired;
        for (count, reason) in [(lost, LossReason::CommittedUnprocessed), (expired, LossReason::Retention)] {
            if count > 0 {
                self.out.emit(TraceEvent::RecordsLost {
                    at: self.now,
                    group,
                    topic: part.topic,
                    partition: part.partition,
                    from,
                    to,
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                    reason,
                });
            }
        }
    }

    // --- The member loop -----------------------------------------------------------------------

    /// `poll()`: commits as the group's mode says, leaves, rejoins a rebalance, takes up an
    /// assignment, then fetches up to `max.poll.records` and starts on the first.
    pub(crate) fn poll(&mut self, group: u32, m: u32) {
        let now = self.now;
        let spec = self.group_spec(group).clone();
        let member = self.member(group, m);
        if !member.alive || member.current.is_some() {
            return;
        }
        if !member.in_group {
            // Dropped by the coordinator while it was busy: it joins again, as a new member.
            member.joined = false;
            member.owned.clear();
            member.positions.clear();
            member.owned_generation = NO_GENERATION;
            self.join(group, m, MemberChange::Joined);
            return;
        }
        member.waiting = false;
        // Commit what the last batch processed.
        let commit_now = match spec.commit {
            CommitMode::AfterProcessing => true,
            CommitMode::Auto { interval } => now >= member.last_auto_commit.after(interval),
            CommitMode::BeforeProcessing => false,
        };
        if commit_now {
            member.last_auto_commit = now;
            let positions: Vec<(Part, u64)> = member.positions.iter().map(|(p, o)| (*p, *o)).collect();
            for (part, offset) in positions {
                self.commit(group, m, part, offset);
            }
        }
        if self.member(group, m).leaving {
            let owned = std::mem::take(&mut self.member(group, m).owned);
            self.revoke(group, m, &owned, RevokeReason::Left);
            let member = self.member(group, m);
            member.in_group = false;
            member.alive = false;
            member.leaving = false;
            self.out.emit(TraceEvent::MemberChanged { at: now, group, member: m, change: MemberChange::Left });
            self.rebalance(group);
            self.maybe_end_join(group, false);
            return;
        }
        // The last completed rebalance's assignment first (a cooperative revocation there
        // starts the follow-up rebalance), then rejoin the one in progress, if any.
        self.take_assignment(group, m);
        if self.streams.groups[group as usize].phase == GroupPhase::PreparingRebalance && !self.member(group, m).joined
        {
            self.rejoin(group, m);
        }
        // Eager members wait in poll until the rebalance completes (KC-1).
        if self.member(group, m).blocked {
            return;
        }
        self.fetch(group, m);
        if let CommitMode::BeforeProcessing = spec.commit {
            // Commit what this poll returned, before processing it: at-most-once (KC-6).
            let positions: Vec<(Part, u64)> = self.member(group, m).positions.iter().map(|(p, o)| (*p, *o)).collect();
            for (part, offset) in positions {
                self.commit(group, m, part, offset);
            }
        }
        self.next_record(group, m);
    }

    /// Fetches up to `max.poll.records`, partition after partition from a rotating start.
    /// Records of a retry topic wait until they are due; an offset below the log start is out
    /// of range and resets (KC-9).
    fn fetch(&mut self, group: u32, m: u32) {
        let now = self.now;
        let max = self.group_spec(group).max_poll_records as usize;
        let owned = self.member(group, m).owned.clone();
        let n = owned.len();
        let start = self.member(group, m).fetch_cursor;
        let mut wake: Option<SimTime> = None;
        for k in 0..n {
            let part = owned[(start + k) % n];
            let Some(&position) = self.member(group, m).positions.get(&part) else { continue };
            let log = self.streams.log(part);
            let mut from = position;
            if from < log.log_start {
                let reset = match self.group_spec(group).offset_reset {
                    OffsetReset::Earliest => log.log_start,
                    OffsetReset::Latest => log.end(),
                };
                self.account_skipped(group, part, position, reset);
                from = reset;
            }
            let room = max - self.member(group, m).batch.len();
            let log = self.streams.log(part);
            let tspec = &self.scenario.topics[part.topic as usize];
            let mut taken = Vec::new();
            let mut o = log.next_retained(from);
            while o < log.end() && taken.len() < room {
                let due_at = due(tspec, log.record(o));
                if due_at > now {
                    wake = Some(wake.map_or(due_at, |w: SimTime| w.min(due_at)));
                    break;
                }
                taken.push(o);
                o = log.next_retained(o + 1);
            }
            let next = if taken.is_empty() { from } else { o };
            let member = self.member(group, m);
            member.positions.insert(part, next);
            if let (Some(&first), count) = (taken.first(), taken.len()) {
                member.batch.extend(taken.iter().map(|&o| (part, o)));
                self.out.emit(TraceEvent::RecordsFetched {
                    at: now,
                    group,
                    member: m,
                    topic: part.topic,
                    partition: part.partition,
                    from: first,
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                });
            }
            if self.member(group, m).batch.len() >= max {
                break;
            }
        }
        let member = self.member(group, m);
        member.fetch_cursor = if n == 0 { 0 } else { (start + 1) % n };
        if member.batch.is_empty() {
            member.waiting = true;
            if let Some(at) = wake {
                if member.wake_at.is_none_or(|w| w > at || w < now) {
                    member.wake_at = Some(at);
                    let epoch = member.epoch;
                    self.out.schedule(at, Event::StreamWork { group, member: m, epoch });
                }
            }
        }
    }

    /// Starts the next record of the batch, or polls again when the batch is done.
    fn next_record(&mut self, group: u32, m: u32) {
        let now = self.now;
        let processing = self.group_spec(group).processing;
        let member = self.member(group, m);
        let Some((part, offset)) = member.batch.pop_front() else {
            if !member.waiting {
                self.poll(group, m);
            }
            return;
        };
        let done_at = now.after(sample(processing, &mut member.prng));
        member.current = Some((part, offset, done_at));
        let epoch = member.epoch;
        self.out.emit(TraceEvent::RecordStarted {
            at: now,
            group,
            member: m,
            topic: part.topic,
            partition: part.partition,
            offset,
            done_at,
        });
        self.out.schedule(done_at, Event::StreamWork { group, member: m, epoch });
    }

    /// A member's timer: its record is done, or a retry record it waits for is due.
    pub(crate) fn stream_work(&mut self, group: u32, m: u32, epoch: u32) {
        let now = self.now;
        let member = self.member(group, m);
        if member.epoch != epoch || !member.alive {
            return;
        }
        match member.current {
            Some((part, offset, done_at)) if done_at <= now => {
                member.current = None;
                self.finish_record(group, m, part, offset);
                self.next_record(group, m);
            }
            Some(_) => {}
            None => {
                if member.wake_at.is_some_and(|w| w <= now) {
                    member.wake_at = None;
                }
                if member.waiting {
                    self.poll(group, m);
                }
            }
        }
    }

    /// One record handled: success, or a failure forwarded to the next retry topic (or the
    /// dead-letter topic). Counts duplicates and checks per-key order.
    fn finish_record(&mut self, group: u32, m: u32, part: Part, offset: u64) {
        let now = self.now;
        let spec = self.group_spec(group).clone();
        let record = self.streams.log(part).record(offset).clone();
        let failed = spec.error_rate.numerator > 0 && self.member(group, m).prng.chance(spec.error_rate);
        let g = &mut self.streams.groups[group as usize];
        let (origin, counts) = g.handled.entry(part).or_insert((offset, crate::cow::CowVec::new()));
        let i = usize::try_from(offset.saturating_sub(*origin)).unwrap_or(usize::MAX);
        counts.grow_to(i + 1, 0);
        counts[i] = counts[i].saturating_add(1);
        let times = counts[i];
        if times > 1 {
            g.stats.duplicates += 1;
        }
        if g.accounted_to.get(&part) == Some(&offset) {
            g.accounted_to.insert(part, offset + 1);
        }
        let outcome = if failed {
            let next = spec.topics.iter().position(|&t| t == part.topic).and_then(|i| spec.topics.get(i + 1)).copied();
            match next.or(spec.dead_letter) {
                Some(to) if next.is_some() => {
                    g.stats.retried += 1;
                    (RecordOutcome::Retried, Some(to))
                }
                Some(to) => {
                    g.stats.dead_lettered += 1;
                    (RecordOutcome::DeadLettered, Some(to))
                }
                None => (RecordOutcome::Processed, None),
            }
        } else {
            g.stats.processed += 1;
            (RecordOutcome::Processed, None)
        };
        let mut violation = None;
        if outcome.0 == RecordOutcome::Processed && times == 1 {
            if let Some(key) = record.key {
                if g.done.insert(record.id) {
                    let newest = g.newest_by_key.entry(key).or_insert(record.id);
                    if *newest > record.id {
                        g.stats.order_violations += 1;
                        violation = Some((key, *newest));
                    } else {
                        *newest = record.id;
                    }
                }
            }
        }
        self.out.emit(TraceEvent::RecordDone {
            at: now,
            group,
            member: m,
            topic: part.topic,
            partition: part.partition,
            offset,
            record: record.id,
            times: u32::from(times),
            outcome: outcome.0,
        });
        if let Some((key, after)) = violation {
            self.out.emit(TraceEvent::OrderViolated { at: now, group, key, record: record.id, after });
        }
        if let Some(to) = outcome.1 {
            let partition = part.partition % self.scenario.topics[to as usize].partitions;
            let forwarded = Record { at: now, retained: true, ..record };
            self.append(Part { topic: to, partition }, forwarded, FORWARDED);
        }
    }

    // --- Faults --------------------------------------------------------------------------------

    /// The member dies mid-batch. The coordinator notices at the session timeout: the last
    /// heartbeat (every `heartbeat.interval.ms` since it joined) plus `session.timeout.ms`.
    pub(crate) fn crash_member(&mut self, group: u32, m: u32) {
        let now = self.now;
        let spec = self.group_spec(group).clone();
        let Some(member) = self.streams.groups[group as usize].members.get_mut(m as usize) else { return };
        if !member.alive {
            return;
        }
        member.alive = false;
        member.epoch += 1;
        member.current = None;
        member.batch.clear();
        member.waiting = false;
        member.blocked = false;
        let beats = now.since(member.heartbeat_base).as_micros() / spec.heartbeat_interval.as_micros().max(1);
        let last_beat = member.heartbeat_base.after(Duration::from_micros(beats * spec.heartbeat_interval.as_micros()));
        let epoch = member.epoch;
        self.out.emit(TraceEvent::MemberChanged { at: now, group, member: m, change: MemberChange::Crashed });
        if member.in_group {
            self.out.schedule(last_beat.after(spec.session_timeout), Event::SessionExpired { group, member: m, epoch });
        }
    }

    /// Its session timed out: it leaves the group, its partitions are lost to it (KC-3), and
    /// the group rebalances.
    pub(crate) fn session_expired(&mut self, group: u32, m: u32, epoch: u32) {
        let member = self.member(group, m);
        if member.epoch != epoch || member.alive || !member.in_group {
            return;
        }
        member.in_group = false;
        let owned = std::mem::take(&mut member.owned);
        self.out.emit(TraceEvent::MemberChanged { at: self.now, group, member: m, change: MemberChange::Removed });
        self.revoke(group, m, &owned, RevokeReason::Lost);
        self.rebalance(group);
        self.maybe_end_join(group, false);
    }

    /// A crashed member comes back as a fresh process: it owns nothing and joins again (its
    /// old registration, if the session has not expired, is replaced).
    pub(crate) fn restart_member(&mut self, group: u32, m: u32) {
        let Some(member) = self.streams.groups[group as usize].members.get_mut(m as usize) else { return };
        if member.alive {
            return;
        }
        member.alive = true;
        member.epoch += 1;
        member.owned_generation = NO_GENERATION;
        member.assignment = None;
        member.proposed = None;
        member.joined = false;
        member.wake_at = None;
        // A fresh process remembers nothing it owned; the coordinator replaces the old one.
        let owned = std::mem::take(&mut member.owned);
        self.revoke(group, m, &owned, RevokeReason::Lost);
        self.join(group, m, MemberChange::Restarted);
    }

    /// The member leaves cleanly at its next poll: it finishes its batch, commits, and sends
    /// LeaveGroup, so the group rebalances at once instead of after a session timeout.
    pub(crate) fn remove_member(&mut self, group: u32, m: u32) {
        let Some(member) = self.streams.groups[group as usize].members.get_mut(m as usize) else { return };
        if !member.alive || !member.in_group {
            return;
        }
        member.leaving = true;
        if member.current.is_none() && member.batch.is_empty() {
            member.waiting = false;
            member.blocked = false;
            self.poll(group, m);
        }
    }

    // --- Retention and compaction --------------------------------------------------------------

    /// The log cleaner's round for one topic: retention by time and size (KC-11, KC-12), a
    /// pubsub channel's delivered records, then compaction (KC-13).
    pub(crate) fn clean_topic(&mut self, topic: u32) {
        let now = self.now;
        let spec = self.scenario.topics[topic as usize].clone();
        for partition in 0..spec.partitions {
            let part = Part { topic, partition };
            if spec.delete {
                if let Some(retention) = spec.retention {
                    self.delete_by_time(part, retention);
                }
                if let Some(limit) = spec.retention_bytes {
                    self.delete_by_size(part, limit);
                }
            }
            if spec.kind == TopicKind::PubSub {
                self.drop_delivered(part);
            }
            if spec.compact {
                self.compact(part, &spec);
            }
        }
        self.out.schedule(now.after(spec.check_every), Event::LogCleanup { topic });
    }

    /// Whole segments, oldest first, while the newest record in them is older than
    /// `retention.ms`; an expired active segment is rolled and deleted too.
    fn delete_by_time(&mut self, part: Part, retention: Duration) {
        let now = self.now;
        let log = self.streams.log(part);
        let mut to = log.log_start;
        for seg in &log.segments {
            if seg.end > seg.base && now.since(seg.largest_at) > retention {
                to = seg.end;
            } else {
                break;
            }
        }
        self.advance_log_start(part, to);
    }

    /// Whole segments while the log minus the oldest still holds at least `retention.bytes`.
    fn delete_by_size(&mut self, part: Part, limit: u64) {
        let log = self.streams.log(part);
        let mut total: u64 = log.segments.iter().map(|s| s.bytes).sum();
        let mut to = log.log_start;
        for seg in log.segments.iter().take(log.segments.len().saturating_sub(1)) {
            if total.saturating_sub(limit) >= seg.bytes && seg.bytes > 0 {
                total -= seg.bytes;
                to = seg.end;
            } else {
                break;
            }
        }
        self.advance_log_start(part, to);
    }

    /// Moves the log start forward to `to`, a segment boundary or the log end, deleting what
    /// is below it.
    fn advance_log_start(&mut self, part: Part, to: u64) {
        let now = self.now;
        let log = self.streams.log_mut(part);
        if to <= log.log_start {
            return;
        }
        for o in log.log_start..to {
            let r = &mut log.records[usize::try_from(o).unwrap_or(usize::MAX)];
            if r.retained {
                r.retained = false;
                log.deleted += 1;
            }
        }
        log.log_start = to;
        while log.segments.front().is_some_and(|s| s.end <= to && s.end > s.base) {
            log.segments.pop_front();
        }
        if log.segments.is_empty() {
            log.segments.push_back(Segment { base: to, end: to, bytes: 0, largest_at: now });
        } else if let Some(front) = log.segments.front_mut() {
            front.base = front.base.max(to);
        }
        self.out.emit(TraceEvent::SegmentsDeleted {
            at: now,
            topic: part.topic,
            partition: part.partition,
            log_start: to,
        });
    }

    /// KC-13: when the closed segments' dirty part is at least half of them, keep only the
    /// latest record per key among them (records in the active segment are never compacted,
    /// but a newer value there does not yet clean an older one); tombstones already cleaned
    /// once go after `delete.retention.ms`, and a log holding such a tombstone is cleaned for
    /// it even when little else is dirty. Offsets never change.
    fn compact(&mut self, part: Part, spec: &TopicSpec) {
        let now = self.now;
        let log = self.streams.log(part);
        let active_base = log.segments.back().map_or(log.end(), |s| s.base);
        let closed_retained = (log.log_start..active_base).filter(|&o| log.record(o).retained).count();
        let dirty = (log.cleaned_to.max(log.log_start)..active_base).filter(|&o| log.record(o).retained).count();
        // min.cleanable.dirty.ratio: 0.5; or tombstones past their horizon (KIP-534).
        let expired_tombstones = (log.log_start..log.cleaned_to.min(active_base)).any(|o| {
            log.record(o).retained && log.record(o).tombstone && now >= log.record(o).at.after(spec.delete_retention)
        });
        if !expired_tombstones && (dirty == 0 || dirty * 2 < closed_retained) {
            return;
        }
        let mut latest: BTreeMap<u32, u64> = BTreeMap::new();
        for o in log.cleaned_to.max(log.log_start)..active_base {
            let r = log.record(o);
            if let (true, Some(k)) = (r.retained, r.key) {
                latest.insert(k, o);
            }
        }
        let previously_cleaned = log.cleaned_to;
        let mut removed = 0u32;
        let log = self.streams.log_mut(part);
        for o in log.log_start..active_base {
            let r = &log.records[usize::try_from(o).unwrap_or(usize::MAX)];
            if !r.retained {
                continue;
            }
            let superseded = r.key.and_then(|k| latest.get(&k)).is_some_and(|&newest| newest > o);
            let expired_tombstone = r.tombstone && o < previously_cleaned && now >= r.at.after(spec.delete_retention);
            if superseded || expired_tombstone {
                log.records[usize::try_from(o).unwrap_or(usize::MAX)].retained = false;
                log.compacted += 1;
                removed += 1;
                if let Some(seg) = log.segments.iter_mut().find(|s| s.base <= o && o < s.end) {
                    seg.bytes = seg.bytes.saturating_sub(u64::from(spec.record_bytes));
                }
            }
        }
        log.cleaned_to = active_base;
        self.out.emit(TraceEvent::Compacted {
            at: now,
            topic: part.topic,
            partition: part.partition,
            removed,
            cleaned_to: active_base,
        });
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

impl Sim {
    /// The lag table: every group's partitions with their offsets, lag and owner (KC-8).
    pub fn lag_table(&self) -> Vec<LagRow> {
        let mut rows = Vec::new();
        for (gi, spec) in self.scenario.groups.iter().enumerate() {
            let group = crate::scenario::index_u32(gi);
            for part in group_parts(&self.scenario, spec) {
                let log = self.streams.log(part);
                let owner = self.streams.owner(group, part);
                let position =
                    owner.and_then(|m| self.streams.groups[gi].members[m as usize].positions.get(&part).copied());
                rows.push(LagRow {
                    group,
                    topic: part.topic,
                    partition: part.partition,
                    log_start: log.log_start,
                    log_end: log.end(),
                    committed: self.streams.groups[gi].committed.get(&part).copied(),
                    lag: self.streams.lag(group, part),
                    owner,
                    position,
                });
            }
        }
        rows
    }

    pub fn streams(&self) -> &Streams {
        &self.streams
    }
}
