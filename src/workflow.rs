//! Workflows on the engine (issue 5): async request-reply with correlation ids, and sagas,
//! choreographed or orchestrated. The services are ordinary consumers with a role and every
//! message is an ordinary message; what a message means is kept beside it (`Tag`), and the
//! roles' handlers run when a consumer has processed a message successfully (the consumers
//! call them through `consumer::Handlers`, which `Workflows` implements). A handler
//! publishes through the broker's narrow `Publisher`.

use crate::broker::{Publisher, SendAttrs, Sent};
use crate::consumer::{Handlers, Outcome};
use crate::event::{Ctx, Event};
use crate::ids::{ProducerId, QueueId};
use crate::rng::Prng;
use crate::scenario::{ConsumerRole, SagaStyle, Scenario};
use crate::stats::{RequestStats, SagaStats};
use crate::time::SimTime;
use crate::trace::{ConsumerId, ErrorClass, MsgId, SagaNote, TraceEvent, UnmatchedReason};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The producer id of messages services publish.
pub const SERVICE: ProducerId = ProducerId(u32::MAX - 2);

/// What a saga message says. Choreography's events and orchestration's commands and replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SagaMsg {
    /// Orchestration: a new saga, to the orchestrator.
    Start,
    /// Run step k (choreography: the previous step's done event).
    Do(u32),
    /// Step k is done (orchestration: the service's reply).
    Done(u32),
    /// Step k failed for a business reason.
    Failed(u32),
    /// Compensate step k (orchestration's command).
    Undo(u32),
    /// Step k's compensation ran.
    Undone(u32),
}

impl SagaMsg {
    const KINDS: [fn(u32) -> SagaMsg; 6] =
        [|_| SagaMsg::Start, SagaMsg::Do, SagaMsg::Done, SagaMsg::Failed, SagaMsg::Undo, SagaMsg::Undone];

    /// A number for the page: `kind × steps + step`, the index of its `Flight` in the layout.
    pub fn code(self, steps: u32) -> u32 {
        let (kind, k) = match self {
            SagaMsg::Start => (0, 0),
            SagaMsg::Do(k) => (1, k),
            SagaMsg::Done(k) => (2, k),
            SagaMsg::Failed(k) => (3, k),
            SagaMsg::Undo(k) => (4, k),
            SagaMsg::Undone(k) => (5, k),
        };
        kind * steps + k
    }

    /// Every message a saga of `steps` steps can carry, in `code` order.
    pub fn all(steps: u32) -> impl Iterator<Item = SagaMsg> {
        Self::KINDS.into_iter().flat_map(move |make| (0..steps).map(make))
    }

    /// Whether it belongs to a compensation: a failure, an undo command or its reply.
    pub fn compensating(self) -> bool {
        matches!(self, SagaMsg::Failed(_) | SagaMsg::Undo(_) | SagaMsg::Undone(_))
    }
}

/// The node of a saga's orchestrator, after its `n` steps; the node that starts sagas after it.
pub const fn orchestrator(n: u32) -> u32 {
    n
}
pub const fn starter(n: u32) -> u32 {
    n + 1
}

/// How a saga message looks on the page: its name, the node that sends it and the node whose
/// queue it goes to (steps by index, then `orchestrator(n)` and `starter(n)`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Flight {
    pub name: String,
    pub from: u32,
    pub to: u32,
    pub compensation: bool,
}

impl crate::scenario::SagaSpec {
    /// Where `m` goes and what it is called: choreography's events name what happened
    /// ("payment.succeeded"); orchestration's commands say what to do ("undo payment").
    pub fn flight(&self, m: SagaMsg) -> Flight {
        let n = crate::scenario::index_u32(self.steps.len());
        let step = |k: u32| &self.steps[(k as usize).min(self.steps.len().saturating_sub(1))];
        let orch = self.style == SagaStyle::Orchestration;
        let boss = orchestrator(n);
        let (name, from, to) = match m {
            SagaMsg::Start => ("start".to_string(), starter(n), boss),
            SagaMsg::Do(0) if !orch => ("start".to_string(), starter(n), 0),
            SagaMsg::Do(k) if !orch => (step(k - 1).done.clone(), k - 1, k),
            SagaMsg::Do(k) => (format!("do {}", step(k).service), boss, k),
            SagaMsg::Undo(k) => (format!("undo {}", step(k).service), boss, k),
            SagaMsg::Done(k) => (step(k).done.clone(), k, if orch { boss } else { k + 1 }),
            SagaMsg::Failed(k) => (step(k).failed.clone(), k, if orch { boss } else { k.saturating_sub(1) }),
            SagaMsg::Undone(k) => (step(k).undone.clone(), k, if orch { boss } else { k.saturating_sub(1) }),
        };
        Flight { name, from, to, compensation: m.compensating() }
    }
}

/// What a workflow message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    Request { system: u32, requester: u32, corr: u32 },
    Reply { system: u32, requester: u32, corr: u32, request: MsgId },
    Saga { saga: u32, instance: u32, msg: SagaMsg },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    pub requester: u32,
    pub request: MsgId,
    pub attempt: u32,
    pub sent_at: SimTime,
}

#[derive(Clone, Debug, Default)]
pub struct RequestReply {
    next_corr: u32,
    /// The pending-request tables: one per requester, or one shared.
    pub tables: Vec<BTreeMap<u32, Pending>>,
    pub killed: Vec<bool>,
    timed_out: BTreeSet<u32>,
    pub stats: RequestStats,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SagaStatus {
    Running,
    Compensating,
    Completed,
    Compensated,
    /// A compensation (or a step after the pivot) kept failing and went to a DLQ.
    Stuck,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepState {
    pub done_at: Option<SimTime>,
    pub failed: bool,
    pub compensated_at: Option<SimTime>,
    /// Times the step ran: more than once when a duplicate reached a non-idempotent handler.
    pub applied: u32,
}

impl StepState {
    /// Where the step stands: "pending", "done", "failed" or "compensated".
    pub fn progress(&self) -> &'static str {
        match (self.done_at, self.failed, self.compensated_at) {
            (_, _, Some(_)) => "compensated",
            (_, true, _) => "failed",
            (Some(_), _, _) => "done",
            _ => "pending",
        }
    }
}

#[derive(Clone, Debug)]
pub struct SagaInstance {
    pub status: SagaStatus,
    pub steps: Vec<StepState>,
    pub failed_step: Option<u32>,
    pub started_at: SimTime,
    pub ended_at: Option<SimTime>,
    /// For a stuck saga, the node whose queue dead-lettered its message (a step, or
    /// `orchestrator(n)`).
    pub stuck_on: Option<u32>,
}

#[derive(Clone, Debug, Default)]
pub struct SagaBlock {
    pub instances: Vec<SagaInstance>,
    pub stats: SagaStats,
}

#[derive(Clone, Debug, Default)]
pub struct Workflows {
    pub tags: BTreeMap<MsgId, Tag>,
    pub request_reply: Vec<RequestReply>,
    pub sagas: Vec<SagaBlock>,
}

impl Workflows {
    pub fn new(scenario: &crate::scenario::Scenario) -> Workflows {
        Workflows {
            tags: BTreeMap::new(),
            request_reply: scenario
                .request_reply
                .iter()
                .map(|r| RequestReply {
                    tables: vec![BTreeMap::new(); if r.shared_store { 1 } else { r.requesters as usize }],
                    killed: vec![false; r.requesters as usize],
                    ..RequestReply::default()
                })
                .collect(),
            sagas: scenario.sagas.iter().map(|_| SagaBlock::default()).collect(),
        }
    }
}

/// What a service does with a saga message it received.
enum Action {
    Forward(u32),
    Compensate(u32),
}

impl Workflows {
    /// Publishes a workflow message to `queue` under `tag`; `key` makes it a duplicate of an
    /// earlier message (same business key).
    fn publish_tagged(
        &mut self,
        cx: &mut Ctx,
        pb: &mut Publisher<'_>,
        queue: u32,
        tag: Tag,
        key: Option<u32>,
    ) -> Option<MsgId> {
        let attrs = SendAttrs { key, ..SendAttrs::default() };
        match pb.publish(cx, QueueId(queue), SERVICE, &attrs) {
            Sent::Stored(msg) => {
                self.tags.insert(msg, tag);
                Some(msg)
            }
            Sent::Duplicate(_) => None,
        }
    }

    // --- Request-reply ---------------------------------------------------------------------

    /// A requester sends a request with a fresh correlation id, notes it as pending, and sets
    /// its timeout.
    pub(crate) fn send_request(
        &mut self,
        cx: &mut Ctx,
        pb: &mut Publisher<'_>,
        system: u32,
        requester: u32,
        attempt: u32,
    ) {
        let now = cx.now();
        let spec = &cx.scenario.request_reply[system as usize];
        let (queue, timeout, shared) = (spec.request_queue, spec.timeout, spec.shared_store);
        let rr = &mut self.request_reply[system as usize];
        let corr = rr.next_corr;
        rr.next_corr += 1;
        let tag = Tag::Request { system, requester, corr };
        let Some(msg) = self.publish_tagged(cx, pb, queue, tag, None) else { return };
        let rr = &mut self.request_reply[system as usize];
        let table = if shared { 0 } else { requester as usize };
        rr.tables[table].insert(corr, Pending { requester, request: msg, attempt, sent_at: now });
        rr.stats.sent += 1;
        cx.out.emit(TraceEvent::RequestSent { at: now, msg, system, requester, corr, attempt });
        cx.out.schedule(now.after(timeout), Event::RequestTimeout { system, corr });
    }

    /// The timeout: if the request is still pending, it failed; retry it (fresh id) if the
    /// requester is alive and has retries left.
    pub(crate) fn request_timeout(&mut self, cx: &mut Ctx, pb: &mut Publisher<'_>, system: u32, corr: u32) {
        let now = cx.now();
        let retries = cx.scenario.request_reply[system as usize].retries;
        let rr = &mut self.request_reply[system as usize];
        let Some(pending) = rr.tables.iter_mut().find_map(|t| t.remove(&corr)) else { return };
        rr.timed_out.insert(corr);
        rr.stats.timed_out += 1;
        let retry = pending.attempt < retries && !rr.killed[pending.requester as usize];
        if retry {
            rr.stats.retried += 1;
        } else {
            rr.stats.failed += 1;
        }
        cx.out.emit(TraceEvent::RequestTimedOut {
            at: now,
            system,
            requester: pending.requester,
            corr,
            retried: retry,
        });
        if retry {
            self.send_request(cx, pb, system, pending.requester, pending.attempt + 1);
        }
    }

    /// A requester dies for good: its reply reader stops, its producer stops, and a local
    /// pending table goes with it.
    /// Returns the producer and the reply reader that die with it, for the driver to stop.
    pub(crate) fn kill_requester(&mut self, cx: &mut Ctx, system: u32, instance: u32) -> Option<(u32, u32)> {
        let spec = &cx.scenario.request_reply[system as usize];
        let (reader, producer, shared) =
            (spec.readers[instance as usize], spec.producers[instance as usize], spec.shared_store);
        let rr = &mut self.request_reply[system as usize];
        if rr.killed[instance as usize] {
            return None;
        }
        rr.killed[instance as usize] = true;
        if !shared {
            rr.tables[instance as usize].clear();
        }
        cx.out.emit(TraceEvent::RequesterKilled { at: cx.now(), system, requester: instance });
        Some((producer, reader))
    }

    fn reply(&mut self, cx: &mut Ctx, pb: &mut Publisher<'_>, system: u32, request: MsgId, requester: u32, corr: u32) {
        let now = cx.now();
        let spec = &cx.scenario.request_reply[system as usize];
        let queue = spec.reply_queues[requester as usize];
        let per_instance = !spec.shared_reply_queue;
        let tag = Tag::Reply { system, requester, corr, request };
        let Some(msg) = self.publish_tagged(cx, pb, queue, tag, None) else { return };
        // Into the reply queue of a dead requester: nobody will ever read it.
        if per_instance && self.request_reply[system as usize].killed[requester as usize] {
            self.request_reply[system as usize].stats.orphaned += 1;
            let reason = UnmatchedReason::RequesterDead;
            cx.out.emit(TraceEvent::ReplyUnmatched { at: now, msg, system, requester, corr, reason });
        }
    }

    /// A requester instance reads a reply and looks its correlation id up in the table it can
    /// see: its own, or the shared store.
    fn read_reply(&mut self, cx: &mut Ctx, system: u32, reader: u32, msg: MsgId, corr: u32) {
        let now = cx.now();
        let shared = cx.scenario.request_reply[system as usize].shared_store;
        let rr = &mut self.request_reply[system as usize];
        let table = if shared { 0 } else { reader as usize };
        match rr.tables[table].remove(&corr) {
            Some(p) => {
                rr.stats.matched += 1;
                rr.stats.latency_total_us += now.since(p.sent_at).as_micros();
                cx.out.emit(TraceEvent::ReplyMatched {
                    at: now,
                    msg,
                    system,
                    requester: reader,
                    corr,
                    request: p.request,
                });
            }
            None => {
                let reason = if rr.timed_out.contains(&corr) {
                    rr.stats.late += 1;
                    UnmatchedReason::Late
                } else {
                    rr.stats.orphaned += 1;
                    UnmatchedReason::NotInTable
                };
                cx.out.emit(TraceEvent::ReplyUnmatched { at: now, msg, system, requester: reader, corr, reason });
            }
        }
    }

    // --- Sagas -----------------------------------------------------------------------------

    /// A new saga: choreography starts at the first service, orchestration at the
    /// orchestrator.
    pub(crate) fn start_saga(&mut self, cx: &mut Ctx, pb: &mut Publisher<'_>, saga: u32) {
        let now = cx.now();
        let spec = &cx.scenario.sagas[saga as usize];
        let steps = spec.steps.len();
        let (queue, first) = match spec.orchestrator {
            Some((q, _)) => (q, SagaMsg::Start),
            None => (spec.steps[0].queue, SagaMsg::Do(0)),
        };
        let block = &mut self.sagas[saga as usize];
        let instance = crate::scenario::index_u32(block.instances.len());
        block.instances.push(SagaInstance {
            status: SagaStatus::Running,
            steps: vec![StepState::default(); steps],
            failed_step: None,
            started_at: now,
            ended_at: None,
            stuck_on: None,
        });
        block.stats.started += 1;
        cx.out.emit(TraceEvent::SagaEvent { at: now, saga, instance, step: 0, note: SagaNote::Started });
        self.publish_tagged(cx, pb, queue, Tag::Saga { saga, instance, msg: first }, None);
    }

    /// What a service makes of a saga message: run its step, or compensate it.
    fn action(style: SagaStyle, step: u32, msg: SagaMsg) -> Option<Action> {
        match (style, msg) {
            (_, SagaMsg::Do(k)) if k == step => Some(Action::Forward(step)),
            (SagaStyle::Orchestration, SagaMsg::Undo(k)) if k == step => Some(Action::Compensate(step)),
            // Choreography: the next step's failure or compensation is this step's cue.
            (SagaStyle::Choreography, SagaMsg::Failed(k) | SagaMsg::Undone(k)) if k == step + 1 => {
                Some(Action::Compensate(step))
            }
            _ => None,
        }
    }

    /// The attempt's outcome for a saga service, drawn when work starts: compensations and
    /// steps after the pivot fail transiently at their rates and are retried.
    fn workflow_outcome(&mut self, scenario: &Scenario, c: ConsumerId, msg: MsgId, prng: &mut Prng) -> Option<Outcome> {
        let ConsumerRole::SagaService { saga, step } = scenario.consumers[c.index()].role else { return None };
        let Some(&Tag::Saga { msg: m, .. }) = self.tags.get(&msg) else { return None };
        let spec = &scenario.sagas[saga as usize];
        let rate = match Self::action(spec.style, step, m)? {
            Action::Compensate(_) => spec.compensation_transient_rate,
            Action::Forward(k) if !spec.compensatable(k) => spec.steps[k as usize].transient_rate,
            Action::Forward(_) => return None,
        };
        Some(if rate.numerator > 0 && prng.chance(rate) {
            Outcome::Fail(ErrorClass::Transient)
        } else {
            Outcome::Success
        })
    }

    /// A workflow message a consumer processed successfully: its role's handler runs.
    #[inline(always)]
    fn on_handled(&mut self, cx: &mut Ctx, pb: &mut Publisher<'_>, prng: &mut Prng, c: ConsumerId, msg: MsgId) {
        let Some(&tag) = self.tags.get(&msg) else { return };
        match (cx.scenario.consumers[c.index()].role, tag) {
            (ConsumerRole::Responder { .. }, Tag::Request { system, requester, corr }) => {
                self.reply(cx, pb, system, msg, requester, corr);
            }
            (ConsumerRole::ReplyReader { instance, .. }, Tag::Reply { system, corr, .. }) => {
                self.read_reply(cx, system, instance, msg, corr);
            }
            (ConsumerRole::SagaService { saga, step }, Tag::Saga { instance, msg: m, .. }) => {
                let style = cx.scenario.sagas[saga as usize].style;
                match Self::action(style, step, m) {
                    Some(Action::Forward(k)) => self.run_step(cx, pb, prng, saga, instance, k),
                    Some(Action::Compensate(k)) => self.compensate(cx, pb, saga, instance, k),
                    None => {}
                }
            }
            (ConsumerRole::Orchestrator { saga }, Tag::Saga { instance, msg: m, .. }) => {
                self.orchestrate(cx, pb, saga, instance, m);
            }
            _ => {}
        }
    }

    /// A service runs its step: a business failure (up to the pivot) starts the
    /// compensations; success passes the saga on. A duplicate that reaches a non-idempotent
    /// handler runs the step again.
    // long: a saga step as the service runs it: the duplicate check, the business failure, then passing the saga on
    fn run_step(&mut self, cx: &mut Ctx, pb: &mut Publisher<'_>, prng: &mut Prng, saga: u32, instance: u32, k: u32) {
        let now = cx.now();
        let spec = &cx.scenario.sagas[saga as usize];
        let (style, n, fail_rate) =
            (spec.style, crate::scenario::index_u32(spec.steps.len()), spec.steps[k as usize].fail_rate);
        let can_fail = k > 0 && spec.compensatable(k) && fail_rate.numerator > 0;
        let block = &mut self.sagas[saga as usize];
        let s = &mut block.instances[instance as usize];
        let st = &mut s.steps[k as usize];
        st.applied += 1;
        if st.applied > 1 {
            block.stats.applied_twice += 1;
            cx.out.emit(TraceEvent::SagaEvent { at: now, saga, instance, step: k, note: SagaNote::AppliedTwice });
            return;
        }
        if s.status != SagaStatus::Running {
            return;
        }
        if can_fail && prng.chance(fail_rate) {
            let s = &mut self.sagas[saga as usize].instances[instance as usize];
            s.steps[k as usize].failed = true;
            s.failed_step = Some(k);
            s.status = SagaStatus::Compensating;
            cx.out.emit(TraceEvent::SagaEvent { at: now, saga, instance, step: k, note: SagaNote::StepFailed });
            let spec = &cx.scenario.sagas[saga as usize];
            let to = match style {
                SagaStyle::Choreography => spec.steps[k as usize - 1].queue,
                SagaStyle::Orchestration => spec.orchestrator.map_or(0, |(q, _)| q),
            };
            self.publish_tagged(cx, pb, to, Tag::Saga { saga, instance, msg: SagaMsg::Failed(k) }, None);
            return;
        }
        self.sagas[saga as usize].instances[instance as usize].steps[k as usize].done_at = Some(now);
        cx.out.emit(TraceEvent::SagaEvent { at: now, saga, instance, step: k, note: SagaNote::StepDone });
        let spec = &cx.scenario.sagas[saga as usize];
        let (next, dup) = match style {
            SagaStyle::Choreography if k + 1 < n => {
                (Some((spec.steps[k as usize + 1].queue, SagaMsg::Do(k + 1))), true)
            }
            SagaStyle::Choreography => (None, false),
            SagaStyle::Orchestration => (spec.orchestrator.map(|(q, _)| (q, SagaMsg::Done(k))), true),
        };
        let duplicate_rate = spec.duplicate_rate;
        match next {
            Some((queue, m)) => {
                let tag = Tag::Saga { saga, instance, msg: m };
                if let Some(first) = self.publish_tagged(cx, pb, queue, tag, None) {
                    // At-least-once publishing: now and then the same event goes out twice.
                    if dup && duplicate_rate.numerator > 0 && prng.chance(duplicate_rate) {
                        let key = pb.key(first);
                        self.sagas[saga as usize].stats.duplicates_sent += 1;
                        self.publish_tagged(cx, pb, queue, tag, Some(key));
                    }
                }
            }
            None => self.end_saga(cx, saga, instance, SagaStatus::Completed),
        }
    }

    /// A service compensates its step (SG-2: completed steps only, newest first), then
    /// passes the compensation on.
    fn compensate(&mut self, cx: &mut Ctx, pb: &mut Publisher<'_>, saga: u32, instance: u32, k: u32) {
        let now = cx.now();
        let block = &mut self.sagas[saga as usize];
        let s = &mut block.instances[instance as usize];
        let st = &mut s.steps[k as usize];
        if st.done_at.is_none() {
            block.stats.bad_compensations += 1;
            return;
        }
        if st.compensated_at.is_some() || s.status != SagaStatus::Compensating {
            return; // a duplicate: compensations are idempotent (SG-4b)
        }
        st.compensated_at = Some(now);
        cx.out.emit(TraceEvent::SagaEvent { at: now, saga, instance, step: k, note: SagaNote::Compensated });
        let spec = &cx.scenario.sagas[saga as usize];
        let next = match spec.style {
            SagaStyle::Choreography if k > 0 => Some(spec.steps[k as usize - 1].queue),
            SagaStyle::Choreography => None,
            SagaStyle::Orchestration => spec.orchestrator.map(|(q, _)| q),
        };
        match next {
            Some(queue) => {
                self.publish_tagged(cx, pb, queue, Tag::Saga { saga, instance, msg: SagaMsg::Undone(k) }, None);
            }
            None => self.end_saga(cx, saga, instance, SagaStatus::Compensated),
        }
    }

    /// The orchestrator: one command at a time, forward, or backward through the completed
    /// steps when one failed.
    fn orchestrate(&mut self, cx: &mut Ctx, pb: &mut Publisher<'_>, saga: u32, instance: u32, m: SagaMsg) {
        let spec = &cx.scenario.sagas[saga as usize];
        let n = crate::scenario::index_u32(spec.steps.len());
        let status = self.sagas[saga as usize].instances[instance as usize].status;
        let command = match m {
            SagaMsg::Start => Some(SagaMsg::Do(0)),
            SagaMsg::Done(k) if status == SagaStatus::Running && k + 1 < n => Some(SagaMsg::Do(k + 1)),
            SagaMsg::Done(k) if status == SagaStatus::Running && k + 1 == n => {
                self.end_saga(cx, saga, instance, SagaStatus::Completed);
                None
            }
            SagaMsg::Failed(k) | SagaMsg::Undone(k) if status == SagaStatus::Compensating && k > 0 => {
                Some(SagaMsg::Undo(k - 1))
            }
            SagaMsg::Undone(0) if status == SagaStatus::Compensating => {
                self.end_saga(cx, saga, instance, SagaStatus::Compensated);
                None
            }
            _ => None, // duplicates, and news of a saga already decided
        };
        if let Some(cmd) = command {
            let k = match cmd {
                SagaMsg::Do(k) | SagaMsg::Undo(k) => k,
                _ => 0,
            };
            let queue = cx.scenario.sagas[saga as usize].steps[k as usize].queue;
            self.publish_tagged(cx, pb, queue, Tag::Saga { saga, instance, msg: cmd }, None);
        }
    }

    fn end_saga(&mut self, cx: &mut Ctx, saga: u32, instance: u32, status: SagaStatus) {
        let now = cx.now();
        let block = &mut self.sagas[saga as usize];
        let s = &mut block.instances[instance as usize];
        if matches!(s.status, SagaStatus::Completed | SagaStatus::Compensated | SagaStatus::Stuck) {
            return;
        }
        s.status = status;
        s.ended_at = Some(now);
        let note = match status {
            SagaStatus::Completed => {
                block.stats.completed += 1;
                SagaNote::Completed
            }
            SagaStatus::Compensated => {
                block.stats.compensated += 1;
                SagaNote::FullyCompensated
            }
            _ => {
                block.stats.stuck += 1;
                SagaNote::Stuck
            }
        };
        let step = s.failed_step.unwrap_or(0);
        cx.out.emit(TraceEvent::SagaEvent { at: now, saga, instance, step, note });
    }

    /// A workflow message went to a dead-letter queue: a saga whose compensation (or
    /// retriable step) could not get through is stuck, and visibly so.
    fn on_dead_lettered(&mut self, cx: &mut Ctx, msg: MsgId) {
        if let Some(&Tag::Saga { saga, instance, msg: m }) = self.tags.get(&msg) {
            self.end_saga(cx, saga, instance, SagaStatus::Stuck);
            let s = &mut self.sagas[saga as usize].instances[instance as usize];
            if s.status == SagaStatus::Stuck && s.stuck_on.is_none() {
                s.stuck_on = Some(cx.scenario.sagas[saga as usize].flight(m).to);
            }
        }
    }
}

/// A consumer's handler, for workflow messages: the request-reply roles and the saga services.
impl Handlers for Workflows {
    #[inline(always)]
    fn idle(&self) -> bool {
        self.tags.is_empty()
    }
    fn outcome(&mut self, scenario: &Scenario, c: ConsumerId, msg: MsgId, prng: &mut Prng) -> Option<Outcome> {
        self.workflow_outcome(scenario, c, msg, prng)
    }
    fn handled(&mut self, cx: &mut Ctx, pb: &mut Publisher<'_>, prng: &mut Prng, c: ConsumerId, msg: MsgId) {
        self.on_handled(cx, pb, prng, c, msg);
    }
    fn dead_lettered(&mut self, cx: &mut Ctx, msg: MsgId) {
        self.on_dead_lettered(cx, msg);
    }
}

/// Per saga block, for the page and the CLI: counters, and the windows of inconsistency
/// (how long a completed step stayed in effect after its saga had failed, until compensated).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SagaSummary {
    pub name: String,
    pub stats: SagaStats,
    pub running: u64,
    pub compensating: u64,
    /// Per step: the longest and summed window, and how many are still open now.
    pub windows: Vec<WindowSummary>,
    /// Stuck sagas first (newest first, up to `RECENT_STUCK`), then the newest others: the
    /// saga log and swimlanes on the page.
    pub recent: Vec<InstanceView>,
    /// The saga in focus, drawn whole on the canvas (see `focus_of`).
    pub focus: Option<FocusView>,
    /// The sagas other than the one in focus, per status.
    pub others: StatusCounts,
    /// Per node (the steps, then the orchestrator), how many stuck sagas it holds in its DLQ.
    pub stuck_on: Vec<u64>,
}

/// One saga instance: its status, and per step "pending", "done", "failed" or "compensated".
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InstanceView {
    pub instance: u32,
    pub status: SagaStatus,
    pub steps: Vec<&'static str>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    pub running: u64,
    pub compensating: u64,
    pub completed: u64,
    pub compensated: u64,
    pub stuck: u64,
}

/// The saga in focus as its services hold it: each node's local state, the orchestrator's,
/// and the window of inconsistency while it is open.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FocusView {
    pub instance: u32,
    pub status: SagaStatus,
    /// Chosen by the user, not by `focus_of`'s default.
    pub selected: bool,
    pub nodes: Vec<NodeView>,
    /// What the orchestrator records for it ("awaiting payment", "undoing payment"); `None` in
    /// choreography, where no one holds the whole saga.
    pub orchestrator: Option<String>,
    pub window: Option<OpenWindow>,
}

/// A service's local state for one saga ("charged", "refunded"), and its kind: "pending",
/// "done", "failed" or "undone". `stuck`: the saga is stuck in this node's dead-letter queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeView {
    pub state: String,
    pub kind: &'static str,
    pub stuck: bool,
}

/// A failed saga's steps still in effect (done, not yet undone), with the newest of them in
/// words ("charged, not yet refunded") and the moment it was done, when the window opened.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpenWindow {
    pub steps: Vec<u32>,
    pub text: String,
    pub since_ms: f64,
}

const RECENT_SAGAS: usize = 8;
const RECENT_STUCK: usize = 3;
/// How long a saga that has just ended keeps the focus by default.
const FOCUS_LINGER: crate::time::Duration = crate::time::Duration::from_millis(2_000);

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WindowSummary {
    pub step: String,
    pub compensated: u64,
    pub longest_ms: f64,
    pub total_ms: f64,
    pub open: u64,
    pub open_longest_ms: f64,
}

/// Per step of a saga block: the longest and summed window of inconsistency (a completed step
/// in effect after its saga failed, until compensated), and how many are still open at `now`.
fn windows(spec: &crate::scenario::SagaSpec, block: &SagaBlock, now: SimTime) -> Vec<WindowSummary> {
    let mut windows: Vec<WindowSummary> =
        spec.steps.iter().map(|s| WindowSummary { step: s.done.clone(), ..WindowSummary::default() }).collect();
    for s in block.instances.iter().filter(|s| s.failed_step.is_some()) {
        for (k, st) in s.steps.iter().enumerate() {
            let Some(done) = st.done_at else { continue };
            let w = &mut windows[k];
            match st.compensated_at {
                Some(c) => {
                    let ms = c.since(done).as_millis_f64();
                    w.compensated += 1;
                    w.total_ms += ms;
                    w.longest_ms = w.longest_ms.max(ms);
                }
                None if s.status == SagaStatus::Compensating || s.status == SagaStatus::Stuck => {
                    w.open += 1;
                    w.open_longest_ms = w.open_longest_ms.max(now.since(done).as_millis_f64());
                }
                None => {}
            }
        }
    }
    windows
}

/// The block's sagas other than the one in focus, per status.
fn others(block: &SagaBlock, focused: Option<u32>) -> StatusCounts {
    let mut others = StatusCounts::default();
    for (i, s) in block.instances.iter().enumerate() {
        if focused == Some(crate::scenario::index_u32(i)) {
            continue;
        }
        *match s.status {
            SagaStatus::Running => &mut others.running,
            SagaStatus::Compensating => &mut others.compensating,
            SagaStatus::Completed => &mut others.completed,
            SagaStatus::Compensated => &mut others.compensated,
            SagaStatus::Stuck => &mut others.stuck,
        } += 1;
    }
    others
}

/// The saga in focus: the one selected; else the newest that went stuck less than
/// `FOCUS_LINGER` ago (the rarest news); else the newest compensating one (the newest
/// failure); else the newest that ended less than `FOCUS_LINGER` ago (its last state shows);
/// else the oldest running one (the furthest along: it keeps the focus until it ends); else
/// the newest.
pub fn focus_of(instances: &[SagaInstance], now: SimTime, selected: Option<u32>) -> Option<u32> {
    if let Some(i) = selected.filter(|&i| (i as usize) < instances.len()) {
        return Some(i);
    }
    let newest = |ok: &dyn Fn(&SagaInstance) -> bool| instances.iter().rposition(ok);
    let just_ended = |s: &SagaInstance| s.ended_at.is_some_and(|t| now.since(t) < FOCUS_LINGER);
    newest(&|s| s.status == SagaStatus::Stuck && just_ended(s))
        .or_else(|| newest(&|s| s.status == SagaStatus::Compensating))
        .or_else(|| newest(&just_ended))
        .or_else(|| instances.iter().position(|s| s.status == SagaStatus::Running))
        .or_else(|| instances.len().checked_sub(1))
        .map(crate::scenario::index_u32)
}

impl SagaInstance {
    /// This saga as each node holds it.
    pub fn view(&self, spec: &crate::scenario::SagaSpec, instance: u32, selected: bool) -> FocusView {
        let nodes = self
            .steps
            .iter()
            .zip(&spec.steps)
            .enumerate()
            .map(|(k, (st, sp))| {
                let (state, kind) = match st.progress() {
                    "compensated" => (sp.undone_state.clone(), "undone"),
                    // A duplicate a non-idempotent handler ran again: "reserved ×2".
                    "done" if st.applied > 1 => (format!("{} ×{}", sp.state, st.applied), "done"),
                    "done" => (sp.state.clone(), "done"),
                    other => (other.to_string(), other),
                };
                NodeView { state, kind, stuck: self.stuck_on == Some(crate::scenario::index_u32(k)) }
            })
            .collect();
        let open: Vec<u32> = match self.status {
            SagaStatus::Compensating | SagaStatus::Stuck if self.failed_step.is_some() => (0..self.steps.len())
                .filter(|&k| self.steps[k].done_at.is_some() && self.steps[k].compensated_at.is_none())
                .map(crate::scenario::index_u32)
                .collect(),
            _ => Vec::new(),
        };
        let window = open.last().map(|&k| {
            let sp = &spec.steps[k as usize];
            OpenWindow {
                steps: open.clone(),
                text: format!("{}, not yet {}", sp.state, sp.undone_state),
                since_ms: self.steps[k as usize].done_at.map_or(0.0, SimTime::as_millis_f64),
            }
        });
        let service = |k: Option<usize>| k.map_or("", |k| spec.steps[k].service.as_str());
        let orchestrator = spec.orchestrator.map(|_| match self.status {
            SagaStatus::Running => {
                format!("awaiting {}", service(self.steps.iter().position(|st| st.done_at.is_none())))
            }
            SagaStatus::Compensating => match open.last() {
                Some(&k) => format!("undoing {}", spec.steps[k as usize].service),
                None => "compensating".to_string(),
            },
            SagaStatus::Completed => "completed".to_string(),
            SagaStatus::Compensated => "compensated".to_string(),
            SagaStatus::Stuck => "stuck".to_string(),
        });
        FocusView { instance, status: self.status, selected, nodes, orchestrator, window }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestSummary {
    pub name: String,
    pub stats: RequestStats,
    pub pending: u64,
    pub killed: Vec<bool>,
}

impl Workflows {
    /// Every saga block's summary; `selected[b]`, where given, is the instance of block `b`
    /// the user put in focus.
    pub fn saga_summaries(&self, scenario: &Scenario, now: SimTime, selected: &[Option<u32>]) -> Vec<SagaSummary> {
        scenario
            .sagas
            .iter()
            .zip(&self.sagas)
            .enumerate()
            .map(|(b, (spec, block))| {
                let windows = windows(spec, block, now);
                let count = |st: SagaStatus| block.instances.iter().filter(|s| s.status == st).count() as u64;
                let view = |(i, s): (usize, &SagaInstance)| InstanceView {
                    instance: crate::scenario::index_u32(i),
                    status: s.status,
                    steps: s.steps.iter().map(StepState::progress).collect(),
                };
                let stuck = block.instances.iter().enumerate().rev().filter(|(_, s)| s.status == SagaStatus::Stuck);
                let mut recent: Vec<InstanceView> = stuck.take(RECENT_STUCK).map(view).collect();
                let pinned: BTreeSet<u32> = recent.iter().map(|v| v.instance).collect();
                let rest = block.instances.iter().enumerate().rev();
                let rest = rest.filter(|(i, _)| !pinned.contains(&crate::scenario::index_u32(*i)));
                recent.extend(rest.take(RECENT_SAGAS - recent.len()).map(view));
                let chosen = selected.get(b).copied().flatten();
                let focus = focus_of(&block.instances, now, chosen).map(|i| {
                    let selected = chosen == Some(i);
                    block.instances[i as usize].view(spec, i, selected)
                });
                let others = others(block, focus.as_ref().map(|f| f.instance));
                let mut stuck_on = vec![0; spec.steps.len() + 1];
                for node in block.instances.iter().filter_map(|s| s.stuck_on) {
                    if let Some(c) = stuck_on.get_mut(node as usize) {
                        *c += 1;
                    }
                }
                SagaSummary {
                    name: spec.name.clone(),
                    stats: block.stats,
                    running: count(SagaStatus::Running),
                    compensating: count(SagaStatus::Compensating),
                    windows,
                    recent,
                    focus,
                    others,
                    stuck_on,
                }
            })
            .collect()
    }

    pub fn request_summaries(&self, scenario: &Scenario) -> Vec<RequestSummary> {
        scenario
            .request_reply
            .iter()
            .zip(&self.request_reply)
            .map(|(spec, rr)| RequestSummary {
                name: spec.name.clone(),
                stats: rr.stats,
                pending: rr.tables.iter().map(|t| t.len() as u64).sum(),
                killed: rr.killed.clone(),
            })
            .collect()
    }
}
