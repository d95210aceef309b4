//! Producers: each one's schedule (a fixed rate, Poisson arrivals or scripted times), what its
//! next send carries (a FIFO group, an order key, poison), and why it stopped. A producer
//! decides what to send; the driver routes the send to where it goes: a queue, a topic, a
//! request-reply system or a saga block.

use crate::broker::SendAttrs;
use crate::dist::{draw_key, poisson_gap};
use crate::event::{Ctx, Event};
use crate::exchange::Route;
use crate::rng::Prng;
use crate::scenario::{limits, ProducerRole, Scenario, Schedule, Target};
use crate::time::SimTime;
use crate::trace::{ProducerId, QueueId, StopReason, TraceEvent};

#[derive(Clone, Debug)]
pub struct Producer {
    pub sent: u64,
    /// Next index into a scripted schedule.
    pub next_script: usize,
    pub prng: Prng,
    pub stopped: bool,
    /// A user marked its next message as poison.
    pub poison_next: bool,
}

/// What a producer's turn sends, for the driver to route.
#[derive(Clone, Copy, Debug)]
pub enum Send {
    /// A message to a queue, with the attributes in `Producers::attrs`.
    Queue {
        queue: QueueId,
    },
    /// A record; its key and tombstone are drawn from the producer's PRNG as it is appended.
    Record {
        topic: u32,
    },
    Request {
        system: u32,
        instance: u32,
    },
    Saga {
        saga: u32,
    },
    /// A message to an exchange, routed by the key and headers drawn for it.
    Exchange {
        route: Route,
        mandatory: bool,
    },
}

/// A producer's turn: what it sends now, and when it sends next (`None`: its schedule is done).
#[derive(Clone, Copy, Debug)]
pub struct Turn {
    pub send: Send,
    pub next: Option<SimTime>,
}

#[derive(Clone, Debug)]
pub struct Producers {
    pub list: Vec<Producer>,
    /// What the last turn's message to a queue carries (kept here, not moved through a `Send`).
    pub attrs: SendAttrs,
}

impl Producers {
    pub fn new(scenario: &Scenario, root: &mut Prng) -> Producers {
        let fresh = |i: usize| Producer {
            sent: 0,
            next_script: 0,
            prng: root.fork(i as u64),
            stopped: false,
            poison_next: false,
        };
        Producers { list: (0..scenario.producers.len()).map(fresh).collect(), attrs: SendAttrs::default() }
    }

    /// When `producer` first sends, if ever.
    pub fn first_send(&mut self, scenario: &Scenario, producer: ProducerId) -> Option<SimTime> {
        let p = &mut self.list[producer.index()];
        match &scenario.producers[producer.index()].schedule {
            Schedule::FixedRate { start, .. } => Some(*start),
            Schedule::Poisson { mean_interval, start, .. } => {
                Some(start.after(poisson_gap(*mean_interval, &mut p.prng)))
            }
            Schedule::Scripted { at } => at.first().copied(),
        }
    }

    /// `Event::Produce`: the producer's turn, unless it has stopped, or the run has made
    /// `made` messages and records, its limit.
    pub fn turn(&mut self, cx: &mut Ctx, producer: ProducerId, made: u64) -> Option<Turn> {
        if self.list[producer.index()].stopped {
            return None;
        }
        if made >= limits::MESSAGES_MAX {
            self.stop(cx, producer, StopReason::MessageLimit);
            return None;
        }
        let spec = &cx.scenario.producers[producer.index()];
        let p = &mut self.list[producer.index()];
        let index = p.sent;
        let attrs = &mut self.attrs;
        attrs.group = spec.groups.map(|n| u32::try_from(index % u64::from(n)).unwrap_or(0));
        attrs.poison = spec.poison.binary_search(&index).is_ok() || std::mem::take(&mut p.poison_next);
        attrs.order_key = match spec.target {
            Target::Queue(_) | Target::Exchange(_) => spec.keys.map(|k| draw_key(k, &mut p.prng)),
            Target::Topic(_) => None,
        };
        attrs.ttl = spec.expiration;
        p.sent += 1;
        let next = match &spec.schedule {
            Schedule::FixedRate { count: Some(n), .. } | Schedule::Poisson { count: Some(n), .. } if p.sent >= *n => {
                None
            }
            Schedule::FixedRate { interval, .. } => Some(cx.now().after(*interval)),
            Schedule::Poisson { mean_interval, .. } => Some(cx.now().after(poisson_gap(*mean_interval, &mut p.prng))),
            Schedule::Scripted { at } => {
                p.next_script += 1;
                at.get(p.next_script).copied()
            }
        };
        let send = match (spec.role, spec.target) {
            (ProducerRole::Requester { system, instance }, _) => Send::Request { system, instance },
            (ProducerRole::SagaStarter { saga }, _) => Send::Saga { saga },
            (ProducerRole::Plain, Target::Queue(queue)) => Send::Queue { queue: QueueId(queue) },
            (ProducerRole::Plain, Target::Topic(topic)) => Send::Record { topic },
            (ProducerRole::Plain, Target::Exchange(exchange)) => {
                let publish = spec.publish.as_ref().expect("an exchange producer has what it publishes");
                let total = publish.shapes.last().map_or(1, |s| s.until);
                // One draw per message, only when there is a choice: a single key costs none.
                let shape = if publish.shapes.len() == 1 {
                    publish.shapes[0]
                } else {
                    let u = u32::try_from(p.prng.below(u64::from(total))).unwrap_or(0);
                    *publish.shapes.iter().find(|s| u < s.until).unwrap_or(&publish.shapes[0])
                };
                let route = Route { exchange, key: shape.key, headers: shape.headers };
                Send::Exchange { route, mandatory: publish.mandatory }
            }
        };
        Some(Turn { send, next })
    }

    /// Schedules the producer's next send, or records why there is none.
    pub fn next_send(&mut self, cx: &mut Ctx, producer: ProducerId, at: Option<SimTime>) {
        match at {
            Some(t) if t <= cx.scenario.end() => cx.out.schedule(t, Event::Produce { producer }),
            Some(_) => self.stop(cx, producer, StopReason::DurationEnded),
            None => self.stop(cx, producer, StopReason::ScheduleDone),
        }
    }

    pub fn stop(&mut self, cx: &mut Ctx, producer: ProducerId, reason: StopReason) {
        let p = &mut self.list[producer.index()];
        if !p.stopped {
            p.stopped = true;
            cx.out.emit(TraceEvent::ProducerStopped { at: cx.now(), producer, reason });
        }
    }
}
