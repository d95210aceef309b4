//! Brokerlab: a deterministic simulation engine for messaging patterns.
//!
//! A run is a pure function of `(scenario, seed, inputs)`. Read the modules in this order:
//!
//! - [`time`], [`rng`]: simulated time (integer microseconds) and our own seeded PRNG.
//! - [`scenario`]: the JSON a scenario is written in, validated into a model; the presets.
//! - [`backoff`]: retry delays, pure functions checked against the shared vectors.
//! - [`breaker`]: a circuit breaker's state machine (closed, open, half-open), pure.
//! - [`message`]: the closed set of states a message moves through.
//! - [`deadlines`]: per-queue deadlines that come in order, checked by one timer each.
//! - [`broker`]: queues, leases (SQS, RabbitMQ, Service Bus), dead letters, TTL, FIFO.
//! - [`consumer`]: the agents that receive, process, retry and settle.
//! - [`kafka`]: Kafka's pure functions: the keyed partitioner and the four assignors.
//! - [`stream`]: topics, partitions, consumer groups, offsets and rebalancing, as Kafka does them.
//! - [`workflow`]: request-reply with correlation ids, and sagas, on the same queues.
//! - [`sim`]: the agenda, ordered by (time, class, sequence), and the one `match` on events.
//! - [`trace`]: what happened, one readable line per event, and the trace hash.
//! - [`beats`]: narrative beats resolved to the moment their event happens, and their checks.
//! - [`check`]: invariant checkers the tests run after every step.
//! - [`swarm`]: random scenarios and live faults over many seeds, checkers on.
//! - `wasm` (wasm32 only): the one door to JavaScript.

pub mod backoff;
pub mod beats;
pub mod breaker;
pub mod broker;
pub mod check;
pub mod consumer;
pub mod cow;
pub mod deadlines;
pub mod dist;
pub mod event;
pub mod exchange;
pub mod export;
pub mod fields;
pub mod golden;
pub mod ids;
pub mod kafka;
pub mod lease;
pub mod message;
pub mod producer;
pub mod readable;
pub mod ready;
pub mod rng;
pub mod scenario;
pub mod service;
pub mod sim;
pub mod stats;
pub mod stream;
pub mod swarm;
pub mod time;
pub mod trace;
pub mod workflow;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use scenario::{Scenario, ScenarioError};
pub use sim::{RunError, Sim, Summary};
pub use time::{Duration, SimTime};
pub use trace::TraceEvent;
