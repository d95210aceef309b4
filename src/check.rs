//! Invariant checkers. Tests call `check` after every step. Two independent views must agree:
//!
//! - `check` recomputes everything from the engine's own state: each message sits in exactly
//!   one place that matches its one state, the per-queue counts add up (nothing lost or
//!   invented), every lease is held by its consumer, FIFO books balance, and no consumer holds
//!   more than its prefetch.
//! - `Ledger` replays only the trace, as the page and the CLI see it, rejects any event that
//!   does not follow from the ones before it, and checks each delivery's receive count.

use crate::ids::MsgId;
use crate::message::{MsgState, Phase, StateCounts, StateKind};
use crate::scenario::QueueRole;
use crate::sim::Sim;
use crate::time::SimTime;
use crate::trace::{ConsumerId, QueueId, TraceEvent};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub at: SimTime,
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant violated at {}: {}", self.at, self.what)
    }
}

impl std::error::Error for Violation {}

/// Checks every invariant of the engine's state. O(messages); meant for tests.
pub fn check(sim: &Sim) -> Result<(), Violation> {
    let recount = check_conservation(sim)?;
    check_expiry(sim)?;
    check_placement(sim, &recount)?;
    check_leases(sim)?;
    check_streams(sim)?;
    check_workflows(sim)?;
    check_consumers(sim)
}

/// Conservation: recount every message by queue and state; every message was published or
/// redriven. Returns the recount.
fn check_conservation(sim: &Sim) -> Result<Vec<StateCounts>, Violation> {
    let fail = |what: String| Err(Violation { at: sim.now(), what });
    let b = sim.broker();
    let mut recount = vec![StateCounts::default(); b.queues.len()];
    for m in &b.msgs {
        recount[m.queue.index()].add(m.kind());
    }
    if recount != b.counts {
        return fail(format!("state counts {:?} differ from a recount {recount:?}", b.counts));
    }
    let moved: u64 = recount.iter().map(|c| u64::from(c.get(StateKind::Moved))).sum();
    if b.msgs.len() as u64 != sim.stats().published + moved + b.dead_letter_copies + b.republished {
        return fail(format!(
            "{} messages exist; {} published, {moved} redriven, {} copied by dead-lettering and {} parked",
            b.msgs.len(),
            sim.stats().published,
            b.dead_letter_copies,
            b.republished
        ));
    }

    Ok(recount)
}

/// RMQ-19: an expired message is never delivered (one whose TTL ends the instant it arrives
/// may be, TTL 0). RMQ-21: a RabbitMQ queue expires at its head, so an expired message may wait
/// behind the head but never sits at it; the other models expire a waiting message at its TTL.
/// (At the instant a TTL ends, its timer may still be due.)
fn check_expiry(sim: &Sim) -> Result<(), Violation> {
    let fail = |what: String| Err(Violation { at: sim.now(), what });
    let b = sim.broker();
    let now = sim.now();
    for (i, m) in b.msgs.iter().enumerate() {
        // A dead letter's expiry is its DLQ's (SQS-13); a receive before the move had another.
        let moved_since =
            |t: SimTime| b.dead.get(&MsgId(crate::scenario::index_u32(i))).is_some_and(|d| t <= d.dead_at);
        if m.last_received().is_some_and(|t| t > m.expires_at && !moved_since(t)) {
            return fail(format!("m{i} was delivered after its TTL ran out at {}", m.expires_at));
        }
    }
    // SQS-13: an SQS DLQ has a retention period of its own; the others keep dead letters.
    for (qi, q) in b.queues.iter().enumerate() {
        let at_head = q.spec.lease.expires_at_head() && !q.spec.is_dead_letter();
        for msg in q.ready.values().take(if at_head { 1 } else { usize::MAX }) {
            let m = b.msg(msg);
            if m.expires_at < now {
                return fail(format!("m{msg} waits in queue {qi} past its TTL ({})", m.expires_at));
            }
        }
    }

    Ok(())
}

/// Placement: each ready set holds exactly that queue's visible messages, at their positions;
/// a FIFO queue's in-flight books per group match the leases.
fn check_placement(sim: &Sim, recount: &[StateCounts]) -> Result<(), Violation> {
    let fail = |what: String| Err(Violation { at: sim.now(), what });
    let b = sim.broker();
    for (qi, q) in b.queues.iter().enumerate() {
        let visible = if q.spec.is_dead_letter() { MsgState::DeadLettered } else { MsgState::Ready };
        for (pos, msg) in q.ready.iter() {
            let m = b.msg(msg);
            if m.state() != visible || m.queue.index() != qi || m.pos != pos {
                return fail(format!(
                    "queue {qi} lists m{msg} at {pos}; it is {:?} in queue {} at {}",
                    m.state(),
                    m.queue,
                    m.pos
                ));
            }
        }
        let listed = recount[qi].get(StateKind::Ready) + recount[qi].get(StateKind::DeadLettered);
        if q.ready.len() != listed as usize {
            return fail(format!("queue {qi} lists {} visible, {listed} are visible", q.ready.len()));
        }
        if matches!(q.spec.role, QueueRole::Retry { .. }) && listed > 0 {
            return fail(format!("retry queue {qi} has visible messages"));
        }
        // FIFO: the in-flight books per group match the leases.
        let mut groups: BTreeMap<u32, u32> = BTreeMap::new();
        for (i, _) in b.msgs.iter().enumerate().filter(|(_, m)| m.queue.index() == qi && m.lease().is_some()) {
            if let Some(g) = b.extra(MsgId(crate::scenario::index_u32(i))).group {
                *groups.entry(g).or_insert(0) += 1;
            }
        }
        if groups != q.groups_in_flight {
            return fail(format!("queue {qi}: groups in flight {:?}, leases say {groups:?}", q.groups_in_flight));
        }
    }

    Ok(())
}

/// Leases: one per message at most (structural), only on in-flight messages, and held.
fn check_leases(sim: &Sim) -> Result<(), Violation> {
    let fail = |what: String| Err(Violation { at: sim.now(), what });
    let b = sim.broker();
    for (i, m) in b.msgs.iter().enumerate() {
        let msg = crate::scenario::index_u32(i);
        match (m.state(), m.lease()) {
            // (Its lease's consumer is its holder by construction: `Message::lease`.)
            (MsgState::InFlight { consumer, phase }, Some(lease)) => {
                let c = &sim.consumers[consumer.index()];
                let held = c.held.iter().any(|h| h.msg == MsgId(msg) && h.receipt == lease.receipt && !h.auto_acked);
                let orphaned = c.crashed_at.is_some_and(|t| t >= lease.received_at);
                let lost = sim.consumers.lost.iter().any(|l| l.msg == MsgId(msg) && l.receipt == lease.receipt);
                if !held && !orphaned && !lost {
                    return fail(format!("m{msg} is leased to c{consumer}, which does not hold it"));
                }
                if held && phase == Phase::Buffered && !c.buffer.iter().any(|h| h.msg == MsgId(msg)) {
                    return fail(format!("m{msg} is buffered at c{consumer} but not in its buffer"));
                }
            }
            (MsgState::InFlight { consumer, .. }, None) => {
                let c = &sim.consumers[consumer.index()];
                if !c.held.iter().any(|h| h.msg == MsgId(msg) && h.auto_acked) {
                    return fail(format!("m{msg} was auto-acked by c{consumer}, which does not hold it"));
                }
            }
            (state, Some(_)) => return fail(format!("m{msg} has a lease while {state:?}")),
            (_, None) => {}
        }
    }

    Ok(())
}

/// Consumers: within prefetch and concurrency; receipts unique; a consumer down holds
/// nothing; its room bit is what it has.
fn check_consumers(sim: &Sim) -> Result<(), Violation> {
    let fail = |what: String| Err(Violation { at: sim.now(), what });
    let b = sim.broker();
    let scenario = sim.scenario();
    for (ci, c) in sim.consumers.list.iter().enumerate() {
        let spec = &scenario.consumers[ci];
        // RMQ-49: what a RabbitMQ consumer acked on receipt takes no slot; recounted from `held`.
        let acked_free = !scenario.queues[spec.queue as usize].lease.acked_delivery_holds_a_slot();
        let unacked = c.held.iter().filter(|h| !(acked_free && h.auto_acked)).count();
        if !spec.manual && unacked > spec.prefetch as usize {
            return fail(format!("c{ci} holds {unacked} unacked, over its prefetch {}", spec.prefetch));
        }
        if c.jobs.len() > spec.concurrency as usize {
            return fail(format!("c{ci} runs {} jobs, over its concurrency {}", c.jobs.len(), spec.concurrency));
        }
        let mut receipts: Vec<u32> = c.held.iter().map(|h| h.receipt).collect();
        receipts.sort_unstable();
        if receipts.windows(2).any(|w| w[0] == w[1]) {
            return fail(format!("c{ci} holds one receipt twice"));
        }
        if !c.alive && (!c.held.is_empty() || !c.jobs.is_empty() || !c.buffer.is_empty()) {
            return fail(format!("c{ci} is down but still holds work"));
        }
        let q = &b.queues[spec.queue as usize];
        if q.consumers.get(c.slot) != Some(&ConsumerId(crate::scenario::index_u32(ci))) {
            return fail(format!("c{ci} is not at its place {} in its queue's consumers", c.slot));
        }
        // RMQ-57: on a single-active-consumer queue only the earliest consumer up takes any.
        let first_up = || {
            let list = &sim.consumers.list;
            (0..list.len()).find(|&i| {
                let s = &scenario.consumers[i];
                s.queue == spec.queue && !s.manual && list[i].alive && list[i].active
            })
        };
        let room = c.has_room(spec) && (!q.spec.single_active || first_up() == Some(ci));
        if q.has_room_at(c.slot) != room {
            return fail(format!("c{ci}: its room bit is {}, but it has room: {room}", q.has_room_at(c.slot)));
        }
    }
    Ok(())
}

/// Streams: every record appended is retained, compacted away or past retention, and nothing
/// vanishes otherwise; segments tile the log; no partition has two live owners in a group;
/// members work only on what they own; committed offsets are within the log.
fn check_streams(sim: &Sim) -> Result<(), Violation> {
    let fail = |what: String| Err(Violation { at: sim.now(), what });
    let streams = sim.streams();
    let scenario = sim.scenario();
    let mut appended = 0u64;
    for (ti, topic) in streams.topics.iter().enumerate() {
        for (pi, log) in topic.logs.iter().enumerate() {
            let name = format!("{}-{pi}", scenario.topics[ti].name);
            appended += log.end();
            let retained = log.records.iter().filter(|r| r.retained).count() as u64;
            if retained + log.deleted + log.compacted != log.end() {
                return fail(format!(
                    "{name}: {retained} retained + {} deleted + {} compacted != {} appended",
                    log.deleted,
                    log.compacted,
                    log.end()
                ));
            }
            if log.log_start > log.end()
                || log.records.iter().take(usize::try_from(log.log_start).unwrap_or(usize::MAX)).any(|r| r.retained)
            {
                return fail(format!("{name}: a record below the log start {} is still retained", log.log_start));
            }
            let Some(active) = log.segments.back() else { return fail(format!("{name}: no active segment")) };
            if active.end != log.end() {
                return fail(format!("{name}: the active segment ends at {}, the log at {}", active.end, log.end()));
            }
            if log.segments.iter().zip(log.segments.iter().skip(1)).any(|(a, b)| a.end != b.base) {
                return fail(format!("{name}: segments do not tile the log"));
            }
            if log.segments.front().is_some_and(|f| f.base > log.log_start.max(f.base) || f.end < log.log_start) {
                return fail(format!("{name}: the first segment does not hold the log start"));
            }
        }
    }
    if appended != sim.stats().records + streams_forwarded(streams) {
        return fail(format!("{appended} records in the logs; {} produced", sim.stats().records));
    }
    check_groups(sim)
}

/// Groups: a member down has no work; no partition has two live owners; members fetch only
/// what they own; commits are within the log.
fn check_groups(sim: &Sim) -> Result<(), Violation> {
    let fail = |what: String| Err(Violation { at: sim.now(), what });
    let (streams, scenario) = (sim.streams(), sim.scenario());
    for (gi, group) in streams.groups.iter().enumerate() {
        let spec = &scenario.groups[gi];
        let mut owners: BTreeMap<crate::stream::Part, usize> = BTreeMap::new();
        for (mi, m) in group.members.iter().enumerate() {
            if !m.alive {
                if m.current.is_some() || !m.batch.is_empty() {
                    return fail(format!("{}-{} is down but still has work", spec.name, mi + 1));
                }
                continue;
            }
            for part in &m.owned {
                if !spec.topics.contains(&part.topic) {
                    return fail(format!("{}-{} owns a partition of a topic it does not read", spec.name, mi + 1));
                }
                if let Some(other) = owners.insert(*part, mi) {
                    return fail(format!(
                        "{}: partition {}-{} owned by members {} and {}",
                        spec.name,
                        scenario.topics[part.topic as usize].name,
                        part.partition,
                        other + 1,
                        mi + 1
                    ));
                }
            }
            // Out of the group, it owns nothing, but may finish its batch (KC-14, KC-17).
            if !m.in_group && !m.owned.is_empty() {
                return fail(format!("{}-{} owns partitions while out of the group", spec.name, mi + 1));
            }
            if m.in_group && m.batch.iter().any(|(p, _)| !m.owned.contains(p)) {
                return fail(format!("{}-{} has fetched records of a partition it does not own", spec.name, mi + 1));
            }
        }
        for (part, &offset) in &group.committed {
            if offset > streams.log(*part).end() {
                return fail(format!("{}: committed {offset} beyond the log end", spec.name));
            }
        }
    }
    Ok(())
}

/// Sagas: a compensation only ever for a completed step, newest first (SG-2); a completed saga
/// has every step done and none compensated; a compensated one has every step before the
/// failed one compensated and none after it run; stuck only when a message of it went to a
/// DLQ. Request-reply: every pending entry is its request's.
fn check_workflows(sim: &Sim) -> Result<(), Violation> {
    use crate::workflow::{SagaStatus, Tag};
    let fail = |what: String| Err(Violation { at: sim.now(), what });
    let w = sim.workflows();
    for (bi, block) in w.sagas.iter().enumerate() {
        let name = &sim.scenario().sagas[bi].name;
        if block.stats.bad_compensations > 0 {
            return fail(format!("saga {name}: a compensation reached a step that had not completed"));
        }
        for (i, s) in block.instances.iter().enumerate() {
            let at = format!("saga {name}#{i}");
            for (k, st) in s.steps.iter().enumerate() {
                if st.compensated_at.is_some_and(|c| st.done_at.is_none_or(|d| c < d)) {
                    return fail(format!("{at}: step {k} compensated without having completed"));
                }
                if st.failed && st.done_at.is_some() {
                    return fail(format!("{at}: step {k} both failed and completed"));
                }
            }
            let comp: Vec<SimTime> = s.steps.iter().filter_map(|st| st.compensated_at).collect();
            if s.steps
                .windows(2)
                .any(|p| matches!((p[0].compensated_at, p[1].compensated_at), (Some(a), Some(b)) if a < b))
            {
                return fail(format!("{at}: compensations ran out of reverse order: {comp:?}"));
            }
            match s.status {
                SagaStatus::Completed
                    if s.steps.iter().any(|st| st.done_at.is_none() || st.compensated_at.is_some()) =>
                {
                    return fail(format!("{at}: completed, but not every step is done"));
                }
                SagaStatus::Compensated => {
                    let Some(f) = s.failed_step else { return fail(format!("{at}: compensated without a failure")) };
                    let f = f as usize;
                    if s.steps[..f].iter().any(|st| st.compensated_at.is_none())
                        || s.steps[f..].iter().any(|st| st.done_at.is_some())
                    {
                        return fail(format!("{at}: compensated, but not exactly the steps before step {f}"));
                    }
                }
                _ => {}
            }
        }
    }
    for (si, rr) in w.request_reply.iter().enumerate() {
        for table in &rr.tables {
            for (&corr, p) in table {
                if w.tags.get(&p.request)
                    != Some(&Tag::Request { system: crate::scenario::index_u32(si), requester: p.requester, corr })
                {
                    return fail(format!("request-reply {si}: pending corr-{corr} is not request m{}'s", p.request));
                }
            }
        }
    }
    Ok(())
}

/// Records the groups forwarded to retry and dead-letter topics.
fn streams_forwarded(streams: &crate::stream::Streams) -> u64 {
    streams.groups.iter().map(|g| g.stats.retried + g.stats.dead_lettered).sum()
}

/// A message's state as far as the trace can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    Publishing,
    Delayed,
    Visible,
    Leased { consumer: ConsumerId, receipt: u32 },
    AutoAcked { consumer: ConsumerId },
    Final(StateKind),
}

/// Replays a trace and checks that every event follows from the ones before: each message is
/// published once, moves only along the legal paths, settles at most once, and each delivery's
/// receive count is one more than the deliveries seen before it (counted afresh after a
/// RabbitMQ dead-lettering, which republishes: RMQ-13).
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    /// Per queue: its dead letters are republished, their counts start again (RMQ-13).
    republishes: Vec<bool>,
    seen: Vec<Seen>,
    queue: Vec<QueueId>,
    deliveries: Vec<u32>,
    last_at: SimTime,
    /// Streams: the next offset per (topic, partition); per (group, topic, partition) the
    /// committed offset and the member that owns it.
    log_end: BTreeMap<(u32, u32), u64>,
    committed: BTreeMap<(u32, u32, u32), u64>,
    owner: BTreeMap<(u32, u32, u32), u32>,
    /// Request-reply: each request's correlation id, and the ids already matched.
    request_corr: BTreeMap<MsgIdKey, u32>,
    matched: std::collections::BTreeSet<(u32, u32)>,
}

/// (system, request message).
type MsgIdKey = (u32, u32);

impl Ledger {
    /// A ledger for a run of `scenario`: it needs to know which queues' dead letters are
    /// republished, so that their receive counts start again.
    pub fn for_scenario(scenario: &crate::scenario::Scenario) -> Ledger {
        let republishes = scenario.queues.iter().map(|q| q.lease.dead_letter_republishes()).collect();
        Ledger { republishes, ..Ledger::default() }
    }

    // long: one arm per trace event that moves a message in the ledger, so that every move is checked in one place
    pub fn apply(&mut self, event: &TraceEvent) -> Result<(), Violation> {
        use TraceEvent as T;
        let at = event.at();
        let bad = |what: String| Err(Violation { at, what });
        if at < self.last_at {
            return bad(format!("event at {at} after one at {}", self.last_at));
        }
        self.last_at = at;
        match *event {
            T::RecordAppended { topic, partition, offset, .. } => {
                let end = self.log_end.entry((topic, partition)).or_insert(0);
                if offset != *end {
                    return bad(format!("topic {topic}-{partition}: appended at {offset}, the log ends at {end}"));
                }
                *end += 1;
            }
            // KC-15: only the partition's owner commits; a member the group has gone on
            // without has its commit refused (commit_failed).
            T::OffsetCommitted { group, member, topic, partition, .. }
                if self.owner.get(&(group, topic, partition)) != Some(&member.0) =>
            {
                return bad(format!(
                    "group {group}: member {member} committed {topic}-{partition}, which it does not own"
                ));
            }
            T::CommitFailed { group, member, topic, partition, .. }
                if self.owner.get(&(group, topic, partition)) == Some(&member.0) =>
            {
                return bad(format!(
                    "group {group}: member {member}'s commit of {topic}-{partition} failed, but it owns it"
                ));
            }
            // A reset moves a commit back to the log start, and only an inactive group's: one
            // with no owner for the partition.
            T::OffsetsReset { group, topic, partition, offset, .. } => {
                if let Some(owner) = self.owner.get(&(group, topic, partition)) {
                    return bad(format!("group {group}: {topic}-{partition} reset while member {owner} owns it"));
                }
                let end = self.log_end.get(&(topic, partition)).copied().unwrap_or(0);
                if offset > end {
                    return bad(format!(
                        "group {group}: {topic}-{partition} reset to {offset}, past the log end {end}"
                    ));
                }
                self.committed.insert((group, topic, partition), offset);
            }
            T::OffsetCommitted { group, topic, partition, offset, .. } => {
                let end = self.log_end.get(&(topic, partition)).copied().unwrap_or(0);
                let was = self.committed.insert((group, topic, partition), offset).unwrap_or(0);
                if offset < was || offset > end {
                    return bad(format!(
                        "group {group} committed {topic}-{partition} at {offset}: was {was}, log end {end}"
                    ));
                }
            }
            T::PartitionAssigned { group, member, topic, partition, .. } => {
                if let Some(other) = self.owner.insert((group, topic, partition), member.0) {
                    return bad(format!(
                        "group {group}: {topic}-{partition} given to member {member} while member {other} owns it"
                    ));
                }
            }
            T::PartitionRevoked { group, member, topic, partition, .. }
                if self.owner.remove(&(group, topic, partition)) != Some(member.0) =>
            {
                return bad(format!(
                    "group {group}: member {member} gave up {topic}-{partition}, which it did not own"
                ));
            }
            T::RequestSent { msg, system, corr, .. } => {
                self.request_corr.insert((system, msg.0), corr);
            }
            // No reply is matched to the wrong request, nor twice.
            T::ReplyMatched { system, corr, request, .. }
                if self.request_corr.get(&(system, request.0)) != Some(&corr)
                    || !self.matched.insert((system, corr)) =>
            {
                return bad(format!(
                    "a reply with corr-{corr} matched to request m{request}, which is not its request"
                ));
            }
            T::RecordDone { topic, partition, offset, .. } | T::RecordStarted { topic, partition, offset, .. }
                if offset >= self.log_end.get(&(topic, partition)).copied().unwrap_or(0) =>
            {
                return bad(format!("a record at {topic}-{partition}@{offset}, beyond the log end"));
            }
            _ => {}
        }
        if let T::Published { msg, queue, .. } = *event {
            if msg.index() != self.seen.len() {
                return bad(format!("m{msg} published out of sequence (expected m{})", self.seen.len()));
            }
            self.seen.push(Seen::Publishing);
            self.queue.push(queue);
            self.deliveries.push(0);
            return Ok(());
        }
        let Some(msg) = event.msg() else { return Ok(()) };
        let Some(&now) = self.seen.get(msg.index()) else {
            return bad(format!("{} for m{msg}, which was never published", event.kind()));
        };
        let live = !matches!(now, Seen::Final(_));
        let next = match *event {
            T::Enqueued { queue, .. }
                if matches!(now, Seen::Publishing | Seen::Delayed | Seen::Leased { .. }) || now == Seen::Visible =>
            {
                self.queue[msg.index()] = queue;
                Seen::Visible
            }
            T::Delayed { queue, .. } if live && !matches!(now, Seen::AutoAcked { .. }) => {
                self.queue[msg.index()] = queue;
                Seen::Delayed
            }
            T::Delivered { consumer, receipt, receive_count, .. } if now == Seen::Visible => {
                let d = &mut self.deliveries[msg.index()];
                *d += 1;
                if receive_count != *d {
                    return bad(format!("m{msg} delivered with receive count {receive_count}, the trace shows {d}"));
                }
                Seen::Leased { consumer, receipt }
            }
            T::AutoAcked { consumer, .. } if matches!(now, Seen::Leased { consumer: c, .. } if c == consumer) => {
                Seen::AutoAcked { consumer }
            }
            T::Acked { consumer, .. } if matches!(now, Seen::Leased { consumer: c, .. } if c == consumer) => {
                Seen::Final(StateKind::Acked)
            }
            T::Processed { consumer, .. } if matches!(now, Seen::AutoAcked { consumer: c } if c == consumer) => {
                Seen::Final(StateKind::Acked)
            }
            // Back in its queue; visible next (Enqueued), unless its TTL ran out meanwhile.
            T::Returned { consumer, .. } if matches!(now, Seen::Leased { consumer: c, .. } if c == consumer) => {
                Seen::Delayed
            }
            T::DeadLettered { from, dlq, .. } if live && !matches!(now, Seen::AutoAcked { .. }) => {
                self.queue[msg.index()] = dlq;
                if self.republishes.get(from.index()) == Some(&true) {
                    self.deliveries[msg.index()] = 0;
                }
                Seen::Delayed
            }
            T::Expired { queue, .. } if matches!(now, Seen::Visible | Seen::Delayed) => {
                self.queue[msg.index()] = queue;
                Seen::Final(StateKind::Expired)
            }
            T::Dropped { queue, .. } if live => {
                self.queue[msg.index()] = queue;
                Seen::Final(StateKind::Dropped)
            }
            T::Redriven { .. } if now == Seen::Visible => Seen::Final(StateKind::Moved),
            T::LeaseExtended { consumer, .. } if matches!(now, Seen::Leased { consumer: c, .. } if c == consumer) => {
                now
            }
            // Lost on its way: still leased to that consumer, until the lease ends.
            T::DeliveryLost { consumer, .. } if matches!(now, Seen::Leased { consumer: c, .. } if c == consumer) => now,
            // How it was routed, said as it is published (RMQ-24).
            T::Routed { .. } if now == Seen::Publishing || (live && matches!(now, Seen::Visible | Seen::Delayed)) => {
                now
            }
            // Events about work, not about where the message is.
            T::ProcessingStarted { .. }
            | T::Failed { .. }
            | T::EffectApplied { .. }
            | T::DuplicateSuppressed { .. }
            | T::StaleDropped { .. }
            | T::MessageOutOfOrder { .. }
            | T::RequestSent { .. }
            | T::ReplyMatched { .. }
            | T::ReplyUnmatched { .. }
            | T::AckRefused { .. } => now,
            _ => return bad(format!("m{msg}: {} while {now:?}", event.kind())),
        };
        self.seen[msg.index()] = next;
        Ok(())
    }

    /// Messages per coarse state per queue, as the trace tells it: `[publishing, delayed,
    /// visible, in flight, acked, expired, dropped, moved]`.
    pub fn coarse_counts(&self, queues: usize) -> Vec<[u32; 8]> {
        let mut out = vec![[0u32; 8]; queues];
        for (s, &q) in self.seen.iter().zip(&self.queue) {
            out[q.index()][coarse(*s)] += 1;
        }
        out
    }
}

fn coarse(s: Seen) -> usize {
    match s {
        Seen::Publishing => 0,
        Seen::Delayed => 1,
        Seen::Visible => 2,
        Seen::Leased { .. } | Seen::AutoAcked { .. } => 3,
        Seen::Final(StateKind::Acked) => 4,
        Seen::Final(StateKind::Expired) => 5,
        Seen::Final(StateKind::Dropped) => 6,
        Seen::Final(_) => 7,
    }
}

/// The engine's counts in the ledger's coarse shape, to compare with `Ledger::coarse_counts`.
pub fn coarse_engine_counts(sim: &Sim) -> Vec<[u32; 8]> {
    sim.broker()
        .counts
        .iter()
        .map(|c| {
            [
                c.get(StateKind::Publishing),
                c.get(StateKind::Delayed),
                c.get(StateKind::Ready) + c.get(StateKind::DeadLettered),
                c.in_flight(),
                c.get(StateKind::Acked),
                c.get(StateKind::Expired),
                c.get(StateKind::Dropped),
                c.get(StateKind::Moved),
            ]
        })
        .collect()
}

/// Checkers that can fail (issue 24): every invariant `check` holds, broken on purpose in a
/// real run's state, reports exactly its violation. (The ledger's are in tests/sim/checkers.rs.)
#[cfg(test)]
mod tests {
    use super::check;
    use crate::consumer::{Held, Job, Outcome};
    use crate::ids::MsgId;
    use crate::message::{MsgState, Phase};
    use crate::sim::Sim;
    use crate::time::SimTime;

    /// Preset `id` (its own seed) run to `ms`, where `check` holds.
    fn at(id: &str, ms: u64) -> Sim {
        let scenario = crate::Scenario::from_json(crate::scenario::preset(id).expect("a preset").json).expect("valid");
        let seed = scenario.seed.expect("presets carry their seed");
        let mut sim = Sim::new(scenario, seed);
        sim.run_until(SimTime::from_millis(ms), u64::MAX).expect("runs");
        assert_eq!(check(&sim).map_err(|v| v.what), Ok(()), "{id} at {ms} ms holds before it is broken");
        sim
    }

    /// Preset `id` stepped until `ready` holds of it (within its run), with `check` holding.
    fn until(id: &str, ready: impl Fn(&Sim) -> bool) -> Sim {
        let mut sim = at(id, 0);
        while !ready(&sim) {
            assert!(sim.step().is_some(), "{id}: the run ended first");
        }
        assert_eq!(check(&sim).map_err(|v| v.what), Ok(()));
        sim
    }

    fn any_msg(sim: &Sim, want: impl Fn(&crate::message::Message) -> bool) -> bool {
        sim.ports.broker.msgs.iter().any(want)
    }

    /// What `check` says of `sim` once `corrupt` has broken it.
    fn broken(mut sim: Sim, corrupt: impl FnOnce(&mut Sim)) -> String {
        corrupt(&mut sim);
        check(&sim).expect_err("the corruption is caught").what
    }

    /// The first message in state `want`, by its id.
    fn first(sim: &Sim, want: impl Fn(MsgState) -> bool) -> u32 {
        let i = sim.ports.broker.msgs.iter().position(|m| want(m.state())).expect("such a message");
        crate::scenario::index_u32(i)
    }

    fn in_flight(s: MsgState) -> bool {
        matches!(s, MsgState::InFlight { phase: Phase::Processing, .. })
    }

    #[test]
    fn counts_and_conservation() {
        let sim = at("backlog", 20_000);
        let v = broken(sim.clone(), |s| s.ports.broker.counts[0] = crate::message::StateCounts::default());
        assert!(v.starts_with("state counts ") && v.contains("differ from a recount"), "{v}");
        let n = sim.ports.broker.msgs.len();
        let p = sim.ports.stats.published;
        assert_eq!(
            broken(sim, |s| s.ports.stats.published += 1),
            format!("{n} messages exist; {} published, 0 redriven, 0 copied by dead-lettering and 0 parked", p + 1)
        );
    }

    #[test]
    fn ttls_are_kept() {
        let sim = at("backlog", 20_000);
        let acked = first(&sim, |s| s == MsgState::Acked);
        let v = broken(sim.clone(), |s| s.ports.broker.msgs[acked as usize].expires_at = SimTime::ZERO);
        assert!(v.starts_with(&format!("m{acked} was delivered after its TTL ran out at ")), "{v}");
        let ready = first(&sim, |s| s == MsgState::Ready);
        let v = broken(sim, |s| s.ports.broker.msgs[ready as usize].expires_at = SimTime::ZERO);
        assert!(v.starts_with(&format!("m{ready} waits in queue 0 past its TTL")), "{v}");
    }

    #[test]
    fn ready_sets_list_exactly_the_visible_messages() {
        let sim = at("backlog", 20_000);
        let ready = first(&sim, |s| s == MsgState::Ready);
        let pos = sim.ports.broker.msg(MsgId(ready)).pos;
        let v = broken(sim.clone(), |s| s.ports.broker.msgs[ready as usize].pos = pos + 1_000_000);
        assert_eq!(v, format!("queue 0 lists m{ready} at {pos}; it is Ready in queue 0 at {}", pos + 1_000_000));
        let listed = sim.ports.broker.queues[0].ready.len();
        let v = broken(sim.clone(), |s| {
            s.ports.broker.queues[0].ready.remove(pos);
        });
        assert_eq!(v, format!("queue 0 lists {} visible, {listed} are visible", listed - 1));
        let v = broken(sim, |s| s.ports.broker.queues[0].spec.role = crate::scenario::QueueRole::Retry { of: 0 });
        assert_eq!(v, "retry queue 0 has visible messages");
    }

    #[test]
    fn fifo_books_match_the_leases() {
        let sim = at("fifo-groups", 6_000);
        let v = broken(sim, |s| {
            s.ports.broker.queues[0].groups_in_flight.insert(999, 1);
        });
        assert!(
            v.starts_with("queue 0: groups in flight ") && v.contains("999: 1") && v.contains(", leases say "),
            "{v}"
        );
    }

    #[test]
    fn leases_are_held_by_their_consumer() {
        let sim = until("prefetch-hoarding", |s| {
            any_msg(s, |m| in_flight(m.state()))
                && any_msg(s, |m| matches!(m.state(), MsgState::InFlight { phase: Phase::Buffered, .. }))
        });
        let busy = first(&sim, in_flight);
        let MsgState::InFlight { consumer, .. } = sim.ports.broker.msg(MsgId(busy)).state() else { unreachable!() };
        let v = broken(sim.clone(), |s| s.ports.broker.msgs[busy as usize].receipt = 999_999);
        assert_eq!(v, format!("m{busy} is leased to c{consumer}, which does not hold it"));
        let buffered = first(&sim, |s| matches!(s, MsgState::InFlight { phase: Phase::Buffered, .. }));
        let MsgState::InFlight { consumer: holder, .. } = sim.ports.broker.msg(MsgId(buffered)).state() else {
            unreachable!()
        };
        let v = broken(sim.clone(), |s| s.consumers[holder.index()].buffer.clear());
        assert_eq!(v, format!("m{buffered} is buffered at c{holder} but not in its buffer"));
        let later = at("backlog", 20_000);
        let acked = first(&later, |s| s == MsgState::Acked);
        let v = broken(later, |s| s.ports.broker.msgs[acked as usize].receipt = 7);
        assert_eq!(v, format!("m{acked} has a lease while Acked"));
    }

    #[test]
    fn an_auto_acked_message_is_held_by_its_consumer() {
        // ack-modes: ack-before-processing hands messages over without a lease.
        let auto = |m: &crate::message::Message| matches!(m.state(), MsgState::InFlight { .. }) && m.lease().is_none();
        let sim = until("ack-modes", |s| any_msg(s, auto));
        let msg = crate::scenario::index_u32(sim.ports.broker.msgs.iter().position(auto).expect("one"));
        let MsgState::InFlight { consumer, .. } = sim.ports.broker.msg(MsgId(msg)).state() else { unreachable!() };
        assert!(sim.ports.broker.msg(MsgId(msg)).lease().is_none(), "an auto-acked message in flight");
        let v = broken(sim, |s| s.consumers[consumer.index()].held.clear());
        assert_eq!(v, format!("m{msg} was auto-acked by c{consumer}, which does not hold it"));
    }

    #[test]
    fn consumers_keep_to_prefetch_concurrency_receipts_life_and_place() {
        let sim = at("prefetch-hoarding", 250);
        // worker-slow (c0) holds its full prefetch of 10; worker-fast (c1) one of 1.
        let extra = Held { msg: MsgId(0), receipt: 999_999, auto_acked: false };
        assert_eq!(
            broken(sim.clone(), |s| s.consumers[0].held.push(extra)),
            "c0 holds 11 unacked, over its prefetch 10"
        );
        let job = Job { msg: MsgId(0), receipt: 999_999, outcome: Outcome::Success, read_at: SimTime::MAX };
        assert_eq!(broken(sim.clone(), |s| s.consumers[1].jobs.push(job)), "c1 runs 2 jobs, over its concurrency 1");
        let sim2 = at("competing-consumers", 3_000);
        let c =
            (0..sim2.consumers.list.len()).find(|&c| sim2.consumers[c].held.len() == 1).expect("a worker holding one");
        let twin = *sim2.consumers[c].held.iter().next().expect("held");
        let mut s3 = sim2.clone();
        s3.cx.scenario.get_mut().consumers[c].prefetch = 2;
        assert_eq!(broken(s3, |s| s.consumers[c].held.push(twin)), format!("c{c} holds one receipt twice"));
        assert_eq!(
            broken(sim2.clone(), |s| s.consumers[c].alive = false),
            format!("c{c} is down but still holds work")
        );
        let slot = sim2.consumers[c].slot;
        assert_eq!(
            broken(sim2.clone(), |s| s.consumers[c].slot = slot + 7),
            format!("c{c} is not at its place {} in its queue's consumers", slot + 7)
        );
        let v = broken(sim2.clone(), |s| {
            let q = &mut s.ports.broker.queues[s.cx.scenario.consumers[c].queue as usize];
            q.room[slot / 64] ^= 1 << (slot % 64);
        });
        assert!(v.starts_with(&format!("c{c}: its room bit is ")), "{v}");
    }

    #[test]
    fn logs_account_for_every_record_and_tile_their_segments() {
        let sim = at("compaction", 60_000);
        let log = &sim.streams.topics[0].logs[0];
        let name = format!("{}-0", sim.cx.scenario.topics[0].name);
        let (end, deleted, compacted) = (log.end(), log.deleted, log.compacted);
        let retained = log.records.iter().filter(|r| r.retained).count() as u64;
        assert_eq!(
            broken(sim.clone(), |s| s.streams.topics[0].logs[0].deleted += 1),
            format!("{name}: {retained} retained + {} deleted + {compacted} compacted != {end} appended", deleted + 1)
        );
        assert_eq!(
            broken(sim.clone(), |s| s.streams.topics[0].logs[0].segments.clear()),
            format!("{name}: no active segment")
        );
        assert_eq!(
            broken(sim.clone(), |s| s.streams.topics[0].logs[0].segments.back_mut().expect("one").end += 1),
            format!("{name}: the active segment ends at {}, the log at {end}", end + 1)
        );
        assert!(log.segments.len() >= 2, "compaction rolls segments");
        assert_eq!(
            broken(sim.clone(), |s| s.streams.topics[0].logs[0].segments[1].base += 1),
            format!("{name}: segments do not tile the log")
        );
        // A retained record below the log start.
        let first_retained = log.records.iter().position(|r| r.retained).expect("a record") as u64;
        assert_eq!(
            broken(sim.clone(), |s| s.streams.topics[0].logs[0].log_start = first_retained + 1),
            format!("{name}: a record below the log start {} is still retained", first_retained + 1)
        );
        let records = sim.ports.stats.records;
        let appended: u64 = sim.streams.topics.iter().flat_map(|t| &t.logs).map(crate::stream::Log::end).sum();
        assert_eq!(
            broken(sim, |s| s.ports.stats.records += 1),
            format!("{appended} records in the logs; {} produced", records + 1)
        );
    }

    #[test]
    fn the_first_segment_holds_the_log_start() {
        // Every record of the first segment gone (and counted deleted), the log start past it:
        // everything else holds, but the first segment no longer holds the start.
        let sim = at("compaction", 60_000);
        let name = format!("{}-0", sim.cx.scenario.topics[0].name);
        let v = broken(sim, |s| {
            let log = &mut s.streams.topics[0].logs[0];
            let front_end = log.segments[0].end;
            let mut gone = 0;
            for i in 0..front_end {
                let r = &mut log.records[usize::try_from(i).expect("small")];
                if r.retained {
                    r.retained = false;
                    gone += 1;
                }
            }
            log.deleted += gone;
            log.log_start = front_end + 1;
        });
        assert_eq!(v, format!("{name}: the first segment does not hold the log start"));
    }

    #[test]
    fn groups_own_each_partition_once_and_work_only_on_what_they_own() {
        let sim = until("rebalancing", |s| {
            s.streams.groups[0].members.iter().filter(|m| m.alive && !m.owned.is_empty()).count() >= 2
                && s.streams.groups[0].members.iter().any(|m| m.alive && !m.batch.is_empty())
        });
        let g = &sim.streams.groups[0];
        let name = sim.cx.scenario.groups[0].name.clone();
        let owners: Vec<usize> =
            (0..g.members.len()).filter(|&i| g.members[i].alive && !g.members[i].owned.is_empty()).collect();
        let (a, b) = (owners[0], owners[1]);
        let part = g.members[a].owned[0];
        let topic = sim.cx.scenario.topics[part.topic as usize].name.clone();
        let (lo, hi) = (a.min(b), a.max(b));
        assert_eq!(
            broken(sim.clone(), |s| s.streams.groups[0].members[b].owned.push(part)),
            format!("{name}: partition {topic}-{} owned by members {} and {}", part.partition, lo + 1, hi + 1)
        );
        assert_eq!(
            broken(sim.clone(), |s| s.cx.scenario.get_mut().groups[0].topics.clear()),
            format!("{name}-{} owns a partition of a topic it does not read", owners[0] + 1)
        );
        let busy =
            (0..g.members.len()).find(|&i| g.members[i].alive && !g.members[i].batch.is_empty()).expect("a batch");
        assert_eq!(
            broken(sim.clone(), |s| s.streams.groups[0].members[busy].owned.clear()),
            format!("{name}-{} has fetched records of a partition it does not own", busy + 1)
        );
        assert_eq!(
            broken(sim.clone(), |s| s.streams.groups[0].members[busy].alive = false),
            format!("{name}-{} is down but still has work", busy + 1)
        );
        assert_eq!(
            broken(sim, |s| {
                s.streams.groups[0].committed.insert(part, 1_000_000);
            }),
            format!("{name}: committed 1000000 beyond the log end")
        );
    }

    #[test]
    fn sagas_compensate_only_what_completed_newest_first() {
        use crate::workflow::SagaStatus;
        let sim = until("saga-compensation", |s| {
            let i = &s.ports.handlers.sagas[0].instances;
            i.iter().any(|x| x.status == SagaStatus::Compensated) && i.iter().any(|x| x.status == SagaStatus::Running)
        });
        let block = &sim.ports.handlers.sagas[0];
        let done = block.instances.iter().position(|x| x.status == SagaStatus::Compensated).expect("one");
        let running = block.instances.iter().position(|x| x.status == SagaStatus::Running).expect("one");
        let now = sim.cx.now();
        assert_eq!(
            broken(sim.clone(), |s| s.ports.handlers.sagas[0].stats.bad_compensations = 1),
            "saga orders: a compensation reached a step that had not completed"
        );
        let last = block.instances[running].steps.len() - 1;
        assert_eq!(
            broken(sim.clone(), |s| s.ports.handlers.sagas[0].instances[running].steps[last].compensated_at =
                Some(now)),
            format!("saga orders#{running}: step {last} compensated without having completed")
        );
        assert_eq!(
            broken(sim.clone(), |s| s.ports.handlers.sagas[0].instances[done].steps[0].failed = true),
            format!("saga orders#{done}: step 0 both failed and completed")
        );
        let v = broken(sim.clone(), |s| {
            let steps = &mut s.ports.handlers.sagas[0].instances[done].steps;
            let (a, b) = (steps[0].compensated_at, steps[1].compensated_at);
            (steps[0].compensated_at, steps[1].compensated_at) = (b, a);
            // Still after their completions, so that only the order is wrong.
            steps[0].done_at = Some(SimTime::ZERO);
            steps[1].done_at = Some(SimTime::ZERO);
        });
        assert!(v.starts_with(&format!("saga orders#{done}: compensations ran out of reverse order")), "{v}");
        assert_eq!(
            broken(sim.clone(), |s| s.ports.handlers.sagas[0].instances[running].status = SagaStatus::Completed),
            format!("saga orders#{running}: completed, but not every step is done")
        );
        assert_eq!(
            broken(sim.clone(), |s| s.ports.handlers.sagas[0].instances[done].failed_step = None),
            format!("saga orders#{done}: compensated without a failure")
        );
        let f = block.instances[done].failed_step.expect("failed") as usize;
        assert_eq!(
            broken(sim, |s| s.ports.handlers.sagas[0].instances[done].steps[0].compensated_at = None),
            format!("saga orders#{done}: compensated, but not exactly the steps before step {f}")
        );
    }

    #[test]
    fn every_pending_request_is_its_own() {
        let sim = until("request-reply", |s| s.ports.handlers.request_reply[0].tables.iter().any(|t| !t.is_empty()));
        let (corr, p) = sim.ports.handlers.request_reply[0]
            .tables
            .iter()
            .find_map(|t| t.iter().next())
            .map(|(c, p)| (*c, *p))
            .expect("pending");
        let v = broken(sim, |s| {
            let t =
                s.ports.handlers.request_reply[0].tables.iter_mut().find(|t| t.contains_key(&corr)).expect("its table");
            t.insert(corr + 10_000, p);
        });
        assert_eq!(v, format!("request-reply 0: pending corr-{} is not request m{}'s", corr + 10_000, p.request));
    }

    // --- The edges: states that hold, next to the ones that do not (cargo mutants found each
    // of these unpinned). ---

    fn holds(sim: &Sim) {
        assert_eq!(check(sim).map_err(|v| v.what), Ok(()));
    }

    #[test]
    fn a_violation_says_when_and_what() {
        let v = super::Violation { at: SimTime::from_millis(1500), what: "m3 lost".into() };
        assert_eq!(v.to_string(), format!("invariant violated at {}: m3 lost", SimTime::from_millis(1500)));
    }

    #[test]
    fn ttl_edges() {
        let sim = at("backlog", 20_000);
        let now = sim.cx.now();
        // Delivered at the very instant its TTL ends (RMQ-19, TTL 0): allowed.
        let acked = first(&sim, |s| s == MsgState::Acked);
        let mut s = sim.clone();
        s.ports.broker.msgs[acked as usize].expires_at = s.ports.broker.msgs[acked as usize].last_received_at;
        holds(&s);
        // Waiting at the instant its TTL ends (its timer may still be due): allowed.
        let ready = first(&sim, |s| s == MsgState::Ready);
        let mut s = sim.clone();
        s.ports.broker.msgs[ready as usize].expires_at = now;
        holds(&s);
        // RMQ-21: on RabbitMQ (backlog's queue) an expired message behind the head may wait.
        let second = sim.ports.broker.queues[0].ready.iter().nth(1).map(|(_, m)| m).expect("two waiting");
        let mut s = sim.clone();
        s.ports.broker.msgs[second.index()].expires_at = SimTime::ZERO;
        holds(&s);
        // SQS expires a message at its TTL wherever it waits: behind the head too.
        let sqs = until("lease-models", |s| s.ports.broker.queues[0].ready.len() >= 2);
        let second = sqs.ports.broker.queues[0].ready.iter().nth(1).map(|(_, m)| m).expect("two waiting");
        let v = broken(sqs, |s| s.ports.broker.msgs[second.index()].expires_at = SimTime::ZERO);
        assert!(v.starts_with(&format!("m{second} waits in queue 0 past its TTL")), "{v}");
        // A dead letter received before its move has its DLQ's expiry (SQS-13), not the one
        // it was received under: an expiry before that receive is no violation (here one
        // redriven on since, so that it waits nowhere).
        let settled = |s: &Sim, m: u32| {
            s.ports.broker.msg(MsgId(m)).last_received().is_some() && s.ports.broker.msg(MsgId(m)).kind.is_final()
        };
        let dead = until("poison-redrive", |s| s.ports.broker.dead.keys().any(|&m| settled(s, m.0)));
        let msg = *dead.ports.broker.dead.keys().find(|&&m| settled(&dead, m.0)).expect("one");
        let mut s = dead.clone();
        let received = s.ports.broker.msgs[msg.index()].last_received_at;
        s.ports.broker.msgs[msg.index()].expires_at = SimTime::from_micros(received.as_micros().saturating_sub(1));
        holds(&s);
    }

    #[test]
    fn a_listed_message_in_another_state_is_caught_by_its_state_alone() {
        use crate::message::StateKind;
        let sim = at("backlog", 20_000);
        let ready = first(&sim, |s| s == MsgState::Ready);
        let pos = sim.ports.broker.msg(MsgId(ready)).pos;
        let v = broken(sim, |s| {
            s.ports.broker.msgs[ready as usize].kind = StateKind::Delayed;
            s.ports.broker.counts[0].remove(StateKind::Ready);
            s.ports.broker.counts[0].add(StateKind::Delayed);
        });
        assert_eq!(v, format!("queue 0 lists m{ready} at {pos}; it is Delayed in queue 0 at {pos}"));
    }

    #[test]
    fn a_retry_queue_with_nothing_visible_holds() {
        // error-classes retries through a retry queue: held messages wait there, never visible.
        let sim = at("error-classes", 20_000);
        assert!(sim
            .ports
            .broker
            .queues
            .iter()
            .any(|q| matches!(q.spec.role, crate::scenario::QueueRole::Retry { .. })));
        holds(&sim);
    }

    #[test]
    fn a_lost_delivery_excuses_only_its_own_lease() {
        let sim = until("backlog", |s| {
            s.ports.broker.msgs.iter().any(|m| matches!(m.state(), MsgState::InFlight { phase: Phase::Delivering, .. }))
        });
        let msg = first(&sim, |s| matches!(s, MsgState::InFlight { phase: Phase::Delivering, .. }));
        let MsgState::InFlight { consumer, .. } = sim.ports.broker.msg(MsgId(msg)).state() else { unreachable!() };
        let mut lost = sim.clone();
        lost.input(crate::scenario::Op::DropDelivery { msg });
        holds(&lost);
        // The lost entry names this message's old receipt; a lease under another receipt is
        // not excused by it.
        let receipt = lost.ports.broker.msg(MsgId(msg)).lease().expect("leased").receipt;
        let v = broken(lost, |s| s.ports.broker.msgs[msg as usize].receipt = receipt + 500);
        assert_eq!(v, format!("m{msg} is leased to c{consumer}, which does not hold it"));
    }

    #[test]
    fn an_auto_acked_message_needs_its_own_held_entry_marked_auto_acked() {
        let auto = |m: &crate::message::Message| matches!(m.state(), MsgState::InFlight { .. }) && m.lease().is_none();
        let sim = until("ack-modes", |s| s.ports.broker.msgs.iter().any(auto));
        let msg = crate::scenario::index_u32(sim.ports.broker.msgs.iter().position(auto).expect("one"));
        let MsgState::InFlight { consumer, .. } = sim.ports.broker.msg(MsgId(msg)).state() else { unreachable!() };
        let v = broken(sim, |s| {
            let c = &mut s.consumers[consumer.index()];
            let receipt = c.held.iter().find(|h| h.msg == MsgId(msg)).expect("held").receipt;
            c.held.get_mut(MsgId(msg), receipt).expect("held").auto_acked = false;
        });
        assert_eq!(v, format!("m{msg} was auto-acked by c{consumer}, which does not hold it"));
    }

    #[test]
    fn a_down_consumer_holds_no_work_of_any_kind() {
        // worker-slow (c0) holds, works and buffers; worker-fast (c1) holds what it works on.
        let sim = until("prefetch-hoarding", |s| {
            let (slow, fast) = (&s.consumers[0], &s.consumers[1]);
            !slow.jobs.is_empty() && !slow.buffer.is_empty() && !fast.held.is_empty()
        });
        let now = sim.cx.now();
        let down = |s: &mut Sim, c: usize| {
            s.consumers[c].alive = false;
            s.consumers[c].crashed_at = Some(now);
        };
        // Held only.
        let v = broken(sim.clone(), |s| {
            down(s, 1);
            s.consumers[1].jobs.clear();
        });
        assert_eq!(v, "c1 is down but still holds work");
        // Jobs only (its leases orphaned by the crash).
        let v = broken(sim.clone(), |s| {
            down(s, 0);
            s.consumers[0].held.clear();
            s.consumers[0].buffer.clear();
        });
        assert_eq!(v, "c0 is down but still holds work");
        // A buffer only.
        let v = broken(sim, |s| {
            down(s, 0);
            s.consumers[0].held.clear();
            s.consumers[0].jobs.clear();
        });
        assert_eq!(v, "c0 is down but still holds work");
    }

    /// A topic whose retention deletes whole segments and records: the log start moves.
    const RETAINED: &str = r#"{"name": "r", "duration_ms": 30000,
      "topics": [{"name": "t", "partitions": 1, "record_bytes": 100, "segment_bytes": 500, "retention_ms": 5000, "check_every_ms": 1000}],
      "producers": [{"name": "p", "to": "t", "schedule": {"kind": "fixed_rate", "interval_ms": 100, "count": 250}}]}"#;

    #[test]
    fn log_edges_deleted_records_and_a_log_start_inside_the_first_segment() {
        let scenario = crate::Scenario::from_json(RETAINED).expect("valid");
        let mut sim = Sim::new(scenario, 1);
        sim.run_until(SimTime::from_millis(20_000), u64::MAX).expect("runs");
        holds(&sim);
        assert!(sim.streams.topics[0].logs[0].deleted > 0, "retention deleted records");
        // The start may sit inside the first segment, its records before it deleted.
        let mut s = sim.clone();
        let log = &mut s.streams.topics[0].logs[0];
        let base = log.segments[0].base;
        assert!(log.segments[0].end > base + 1, "a segment of several records");
        log.records[usize::try_from(base).expect("small")].retained = false;
        log.deleted += 1;
        log.log_start = base + 1;
        holds(&s);
        // Records forwarded to retry and dead-letter topics count as appended (retry-topics).
        let forwarded = until("retry-topics", |s| s.streams.groups.iter().any(|g| g.stats.retried > 0));
        holds(&forwarded);
    }

    #[test]
    fn a_member_with_a_record_in_hand_and_nothing_fetched_is_still_busy() {
        let sim = until("rebalancing", |s| s.streams.groups[0].members.iter().any(|m| m.alive && m.current.is_some()));
        let name = sim.cx.scenario.groups[0].name.clone();
        let mi = sim.streams.groups[0].members.iter().position(|m| m.alive && m.current.is_some()).expect("one");
        let v = broken(sim, |s| {
            let m = &mut s.streams.groups[0].members[mi];
            m.batch.clear();
            m.alive = false;
        });
        assert_eq!(v, format!("{name}-{} is down but still has work", mi + 1));
    }

    #[test]
    fn a_compensation_at_the_instant_of_its_step_holds_and_one_before_it_does_not() {
        use crate::workflow::SagaStatus;
        let sim = until("saga-compensation", |s| {
            s.ports.handlers.sagas[0].instances.iter().any(|x| x.status == SagaStatus::Compensated)
        });
        let done = sim.ports.handlers.sagas[0]
            .instances
            .iter()
            .position(|x| x.status == SagaStatus::Compensated)
            .expect("one");
        // The newest compensated step (compensated first) undone at the instant it was done:
        // allowed, and still newest first.
        let newest = sim.ports.handlers.sagas[0].instances[done]
            .steps
            .iter()
            .rposition(|st| st.compensated_at.is_some())
            .expect("one");
        let mut s = sim.clone();
        let st = &mut s.ports.handlers.sagas[0].instances[done].steps[newest];
        st.compensated_at = st.done_at;
        holds(&s);
        let v =
            broken(sim, |s| s.ports.handlers.sagas[0].instances[done].steps[0].compensated_at = Some(SimTime::ZERO));
        assert_eq!(v, format!("saga orders#{done}: step 0 compensated without having completed"));
    }
}
