//! The group coordinator: members join and leave, the group moves through Empty,
//! PreparingRebalance, CompletingRebalance and Stable, assigns partitions with the real
//! assignors (eager or cooperative), and notices a crashed member at its session timeout.

use super::*;

impl Streams {
    // --- Groups and rebalancing ----------------------------------------------------------------

    /// A group starts: its members join, and the first rebalance waits
    /// `group.initial.rebalance.delay.ms` for more of them.
    pub(crate) fn start_group(&mut self, cx: &mut Ctx, group: u32) {
        if self.groups[group as usize].started {
            return;
        }
        self.groups[group as usize].started = true;
        for _ in 0..group_spec(&cx.scenario, group).members {
            self.add_member(cx, group);
        }
    }

    /// A new member (or a restarted one, in its old slot) joins the group.
    pub(crate) fn add_member(&mut self, cx: &mut Ctx, group: u32) {
        let g = &self.groups[group as usize];
        if !g.started || g.members.len() >= crate::scenario::limits::GROUP_MEMBERS_MAX as usize {
            return;
        }
        let m = crate::scenario::index_u32(g.members.len());
        let prng = self.member_prng(group, MemberId(m));
        self.groups[group as usize].members.push(Member {
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
            heartbeat_base: cx.now(),
            last_auto_commit: cx.now(),
            wake_at: None,
            fetch_cursor: 0,
            last_poll: cx.now(),
            polls: 0,
            poll_timer: false,
            attempt: 0,
            remembered: (Vec::new(), NO_GENERATION),
            prng,
        });
        self.join(cx, group, MemberId(m), MemberChange::Joined);
    }

    pub(super) fn member_prng(&self, group: u32, member: MemberId) -> Prng {
        Prng::from_seed(
            self.seed ^ (0x3_0000 + u64::from(group) * 64 + u64::from(member.0)).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        )
    }

    pub(super) fn join(&mut self, cx: &mut Ctx, group: u32, m: MemberId, change: MemberChange) {
        let now = cx.now();
        let member = self.member(group, m);
        member.in_group = true;
        member.heartbeat_base = now;
        cx.out.emit(TraceEvent::MemberChanged { at: now, group, member: m, change });
        self.rebalance(cx, group);
        self.poll(cx, group, m);
    }

    /// Something changed membership: the group (re)starts a rebalance (PreparingRebalance).
    /// Members rejoin at their next poll; the join phase ends when all have, or when the
    /// coordinator stops waiting.
    pub(super) fn rebalance(&mut self, cx: &mut Ctx, group: u32) {
        let now = cx.now();
        let spec = group_spec(&cx.scenario, group).clone();
        if !self.groups[group as usize].members.iter().any(|m| m.in_group) {
            self.set_phase(cx, group, GroupPhase::Empty);
            return;
        }
        let g = &mut self.groups[group as usize];
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
        self.set_phase(cx, group, GroupPhase::PreparingRebalance);
        cx.out.schedule(now.after(wait), Event::Stream(StreamEvent::JoinDeadline { group, round }));
        self.poll_idle(cx, group);
    }

    /// Members idle in poll, or blocked in it, see the group's change at once.
    pub(super) fn poll_idle(&mut self, cx: &mut Ctx, group: u32) {
        for m in 0..self.groups[group as usize].members.len() {
            let member = &self.groups[group as usize].members[m];
            if member.alive && member.in_group && (member.waiting || member.blocked) {
                self.poll(cx, group, MemberId(crate::scenario::index_u32(m)));
            }
        }
    }

    /// Moves the group to `phase`, in its current generation, if it is not there already.
    pub(super) fn set_phase(&mut self, cx: &mut Ctx, group: u32, phase: GroupPhase) {
        let g = &mut self.groups[group as usize];
        if g.phase != phase {
            g.phase = phase;
            let generation = g.generation;
            cx.out.emit(TraceEvent::GroupChanged { at: cx.now(), group, phase, generation });
        }
    }

    /// A member rejoins the rebalance in progress, inside poll. Eager: it revokes everything
    /// first and stops (KC-1). Cooperative: it keeps what it owns and goes on (KC-2).
    pub(super) fn rejoin(&mut self, cx: &mut Ctx, group: u32, m: MemberId) {
        let cooperative = group_spec(&cx.scenario, group).assignor.cooperative();
        if !cooperative {
            let owned = std::mem::take(&mut self.member(group, m).owned);
            self.revoke(cx, group, m, &owned, RevokeReason::Rebalance);
            self.member(group, m).blocked = true;
        }
        self.member(group, m).joined = true;
        self.maybe_end_join(cx, group, false);
    }

    /// Gives up partitions cleanly: commits what was processed (unless commits come before
    /// processing, when they are committed already), then forgets them.
    pub(super) fn revoke(&mut self, cx: &mut Ctx, group: u32, m: MemberId, parts: &[Part], reason: RevokeReason) {
        let now = cx.now();
        let commit = group_spec(&cx.scenario, group).commit;
        for &part in parts {
            if !matches!(commit, CommitMode::BeforeProcessing) && reason != RevokeReason::Lost {
                if let Some(&offset) = self.member(group, m).positions.get(&part) {
                    self.commit(cx, group, m, part, offset);
                }
            }
            let member = self.member(group, m);
            member.positions.remove(&part);
            member.owned.retain(|p| *p != part);
            member.batch.retain(|(p, _)| *p != part);
            cx.out.emit(TraceEvent::PartitionRevoked {
                at: now,
                group,
                member: m,
                topic: part.topic,
                partition: part.partition,
                reason,
            });
        }
    }

    pub(super) fn commit(&mut self, cx: &mut Ctx, group: u32, m: MemberId, part: Part, offset: u64) {
        let g = &mut self.groups[group as usize];
        if g.committed.get(&part) == Some(&offset) {
            return;
        }
        g.committed.insert(part, offset);
        cx.out.emit(TraceEvent::OffsetCommitted {
            at: cx.now(),
            group,
            member: m,
            topic: part.topic,
            partition: part.partition,
            offset,
        });
        if cx.scenario.topics[part.topic as usize].kind == TopicKind::PubSub {
            self.drop_delivered(cx, part);
        }
    }

    /// A pubsub channel keeps a record only until every group listening has it.
    pub(super) fn drop_delivered(&mut self, cx: &mut Ctx, part: Part) {
        let end = self.log(part).end();
        let delivered = cx
            .scenario
            .groups
            .iter()
            .zip(&self.groups)
            .filter(|(s, g)| g.started && s.topics.contains(&part.topic))
            .map(|(_, g)| {
                // What the group still needs: from its commit, or from where its owner reads.
                let position =
                    g.members.iter().filter(|m| m.alive && m.in_group).filter_map(|m| m.positions.get(&part)).min();
                g.committed.get(&part).copied().or(position.copied()).unwrap_or(end)
            })
            .min()
            .unwrap_or(end);
        self.advance_log_start(cx, part, delivered);
    }

    /// The join phase ends when every member in the group has rejoined (or, at the deadline,
    /// without those that have not): the leader assigns, and SyncGroup takes `sync_time`.
    pub(super) fn maybe_end_join(&mut self, cx: &mut Ctx, group: u32, deadline: bool) {
        let now = cx.now();
        let g = &mut self.groups[group as usize];
        if g.phase != GroupPhase::PreparingRebalance {
            return;
        }
        if deadline {
            let late: Vec<u32> = (0..g.members.len())
                .filter(|&m| g.members[m].in_group && !g.members[m].joined)
                .map(crate::scenario::index_u32)
                .collect();
            for m in late {
                self.drop_member(cx, group, MemberId(m), MemberChange::Removed);
            }
        }
        let g = &mut self.groups[group as usize];
        if g.members.iter().any(|m| m.in_group && !m.joined) || (!deadline && now < g.hold_until) {
            return;
        }
        if !g.members.iter().any(|m| m.in_group) {
            self.set_phase(cx, group, GroupPhase::Empty);
            return;
        }
        g.generation += 1;
        let round = g.round;
        self.set_phase(cx, group, GroupPhase::CompletingRebalance);
        self.assign(cx, group);
        let sync = group_spec(&cx.scenario, group).sync_time;
        cx.out.schedule(now.after(sync), Event::Stream(StreamEvent::SyncDone { group, round }));
    }

    /// The leader runs the group's assignor over the members' subscriptions and what they
    /// own (KA-*). Cooperative-sticky withholds partitions that change owner (KA-12).
    pub(super) fn assign(&mut self, cx: &mut Ctx, group: u32) {
        let spec = group_spec(&cx.scenario, group).clone();
        let scenario = &cx.scenario;
        let names: BTreeMap<String, u32> =
            scenario.topics.iter().enumerate().map(|(i, t)| (t.name.clone(), crate::scenario::index_u32(i))).collect();
        let topics: Vec<String> = spec.topics.iter().map(|&t| scenario.topics[t as usize].name.clone()).collect();
        let ppt: BTreeMap<String, u32> = spec
            .topics
            .iter()
            .map(|&t| (scenario.topics[t as usize].name.clone(), scenario.topics[t as usize].partitions))
            .collect();
        let g = &self.groups[group as usize];
        let in_group: Vec<usize> = (0..g.members.len()).filter(|&m| g.members[m].in_group).collect();
        let members: Vec<assignor::Member> = in_group
            .iter()
            .map(|&m| assignor::Member {
                id: member_name(&spec, m),
                instance_id: None,
                topics: topics.clone(),
                // KA-7: the eager sticky assignor reads what it owned from its userData; the
                // others from what the member still owns.
                owned: if spec.assignor == assignor::Assignor::Sticky {
                    &g.members[m].remembered.0
                } else {
                    &g.members[m].owned
                }
                .iter()
                .map(|p| TopicPartition::new(&scenario.topics[p.topic as usize].name, p.partition))
                .collect(),
                generation: if spec.assignor == assignor::Assignor::Sticky {
                    g.members[m].remembered.1
                } else {
                    g.members[m].owned_generation
                },
            })
            .collect();
        let result = assignor::assign(spec.assignor, &ppt, &members);
        let g = &mut self.groups[group as usize];
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
    pub(crate) fn sync_done(&mut self, cx: &mut Ctx, group: u32, round: u32) {
        let g = &mut self.groups[group as usize];
        if g.round != round || g.phase != GroupPhase::CompletingRebalance {
            return;
        }
        for m in &mut g.members {
            if m.in_group {
                m.assignment = m.proposed.take();
            }
        }
        self.set_phase(cx, group, GroupPhase::Stable);
        self.poll_idle(cx, group);
    }

    pub(crate) fn join_deadline(&mut self, cx: &mut Ctx, group: u32, round: u32) {
        if self.groups[group as usize].round == round {
            self.maybe_end_join(cx, group, true);
        }
    }

    /// Takes up a new assignment inside poll: revokes what is no longer its own (cooperative:
    /// then rejoins at once, so a second rebalance hands those out, KC-2), and starts each new
    /// partition at the committed offset, or per `auto.offset.reset` (KC-9).
    pub(super) fn take_assignment(&mut self, cx: &mut Ctx, group: u32, m: MemberId) {
        let Some(assigned) = self.member(group, m).assignment.take() else { return };
        let now = cx.now();
        let generation = self.groups[group as usize].generation;
        let owned = self.member(group, m).owned.clone();
        let revoked: Vec<Part> = owned.iter().filter(|p| !assigned.contains(p)).copied().collect();
        self.revoke(cx, group, m, &revoked, RevokeReason::Rebalance);
        for &part in assigned.iter().filter(|p| !owned.contains(p)) {
            let g = &mut self.groups[group as usize];
            if g.last_owner.insert(part, m).is_some_and(|was| was != m) {
                g.stats.moved += 1;
            }
            let start = self.start_offset(cx, group, part);
            let member = self.member(group, m);
            member.owned.push(part);
            member.positions.insert(part, start);
            cx.out.emit(TraceEvent::PartitionAssigned {
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
        member.remembered = (assigned, generation);
        member.blocked = false;
        if !revoked.is_empty() && group_spec(&cx.scenario, group).assignor.cooperative() {
            self.rebalance(cx, group);
        }
    }

    /// Where a group resumes a partition: its committed offset, or per `auto.offset.reset`
    /// when it has none or it is out of range (KC-9). A pubsub channel has no past to replay.
    /// Records between where the group had got to and here that it never handled are counted:
    /// committed before processing (lost), or deleted by retention first.
    pub(super) fn start_offset(&mut self, cx: &mut Ctx, group: u32, part: Part) -> u64 {
        let spec = group_spec(&cx.scenario, group);
        let (reset, pubsub) = (spec.offset_reset, cx.scenario.topics[part.topic as usize].kind == TopicKind::PubSub);
        let log = self.log(part);
        let (log_start, end) = (log.log_start, log.end());
        let committed = self.groups[group as usize].committed.get(&part).copied();
        let start = match committed {
            Some(c) if c >= log_start && c <= end => c,
            _ if pubsub => end,
            _ => match reset {
                OffsetReset::Earliest => log_start,
                OffsetReset::Latest => end,
            },
        };
        let g = &mut self.groups[group as usize];
        g.handled.entry(part).or_insert((start, crate::cow::CowVec::new()));
        let from = *g.accounted_to.entry(part).or_insert(start);
        self.account_skipped(cx, group, part, from, start);
        start
    }

    /// Counts the records in `[from, to)` the group never handled, and marks them accounted.
    pub(super) fn account_skipped(&mut self, cx: &mut Ctx, group: u32, part: Part, from: u64, to: u64) {
        if to <= from {
            return;
        }
        let (mut lost, mut expired) = (0u64, 0u64);
        let log = self.log(part);
        for o in from..to {
            if self.handled(group, part, o) > 0 {
                continue;
            }
            if o < log.log_start {
                expired += 1;
            } else if log.record(o).retained {
                lost += 1;
            }
        }
        let g = &mut self.groups[group as usize];
        g.accounted_to.insert(part, to);
        g.stats.lost += lost;
        g.stats.lost_to_retention += expired;
        for (count, reason) in [(lost, LossReason::CommittedUnprocessed), (expired, LossReason::Retention)] {
            if count > 0 {
                cx.out.emit(TraceEvent::RecordsLost {
                    at: cx.now(),
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

    // --- Faults --------------------------------------------------------------------------------

    /// The member dies mid-batch. The coordinator notices at the session timeout: the last
    /// heartbeat (every `heartbeat.interval.ms` since it joined) plus `session.timeout.ms`.
    pub(crate) fn crash_member(&mut self, cx: &mut Ctx, group: u32, m: MemberId) {
        let now = cx.now();
        let spec = group_spec(&cx.scenario, group).clone();
        let Some(member) = self.groups[group as usize].members.get_mut(m.index()) else { return };
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
        cx.out.emit(TraceEvent::MemberChanged { at: now, group, member: m, change: MemberChange::Crashed });
        if member.in_group {
            cx.out.schedule(
                last_beat.after(spec.session_timeout),
                Event::Stream(StreamEvent::SessionExpired { group, member: m, epoch }),
            );
        }
    }

    /// Its session timed out: it leaves the group, its partitions are lost to it (KC-3), and
    /// the group rebalances.
    pub(crate) fn session_expired(&mut self, cx: &mut Ctx, group: u32, m: MemberId, epoch: u32) {
        let member = self.member(group, m);
        if member.epoch != epoch || member.alive || !member.in_group {
            return;
        }
        member.in_group = false;
        let owned = std::mem::take(&mut member.owned);
        cx.out.emit(TraceEvent::MemberChanged { at: cx.now(), group, member: m, change: MemberChange::Removed });
        self.revoke(cx, group, m, &owned, RevokeReason::Lost);
        self.rebalance(cx, group);
        self.maybe_end_join(cx, group, false);
    }

    /// The group goes on without a member that is still working: its client left (KC-14), or
    /// the coordinator stopped waiting for it to rejoin (KC-18). Its partitions are lost to it
    /// at once and go to others; it keeps its batch and positions, and learns at its next poll.
    pub(super) fn drop_member(&mut self, cx: &mut Ctx, group: u32, m: MemberId, change: MemberChange) {
        let now = cx.now();
        let member = self.member(group, m);
        member.in_group = false;
        member.joined = false;
        member.blocked = false;
        member.assignment = None;
        member.proposed = None;
        member.owned_generation = NO_GENERATION;
        let owned = std::mem::take(&mut member.owned);
        cx.out.emit(TraceEvent::MemberChanged { at: now, group, member: m, change });
        for part in owned {
            let (topic, partition) = (part.topic, part.partition);
            cx.out.emit(TraceEvent::PartitionRevoked {
                at: now,
                group,
                member: m,
                topic,
                partition,
                reason: RevokeReason::Lost,
            });
        }
    }

    /// A crashed member comes back as a fresh process: it owns nothing and joins again (its
    /// old registration, if the session has not expired, is replaced).
    pub(crate) fn restart_member(&mut self, cx: &mut Ctx, group: u32, m: MemberId) {
        let Some(member) = self.groups[group as usize].members.get_mut(m.index()) else { return };
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
        member.attempt = 0;
        member.poll_timer = false;
        member.remembered = (Vec::new(), NO_GENERATION);
        // A fresh process remembers nothing it owned; the coordinator replaces the old one.
        let owned = std::mem::take(&mut member.owned);
        self.revoke(cx, group, m, &owned, RevokeReason::Lost);
        self.member(group, m).positions.clear();
        self.join(cx, group, m, MemberChange::Restarted);
    }

    /// The member leaves cleanly at its next poll: it finishes its batch, commits, and sends
    /// LeaveGroup, so the group rebalances at once instead of after a session timeout.
    /// `kafka-consumer-groups --reset-offsets --to-earliest --execute`: every partition's
    /// committed offset goes back to its log start, so that the members that join next replay
    /// what the log still holds. Refused while a member is in the group: the tool resets only
    /// an inactive group's offsets.
    pub(crate) fn reset_offsets(&mut self, cx: &mut Ctx, group: u32) {
        let now = cx.now();
        let members = self.groups[group as usize].members.iter().filter(|m| m.in_group).count();
        if members > 0 {
            let members = crate::scenario::index_u32(members);
            cx.out.emit(TraceEvent::OffsetsResetRefused { at: now, group, members });
            return;
        }
        for part in super::group_parts(&cx.scenario, group_spec(&cx.scenario, group)) {
            let offset = self.log(part).log_start;
            self.groups[group as usize].committed.insert(part, offset);
            let (topic, partition) = (part.topic, part.partition);
            cx.out.emit(TraceEvent::OffsetsReset { at: now, group, topic, partition, offset });
        }
    }

    pub(crate) fn remove_member(&mut self, cx: &mut Ctx, group: u32, m: MemberId) {
        let Some(member) = self.groups[group as usize].members.get_mut(m.index()) else { return };
        if !member.alive || !member.in_group {
            return;
        }
        member.leaving = true;
        if member.current.is_none() && member.batch.is_empty() {
            member.waiting = false;
            member.blocked = false;
            self.poll(cx, group, m);
        }
    }
}
