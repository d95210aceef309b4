//! A partition's log: appending records (keyed by murmur2, null keys sticky or round-robin),
//! and retention by time and size and compaction, which move the log start and drop records;
//! offsets never change (KC-13).

use super::*;

impl Streams {
    // --- Producing ---------------------------------------------------------------------------

    /// A producer's record to `topic`: keyed records go by murmur2 (KP-1), null keys stick to
    /// a partition per KP-6 (or go round-robin). A poison record fails every attempt.
    pub(crate) fn produce_record(
        &mut self,
        cx: &mut Ctx,
        prng: &mut Prng,
        (producer, poison): (u32, bool),
        topic: u32,
    ) {
        let spec = &cx.scenario.producers[producer as usize];
        let (keys, tombstones) = (spec.keys, spec.tombstones);
        let key = keys.map(|k| draw_key(k, prng));
        let tombstone = key.is_some() && tombstones.numerator > 0 && prng.chance(tombstones);
        let tspec = &cx.scenario.topics[topic as usize];
        let partitions = tspec.partitions;
        let partition = match key {
            Some(k) => partition_for_key(format!("key-{k}").as_bytes(), partitions),
            None => {
                let t = &mut self.topics[topic as usize];
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
        let id = self.next_record;
        self.next_record += 1;
        self.append(
            cx,
            Part { topic, partition },
            Record { id, key, tombstone, at: cx.now(), retained: true, poison },
            producer,
        );
    }

    /// Appends a record, rolling the segment when it is full (KC-12), and wakes the member
    /// of each group that waits on this partition.
    pub(super) fn append(&mut self, cx: &mut Ctx, part: Part, record: Record, producer: u32) {
        let now = cx.now();
        let spec = &cx.scenario.topics[part.topic as usize];
        let (record_bytes, segment_bytes, pubsub) =
            (u64::from(spec.record_bytes), spec.segment_bytes, spec.kind == TopicKind::PubSub);
        let (id, key, tombstone) = (record.id, record.key, record.tombstone);
        let log = self.log_mut(part);
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
        cx.out.emit(TraceEvent::RecordAppended {
            at: now,
            topic: part.topic,
            partition: part.partition,
            offset,
            record: id,
            key: key.unwrap_or(NULL_KEY),
            producer: ProducerId(producer),
            tombstone,
        });
        if pubsub && !self.subscribed(cx, part.topic) {
            // A transient channel with nobody listening: the record is gone at once.
            self.advance_log_start(cx, part, offset + 1);
        }
        for g in 0..self.groups.len() {
            let g = crate::scenario::index_u32(g);
            if let Some(m) = self.owner(g, part) {
                if self.groups[g as usize].members[m as usize].waiting {
                    self.poll(cx, g, MemberId(m));
                }
            }
        }
    }

    pub(super) fn subscribed(&self, cx: &mut Ctx, topic: u32) -> bool {
        cx.scenario.groups.iter().zip(&self.groups).any(|(spec, g)| g.started && spec.topics.contains(&topic))
    }

    // --- Retention and compaction --------------------------------------------------------------

    /// The log cleaner's round for one topic: retention by time and size (KC-11, KC-12), a
    /// pubsub channel's delivered records, then compaction (KC-13).
    pub(crate) fn clean_topic(&mut self, cx: &mut Ctx, topic: u32) {
        let now = cx.now();
        let spec = cx.scenario.topics[topic as usize].clone();
        for partition in 0..spec.partitions {
            let part = Part { topic, partition };
            if spec.delete {
                if let Some(retention) = spec.retention {
                    self.delete_by_time(cx, part, retention);
                }
                if let Some(limit) = spec.retention_bytes {
                    self.delete_by_size(cx, part, limit);
                }
            }
            if spec.kind == TopicKind::PubSub {
                self.drop_delivered(cx, part);
            }
            if spec.compact {
                self.compact(cx, part, &spec);
            }
        }
        cx.out.schedule(now.after(spec.check_every), Event::Stream(StreamEvent::LogCleanup { topic }));
    }

    /// Whole segments, oldest first, while the newest record in them is older than
    /// `retention.ms`; an expired active segment is rolled and deleted too.
    pub(super) fn delete_by_time(&mut self, cx: &mut Ctx, part: Part, retention: Duration) {
        let now = cx.now();
        let log = self.log(part);
        let mut to = log.log_start;
        for seg in &log.segments {
            if seg.end > seg.base && now.since(seg.largest_at) > retention {
                to = seg.end;
            } else {
                break;
            }
        }
        self.advance_log_start(cx, part, to);
    }

    /// Whole segments while the log minus the oldest still holds at least `retention.bytes`.
    pub(super) fn delete_by_size(&mut self, cx: &mut Ctx, part: Part, limit: u64) {
        let log = self.log(part);
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
        self.advance_log_start(cx, part, to);
    }

    /// Moves the log start forward to `to`, a segment boundary or the log end, deleting what
    /// is below it.
    pub(super) fn advance_log_start(&mut self, cx: &mut Ctx, part: Part, to: u64) {
        let now = cx.now();
        let log = self.log_mut(part);
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
        cx.out.emit(TraceEvent::SegmentsDeleted {
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
    pub(super) fn compact(&mut self, cx: &mut Ctx, part: Part, spec: &TopicSpec) {
        let now = cx.now();
        let log = self.log(part);
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
        let log = self.log_mut(part);
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
        cx.out.emit(TraceEvent::Compacted {
            at: now,
            topic: part.topic,
            partition: part.partition,
            removed,
            cleaned_to: active_base,
        });
    }
}
