//! A trace event as a sentence, with the scenario's names: `1.250000s m3 delivered orders →
//! worker-2`. The CLI prints it, the page shows it, the readable golden hashes it. Only display:
//! nothing decides on these words (the page folds the trace by its codes).

use crate::scenario::Scenario;
use crate::time::SimTime;
use crate::trace::*;
use std::fmt;

/// The readable line of `event`, with the scenario's names.
pub fn line<'a>(event: &'a TraceEvent, scenario: &'a Scenario) -> Line<'a> {
    Line { event, scenario }
}

/// `TraceEvent` with names, for display: `1.250000s m3 delivered orders → worker-2`.
#[derive(Debug)]
pub struct Line<'a> {
    event: &'a TraceEvent,
    scenario: &'a Scenario,
}

impl fmt::Display for Line<'_> {
    // long: one sentence per trace event: an exhaustive match, one arm each
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TraceEvent::*;
        let s = self.scenario;
        let queue = |q: QueueId| s.queues.get(q.index()).map_or("?", |x| x.name.as_str());
        let producer = |p: ProducerId| {
            if p == SCRIPT {
                "the script"
            } else if p == ProducerId(u32::MAX - 2) {
                "a service"
            } else if p == crate::trace::DEAD_LETTERING {
                "dead-lettering"
            } else if p == crate::trace::REPUBLISHED {
                "its consumer, out of attempts,"
            } else {
                s.producers.get(p.index()).map_or("?", |x| x.name.as_str())
            }
        };
        let consumer = |c: ConsumerId| s.consumers.get(c.index()).map_or("?", |x| x.name.as_str());
        let dependency = |d: u32| s.dependencies.get(d as usize).map_or("?", |x| x.name.as_str());
        let topic = |t: u32| s.topics.get(t as usize).map_or("?", |x| x.name.as_str());
        let group = |g: u32| s.groups.get(g as usize).map_or("?", |x| x.name.as_str());
        let member = |g: u32, m: u32| format!("{}-{}", group(g), m + 1);
        let requester = |sys: u32, r: u32| {
            format!("{}.requester-{}", s.request_reply.get(sys as usize).map_or("?", |x| x.name.as_str()), r + 1)
        };
        write!(f, "{} ", self.event.at())?;
        match *self.event {
            Published { msg, producer: p, queue: q, arrives_at, .. } => {
                write!(f, "m{msg} published by {} to {} (arrives {arrives_at})", producer(p), queue(q))
            }
            Deduplicated { queue: q, original, .. } => {
                write!(f, "a send to {} was a duplicate of m{original}: accepted, not stored", queue(q))
            }
            Enqueued { msg, queue: q, depth, .. } => write!(f, "m{msg} visible in {} (depth {depth})", queue(q)),
            Delayed { msg, queue: q, until, .. } => write!(f, "m{msg} waits in {} until {until}", queue(q)),
            Delivered { msg, queue: q, consumer: c, receive_count, lease_until, arrives_at, .. } => {
                write!(f, "m{msg} delivered {} → {} (delivery {receive_count}", queue(q), consumer(c))?;
                if lease_until != SimTime::MAX {
                    write!(f, ", leased until {lease_until}")?;
                }
                write!(f, ", arrives {arrives_at})")
            }
            AutoAcked { msg, consumer: c, .. } => {
                write!(f, "m{msg} acked on receipt by {} (before processing)", consumer(c))
            }
            ProcessingStarted { msg, consumer: c, done_at, .. } => {
                write!(f, "m{msg} processing on {} (done {done_at})", consumer(c))
            }
            LeaseExtended { msg, consumer: c, until, .. } => {
                write!(f, "m{msg} lease extended by {} until {until}", consumer(c))
            }
            Failed { msg, consumer: c, error, attempt, .. } => {
                write!(f, "m{msg} failed on {}: {} (attempt {attempt})", consumer(c), error.as_str())
            }
            EffectApplied { msg, consumer: c, times, .. } => {
                write!(f, "m{msg} effect applied by {}", consumer(c))?;
                if times > 1 {
                    write!(f, " (applied {times} times!)")?;
                }
                Ok(())
            }
            DuplicateSuppressed { msg, consumer: c, .. } => {
                write!(f, "m{msg} already applied: {} skipped it", consumer(c))
            }
            StaleDropped { msg, consumer: c, newer, .. } => {
                write!(f, "m{msg} is stale: {} dropped it, its row already has m{newer}'s version", consumer(c))
            }
            Acked { msg, queue: q, consumer: c, .. } => {
                write!(f, "m{msg} acked by {}, deleted from {}", consumer(c), queue(q))
            }
            Routed { msg, exchange, key, binding, .. } => {
                let t = &s.topology;
                let key = t.keys.get(key as usize).map_or("?", String::as_str);
                write!(f, "m{msg} routed by {} with key \"{key}\"", t.exchange_name(exchange))?;
                match t.bindings.get(binding as usize) {
                    Some(b) if !b.key.is_empty() => write!(f, " (binding \"{}\")", b.key),
                    Some(_) => Ok(()),
                    None => write!(f, " (by queue name)"),
                }
            }
            Unroutable { producer: p, exchange, key, returned, .. } => {
                let t = &s.topology;
                let what = if returned { "returned to its publisher (312 NO_ROUTE)" } else { "dropped" };
                let key = t.keys.get(key as usize).map_or("?", String::as_str);
                write!(
                    f,
                    "a message from {} to {} with key \"{key}\" reached no queue: {what}",
                    producer(p),
                    t.exchange_name(exchange)
                )
            }
            Processed { msg, consumer: c, .. } => {
                write!(f, "m{msg} processed by {} (acked on receipt: nothing to settle)", consumer(c))
            }
            AckRefused { msg, consumer: c, .. } => {
                let queue = s.consumers.get(c.index()).and_then(|x| s.queues.get(x.queue as usize));
                let what = queue.map_or("refused: its receipt is no longer current", |q| q.lease.stale_settle(q.fifo));
                write!(f, "m{msg} ack by {} {what}", consumer(c))
            }
            Returned { msg, queue: q, consumer: c, reason, .. } => {
                write!(f, "m{msg} back in {} from {}: {}", queue(q), consumer(c), reason.as_str())
            }
            DeadLettered { msg, from, dlq, reason, .. } => {
                write!(f, "m{msg} dead-lettered {} → {}: {}", queue(from), queue(dlq), reason.as_str())
            }
            Expired { msg, queue: q, .. } => write!(f, "m{msg} expired in {}", queue(q)),
            Dropped { msg, queue: q, reason, .. } => write!(f, "m{msg} dropped from {}: {}", queue(q), reason.as_str()),
            Redriven { msg, new_msg, to, .. } => write!(f, "m{msg} redriven to {} as m{new_msg}", queue(to)),
            ReceivedNothing { consumer: c, queue: q, .. } => {
                write!(f, "{} received nothing from {}", consumer(c), queue(q))
            }
            DeliveryLost { msg, consumer: c, .. } => {
                write!(f, "m{msg} never reached {}: the delivery was lost on the network", consumer(c))
            }
            ConsumerCrashed { consumer: c, .. } => write!(f, "{} crashed", consumer(c)),
            ConsumerRestarted { consumer: c, .. } => write!(f, "{} restarted", consumer(c)),
            Scaled { consumer: c, active, depth, .. } => write!(
                f,
                "autoscaler {} {} (queue depth {depth})",
                if active { "started" } else { "drains" },
                consumer(c)
            ),
            DependencyChanged { dependency: d, up, .. } => {
                write!(f, "{} is {}", dependency(d), if up { "up" } else { "down" })
            }
            OffsetsReset { group: g, topic: t, partition, offset, .. } => {
                write!(
                    f,
                    "{}'s offset for {}-{partition} reset to {offset}, the log start: it will replay",
                    group(g),
                    topic(t)
                )
            }
            OffsetsResetRefused { group: g, members, .. } => {
                write!(
                    f,
                    "{}'s offsets not reset: {members} members are still in it, and only an inactive group's can be",
                    group(g)
                )
            }
            AlertChanged { alert, firing, value, .. } => {
                let a = &s.alerts[alert as usize];
                let (what, unit) = match a.on {
                    crate::scenario::AlertOn::Queue(q) => (s.queues[q as usize].name.as_str(), "waiting"),
                    crate::scenario::AlertOn::Group(g) => (s.groups[g as usize].name.as_str(), "records of lag"),
                };
                let state = if firing { "fired" } else { "resolved" };
                write!(f, "alert \"{}\" {state}: {what} has {value} {unit} (bound {})", a.name, a.above)
            }
            BreakerChanged { consumer: c, dependency: d, phase, failure_rate_pct: rate, .. } => match phase {
                BreakerPhase::Open => {
                    write!(
                        f,
                        "{}'s circuit breaker to {} opened at {rate}% failures: it pauses",
                        consumer(c),
                        dependency(d)
                    )
                }
                BreakerPhase::HalfOpen => {
                    write!(f, "{}'s circuit breaker to {} is half-open: trial calls", consumer(c), dependency(d))
                }
                BreakerPhase::Closed => {
                    write!(f, "{}'s circuit breaker to {} closed at {rate}% failures", consumer(c), dependency(d))
                }
            },
            ProducerStopped { producer: p, reason, .. } => write!(f, "{} stopped: {}", producer(p), reason.as_str()),
            RequestSent { msg, system, requester: r, corr, attempt, .. } => {
                write!(f, "m{msg} request corr-{corr} sent by {}", requester(system, r))?;
                if attempt > 0 {
                    write!(f, " (retry {attempt}, a fresh correlation id)")?;
                }
                Ok(())
            }
            ReplyMatched { msg, system, requester: r, corr, request, .. } => {
                write!(f, "m{msg} reply corr-{corr} matched by {} to request m{request}", requester(system, r))
            }
            ReplyUnmatched { msg, system, requester: r, corr, reason, .. } => {
                write!(f, "m{msg} reply corr-{corr} unmatched at {}: {}", requester(system, r), reason.as_str())
            }
            RequestTimedOut { system, requester: r, corr, retried, .. } => write!(
                f,
                "request corr-{corr} of {} timed out: {}",
                requester(system, r),
                if retried { "sent again" } else { "given up" }
            ),
            RequesterKilled { system, requester: r, .. } => write!(f, "{} killed", requester(system, r)),
            SagaEvent { saga, instance, step, note, .. } => {
                let spec = s.sagas.get(saga as usize);
                let name = spec.map_or("?", |x| x.name.as_str());
                let st = spec.and_then(|x| x.steps.get(step as usize));
                let event = |pick: fn(&crate::scenario::StepSpec) -> &str| st.map_or("?", pick);
                write!(f, "saga {name}#{instance}: ")?;
                match note {
                    SagaNote::StepDone => write!(f, "{}", event(|x| x.done.as_str())),
                    SagaNote::StepFailed => write!(f, "{}", event(|x| x.failed.as_str())),
                    SagaNote::Compensated => write!(f, "{}", event(|x| x.undone.as_str())),
                    SagaNote::AppliedTwice => {
                        write!(f, "{} handled a duplicate: the step ran twice", event(|x| x.service.as_str()))
                    }
                    SagaNote::Stuck => write!(f, "stuck: a compensation or retriable step went to a dead-letter queue"),
                    other => write!(f, "{}", other.as_str()),
                }
            }
            RecordAppended { topic: t, partition, offset, key, producer: p, tombstone, .. } => {
                write!(f, "{}-{partition}@{offset} appended", topic(t))?;
                if key != u32::MAX {
                    write!(f, " key-{key}")?;
                }
                if tombstone {
                    write!(f, " (tombstone)")?;
                }
                if p == ProducerId(u32::MAX - 1) {
                    write!(f, " (forwarded by a group)")
                } else {
                    write!(f, " by {}", producer(p))
                }
            }
            RecordsFetched { group: g, member: m, topic: t, partition, from, count, .. } => {
                write!(f, "{} fetched {count} from {}-{partition}@{from}", member(g, m.0), topic(t))
            }
            RecordStarted { group: g, member: m, topic: t, partition, offset, done_at, .. } => {
                write!(f, "{} processing {}-{partition}@{offset} (done {done_at})", member(g, m.0), topic(t))
            }
            RecordDone { group: g, member: m, topic: t, partition, offset, times, outcome, .. } => {
                write!(f, "{} {} {}-{partition}@{offset}", member(g, m.0), outcome.as_str(), topic(t))?;
                if times > 1 {
                    write!(f, " (handled {times} times!)")?;
                }
                Ok(())
            }
            OffsetCommitted { group: g, member: m, topic: t, partition, offset, .. } => {
                write!(f, "{} committed {}-{partition} at {offset}", member(g, m.0), topic(t))
            }
            CommitFailed { group: g, member: m, topic: t, partition, offset, .. } => {
                write!(
                    f,
                    "{} could not commit {}-{partition} at {offset}: the group rebalanced without it (CommitFailedException)",
                    member(g, m.0),
                    topic(t)
                )
            }
            RecordsLost { group: g, topic: t, partition, from, to, count, reason, .. } => {
                write!(
                    f,
                    "{}: {count} records of {}-{partition} in {from}..{to} {}",
                    group(g),
                    topic(t),
                    reason.as_str()
                )
            }
            GroupChanged { group: g, phase, generation, .. } => {
                // In words, as the page says them; the trace's JSON keeps Kafka's names.
                let words = match phase {
                    GroupPhase::Empty => "empty",
                    GroupPhase::PreparingRebalance => "rebalancing: members rejoining",
                    GroupPhase::CompletingRebalance => "rebalancing: syncing the assignment",
                    GroupPhase::Stable => "stable",
                };
                write!(f, "{} is {words} (generation {generation})", group(g))
            }
            MemberChanged { group: g, member: m, change, .. } => write!(f, "{} {}", member(g, m.0), change.as_str()),
            PartitionAssigned { group: g, member: m, topic: t, partition, generation, offset, .. } => write!(
                f,
                "{} owns {}-{partition} (generation {generation}), reading from {offset}",
                member(g, m.0),
                topic(t)
            ),
            PartitionRevoked { group: g, member: m, topic: t, partition, reason, .. } => {
                write!(f, "{} gave up {}-{partition}: {}", member(g, m.0), topic(t), reason.as_str())
            }
            SegmentsDeleted { topic: t, partition, log_start, .. } => {
                write!(f, "{}-{partition}: retention deleted everything below {log_start}", topic(t))
            }
            Compacted { topic: t, partition, removed, cleaned_to, .. } => {
                write!(
                    f,
                    "{}-{partition} compacted: {removed} older values removed, clean below {cleaned_to}",
                    topic(t)
                )
            }
            MessageOutOfOrder { msg, queue: q, order_key, after, .. } => {
                write!(f, "m{msg} of key-{order_key} done after m{after}, sent later: out of order in {}", queue(q))
            }
            OrderViolated { group: g, key, record, after, .. } => {
                write!(f, "{}: key-{key} out of order: record {record} processed after record {after}", group(g))
            }
        }
    }
}
