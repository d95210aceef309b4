//! Workflows in a scenario (issue 5): async request-reply systems and sagas. Each is written
//! as one block and expands into ordinary queues, producers and consumers with a role, so that
//! every message of a workflow is a real message of the engine: it can be delayed, redelivered,
//! dead-lettered or duplicated like any other.

use super::validate::{check_count, check_name, dist, err, ms, probability, retry, schedule, tagged};
use super::{
    index_u32, limits, AckMode, ConsumerSpec, Dist, LeaseModel, LimitCounts, Outcomes, Overflow, ProducerSpec,
    QueueRole, QueueSpec, RetrySpec, ScenarioError, Schedule, Target,
};
use crate::rng::Ratio;
use crate::time::Duration;
use serde::Deserialize;
use serde_json::Value;

// --- The model ---------------------------------------------------------------------------------

/// What a producer does beyond sending.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProducerRole {
    #[default]
    Plain,
    /// Requester `instance` of request-reply system `system`: each send is a request.
    Requester { system: u32, instance: u32 },
    /// Starts sagas of saga block `saga`.
    SagaStarter { saga: u32 },
}

/// What a consumer does with a message it processed successfully.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConsumerRole {
    #[default]
    Plain,
    /// Answers requests of `system` with a reply.
    Responder { system: u32 },
    /// Requester `instance` reading its replies.
    ReplyReader { system: u32, instance: u32 },
    /// The service that runs `step` of saga block `saga` (and its compensation).
    SagaService { saga: u32, step: u32 },
    /// The orchestrator of saga block `saga`.
    Orchestrator { saga: u32 },
}

#[derive(Clone, Debug, PartialEq)]
pub struct RequestReplySpec {
    pub name: String,
    pub requesters: u32,
    /// One reply queue for all requesters, or one each.
    pub shared_reply_queue: bool,
    /// The pending-request table: in a shared store, or in each instance's memory.
    pub shared_store: bool,
    pub timeout: Duration,
    /// How often a timed-out request is sent again, with a fresh correlation id.
    pub retries: u32,
    pub request_queue: u32,
    /// Per requester, the queue its replies go to.
    pub reply_queues: Vec<u32>,
    /// Per requester, its producer and its reply-reading consumer.
    pub producers: Vec<u32>,
    pub readers: Vec<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SagaStyle {
    /// Each service reacts to the previous one's event; nobody is in charge.
    Choreography,
    /// An orchestrator sends commands and tracks the saga's state.
    Orchestration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StepSpec {
    pub service: String,
    /// The event names: done, failed (a business failure), undone (its compensation ran).
    pub done: String,
    pub failed: String,
    pub undone: String,
    /// The service's local state for a saga once the step is done, and once undone (the page's
    /// saga nodes: "charged", "refunded").
    pub state: String,
    pub undone_state: String,
    /// The chance the step fails for a business reason (steps up to the pivot only).
    pub fail_rate: Ratio,
    /// The chance an attempt fails transiently and is retried (steps after the pivot).
    pub transient_rate: Ratio,
    /// The service's queue and consumer.
    pub queue: u32,
    pub consumer: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SagaSpec {
    pub name: String,
    pub style: SagaStyle,
    pub steps: Vec<StepSpec>,
    /// The go/no-go step (SG-3): steps after it are retriable and never compensated.
    pub pivot: Option<u32>,
    /// The chance a compensation attempt fails transiently (it is retried with backoff).
    pub compensation_transient_rate: Ratio,
    /// The chance a service publishes its done event twice (the same message key).
    pub duplicate_rate: Ratio,
    pub orchestrator: Option<(u32, u32)>,
    pub starter: u32,
}

impl SagaSpec {
    /// Steps after the pivot never fail for a business reason and are never compensated.
    pub fn compensatable(&self, step: u32) -> bool {
        self.pivot.is_none_or(|p| step <= p)
    }
}

// --- The JSON shape ----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequestReply {
    pub name: String,
    #[serde(default = "three")]
    pub requesters: i64,
    #[serde(default = "two")]
    pub responders: i64,
    /// "shared" or "per_instance".
    pub reply_queue: String,
    /// "local" or "shared".
    pub pending: String,
    pub schedule: Value,
    #[serde(default = "timeout_ms")]
    pub timeout_ms: f64,
    #[serde(default)]
    pub retries: i64,
    #[serde(default)]
    pub processing: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSaga {
    pub name: String,
    pub style: String,
    pub schedule: Value,
    pub steps: Vec<RawStep>,
    #[serde(default)]
    pub pivot: Option<String>,
    #[serde(default)]
    pub compensation_transient_rate: f64,
    #[serde(default)]
    pub duplicate_rate: f64,
    #[serde(default = "yes")]
    pub idempotent: bool,
    #[serde(default)]
    pub retry: Option<super::raw::Retry>,
    #[serde(default)]
    pub processing: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub service: String,
    pub done: String,
    #[serde(default)]
    pub failed: Option<String>,
    #[serde(default)]
    pub undone: Option<String>,
    /// The local state the step leaves ("charged"); by default its done event's last word.
    #[serde(default)]
    pub state: Option<String>,
    /// The local state its compensation leaves ("refunded"); by default its undone event's.
    #[serde(default)]
    pub undone_state: Option<String>,
    #[serde(default)]
    pub fail_rate: f64,
    #[serde(default)]
    pub transient_rate: f64,
}

/// "payment.refunded" -> "refunded": an event's name read as the state it leaves.
fn last_word(event: &str) -> String {
    event.rsplit(['.', ' ', '_']).find(|w| !w.is_empty()).unwrap_or(event).to_string()
}

fn three() -> i64 {
    3
}
fn two() -> i64 {
    2
}
fn yes() -> bool {
    true
}
fn timeout_ms() -> f64 {
    5_000.0
}

// --- Expansion ---------------------------------------------------------------------------------

/// What the blocks add to the scenario.
pub(super) struct Parts<'a> {
    pub queues: &'a mut Vec<QueueSpec>,
    pub producers: &'a mut Vec<ProducerSpec>,
    pub consumers: &'a mut Vec<ConsumerSpec>,
}

impl Parts<'_> {
    fn queue(&mut self, path: &str, name: String) -> Result<u32, ScenarioError> {
        if self.queues.iter().any(|q| q.name == name) {
            return err(path, format!("makes a queue \"{name}\", which is already the name of another queue"));
        }
        self.queues.push(QueueSpec {
            name,
            role: QueueRole::Main,
            lease: LeaseModel::RabbitMq {
                quorum: false,
                delivery_limit: None,
                consumer_timeout: Duration::from_millis(1_800_000),
                counts: LimitCounts::EveryReturn,
            },
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
        });
        check_count("queues (with workflow queues)", self.queues.len(), 0, limits::QUEUES_MAX * 4)?;
        Ok(index_u32(self.queues.len() - 1))
    }

    /// A dead-letter queue for `queue`, where a message that exhausts its retries goes.
    fn with_dlq(&mut self, queue: u32) {
        let dlq = index_u32(self.queues.len());
        let mut spec = self.queues[queue as usize].clone();
        spec.name = format!("{}.dlq", spec.name);
        spec.role = QueueRole::DeadLetter { of: queue };
        self.queues.push(spec);
        self.queues[queue as usize].dead_letter = Some(dlq);
    }

    fn consumer(&mut self, path: &str, spec: ConsumerSpec) -> Result<u32, ScenarioError> {
        if self.consumers.iter().any(|c| c.name == spec.name) {
            return err(path, format!("makes a consumer \"{}\", which is already the name of another", spec.name));
        }
        self.consumers.push(spec);
        check_count("consumers (with workflow services)", self.consumers.len(), 0, limits::CONSUMERS_MAX)?;
        Ok(index_u32(self.consumers.len() - 1))
    }

    fn producer(&mut self, path: &str, spec: ProducerSpec) -> Result<u32, ScenarioError> {
        if self.producers.iter().any(|p| p.name == spec.name) {
            return err(path, format!("makes a producer \"{}\", which is already the name of another", spec.name));
        }
        self.producers.push(spec);
        check_count("producers (with workflow producers)", self.producers.len(), 0, limits::PRODUCERS_MAX)?;
        Ok(index_u32(self.producers.len() - 1))
    }
}

fn service(
    name: String,
    queue: u32,
    processing: Dist,
    retry: Option<RetrySpec>,
    idempotent: bool,
    role: ConsumerRole,
) -> ConsumerSpec {
    ConsumerSpec {
        name,
        queue,
        prefetch: 1,
        concurrency: 1,
        priority: 0,
        processing,
        ack: AckMode::AfterProcessing,
        outcomes: Outcomes::default(),
        hang: Duration::from_millis(60_000),
        dependency: None,
        retry,
        heartbeat: None,
        idempotent,
        effect: super::EffectKind::Any,
        version_check: false,
        poison_fails: false,
        breaker: None,
        restart_after: None,
        manual: false,
        standby: false,
        role,
    }
}

fn starter(name: String, queue: u32, schedule: Schedule, role: ProducerRole) -> ProducerSpec {
    ProducerSpec {
        name,
        target: Target::Queue(queue),
        schedule,
        groups: None,
        poison: Vec::new(),
        keys: None,
        tombstones: Ratio::default(),
        role,
        publish: None,
        expiration: None,
    }
}

fn processing_of(path: &str, v: Option<Value>) -> Result<Dist, ScenarioError> {
    match v {
        None => Ok(Dist::Uniform { min: Duration::from_millis(100), max: Duration::from_millis(300) }),
        Some(v) => dist(path, tagged(path, v, "kind")?),
    }
}

// long: one check per field of a request-reply system, in the schema's order, each naming its path
pub(super) fn request_reply(
    raw: Vec<RawRequestReply>,
    parts: &mut Parts,
) -> Result<Vec<RequestReplySpec>, ScenarioError> {
    check_count("request_reply", raw.len(), 0, limits::WORKFLOWS_MAX)?;
    let mut out = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let at = format!("request_reply[{i}]");
        check_name(&format!("{at}.name"), &r.name)?;
        let system = index_u32(i);
        let count = |field: &str, v: i64| match u32::try_from(v) {
            Ok(n) if (1..=limits::WORKFLOW_INSTANCES_MAX).contains(&n) => Ok(n),
            _ => err(format!("{at}.{field}"), format!("must be from 1 to {}", limits::WORKFLOW_INSTANCES_MAX)),
        };
        let requesters = count("requesters", r.requesters)?;
        let responders = count("responders", r.responders)?;
        let shared_reply_queue = match r.reply_queue.as_str() {
            "shared" => true,
            "per_instance" => false,
            other => {
                return err(
                    format!("{at}.reply_queue"),
                    format!("\"{other}\" is not one of \"shared\", \"per_instance\""),
                )
            }
        };
        let shared_store = match r.pending.as_str() {
            "shared" => true,
            "local" => false,
            other => return err(format!("{at}.pending"), format!("\"{other}\" is not one of \"local\", \"shared\"")),
        };
        let path = format!("{at}.schedule");
        let sched = schedule(&path, tagged(&path, r.schedule, "kind")?)?;
        let timeout = ms(&format!("{at}.timeout_ms"), r.timeout_ms, 3_600_000.0)?;
        if timeout == Duration::ZERO {
            return err(format!("{at}.timeout_ms"), "must be greater than 0");
        }
        let retries = match u32::try_from(r.retries) {
            Ok(n) if n <= 10 => n,
            _ => return err(format!("{at}.retries"), "must be from 0 to 10"),
        };
        let processing = processing_of(&format!("{at}.processing"), r.processing)?;
        let request_queue = parts.queue(&at, format!("{}.requests", r.name))?;
        let shared = if shared_reply_queue { Some(parts.queue(&at, format!("{}.replies", r.name))?) } else { None };
        let mut reply_queues = Vec::new();
        let mut producers = Vec::new();
        let mut readers = Vec::new();
        for k in 0..requesters {
            let name = format!("{}.requester-{}", r.name, k + 1);
            let reply = match shared {
                Some(q) => q,
                None => parts.queue(&at, format!("{}.replies.{}", r.name, k + 1))?,
            };
            reply_queues.push(reply);
            let role = ProducerRole::Requester { system, instance: k };
            producers.push(parts.producer(&at, starter(name.clone(), request_queue, sched.clone(), role))?);
            let reader = ConsumerRole::ReplyReader { system, instance: k };
            let fast = Dist::Constant(Duration::from_millis(5));
            readers.push(parts.consumer(&at, service(name, reply, fast, None, false, reader))?);
        }
        for k in 0..responders {
            let name = format!("{}.responder-{}", r.name, k + 1);
            parts.consumer(
                &at,
                service(name, request_queue, processing, None, false, ConsumerRole::Responder { system }),
            )?;
        }
        out.push(RequestReplySpec {
            name: r.name,
            requesters,
            shared_reply_queue,
            shared_store,
            timeout,
            retries,
            request_queue,
            reply_queues,
            producers,
            readers,
        });
    }
    Ok(out)
}

// long: one check per field of a saga and its steps, in the schema's order, each naming its path
pub(super) fn sagas(raw: Vec<RawSaga>, parts: &mut Parts) -> Result<Vec<SagaSpec>, ScenarioError> {
    check_count("sagas", raw.len(), 0, limits::WORKFLOWS_MAX)?;
    let mut out = Vec::with_capacity(raw.len());
    for (i, s) in raw.into_iter().enumerate() {
        let at = format!("sagas[{i}]");
        check_name(&format!("{at}.name"), &s.name)?;
        let saga = index_u32(i);
        let style = match s.style.as_str() {
            "choreography" => SagaStyle::Choreography,
            "orchestration" => SagaStyle::Orchestration,
            other => {
                return err(
                    format!("{at}.style"),
                    format!("\"{other}\" is not one of \"choreography\", \"orchestration\""),
                )
            }
        };
        check_count(&format!("{at}.steps"), s.steps.len(), 2, limits::SAGA_STEPS_MAX)?;
        let path = format!("{at}.schedule");
        let sched = schedule(&path, tagged(&path, s.schedule, "kind")?)?;
        let processing = processing_of(&format!("{at}.processing"), s.processing)?;
        // Compensations and retriable steps are retried with backoff (SG-4b); five attempts
        // with full jitter unless the block says otherwise.
        let policy = match s.retry {
            Some(r) => retry(&format!("{at}.retry"), r, &|_| None)?,
            None => RetrySpec {
                policy: crate::backoff::Policy {
                    strategy: crate::backoff::Strategy::FullJitter,
                    base_ms: 200.0,
                    multiplier: 2.0,
                    cap_ms: 5_000.0,
                    attempts_max: 5,
                },
                via: super::RetryVia::Delay,
                unknown_attempts_max: 2,
            },
        };
        let compensation_transient_rate =
            probability(&format!("{at}.compensation_transient_rate"), s.compensation_transient_rate)?;
        let duplicate_rate = probability(&format!("{at}.duplicate_rate"), s.duplicate_rate)?;
        let pivot = match &s.pivot {
            None => None,
            Some(name) => match s.steps.iter().position(|x| &x.service == name) {
                Some(p) => Some(index_u32(p)),
                None => return err(format!("{at}.pivot"), format!("no step has the service \"{name}\"")),
            },
        };
        let mut steps: Vec<StepSpec> = Vec::with_capacity(s.steps.len());
        for (k, st) in s.steps.into_iter().enumerate() {
            let sp = format!("{at}.steps[{k}]");
            check_name(&format!("{sp}.service"), &st.service)?;
            if steps.iter().any(|x| x.service == st.service) {
                return err(format!("{sp}.service"), format!("\"{}\" is already a step of this saga", st.service));
            }
            check_name(&format!("{sp}.done"), &st.done)?;
            for (field, name) in [
                ("failed", &st.failed),
                ("undone", &st.undone),
                ("state", &st.state),
                ("undone_state", &st.undone_state),
            ] {
                if let Some(name) = name {
                    check_name(&format!("{sp}.{field}"), name)?;
                }
            }
            let fail_rate = probability(&format!("{sp}.fail_rate"), st.fail_rate)?;
            let transient_rate = probability(&format!("{sp}.transient_rate"), st.transient_rate)?;
            let step = index_u32(k);
            let after_pivot = pivot.is_some_and(|p| step > p);
            if after_pivot && fail_rate.numerator > 0 {
                return err(
                    format!("{sp}.fail_rate"),
                    "a step after the pivot must succeed eventually (SG-3); give it a transient_rate",
                );
            }
            if k == 0 && fail_rate.numerator > 0 {
                return err(format!("{sp}.fail_rate"), "the first step creates the saga; let a later step fail");
            }
            let queue = parts.queue(&sp, format!("{}.{}", s.name, st.service))?;
            parts.with_dlq(queue);
            let role = ConsumerRole::SagaService { saga, step };
            let consumer = parts.consumer(
                &sp,
                service(format!("{}.{}", s.name, st.service), queue, processing, Some(policy), s.idempotent, role),
            )?;
            let undone = st.undone.unwrap_or_else(|| format!("{}.compensated", st.service));
            steps.push(StepSpec {
                failed: st.failed.unwrap_or_else(|| format!("{}.failed", st.service)),
                state: st.state.unwrap_or_else(|| last_word(&st.done)),
                undone_state: st.undone_state.unwrap_or_else(|| last_word(&undone)),
                undone,
                service: st.service,
                done: st.done,
                fail_rate,
                transient_rate,
                queue,
                consumer,
            });
        }
        let orchestrator = match style {
            SagaStyle::Choreography => None,
            SagaStyle::Orchestration => {
                let q = parts.queue(&at, format!("{}.orchestrator", s.name))?;
                let fast = Dist::Constant(Duration::from_millis(10));
                let c = parts.consumer(
                    &at,
                    service(
                        format!("{}.orchestrator", s.name),
                        q,
                        fast,
                        None,
                        true,
                        ConsumerRole::Orchestrator { saga },
                    ),
                )?;
                Some((q, c))
            }
        };
        let first = orchestrator.map_or(steps[0].queue, |(q, _)| q);
        let starter = parts
            .producer(&at, starter(format!("{}.orders", s.name), first, sched, ProducerRole::SagaStarter { saga }))?;
        out.push(SagaSpec {
            name: s.name,
            style,
            steps,
            pivot,
            compensation_transient_rate,
            duplicate_rate,
            orchestrator,
            starter,
        });
    }
    Ok(out)
}
