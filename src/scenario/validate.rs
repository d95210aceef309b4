//! From the JSON shape (`raw`) to the model (`super`), checking everything on the way.
//! Defaults and bounds come from `../shared/semantics.md` and cite its rule numbers.

use super::exchanges;
use super::raw;
use super::*;
use crate::backoff::{Policy, Strategy};
use serde_json::Value;

pub(super) fn err<T>(path: impl Into<String>, reason: impl Into<String>) -> Result<T, ScenarioError> {
    Err(ScenarioError { path: path.into(), reason: reason.into() })
}

pub(super) fn from_json(text: &str) -> Result<Scenario, ScenarioError> {
    if text.len() > limits::SCENARIO_BYTES_MAX {
        return err("scenario", format!("is {} bytes; the limit is {} bytes", text.len(), limits::SCENARIO_BYTES_MAX));
    }
    if !text.trim_start().starts_with('{') {
        return err("scenario", "must be a JSON object, starting with {");
    }
    let de = &mut serde_json::Deserializer::from_str(text);
    let raw: raw::Scenario = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = located("scenario", &e.path().to_string());
        let inner = e.into_inner();
        // The path locates data errors; a syntax error has no path, so keep its line.
        let reason = if inner.is_syntax() || inner.is_eof() { inner.to_string() } else { without_position(&inner) };
        ScenarioError { path, reason }
    })?;
    // One object and nothing after it: the page parses the same text with JSON.parse.
    de.end().map_err(|e| ScenarioError { path: "scenario".to_string(), reason: format!("{e} after the object") })?;
    validate(raw)
}

// long: the scenario's sections in the order they depend on each other, each validated by its own function
fn validate(raw: raw::Scenario) -> Result<Scenario, ScenarioError> {
    if raw.name.trim().is_empty() || raw.name.chars().count() > limits::TITLE_CHARS_MAX {
        return err("name", format!("must be 1 to {} characters", limits::TITLE_CHARS_MAX));
    }
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

    let mut dlxs = Vec::new();
    let mut queues = queues(raw.queues, &mut dlxs)?;
    let queue_names: Vec<String> = queues.iter().map(|q| q.name.clone()).collect();
    let mut topology = exchanges::topology(raw.exchanges, raw.bindings, &queues)?;
    for (q, at, raw_dlx) in dlxs {
        // RMQ-10: with a DLX, an expired message is dead-lettered (reason expired).
        queues[q as usize].dlx = Some(exchanges::dlx(&at, raw_dlx, &mut topology)?);
        queues[q as usize].expire_to_dlq = true;
    }
    let mut topics = streams::topics(raw.topics, &queue_names)?;
    if queues.is_empty() && topics.is_empty() && raw.request_reply.is_empty() && raw.sagas.is_empty() {
        return err("queues", "needs at least 1 entry, unless there are topics or workflows");
    }
    let groups = streams::groups(raw.groups, &mut topics, duration)?;
    let dependencies = dependencies(raw.dependencies)?;
    let mut producers = producers(raw.producers, &queues, &topics, &groups, &mut topology)?;
    let (mut consumers, autoscalers) = consumers(raw.consumers, &mut queues, &dependencies)?;
    let mut parts = workflows::Parts { queues: &mut queues, producers: &mut producers, consumers: &mut consumers };
    let request_reply = workflows::request_reply(raw.request_reply, &mut parts)?;
    let sagas = workflows::sagas(raw.sagas, &mut parts)?;
    // Queues are numbered in a 64-bit set of the ones with work to hand out.
    check_count("queues (with dead-letter, retry and workflow queues)", queues.len(), 0, limits::ALL_QUEUES_MAX)?;
    let mut names = Vec::new();
    let known = Known {
        queues: &queues,
        producers: &producers,
        consumers: &consumers,
        dependencies: &dependencies,
        groups: &groups,
        request_reply: &request_reply,
    };
    let script = script(raw.script, &known, &mut names, &mut topology)?;
    if producers.is_empty() && !script.iter().any(|s| matches!(s.op, Op::Send { .. } | Op::Publish { .. })) {
        return err("producers", "needs at least 1 entry, unless the script sends");
    }

    let alerts = alerts(raw.alerts, &queues, &groups)?;
    let mut scenario = Scenario {
        markers: Vec::new(),
        alerts,
        name: raw.name,
        description: raw.description,
        seed: raw.seed,
        duration,
        latency,
        queues,
        topology,
        topics,
        groups,
        request_reply,
        sagas,
        producers,
        consumers,
        dependencies,
        autoscalers,
        script,
        message_names: names,
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
    scenario.markers = super::beats::markers(raw.markers, &scenario)?;
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

/// The alerts: each names one queue or one group, and a bound.
fn alerts(raw: Vec<raw::Alert>, queues: &[QueueSpec], groups: &[GroupSpec]) -> Result<Vec<AlertSpec>, ScenarioError> {
    check_count("alerts", raw.len(), 0, limits::ALERTS_MAX)?;
    let mut out: Vec<AlertSpec> = Vec::new();
    for (i, a) in raw.into_iter().enumerate() {
        let at = format!("alerts[{i}]");
        if a.name.trim().is_empty() || a.name.len() > 80 {
            return err(format!("{at}.name"), "must be 1 to 80 characters");
        }
        if out.iter().any(|o| o.name == a.name) {
            return err(format!("{at}.name"), format!("\"{}\" is already the name of another alert", a.name));
        }
        let on = match (a.queue, a.group) {
            (Some(q), None) => match queues.iter().position(|x| x.name == q) {
                Some(q) => AlertOn::Queue(index_u32(q)),
                None => return err(format!("{at}.queue"), format!("no queue is named \"{q}\"")),
            },
            (None, Some(g)) => match groups.iter().position(|x| x.name == g) {
                Some(g) => AlertOn::Group(index_u32(g)),
                None => return err(format!("{at}.group"), format!("no group is named \"{g}\"")),
            },
            _ => return err(at, "must name exactly one of queue, group"),
        };
        let above = match u64::try_from(a.above) {
            Ok(n) if n <= u64::from(u32::MAX) => n,
            _ => return err(format!("{at}.above"), "must be a whole number from 0"),
        };
        out.push(AlertSpec { name: a.name, on, above });
    }
    Ok(out)
}

// --- Queues ----------------------------------------------------------------------------------

/// SQS-17: MessageRetentionPeriod is 60 s to 14 days (longer than any run here), 4 days
/// unless set.
const SQS_RETENTION_MS_MIN: u64 = 60_000;
const SQS_RETENTION_DEFAULT: Duration = Duration::from_millis(345_600_000);

// long: one check per field of a queue, in the schema's order, each naming its path
fn queues(
    raw: Vec<raw::Queue>,
    dlxs: &mut Vec<(u32, String, exchanges::RawDlx)>,
) -> Result<Vec<QueueSpec>, ScenarioError> {
    check_count("queues", raw.len(), 0, limits::QUEUES_MAX)?;
    let mut out: Vec<QueueSpec> = Vec::with_capacity(raw.len() * 2);
    for (i, mut q) in raw.into_iter().enumerate() {
        let at = format!("queues[{i}]");
        if let Some(dlx) = exchanges::queue_arguments(&at, &mut q)? {
            dlxs.push((index_u32(out.len()), at.clone(), dlx));
        }
        check_new_name(&format!("{at}.name"), &q.name, out.iter().map(|x| &x.name), "queue")?;
        for suffix in [".dlq", ".retry"] {
            if q.name.ends_with(suffix) {
                return err(
                    format!("{at}.name"),
                    format!("names ending in \"{suffix}\" are kept for the queues Brokerlab makes"),
                );
            }
        }
        let lease = match q.lease {
            None => LeaseModel::RabbitMq {
                quorum: false,
                delivery_limit: None,
                consumer_timeout: Duration::from_millis(1_800_000),
                counts: LimitCounts::EveryReturn,
            },
            Some(v) => lease(&format!("{at}.lease"), tagged(&format!("{at}.lease"), v, "model")?)?,
        };
        let forced = lease.needs_dlq();
        let wants_dlq = match q.dead_letter {
            Some(false) if lease.always_has_dlq() => {
                return err(
                    format!("{at}.dead_letter"),
                    "a Service Bus queue always has a dead-letter sub-queue (ASB-6)",
                )
            }
            Some(false) if forced => {
                return err(format!("{at}.dead_letter"), "max_receive_count needs a dead-letter queue (SQS-10)")
            }
            Some(b) => b || forced,
            None => forced,
        };
        // SQS-17: on SQS a TTL is the retention period, at least 60 s and 4 days unless set,
        // and a message past it is deleted, never dead-lettered. ASB-10: Service Bus's default
        // TTL never ends; RabbitMQ has none unless set.
        let sqs = lease.ttl_is_retention();
        let ttl = retention(&format!("{at}.ttl_ms"), q.ttl_ms, sqs)?;
        let dead_letter_ttl = match q.dead_letter_ttl_ms {
            Some(_) if !sqs => {
                return err(
                    format!("{at}.dead_letter_ttl_ms"),
                    "only an SQS dead-letter queue has a retention period of its own (SQS-13); \
                     Service Bus's observes no TTL (ASB-6)",
                )
            }
            Some(_) if !wants_dlq => {
                return err(format!("{at}.dead_letter_ttl_ms"), "needs a dead-letter queue (set dead_letter: true)")
            }
            v => retention(&format!("{at}.dead_letter_ttl_ms"), v, sqs)?,
        };
        let expire_to_dlq = match q.on_expire.as_deref() {
            None | Some("drop") => false,
            Some("dead_letter") if sqs => {
                return err(
                    format!("{at}.on_expire"),
                    "SQS deletes a message past its retention period; it never dead-letters it (SQS-17)",
                )
            }
            Some("dead_letter") if wants_dlq => true,
            Some("dead_letter") => {
                return err(
                    format!("{at}.on_expire"),
                    "\"dead_letter\" needs the queue to have a dead-letter queue (set dead_letter: true)",
                )
            }
            Some(other) => {
                return err(format!("{at}.on_expire"), format!("\"{other}\" is not one of \"drop\", \"dead_letter\""))
            }
        };
        let max_length = match q.max_length {
            None => None,
            Some(n) => match u32::try_from(n) {
                Ok(n) if (1..=limits::MAX_LENGTH_MAX).contains(&n) => Some(n),
                _ => return err(format!("{at}.max_length"), format!("must be from 1 to {}", limits::MAX_LENGTH_MAX)),
            },
        };
        let overflow = match q.overflow.as_deref() {
            None | Some("drop_head") => Overflow::DropHead,
            Some("reject_publish") => Overflow::RejectPublish,
            // RMQ-38: classic queues only.
            Some("reject_publish_dlx") if lease.rabbitmq_type().is_some_and(|(quorum, _)| !quorum) => {
                Overflow::RejectPublishDlx
            }
            Some("reject_publish_dlx") => {
                return err(format!("{at}.overflow"), "reject_publish_dlx is a RabbitMQ classic queue's (RMQ-38)")
            }
            Some(other) => {
                return err(
                    format!("{at}.overflow"),
                    format!("\"{other}\" is not one of \"drop_head\", \"reject_publish\", \"reject_publish_dlx\""),
                )
            }
        };
        if q.single_active_consumer && !lease.channel_bound() {
            return err(format!("{at}.single_active_consumer"), "single active consumer is RabbitMQ's (RMQ-57)");
        }
        if q.fifo && !lease.has_fifo() {
            return err(format!("{at}.fifo"), "FIFO message groups follow SQS FIFO; use lease model \"sqs\"");
        }
        let dedup_window = match q.duplicate_detection_ms {
            None => q.fifo.then_some(Duration::from_millis(300_000)),
            Some(v) if lease.has_duplicate_detection() => {
                let path = format!("{at}.duplicate_detection_ms");
                let window = ms(&path, v, as_f64(limits::DURATION_MS_MAX))?;
                if window < Duration::from_millis(20_000) {
                    return err(path, "Service Bus's window is from 20 s to 7 days (ASB-9)");
                }
                Some(window)
            }
            Some(_) => {
                return err(
                    format!("{at}.duplicate_detection_ms"),
                    "duplicate detection is Service Bus's; SQS FIFO deduplicates for 5 minutes (fifo: true)",
                )
            }
        };
        let delay = ms(&format!("{at}.delay_ms"), q.delay_ms, 900_000.0)?; // SQS-18: 0–900 s
        let index = index_u32(out.len());
        out.push(QueueSpec {
            name: q.name,
            role: QueueRole::Main,
            lease,
            dead_letter: None,
            dlx: None,
            retry_queue: None,
            ttl,
            expire_to_dlq,
            max_length,
            overflow,
            fifo: q.fifo,
            single_active: q.single_active_consumer,
            dedup_window,
            delay,
        });
        if wants_dlq {
            out[index as usize].dead_letter = Some(index_u32(out.len()));
            let mut dlq = derived(&out[index as usize], ".dlq", QueueRole::DeadLetter { of: index });
            // SQS-12: an SQS queue's DLQ is of its own type; SQS-13: with its own retention.
            (dlq.fifo, dlq.ttl) = (out[index as usize].fifo, dead_letter_ttl);
            out.push(dlq);
        }
    }
    Ok(out)
}

/// A TTL in ms, if set; on SQS the retention period (SQS-17), at least 60 s, 4 days unless set.
fn retention(path: &str, ttl_ms: Option<f64>, sqs: bool) -> Result<Option<Duration>, ScenarioError> {
    let ttl = ttl_ms.map(|v| ms(path, v, as_f64(limits::DURATION_MS_MAX))).transpose()?;
    match ttl {
        Some(t) if sqs && t < Duration::from_millis(SQS_RETENTION_MS_MIN) => {
            err(path, format!("an SQS queue's retention period is at least {SQS_RETENTION_MS_MIN} ms (SQS-17)"))
        }
        None if sqs => Ok(Some(SQS_RETENTION_DEFAULT)),
        t => Ok(t),
    }
}

/// A queue Brokerlab makes for `of`: same lease model, no DLQ, TTL or limit of its own
/// (ASB-6: TTL is not observed in a dead-letter queue); an SQS DLQ then takes its source's
/// type and a retention period of its own.
fn derived(of: &QueueSpec, suffix: &str, role: QueueRole) -> QueueSpec {
    let lease = of.lease.for_derived_queue();
    QueueSpec {
        name: format!("{}{suffix}", of.name),
        role,
        lease,
        dead_letter: None,
        dlx: None,
        retry_queue: None,
        ttl: None,
        expire_to_dlq: false,
        max_length: None,
        overflow: Overflow::DropHead,
        fifo: false,
        single_active: false,
        dedup_window: None,
        delay: Duration::ZERO,
    }
}

// long: one arm per lease model, each checking that model's fields with their paths
fn lease(path: &str, raw: raw::Lease) -> Result<LeaseModel, ScenarioError> {
    Ok(match raw {
        raw::Lease::Sqs { visibility_timeout_ms, max_receive_count } => {
            let visibility_timeout =
                ms(&format!("{path}.visibility_timeout_ms"), visibility_timeout_ms, limits::SQS_VISIBILITY_MS_MAX)?;
            let max_receive_count = match max_receive_count {
                None => None,
                Some(n) => match u32::try_from(n) {
                    Ok(n) if (1..=limits::SQS_MAX_RECEIVE_COUNT_MAX).contains(&n) => Some(n),
                    _ => return err(format!("{path}.max_receive_count"), "must be from 1 to 1000 (SQS-10)"),
                },
            };
            LeaseModel::Sqs { visibility_timeout, max_receive_count }
        }
        raw::Lease::Rabbitmq { queue_type, delivery_limit, consumer_timeout_ms, version } => {
            let quorum = match queue_type.as_deref() {
                None | Some("classic") => false,
                Some("quorum") => true,
                Some(other) => {
                    return err(
                        format!("{path}.queue_type"),
                        format!("\"{other}\" is not one of \"classic\", \"quorum\""),
                    )
                }
            };
            // RMQ-55: 3.10 has no default delivery limit; RMQ-15: from 4.0 it is 20.
            let v3_10 = version.as_deref() == Some("3.10");
            // RMQ-15: quorum queues default to a delivery limit of 20; -1 disables it.
            let delivery_limit = match (quorum, delivery_limit) {
                (false, Some(_)) => {
                    return err(
                        format!("{path}.delivery_limit"),
                        "applies to quorum queues only (RMQ-15); set queue_type: \"quorum\"",
                    )
                }
                (false, None) | (true, Some(-1)) => None,
                (true, None) if v3_10 => None,
                (true, None) => Some(20),
                (true, Some(n)) => match u32::try_from(n) {
                    Ok(n) if n >= 1 => Some(n),
                    _ => return err(format!("{path}.delivery_limit"), "must be at least 1, or -1 for no limit"),
                },
            };
            let consumer_timeout =
                ms(&format!("{path}.consumer_timeout_ms"), consumer_timeout_ms, as_f64(limits::DURATION_MS_MAX))?;
            if consumer_timeout == Duration::ZERO {
                return err(format!("{path}.consumer_timeout_ms"), "must be greater than 0");
            }
            // RMQ-55/RMQ-16 until 4.2 (every return), RMQ-17 from 4.3; 4.2 unless told.
            let counts = match version.as_deref() {
                None | Some("3.10" | "4.0" | "4.1" | "4.2") => LimitCounts::EveryReturn,
                Some("4.3") => LimitCounts::FailedDeliveries,
                Some(other) => {
                    return err(
                        format!("{path}.version"),
                        format!("\"{other}\" is not one of \"3.10\", \"4.0\", \"4.1\", \"4.2\", \"4.3\""),
                    )
                }
            };
            LeaseModel::RabbitMq { quorum, delivery_limit, consumer_timeout, counts }
        }
        raw::Lease::ServiceBus { lock_duration_ms, max_delivery_count } => {
            let lock_duration = ms(&format!("{path}.lock_duration_ms"), lock_duration_ms, limits::SB_LOCK_MS_MAX)?;
            if lock_duration == Duration::ZERO {
                return err(format!("{path}.lock_duration_ms"), "must be greater than 0");
            }
            let max_delivery_count = match u32::try_from(max_delivery_count) {
                Ok(n) if (1..=limits::ATTEMPTS_MAX).contains(&n) => n,
                _ => {
                    return err(
                        format!("{path}.max_delivery_count"),
                        "must be from 1 to 1000 (ASB-5: the minimum is 1)",
                    )
                }
            };
            LeaseModel::ServiceBus { lock_duration, max_delivery_count }
        }
    })
}

// --- Dependencies, producers, consumers --------------------------------------------------------

fn dependencies(raw: Vec<raw::Dependency>) -> Result<Vec<DependencySpec>, ScenarioError> {
    check_count("dependencies", raw.len(), 0, limits::DEPENDENCIES_MAX)?;
    let mut out: Vec<DependencySpec> = Vec::with_capacity(raw.len());
    for (i, d) in raw.into_iter().enumerate() {
        let at = format!("dependencies[{i}]");
        check_new_name(&format!("{at}.name"), &d.name, out.iter().map(|x| &x.name), "dependency")?;
        let error_rate = probability(&format!("{at}.error_rate"), d.error_rate)?;
        check_count(&format!("{at}.outages"), d.outages.len(), 0, limits::OUTAGES_MAX)?;
        let mut outages: Vec<(SimTime, SimTime)> = Vec::with_capacity(d.outages.len());
        for (j, o) in d.outages.iter().enumerate() {
            let max = as_f64(limits::DURATION_MS_MAX);
            let from = SimTime::ZERO.after(ms(&format!("{at}.outages[{j}].from_ms"), o.from_ms, max)?);
            let to = SimTime::ZERO.after(ms(&format!("{at}.outages[{j}].to_ms"), o.to_ms, max)?);
            if to <= from {
                return err(format!("{at}.outages[{j}].to_ms"), "must be after from_ms");
            }
            if outages.last().is_some_and(|&(_, prev_to)| from < prev_to) {
                return err(format!("{at}.outages[{j}].from_ms"), "outages must be in order and must not overlap");
            }
            outages.push((from, to));
        }
        let rate_limit_per_s = match d.rate_limit_per_s {
            None => None,
            Some(n) => match u32::try_from(n) {
                Ok(n) if (1..=1_000_000).contains(&n) => Some(n),
                _ => return err(format!("{at}.rate_limit_per_s"), "must be from 1 to 1000000"),
            },
        };
        let optimistic = match d.optimistic {
            None => None,
            Some(o) => {
                let path = format!("{at}.optimistic.hop");
                Some(dist(&path, tagged(&path, o.hop, "kind")?)?)
            }
        };
        out.push(DependencySpec { name: d.name, error_rate, outages, rate_limit_per_s, optimistic });
    }
    Ok(out)
}

fn poison_refused(group: &GroupSpec) -> String {
    format!(
        "group \"{}\" reads this topic and has nowhere to put a record that fails: give it retry_in_place or retry_delays_ms",
        group.name
    )
}

// long: one check per field of a producer, in the schema's order, each naming its path
fn producers(
    raw: Vec<raw::Producer>,
    queues: &[QueueSpec],
    topics: &[TopicSpec],
    readers: &[GroupSpec],
    topology: &mut crate::exchange::Topology,
) -> Result<Vec<ProducerSpec>, ScenarioError> {
    check_count("producers", raw.len(), 0, limits::PRODUCERS_MAX)?;
    let mut out: Vec<ProducerSpec> = Vec::with_capacity(raw.len());
    for (i, p) in raw.into_iter().enumerate() {
        let at = format!("producers[{i}]");
        check_new_name(&format!("{at}.name"), &p.name, out.iter().map(|x| &x.name), "producer")?;
        let (target, publish) = match (&p.to, &p.exchange) {
            (Some(_), Some(_)) => {
                return err(format!("{at}.exchange"), "give to (a queue or topic) or exchange, not both")
            }
            (None, None) => return err(format!("{at}.to"), "needs a queue or topic to send to (or an exchange)"),
            (None, Some(_)) => {
                let publish = exchanges::publish(&at, &p, topology)?;
                (Target::Exchange(publish.exchange), Some(publish))
            }
            (Some(to), None) => {
                if p.routing_key.is_some() || p.messages.is_some() || p.mandatory {
                    return err(
                        format!("{at}.exchange"),
                        "routing_key, messages and mandatory are for a producer that publishes to an exchange",
                    );
                }
                let target = match topics.iter().position(|t| &t.name == to && t.role == TopicRole::Main) {
                    Some(t) => Target::Topic(index_u32(t)),
                    None => match queues.iter().position(|q| &q.name == to) {
                        Some(q) => Target::Queue(index_u32(q)),
                        None => {
                            return err(
                                format!("{at}.to"),
                                format!("no queue or topic is named \"{to}\"; add it or fix the name"),
                            )
                        }
                    },
                };
                (target, None)
            }
        };
        let expiration = exchanges::expiration(&at, p.expiration_ms)?;
        match target {
            Target::Queue(q) if expiration.is_some() && !queues[q as usize].lease.has_message_ttl() => {
                return err(
                    format!("{at}.expiration_ms"),
                    "SQS has no per-message TTL, only the queue's retention period (SQS-17)",
                )
            }
            Target::Topic(_) if expiration.is_some() => {
                return err(
                    format!("{at}.expiration_ms"),
                    "a record has no TTL of its own; a topic keeps records by retention",
                )
            }
            _ => {}
        }
        let path = format!("{at}.schedule");
        let schedule = schedule(&path, tagged(&path, p.schedule, "kind")?)?;
        let fifo = matches!(target, Target::Queue(q) if queues[q as usize].fifo);
        let groups = match p.groups {
            None => None,
            Some(_) if !fifo => return err(format!("{at}.groups"), "message groups need a FIFO queue (fifo: true)"),
            Some(n) => match u32::try_from(n) {
                Ok(n) if (1..=10_000).contains(&n) => Some(n),
                _ => return err(format!("{at}.groups"), "must be from 1 to 10000"),
            },
        };
        let mut poison = p.poison;
        poison.sort_unstable();
        poison.dedup();
        if poison.len() > limits::SCRIPTED_SENDS_MAX {
            return err(format!("{at}.poison"), format!("has more than {} entries", limits::SCRIPTED_SENDS_MAX));
        }
        let keys = streams::keys(&format!("{at}.keys"), p.keys)?;
        let tombstones = probability(&format!("{at}.tombstones"), p.tombstones)?;
        match target {
            Target::Queue(_) if keys.is_some() && fifo => {
                return err(format!("{at}.keys"), "a FIFO queue keeps order per message group; use groups")
            }
            Target::Queue(_) if tombstones.numerator > 0 => {
                return err(format!("{at}.tombstones"), "tombstones are for compacted topics")
            }
            Target::Topic(t) if topics[t as usize].compact && keys.is_none() => {
                return err(format!("{at}.keys"), "a compacted topic needs keyed records (KC-13)")
            }
            Target::Topic(_) if tombstones.numerator > 0 && keys.is_none() => {
                return err(format!("{at}.tombstones"), "a tombstone is a keyed record with a null value (KC-13)")
            }
            Target::Topic(t) if !poison.is_empty() => {
                if let Some(g) = streams::cannot_fail(readers, t) {
                    return err(format!("{at}.poison"), poison_refused(g));
                }
            }
            _ => {}
        }
        out.push(ProducerSpec {
            name: p.name,
            target,
            schedule,
            groups,
            poison,
            keys,
            tombstones,
            role: ProducerRole::Plain,
            publish,
            expiration,
        });
    }
    Ok(out)
}

// long: one check per field of a consumer, in the schema's order, each naming its path
fn consumers(
    raw: Vec<raw::Consumer>,
    queues: &mut Vec<QueueSpec>,
    dependencies: &[DependencySpec],
) -> Result<(Vec<ConsumerSpec>, Vec<AutoscaleSpec>), ScenarioError> {
    check_count("consumers", raw.len(), 0, limits::CONSUMERS_MAX)?;
    let mut out: Vec<ConsumerSpec> = Vec::with_capacity(raw.len());
    let mut autoscalers = Vec::new();
    for (i, mut c) in raw.into_iter().enumerate() {
        let autoscale = c.autoscale.take();
        let at = format!("consumers[{i}]");
        check_new_name(&format!("{at}.name"), &c.name, out.iter().map(|x| &x.name), "consumer")?;
        let queue = queue_ref(&format!("{at}.from"), &c.from, queues)?;
        // RMQ-3: on RabbitMQ, prefetch 0 means unlimited (here: the engine's limit), and a
        // quorum queue caps the effective prefetch at 2,000.
        let model = queues[queue as usize].lease;
        let prefetch = match (c.prefetch, model.prefetch_zero_is_unlimited()) {
            (0, true) => limits::PREFETCH_MAX,
            (p, _) if p < 1 => {
                return err(format!("{at}.prefetch"), "must be at least 1 (0, unlimited, is RabbitMQ's alone)")
            }
            (p, _) => match u32::try_from(p) {
                Ok(p) if p <= limits::PREFETCH_MAX => p,
                _ => return err(format!("{at}.prefetch"), format!("must be at most {}", limits::PREFETCH_MAX)),
            },
        };
        let prefetch = model.prefetch_cap().map_or(prefetch, |cap| prefetch.min(cap));
        let concurrency = match u32::try_from(c.concurrency) {
            Ok(n) if (1..=prefetch).contains(&n) => n,
            _ => return err(format!("{at}.concurrency"), format!("must be from 1 to the prefetch, {prefetch}")),
        };
        let processing = match c.processing {
            Some(v) => dist(&format!("{at}.processing"), tagged(&format!("{at}.processing"), v, "kind")?)?,
            None => Dist::Constant(Duration::from_millis(100)),
        };
        let manual = match c.mode.as_deref() {
            None | Some("auto") => false,
            Some("manual") => true,
            Some(other) => return err(format!("{at}.mode"), format!("\"{other}\" is not one of \"auto\", \"manual\"")),
        };
        let ack = match c.ack.as_deref() {
            None | Some("after_processing") => AckMode::AfterProcessing,
            Some("before_processing") => AckMode::BeforeProcessing,
            Some(other) => {
                return err(
                    format!("{at}.ack"),
                    format!("\"{other}\" is not one of \"after_processing\", \"before_processing\""),
                )
            }
        };
        let outcomes = outcome_odds(&format!("{at}.outcomes"), &c.outcomes)?;
        let lease = queues[queue as usize].lease;
        let hang = match c.hang_ms {
            Some(v) => ms(&format!("{at}.hang_ms"), v, as_f64(limits::DURATION_MS_MAX))?,
            // Long enough to outlive any lease (or RabbitMQ's consumer timeout).
            None => Duration::from_micros(lease.lease_duration().as_micros().saturating_mul(3)),
        };
        let dependency = match &c.dependency {
            None => None,
            Some(name) => match dependencies.iter().position(|d| &d.name == name) {
                Some(d) => Some(index_u32(d)),
                None => return err(format!("{at}.dependency"), format!("no dependency is named \"{name}\"")),
            },
        };
        let find = |name: &str| queues.iter().position(|q| q.name == name).map(index_u32);
        let retry = c.retry.map(|r| retry(&format!("{at}.retry"), r, &find)).transpose()?;
        if let Some(RetryVia::DeadLetter { park }) = retry.map(|r| r.via) {
            let q = &queues[queue as usize];
            if q.dlx.is_none() {
                return err(
                    format!("{at}.retry.via"),
                    format!("a dead_letter retry needs a dead-letter exchange on {} (x-dead-letter-exchange)", q.name),
                );
            }
            if park == queue {
                return err(format!("{at}.retry.park"), "must be another queue than the one it consumes from");
            }
        }
        if retry.is_some_and(|r| r.via == RetryVia::RetryQueue) && queues[queue as usize].retry_queue.is_none() {
            let index = index_u32(queues.len());
            let q = derived(&queues[queue as usize], ".retry", QueueRole::Retry { of: queue });
            queues.push(q);
            queues[queue as usize].retry_queue = Some(index);
        }
        let heartbeat = match c.heartbeat_ms {
            None => None,
            Some(_) if !lease.has_renewable_lease() => {
                return err(
                    format!("{at}.heartbeat_ms"),
                    "RabbitMQ has no lease to extend; heartbeats are for SQS and Service Bus",
                )
            }
            Some(v) => {
                let d = ms(&format!("{at}.heartbeat_ms"), v, as_f64(limits::DURATION_MS_MAX))?;
                if d == Duration::ZERO || d >= lease.lease_duration() {
                    return err(
                        format!("{at}.heartbeat_ms"),
                        "must be more than 0 and less than the lease, or the lease runs out first",
                    );
                }
                Some(d)
            }
        };
        let restart_after =
            c.restart_ms.map(|v| ms(&format!("{at}.restart_ms"), v, as_f64(limits::DURATION_MS_MAX))).transpose()?;
        if c.version_check && c.effect.as_deref() != Some("set") {
            return err(format!("{at}.version_check"), "a version check is on a set: add \"effect\": \"set\"");
        }
        let breaker = match c.circuit_breaker {
            None => None,
            Some(_) if dependency.is_none() => {
                return err(format!("{at}.circuit_breaker"), "a circuit breaker wraps calls to a dependency; name one")
            }
            Some(b) => Some(breaker(&format!("{at}.circuit_breaker"), &b)?),
        };
        if c.priority != 0 && !model.has_consumer_priority() {
            return err(format!("{at}.priority"), "consumer priority is RabbitMQ's (x-priority, RMQ-2)");
        }
        let spec = ConsumerSpec {
            name: c.name,
            queue,
            prefetch,
            concurrency,
            priority: c.priority,
            processing,
            ack,
            outcomes,
            hang,
            dependency,
            retry,
            heartbeat,
            idempotent: c.idempotent,
            effect: match c.effect.as_deref() {
                None => EffectKind::Any,
                Some("increment") => EffectKind::Increment,
                Some("set") => EffectKind::Set,
                Some(other) => {
                    return err(format!("{at}.effect"), format!("\"{other}\" is not one of \"increment\", \"set\""))
                }
            },
            version_check: c.version_check,
            poison_fails: match c.on_poison.as_deref() {
                None | Some("crash") => false,
                Some("permanent_error") => true,
                Some(other) => {
                    return err(
                        format!("{at}.on_poison"),
                        format!("\"{other}\" is not one of \"crash\", \"permanent_error\""),
                    )
                }
            },
            breaker,
            restart_after,
            manual,
            standby: false,
            role: ConsumerRole::Plain,
        };
        match autoscale {
            None => out.push(spec),
            Some(a) => autoscalers.push(expand(&format!("{at}.autoscale"), a, spec, &mut out)?),
        }
    }
    check_count("consumers (with autoscaled instances)", out.len(), 0, limits::CONSUMERS_MAX)?;
    Ok((out, autoscalers))
}

/// A consumer's circuit breaker (CB-2's settings). The minimum is capped at the window, as
/// resilience4j caps it for a count-based window (CB-3).
fn breaker(path: &str, b: &raw::CircuitBreaker) -> Result<crate::breaker::BreakerSpec, ScenarioError> {
    let count = |field: &str, v: i64, hi: u32| -> Result<u32, ScenarioError> {
        match u32::try_from(v) {
            Ok(n) if (1..=hi).contains(&n) => Ok(n),
            _ => err(format!("{path}.{field}"), format!("must be from 1 to {hi}")),
        }
    };
    let window = count("window", b.window, limits::BREAKER_WINDOW_MAX)?;
    let wait_open = ms(&format!("{path}.wait_open_ms"), b.wait_open_ms, as_f64(limits::DURATION_MS_MAX))?;
    if wait_open == Duration::ZERO {
        return err(format!("{path}.wait_open_ms"), "must be more than 0");
    }
    Ok(crate::breaker::BreakerSpec {
        failure_rate_pct: count("failure_rate_pct", b.failure_rate_pct, 100)?,
        window,
        minimum_calls: count("minimum_calls", b.minimum_calls, u32::MAX)?.min(window),
        wait_open,
        half_open_calls: count("half_open_calls", b.half_open_calls, limits::BREAKER_WINDOW_MAX)?,
    })
}

/// An autoscaled consumer becomes `max` instances named `name`, `name-2`, …; the first `min`
/// start active, the rest on standby.
fn expand(
    path: &str,
    a: raw::Autoscale,
    template: ConsumerSpec,
    out: &mut Vec<ConsumerSpec>,
) -> Result<AutoscaleSpec, ScenarioError> {
    let count = |field: &str, v: i64, lo: u32, hi: u32| -> Result<u32, ScenarioError> {
        match u32::try_from(v) {
            Ok(n) if (lo..=hi).contains(&n) => Ok(n),
            _ => err(format!("{path}.{field}"), format!("must be from {lo} to {hi}")),
        }
    };
    let max_instances = u32::try_from(limits::CONSUMERS_MAX).unwrap_or(256);
    let max = count("max", a.max, 1, max_instances)?;
    let min = count("min", a.min, 1, max)?;
    let scale_up_above = count("scale_up_above", a.scale_up_above, 0, limits::MAX_LENGTH_MAX)?;
    let scale_down_below = count("scale_down_below", a.scale_down_below, 0, scale_up_above)?;
    let add = count("add", a.add, 1, max)?;
    let remove = count("remove", a.remove, 1, max)?;
    let check_every = ms(&format!("{path}.check_every_ms"), a.check_every_ms, as_f64(limits::DURATION_MS_MAX))?;
    if check_every < Duration::from_millis(100) {
        return err(format!("{path}.check_every_ms"), "must be at least 100");
    }
    let mut instances = Vec::new();
    for k in 0..max {
        let name = if k == 0 { template.name.clone() } else { format!("{}-{}", template.name, k + 1) };
        check_new_name(path, &name, out.iter().map(|x| &x.name), "consumer")?;
        instances.push(index_u32(out.len()));
        out.push(ConsumerSpec { name, standby: k >= min, ..template.clone() });
    }
    Ok(AutoscaleSpec {
        queue: template.queue,
        instances,
        min,
        scale_up_above,
        add,
        scale_down_below,
        remove,
        check_every,
    })
}

/// A retry policy; `park` finds a `via: dead_letter` policy's parking-lot queue by name (only
/// a consumer's policy has one).
pub(super) fn retry(path: &str, r: raw::Retry, park: &dyn Fn(&str) -> Option<u32>) -> Result<RetrySpec, ScenarioError> {
    let strategy = match r.strategy.as_str() {
        "immediate" => Strategy::Immediate,
        "fixed" => Strategy::Fixed,
        "exponential" => Strategy::Exponential,
        "full_jitter" => Strategy::FullJitter,
        "equal_jitter" => Strategy::EqualJitter,
        "decorrelated_jitter" => Strategy::Decorrelated,
        other => {
            return err(
                format!("{path}.strategy"),
                format!("\"{other}\" is not one of \"immediate\", \"fixed\", \"exponential\", \"full_jitter\", \"equal_jitter\", \"decorrelated_jitter\""),
            )
        }
    };
    let max = as_f64(limits::DURATION_MS_MAX);
    let base_ms = ms(&format!("{path}.base_ms"), r.base_ms, max)?.as_millis_f64();
    let cap_ms = ms(&format!("{path}.cap_ms"), r.cap_ms, max)?.as_millis_f64();
    if !(r.multiplier.is_finite() && (1.0..=10.0).contains(&r.multiplier)) {
        return err(format!("{path}.multiplier"), "must be from 1 to 10");
    }
    let attempts_max = match u32::try_from(r.attempts_max) {
        Ok(n) if (1..=limits::ATTEMPTS_MAX).contains(&n) => n,
        _ => return err(format!("{path}.attempts_max"), format!("must be from 1 to {}", limits::ATTEMPTS_MAX)),
    };
    let unknown_attempts_max = match u32::try_from(r.unknown_attempts_max) {
        Ok(n) if n <= limits::ATTEMPTS_MAX => n,
        _ => return err(format!("{path}.unknown_attempts_max"), format!("must be from 0 to {}", limits::ATTEMPTS_MAX)),
    };
    let via = retry_via(path, &r, strategy, park)?;
    Ok(RetrySpec {
        policy: Policy { strategy, base_ms, multiplier: r.multiplier, cap_ms, attempts_max },
        via,
        unknown_attempts_max,
    })
}

/// Where a retry waits: `delay`, `retry_queue`, or `dead_letter` with its parking lot.
fn retry_via(
    path: &str,
    r: &raw::Retry,
    strategy: Strategy,
    park: &dyn Fn(&str) -> Option<u32>,
) -> Result<RetryVia, ScenarioError> {
    let via = match r.via.as_deref() {
        None | Some("delay") => RetryVia::Delay,
        Some("retry_queue") => RetryVia::RetryQueue,
        Some("dead_letter") => {
            if strategy != Strategy::Immediate {
                return err(
                    format!("{path}.strategy"),
                    "a dead_letter retry waits in the queue its dead-letter exchange leads to, for that queue's TTL: use \"immediate\"",
                );
            }
            let Some(name) = r.park.as_deref() else {
                return err(
                    format!("{path}.park"),
                    "a dead_letter retry needs the queue a message goes to past its last attempt",
                );
            };
            match park(name) {
                Some(q) => RetryVia::DeadLetter { park: q },
                None => return err(format!("{path}.park"), format!("no queue is named \"{name}\"")),
            }
        }
        Some(other) => {
            return err(
                format!("{path}.via"),
                format!("\"{other}\" is not one of \"delay\", \"retry_queue\", \"dead_letter\""),
            )
        }
    };
    if r.park.is_some() && !matches!(via, RetryVia::DeadLetter { .. }) {
        return err(format!("{path}.park"), "is for a retry with via \"dead_letter\"");
    }
    Ok(via)
}

// --- The script ------------------------------------------------------------------------------

// long: one arm per script operation, each checking its fields with their paths
fn script(
    raw: Vec<raw::ScriptStep>,
    known: &Known,
    names: &mut Vec<String>,
    topology: &mut crate::exchange::Topology,
) -> Result<Vec<ScriptStep>, ScenarioError> {
    check_count("script", raw.len(), 0, limits::SCRIPT_STEPS_MAX)?;
    let Known { queues, producers, consumers, dependencies, groups, request_reply } = *known;
    let mut out = Vec::with_capacity(raw.len());
    let mut last = SimTime::ZERO;
    for (i, step) in raw.into_iter().enumerate() {
        let at_path = format!("script[{i}]");
        let at = SimTime::ZERO.after(ms(&format!("{at_path}.at_ms"), step.at_ms, as_f64(limits::DURATION_MS_MAX))?);
        if at < last {
            return err(format!("{at_path}.at_ms"), "steps must be in time order");
        }
        last = at;
        let consumer = |field: &str, name: &str| -> Result<u32, ScenarioError> {
            match consumers.iter().position(|c| c.name == name) {
                Some(c) => Ok(index_u32(c)),
                None => err(format!("{at_path}.{field}"), format!("no consumer is named \"{name}\"")),
            }
        };
        let known = |name: &str, names: &[String]| -> Result<u32, ScenarioError> {
            match names.iter().position(|n| n == name) {
                Some(m) => Ok(index_u32(m)),
                None => err(format!("{at_path}.message"), format!("no earlier send names a message \"{name}\"")),
            }
        };
        let dependency = |name: &str| -> Result<u32, ScenarioError> {
            match dependencies.iter().position(|d| d.name == name) {
                Some(d) => Ok(index_u32(d)),
                None => err(format!("{at_path}.dependency"), format!("no dependency is named \"{name}\"")),
            }
        };
        let op = match tagged::<raw::Op>(&at_path, step.op, "op")? {
            raw::Op::Send { to, message, group, dedup_id, ttl_ms, delay_ms, poison, resend } => {
                let queue = queue_ref(&format!("{at_path}.to"), &to, queues)?;
                let (resend, dedup_id) = match resend {
                    None => (None, dedup_id),
                    Some(of) => {
                        let Some(n) = names.iter().position(|n| *n == of) else {
                            return err(
                                format!("{at_path}.resend"),
                                format!("no earlier send names a message \"{of}\""),
                            );
                        };
                        // The resend carries the first send's deduplication id, as a retrying
                        // client does, unless it gives its own.
                        let first = out.iter().find_map(|s: &ScriptStep| match &s.op {
                            Op::Send { name: Some(m), dedup_id, .. } if *m as usize == n => Some(dedup_id.clone()),
                            _ => None,
                        });
                        let inherited = first.flatten().filter(|_| queues[queue as usize].dedup_window.is_some());
                        (Some(index_u32(n)), dedup_id.or(inherited))
                    }
                };
                let name = new_message_name(&format!("{at_path}.message"), message, names)?;
                let fifo = queues[queue as usize].fifo;
                let group = match group {
                    None if fifo => {
                        return err(format!("{at_path}.group"), "a send to a FIFO queue needs a group (SQS-20)")
                    }
                    Some(_) if !fifo => return err(format!("{at_path}.group"), "groups need a FIFO queue"),
                    None => None,
                    Some(g) => Some(u32::try_from(g).map_err(|_| ScenarioError {
                        path: format!("{at_path}.group"),
                        reason: "must be a whole number ≥ 0".into(),
                    })?),
                };
                if dedup_id.is_some() && queues[queue as usize].dedup_window.is_none() {
                    return err(
                        format!("{at_path}.dedup_id"),
                        "deduplication ids need a FIFO queue (SQS-23) or Service Bus duplicate detection (ASB-9)",
                    );
                }
                if let Some(d) = &dedup_id {
                    check_name(&format!("{at_path}.dedup_id"), d)?;
                }
                let max = as_f64(limits::DURATION_MS_MAX);
                if ttl_ms.is_some() && !queues[queue as usize].lease.has_message_ttl() {
                    return err(
                        format!("{at_path}.ttl_ms"),
                        "SQS has no per-message TTL; the queue's retention period applies (SQS-17)",
                    );
                }
                let ttl = ttl_ms.map(|v| ms(&format!("{at_path}.ttl_ms"), v, max)).transpose()?;
                let delay = delay_ms.map(|v| ms(&format!("{at_path}.delay_ms"), v, 900_000.0)).transpose()?;
                Op::Send { queue, name, group, dedup_id, ttl, delay, poison, resend }
            }
            raw::Op::Receive { consumer: c, queue, max } => {
                let consumer = consumer("consumer", &c)?;
                let queue = match queue {
                    Some(q) => queue_ref(&format!("{at_path}.queue"), &q, queues)?,
                    None => consumers[consumer as usize].queue,
                };
                let max = match u32::try_from(max) {
                    Ok(n) if (1..=10).contains(&n) => n,
                    _ => return err(format!("{at_path}.max"), "must be from 1 to 10 (SQS-26 MaxNumberOfMessages)"),
                };
                Op::Receive { consumer, queue, max }
            }
            raw::Op::Ack { consumer: c, message, multiple } => {
                Op::Ack { consumer: consumer("consumer", &c)?, name: known(&message, names)?, multiple }
            }
            raw::Op::Nack { consumer: c, message, requeue, multiple } => {
                let name = known(&message, names)?;
                Op::Nack { consumer: consumer("consumer", &c)?, name, requeue, reject: false, multiple }
            }
            raw::Op::Reject { consumer: c, message, requeue } => Op::Nack {
                consumer: consumer("consumer", &c)?,
                name: known(&message, names)?,
                requeue,
                reject: true,
                multiple: false,
            },
            raw::Op::Abandon { consumer: c, message } => {
                Op::Abandon { consumer: consumer("consumer", &c)?, name: known(&message, names)? }
            }
            raw::Op::ChangeVisibility { consumer: c, message, timeout_ms } => {
                let timeout = ms(&format!("{at_path}.timeout_ms"), timeout_ms, limits::SQS_VISIBILITY_MS_MAX)?;
                Op::ChangeVisibility { consumer: consumer("consumer", &c)?, name: known(&message, names)?, timeout }
            }
            raw::Op::RenewLock { consumer: c, message } => {
                Op::RenewLock { consumer: consumer("consumer", &c)?, name: known(&message, names)? }
            }
            raw::Op::DeadLetter { consumer: c, message } => {
                Op::DeadLetter { consumer: consumer("consumer", &c)?, name: known(&message, names)? }
            }
            raw::Op::Crash { consumer: c } => Op::Crash { consumer: consumer("consumer", &c)? },
            raw::Op::Cancel { consumer: c } => {
                let c = consumer("consumer", &c)?;
                if !queues[consumers[c as usize].queue as usize].lease.channel_bound() {
                    return err(
                        format!("{at_path}.op"),
                        "cancel is RabbitMQ's basic.cancel; this consumer's queue is not RabbitMQ",
                    );
                }
                Op::Cancel { consumer: c }
            }
            raw::Op::Restart { consumer: c } => Op::Restart { consumer: consumer("consumer", &c)? },
            raw::Op::DeployFix { consumer: c } => Op::DeployFix { consumer: consumer("consumer", &c)? },
            raw::Op::SetProcessing { consumer: c, processing } => {
                let path = format!("{at_path}.processing");
                let processing = dist(&path, tagged(&path, processing, "kind")?)?;
                Op::SetProcessing { consumer: consumer("consumer", &c)?, processing }
            }
            raw::Op::SetOutcomes { consumer: c, outcomes } => {
                let outcomes = outcome_odds(&format!("{at_path}.outcomes"), &outcomes)?;
                Op::SetOutcomes { consumer: consumer("consumer", &c)?, outcomes }
            }
            raw::Op::PoisonNext { producer } => match producers.iter().position(|p| p.name == producer) {
                Some(p) => {
                    if let Target::Topic(t) = producers[p].target {
                        if let Some(g) = streams::cannot_fail(groups, t) {
                            return err(format!("{at_path}.producer"), poison_refused(g));
                        }
                    }
                    Op::PoisonNext { producer: index_u32(p) }
                }
                None => return err(format!("{at_path}.producer"), format!("no producer is named \"{producer}\"")),
            },
            raw::Op::Publish { exchange, routing_key, headers, message, mandatory, expiration_ms } => {
                let name = new_message_name(&format!("{at_path}.message"), message, names)?;
                let shape = exchanges::ScriptPublish { exchange, routing_key, headers, expiration_ms };
                let (route, ttl) = exchanges::script_publish(&at_path, shape, topology)?;
                Op::Publish { route, name, mandatory, ttl }
            }
            raw::Op::Redrive { from, to, rate_per_s } => {
                let from_q = queue_ref(&format!("{at_path}.from"), &from, queues)?;
                let QueueRole::DeadLetter { of } = queues[from_q as usize].role else {
                    return err(format!("{at_path}.from"), format!("\"{from}\" is not a dead-letter queue"));
                };
                let to = match to {
                    Some(t) => queue_ref(&format!("{at_path}.to"), &t, queues)?,
                    None => of,
                };
                // SQS-15: a move task runs at most 500 messages per second.
                let rate_per_s = match rate_per_s {
                    None => None,
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 1..=500, whole
                    Some(r) if r.is_finite() && (1.0..=500.0).contains(&r) && r.fract() == 0.0 => Some(r as u32),
                    Some(_) => {
                        return err(format!("{at_path}.rate_per_s"), "must be a whole number from 1 to 500 (SQS-15)")
                    }
                };
                Op::Redrive { from: from_q, to, rate_per_s }
            }
            raw::Op::CrashMember { group, member } => {
                let (group, member) = streams::member_ref(&at_path, groups, &group, Some(&member))?;
                Op::CrashMember { group, member: member.unwrap_or(0) }
            }
            raw::Op::RestartMember { group, member } => {
                let (group, member) = streams::member_ref(&at_path, groups, &group, Some(&member))?;
                Op::RestartMember { group, member: member.unwrap_or(0) }
            }
            raw::Op::RemoveMember { group, member } => {
                let (group, member) = streams::member_ref(&at_path, groups, &group, Some(&member))?;
                Op::RemoveMember { group, member: member.unwrap_or(0) }
            }
            raw::Op::KillRequester { system, requester } => {
                let Some(sys) = request_reply.iter().position(|r| r.name == system) else {
                    return err(format!("{at_path}.system"), format!("no request_reply system is named \"{system}\""));
                };
                let n = request_reply[sys].requesters;
                let instance = requester
                    .strip_prefix(&format!("{system}.requester-"))
                    .and_then(|k| k.parse::<u32>().ok())
                    .filter(|k| (1..=n).contains(k));
                match instance {
                    Some(k) => Op::KillRequester { system: index_u32(sys), instance: k - 1 },
                    None => {
                        return err(
                            format!("{at_path}.requester"),
                            format!("the requesters are named \"{system}.requester-1\" to \"{system}.requester-{n}\""),
                        )
                    }
                }
            }
            raw::Op::ResetOffsets { group, to } => {
                if to != "earliest" {
                    return err(
                        format!("{at_path}.to"),
                        format!("\"{to}\" is not \"earliest\" (a replay from the log start)"),
                    );
                }
                Op::ResetOffsets { group: streams::member_ref(&at_path, groups, &group, None)?.0 }
            }
            raw::Op::AddMember { group } => {
                Op::AddMember { group: streams::member_ref(&at_path, groups, &group, None)?.0 }
            }
            raw::Op::DropDelivery { msg } => Op::DropDelivery { msg: message_id(&format!("{at_path}.msg"), &msg)? },
            raw::Op::DuplicateDelivery { msg } => {
                Op::DuplicateDelivery { msg: message_id(&format!("{at_path}.msg"), &msg)? }
            }
            raw::Op::Resubmit { msg, edit } => Op::Resubmit { msg: message_id(&format!("{at_path}.msg"), &msg)?, edit },
            raw::Op::DependencyDown { dependency: d } => Op::DependencyDown { dependency: dependency(&d)? },
            raw::Op::DependencyUp { dependency: d } => Op::DependencyUp { dependency: dependency(&d)? },
        };
        out.push(ScriptStep { at, op });
    }
    Ok(out)
}

// --- Leaves ----------------------------------------------------------------------------------

/// A live input, written as a script step without its time (`{"op": "crash", "consumer":
/// "worker-1"}`), checked against `scenario`'s names. Steps that name messages are not live
/// inputs: a user acts on what the page shows, not on names only a script gives.
pub(super) fn live_op(scenario: &Scenario, text: &str) -> Result<Op, ScenarioError> {
    if text.len() > 4096 {
        return err("input", "is too long");
    }
    let mut value: Value =
        serde_json::from_str(text).map_err(|e| ScenarioError { path: "input".into(), reason: e.to_string() })?;
    let Value::Object(fields) = &mut value else { return err("input", "must be a JSON object with an \"op\" field") };
    fields.insert("at_ms".into(), Value::from(0));
    let step: raw::ScriptStep = serde_json::from_value(value)
        .map_err(|e| ScenarioError { path: "input".into(), reason: without_position(&e) })?;
    let known = Known {
        queues: &scenario.queues,
        producers: &scenario.producers,
        consumers: &scenario.consumers,
        dependencies: &scenario.dependencies,
        groups: &scenario.groups,
        request_reply: &scenario.request_reply,
    };
    let mut names = Vec::new();
    let mut topology = scenario.topology.clone();
    let mut steps = script(vec![step], &known, &mut names, &mut topology)
        .map_err(|e| ScenarioError { path: e.path.replacen("script[0]", "input", 1), reason: e.reason })?;
    let op =
        steps.pop().map(|s| s.op).ok_or_else(|| ScenarioError { path: "input".into(), reason: "is empty".into() })?;
    if matches!(
        op,
        Op::Send { .. }
            | Op::Ack { .. }
            | Op::Nack { .. }
            | Op::Abandon { .. }
            | Op::ChangeVisibility { .. }
            | Op::RenewLock { .. }
            | Op::DeadLetter { .. }
            | Op::Receive { .. }
            | Op::Publish { .. }
    ) || !names.is_empty()
    {
        return err("input.op", "sends and settles by hand belong in the script; live inputs break things");
    }
    Ok(op)
}

/// A message by the engine's id: `"m12"` or 12, below the message limit.
pub(super) fn message_id(path: &str, value: &Value) -> Result<u32, ScenarioError> {
    let n = match value {
        Value::String(m) => m.strip_prefix('m').and_then(|n| n.parse::<u64>().ok()),
        Value::Number(n) => n.as_u64(),
        _ => None,
    };
    match n.filter(|&n| n < limits::MESSAGES_MAX) {
        Some(n) => Ok(index_u32(usize::try_from(n).unwrap_or(0))),
        None => err(path, format!("must be a message id, as 4 or \"m4\", below {}", limits::MESSAGES_MAX)),
    }
}

/// What a script step can name.
struct Known<'a> {
    queues: &'a [QueueSpec],
    producers: &'a [ProducerSpec],
    consumers: &'a [ConsumerSpec],
    dependencies: &'a [DependencySpec],
    groups: &'a [GroupSpec],
    request_reply: &'a [RequestReplySpec],
}

/// A script step's new message name, if it gives one: unique in the script.
fn new_message_name(
    path: &str,
    message: Option<String>,
    names: &mut Vec<String>,
) -> Result<Option<u32>, ScenarioError> {
    let Some(m) = message else { return Ok(None) };
    if names.contains(&m) {
        return err(path, format!("\"{m}\" already names an earlier message"));
    }
    check_name(path, &m)?;
    names.push(m);
    Ok(Some(index_u32(names.len() - 1)))
}

/// A time from the start of the run, at most its end.
pub(super) fn within_duration(path: &str, value_ms: f64, duration: Duration) -> Result<SimTime, ScenarioError> {
    #[allow(clippy::cast_precision_loss)]
    let d = ms(path, value_ms, (duration.as_micros() / 1000) as f64)?;
    Ok(SimTime::ZERO.after(d))
}

pub(super) fn schedule(path: &str, raw: raw::Schedule) -> Result<Schedule, ScenarioError> {
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
        raw::Schedule::FixedRate { interval_ms, start_ms, count } => {
            let interval = ms(&format!("{path}.interval_ms"), interval_ms, as_f64(limits::DURATION_MS_MAX))?;
            if interval == Duration::ZERO {
                return err(format!("{path}.interval_ms"), "must be at least 0.001 (one microsecond)");
            }
            Schedule::FixedRate { interval, start: start_of(start_ms)?, count: count_ok(count)? }
        }
        raw::Schedule::Poisson { rate_per_s, start_ms, count } => {
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
        raw::Schedule::Scripted { at_ms } => {
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

pub(super) fn dist(path: &str, raw: raw::Dist) -> Result<Dist, ScenarioError> {
    let max = limits::PROCESSING_MS_MAX;
    Ok(match raw {
        raw::Dist::Constant { ms: v } => Dist::Constant(ms(&format!("{path}.ms"), v, max)?),
        raw::Dist::Uniform { min_ms, max_ms } => {
            let min = ms(&format!("{path}.min_ms"), min_ms, max)?;
            let max = ms(&format!("{path}.max_ms"), max_ms, max)?;
            if max < min {
                return err(format!("{path}.max_ms"), "must be at least min_ms");
            }
            Dist::Uniform { min, max }
        }
        raw::Dist::Exponential { mean_ms } => {
            let mean = ms(&format!("{path}.mean_ms"), mean_ms, max)?;
            if mean == Duration::ZERO {
                return err(format!("{path}.mean_ms"), "must be greater than 0");
            }
            Dist::Exponential { mean }
        }
        raw::Dist::Normal { mean_ms, sd_ms } => {
            let mean = ms(&format!("{path}.mean_ms"), mean_ms, max)?;
            let sd = ms(&format!("{path}.sd_ms"), sd_ms, max)?;
            Dist::Normal { mean, sd }
        }
    })
}

fn queue_ref(path: &str, name: &str, queues: &[QueueSpec]) -> Result<u32, ScenarioError> {
    match queues.iter().position(|q| q.name == name) {
        Some(i) => Ok(index_u32(i)),
        None => err(path, format!("no queue is named \"{name}\"; add it to queues or fix the name")),
    }
}

/// The odds of each outcome, as exact ratios that add up to at most 1.
fn outcome_odds(path: &str, o: &raw::Outcomes) -> Result<Outcomes, ScenarioError> {
    let outcomes = Outcomes {
        transient: probability(&format!("{path}.transient"), o.transient)?,
        permanent: probability(&format!("{path}.permanent"), o.permanent)?,
        unknown: probability(&format!("{path}.unknown"), o.unknown)?,
        crash: probability(&format!("{path}.crash"), o.crash)?,
        hang: probability(&format!("{path}.hang"), o.hang)?,
    };
    let sum = [outcomes.transient, outcomes.permanent, outcomes.unknown, outcomes.crash, outcomes.hang]
        .iter()
        .map(|r| r.numerator)
        .sum::<u64>();
    if sum > PER_MILLION {
        return err(path, "the probabilities add up to more than 1");
    }
    Ok(outcomes)
}

/// Probabilities are exact ratios in parts per million, so that draws are integer math.
const PER_MILLION: u64 = 1_000_000;

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub(super) fn probability(path: &str, p: f64) -> Result<Ratio, ScenarioError> {
    if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
        return err(path, "must be a probability from 0 to 1");
    }
    Ok(Ratio { numerator: libm::round(p * 1e6) as u64, denominator: PER_MILLION })
}

/// Deserializes an object written `{"kind": "k", …fields}` into an externally tagged enum, by
/// rewriting it to `{"k": {…fields}}`. serde's internally tagged enums buffer their content and
/// lose the path inside it; this keeps `producers[0].schedule.count` in every error.
pub(super) fn tagged<T: serde::de::DeserializeOwned>(path: &str, value: Value, tag: &str) -> Result<T, ScenarioError> {
    let Value::Object(mut fields) = value else {
        return err(path, format!("must be an object with a \"{tag}\" field"));
    };
    let kind = match fields.remove(tag) {
        Some(Value::String(kind)) => kind,
        Some(_) => return err(format!("{path}.{tag}"), "must be a string"),
        None => return err(format!("{path}.{tag}"), "is missing"),
    };
    let mut outer = serde_json::Map::new();
    outer.insert(kind.clone(), Value::Object(fields));
    serde_path_to_error::deserialize(Value::Object(outer)).map_err(|e| {
        let inner_path = e.path().to_string();
        let inner = e.into_inner();
        // Only the variant name is at the root, so an error there is about the tag.
        let located = match inner_path.strip_prefix(kind.as_str()) {
            Some(rest) if !rest.is_empty() => format!("{path}{rest}"),
            _ => format!("{path}.{tag}"),
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
    // serde names our private types ("struct Queue"); an author knows them as objects.
    let text = match text.find("expected struct ") {
        Some(i) => format!("{}expected an object", &text[..i]),
        None => text.to_string(),
    };
    text.replace("expected i64", "expected a whole number")
        .replace("expected u64", "expected a whole number ≥ 0")
        .replace("expected f64", "expected a number")
}

/// Milliseconds (possibly fractional) to a duration, checked to be finite, ≥ 0 and ≤ `max`.
pub(super) fn ms(path: &str, value: f64, max: f64) -> Result<Duration, ScenarioError> {
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

pub(super) fn check_count(path: &str, n: usize, min: usize, max: usize) -> Result<(), ScenarioError> {
    if n < min {
        return err(path, format!("needs at least {min} {}", if min == 1 { "entry" } else { "entries" }));
    }
    if n > max {
        return err(path, format!("has {n} entries; the limit is {max}"));
    }
    Ok(())
}

/// A valid name that no earlier entry of the same list (`taken`) has.
pub(super) fn check_new_name<'a>(
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

pub(super) fn check_name(path: &str, name: &str) -> Result<(), ScenarioError> {
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
