//! The member's client loop, as the Java consumer's: `poll` does everything a member does to
//! its partitions (rejoining, revoking, taking new ones, committing), then fetches; the member
//! processes the batch record by record, commits as its mode says, and polls again.

use super::*;

impl Streams {
    // --- The member loop -----------------------------------------------------------------------

    /// `poll()`: commits as the group's mode says, leaves, rejoins a rebalance, takes up an
    /// assignment, then fetches up to `max.poll.records` and starts on the first.
    // long: the Java consumer's poll, step by step: leave, rejoin, revoke, take the assignment, commit, fetch
    pub(crate) fn poll(&mut self, cx: &mut Ctx, group: u32, m: MemberId) {
        let now = cx.now();
        let spec = group_spec(&cx.scenario, group).clone();
        let member = self.member(group, m);
        if !member.alive || member.current.is_some() {
            return;
        }
        // KC-14: a poll at the limit is already too late (the client's timer is `>=`).
        if member.in_group && member.poll_timer && now >= member.last_poll.after(spec.max_poll_interval) {
            self.evict(cx, group, m);
        }
        let member = self.member(group, m);
        member.last_poll = now;
        member.polls = member.polls.wrapping_add(1);
        member.poll_timer = false;
        if !member.in_group {
            // The group went on without it while it was busy (KC-14, KC-18).
            self.rejoin_as_new(cx, group, m);
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
                self.commit(cx, group, m, part, offset);
            }
        }
        if self.member(group, m).leaving {
            let owned = std::mem::take(&mut self.member(group, m).owned);
            self.revoke(cx, group, m, &owned, RevokeReason::Left);
            let member = self.member(group, m);
            member.in_group = false;
            member.alive = false;
            member.leaving = false;
            cx.out.emit(TraceEvent::MemberChanged { at: now, group, member: m, change: MemberChange::Left });
            self.rebalance(cx, group);
            self.maybe_end_join(cx, group, false);
            return;
        }
        // The last completed rebalance's assignment first (a cooperative revocation there
        // starts the follow-up rebalance), then rejoin the one in progress, if any.
        self.take_assignment(cx, group, m);
        if self.groups[group as usize].phase == GroupPhase::PreparingRebalance && !self.member(group, m).joined {
            self.rejoin(cx, group, m);
        }
        // Eager members wait in poll until the rebalance completes (KC-1).
        if self.member(group, m).blocked {
            return;
        }
        self.fetch(cx, group, m);
        if let CommitMode::BeforeProcessing = spec.commit {
            // Commit what this poll returned, before processing it: at-most-once (KC-6).
            let positions: Vec<(Part, u64)> = self.member(group, m).positions.iter().map(|(p, o)| (*p, *o)).collect();
            for (part, offset) in positions {
                self.commit(cx, group, m, part, offset);
            }
        }
        self.next_record(cx, group, m);
    }

    /// Fetches up to `max.poll.records`, partition after partition from a rotating start.
    /// Records of a retry topic wait until they are due; an offset below the log start is out
    /// of range and resets (KC-9).
    // long: a fetch across the owned partitions as Kafka's fetcher does it: position, reset, retention, then records up to max.poll.records
    pub(super) fn fetch(&mut self, cx: &mut Ctx, group: u32, m: MemberId) {
        let now = cx.now();
        let max = group_spec(&cx.scenario, group).max_poll_records as usize;
        let owned = self.member(group, m).owned.clone();
        let n = owned.len();
        let start = self.member(group, m).fetch_cursor;
        let mut wake: Option<SimTime> = None;
        for k in 0..n {
            let part = owned[(start + k) % n];
            let Some(&position) = self.member(group, m).positions.get(&part) else { continue };
            let log = self.log(part);
            let mut from = position;
            if from < log.log_start {
                let reset = match group_spec(&cx.scenario, group).offset_reset {
                    OffsetReset::Earliest => log.log_start,
                    OffsetReset::Latest => log.end(),
                };
                self.account_skipped(cx, group, part, position, reset);
                from = reset;
            }
            let room = max - self.member(group, m).batch.len();
            let log = self.log(part);
            let tspec = &cx.scenario.topics[part.topic as usize];
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
                cx.out.emit(TraceEvent::RecordsFetched {
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
                    cx.out.schedule(at, Event::Stream(StreamEvent::StreamWork { group, member: m, epoch }));
                }
            }
        }
    }

    /// Starts the next record of the batch, or polls again when the batch is done.
    pub(super) fn next_record(&mut self, cx: &mut Ctx, group: u32, m: MemberId) {
        let now = cx.now();
        let processing = group_spec(&cx.scenario, group).processing;
        let member = self.member(group, m);
        let Some((part, offset)) = member.batch.pop_front() else {
            if !member.waiting {
                self.poll(cx, group, m);
            }
            return;
        };
        member.attempt = 0;
        let done_at = now.after(sample(processing, &mut member.prng));
        self.start_record(cx, group, m, (part, offset), done_at);
    }

    /// Starts work on a record (or another attempt at it), done at `done_at`. Work that runs
    /// past `max.poll.interval.ms` from the last poll sets the client's poll timer (KC-14); it
    /// goes first at an equal time, as the client's check is `>=`.
    fn start_record(&mut self, cx: &mut Ctx, group: u32, m: MemberId, (part, offset): (Part, u64), done_at: SimTime) {
        let now = cx.now();
        let limit = group_spec(&cx.scenario, group).max_poll_interval;
        let member = self.member(group, m);
        member.current = Some((part, offset, done_at));
        let (epoch, poll, deadline) = (member.epoch, member.polls, member.last_poll.after(limit).max(now));
        if member.in_group && !member.poll_timer && done_at >= deadline {
            member.poll_timer = true;
            cx.out.schedule(deadline, Event::Stream(StreamEvent::PollTimeout { group, member: m, epoch, poll }));
        }
        cx.out.emit(TraceEvent::RecordStarted {
            at: now,
            group,
            member: m,
            topic: part.topic,
            partition: part.partition,
            offset,
            done_at,
        });
        cx.out.schedule(done_at, Event::Stream(StreamEvent::StreamWork { group, member: m, epoch }));
    }

    /// KC-14: the member has not polled for `max.poll.interval.ms`. Its client sends
    /// LeaveGroup and the group rebalances without it; the member itself goes on with its
    /// batch, a zombie, until its next poll.
    pub(crate) fn poll_timeout(&mut self, cx: &mut Ctx, group: u32, m: MemberId, (epoch, poll): (u32, u32)) {
        let member = self.member(group, m);
        if member.epoch == epoch && member.polls == poll && member.alive && member.in_group {
            self.evict(cx, group, m);
        }
    }

    fn evict(&mut self, cx: &mut Ctx, group: u32, m: MemberId) {
        self.groups[group as usize].stats.evictions += 1;
        self.drop_member(cx, group, m, MemberChange::Evicted);
        self.rebalance(cx, group);
        self.maybe_end_join(cx, group, false);
    }

    /// At the poll after the group went on without it: the commit of what it processed fails
    /// (KC-15; auto-commit too, before rejoining), its partitions are lost to it, and it joins
    /// again as a new member (KC-16). The new owners start from the last commit (KC-17).
    fn rejoin_as_new(&mut self, cx: &mut Ctx, group: u32, m: MemberId) {
        let now = cx.now();
        if !matches!(group_spec(&cx.scenario, group).commit, CommitMode::BeforeProcessing) {
            let positions = std::mem::take(&mut self.member(group, m).positions);
            for (part, offset) in positions {
                if self.groups[group as usize].committed.get(&part) != Some(&offset) {
                    self.groups[group as usize].stats.commits_failed += 1;
                    let (topic, partition) = (part.topic, part.partition);
                    cx.out.emit(TraceEvent::CommitFailed { at: now, group, member: m, topic, partition, offset });
                }
            }
        }
        let member = self.member(group, m);
        member.joined = false;
        member.owned.clear();
        member.positions.clear();
        member.batch.clear();
        member.owned_generation = NO_GENERATION;
        if member.leaving {
            // It was on its way out: it closes instead of joining again.
            member.leaving = false;
            member.alive = false;
            cx.out.emit(TraceEvent::MemberChanged { at: now, group, member: m, change: MemberChange::Left });
            return;
        }
        self.join(cx, group, m, MemberChange::Joined);
    }

    /// A member's timer: its record is done, or a retry record it waits for is due.
    pub(crate) fn stream_work(&mut self, cx: &mut Ctx, group: u32, m: MemberId, epoch: u32) {
        let now = cx.now();
        let member = self.member(group, m);
        if member.epoch != epoch || !member.alive {
            return;
        }
        match member.current {
            Some((part, offset, done_at)) if done_at <= now => {
                member.current = None;
                if self.finish_record(cx, group, m, part, offset) {
                    self.next_record(cx, group, m);
                }
            }
            Some(_) => {}
            None => {
                if member.wake_at.is_some_and(|w| w <= now) {
                    member.wake_at = None;
                }
                if member.waiting {
                    self.poll(cx, group, m);
                }
            }
        }
    }

    /// One attempt at a record ends: success, or a failure tried again in place, or forwarded
    /// to the next retry topic (or the dead-letter topic). Counts duplicates and checks per-key
    /// order. False while the record is being tried again.
    // long: one record's end in the order it happens: counted, its outcome (retry topic or DLQ), the order checker, the trace, the forward
    pub(super) fn finish_record(&mut self, cx: &mut Ctx, group: u32, m: MemberId, part: Part, offset: u64) -> bool {
        let now = cx.now();
        let spec = group_spec(&cx.scenario, group).clone();
        let record = self.log(part).record(offset).clone();
        let failed =
            (spec.error_rate.numerator > 0 && self.member(group, m).prng.chance(spec.error_rate)) || record.poison;
        let (id, topic, partition) = (record.id, part.topic, part.partition);
        let done = |times, outcome| TraceEvent::RecordDone {
            at: now,
            group,
            member: m,
            topic,
            partition,
            offset,
            record: id,
            times,
            outcome,
        };
        if let (true, Some(retry)) = (failed, spec.retry_in_place) {
            let member = self.member(group, m);
            member.attempt += 1;
            if member.attempt < retry.attempts_max {
                let done_at = now.after(retry.backoff).after(sample(spec.processing, &mut member.prng));
                self.groups[group as usize].stats.retried_in_place += 1;
                cx.out.emit(done(u32::from(self.handled(group, part, offset)), RecordOutcome::RetryingInPlace));
                self.start_record(cx, group, m, (part, offset), done_at);
                return false;
            }
        }
        let g = &mut self.groups[group as usize];
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
        cx.out.emit(done(u32::from(times), outcome.0));
        if let Some((key, after)) = violation {
            cx.out.emit(TraceEvent::OrderViolated { at: now, group, key, record: record.id, after });
        }
        if let Some(to) = outcome.1 {
            let partition = part.partition % cx.scenario.topics[to as usize].partitions;
            let forwarded = Record { at: now, retained: true, ..record };
            self.append(cx, Part { topic: to, partition }, forwarded, FORWARDED);
        }
        true
    }
}
