//! The floor under the M/M/c benchmark: the same model (Poisson arrivals at 9/s, 10 servers,
//! exponential service at 1/s) as a bare discrete-event loop with none of the engine's
//! semantics: no leases, no states, no consumers, no trace events, no checks. It keeps only
//! what any faithful run must: the agenda (`BinaryHeap`), the FCFS queue, the idle servers, a
//! 64-byte record per message (the engine keeps its `Message` to 64), the engine's own PRNG
//! and exponential sampler, and a three-word hash per event. What this loop reaches on a
//! machine is a practical ceiling for the engine there; `scripts/bench.sh` prints both.
//!
//!   cargo bench --bench floor -- [MESSAGES]
#![allow(clippy::print_stdout, clippy::cast_possible_truncation, clippy::cast_precision_loss)]
// Measuring wall time is the point of a benchmark.
#![allow(clippy::disallowed_types)]

use brokerlab::rng::Prng;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

/// A message's record: enqueue and start times, its server, and padding to the engine's 64 B.
#[derive(Clone, Copy)]
struct Record {
    enqueued_at: u64,
    started_at: u64,
    server: u32,
    _rest: [u32; 11],
}

const ARRIVAL: u32 = u32::MAX;

/// One run: (summed wait in µs, hash).
fn run(messages: u64) -> (u64, u64) {
    let (mut arrivals, mut service) = (Prng::from_seed(1), Prng::from_seed(2));
    let (mean_gap, mean_service) = (111_111, 1_000_000); // µs
    let mut agenda: BinaryHeap<Reverse<(u64, u64, u32)>> = BinaryHeap::new();
    let mut records: Vec<Record> = Vec::new();
    let mut queue: VecDeque<u32> = VecDeque::new();
    let mut idle: Vec<u32> = (0..10).rev().collect();
    let (mut seq, mut sent, mut hash, mut wait) = (0u64, 0u64, 0u64, 0u64);
    let mut mix = |words: [u64; 3]| {
        for w in words {
            hash = (hash ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
        }
    };
    agenda.push(Reverse((0, 0, ARRIVAL)));
    while let Some(Reverse((now, _, what))) = agenda.pop() {
        if what == ARRIVAL {
            let id = records.len() as u32;
            records.push(Record { enqueued_at: now, started_at: 0, server: 0, _rest: [0; 11] });
            mix([1, now, u64::from(id)]);
            queue.push_back(id);
            sent += 1;
            if sent < messages {
                seq += 1;
                agenda.push(Reverse((now + arrivals.exp_sample(mean_gap, mean_gap * 1000), seq, ARRIVAL)));
            }
        } else {
            mix([2, now, u64::from(what)]);
            idle.push(what);
        }
        while let (Some(&server), Some(&msg)) = (idle.last(), queue.front()) {
            idle.pop();
            queue.pop_front();
            let r = &mut records[msg as usize];
            (r.started_at, r.server) = (now, server);
            wait += now - r.enqueued_at;
            mix([3, now, u64::from(msg)]);
            seq += 1;
            agenda.push(Reverse((now + service.exp_sample(mean_service, mean_service * 1000), seq, server)));
        }
    }
    (wait, hash)
}

fn main() {
    let messages: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1_000_000);
    let runs = 7; // best of 7, as benches/mmc.rs
    let mut best = f64::MAX;
    let mut result = (0, 0);
    for _ in 0..runs {
        let start = Instant::now();
        result = run(messages);
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "{}",
        serde_json::json!({
            "target": "floor",
            "messages": messages,
            "best_of": runs,
            "seconds": best,
            "messages_per_s": messages as f64 / best,
            "mean_wait_ms": result.0 as f64 / messages as f64 / 1000.0,
            "hash": format!("{:016x}", result.1),
        })
    );
}
