//! The cost per event as the number of messages in flight grows (issue 8): 10^3, 10^4, 10^5
//! and 10^6. Poisson arrivals at λ = N/S into 256 consumers with room for all of them, each
//! message processed for an exponential time of mean S: by Little's law about N are in flight
//! once the run is warm. The run warms up for S, then the next S (less a second) is timed; the in-flight count
//! is the mean of the window's two ends. Small N are repeated so that each row times about
//! the same number of events. Prints one JSON line per N.
//!
//!   cargo bench --bench scaling [-- N]      (one of the four sizes only)
#![allow(clippy::print_stdout)]
// Measuring wall time is the point of a benchmark; the engine itself never sees a clock.
#![allow(clippy::disallowed_types)]

use brokerlab::ids::QueueId;
use brokerlab::message::StateKind;
use brokerlab::{Scenario, Sim, SimTime};
use std::time::Instant;

const CONSUMERS: u64 = 256;
const SERVICE_MEAN_S: u64 = 100;

fn scenario(n: u64) -> Scenario {
    let per_consumer = n.div_ceil(CONSUMERS) * 2;
    let consumers: Vec<String> = (1..=CONSUMERS)
        .map(|i| {
            format!(
                r#"{{"name": "c{i}", "from": "q", "prefetch": {per_consumer}, "concurrency": {per_consumer},
                    "processing": {{"kind": "exponential", "mean_ms": {ms}}}}}"#,
                ms = SERVICE_MEAN_S * 1000
            )
        })
        .collect();
    let json = format!(
        r#"{{"name": "scaling", "duration_ms": {d},
            "queues": [{{"name": "q", "lease": {{"model": "rabbitmq"}}}}],
            "producers": [{{"name": "p", "to": "q", "schedule": {{"kind": "poisson", "rate_per_s": {rate}}}}}],
            "consumers": [{}]}}"#,
        consumers.join(","),
        d = 2 * SERVICE_MEAN_S * 1000 - 1000,
        rate = n / SERVICE_MEAN_S,
    );
    Scenario::from_json(&json).unwrap_or_else(|e| panic!("scaling scenario for {n}: {e}"))
}

fn in_flight(sim: &Sim) -> u64 {
    [StateKind::Delivering, StateKind::Buffered, StateKind::Processing]
        .iter()
        .map(|&k| u64::from(sim.counts(QueueId(0)).get(k)))
        .sum()
}

fn main() {
    let only: Option<u64> = std::env::args().skip(1).find_map(|a| a.parse().ok());
    for n in [1_000u64, 10_000, 100_000, 1_000_000].into_iter().filter(|n| only.is_none_or(|o| o == *n)) {
        let s = scenario(n);
        let warm = SimTime::from_millis(SERVICE_MEAN_S * 1000);
        let reps = (1_000_000 / n).max(1);
        let (mut events, mut seconds, mut flight) = (0u64, 0f64, 0u64);
        for rep in 0..reps {
            let mut sim = Sim::new(s.clone(), rep + 1);
            sim.set_recording(false);
            sim.run_until(warm, u64::MAX).expect("no budget");
            let (before, at_start) = (sim.events_processed(), in_flight(&sim));
            let start = Instant::now();
            sim.run_until(s.end(), u64::MAX).expect("no budget");
            seconds += start.elapsed().as_secs_f64();
            events += sim.events_processed() - before;
            flight += (at_start + in_flight(&sim)) / 2;
        }
        #[allow(clippy::cast_precision_loss)]
        let (ns, mean_flight) = (seconds * 1e9 / events as f64, flight as f64 / reps as f64);
        println!(
            "{}",
            serde_json::json!({"target_in_flight": n, "mean_in_flight": mean_flight, "events": events, "runs": reps, "ns_per_event": ns})
        );
    }
}
