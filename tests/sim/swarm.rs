//! The swarm in CI: random scenarios (all three lease models, DLQs, TTL, overflow, FIFO,
//! retries, crashes, hangs, poison, rate limits; for half the seeds topics and consumer groups
//! with every assignor, commit mode, retention, compaction and retry topics) with random live
//! faults (crash, restart, dependency down and up, redrive; a delivery lost on its way or
//! delivered again while held; members crash, restart, join and leave; requesters killed), and every checker, the stream and workflow checkers included,
//! after every step. Some seeds add request-reply systems and sagas of either style. A failure lists each
//! failing seed; `brokerlab swarm --from SEED --seeds 1` replays one.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
#[allow(clippy::print_stdout)] // the summary is the point; scripts/test.sh shows it
fn the_swarm_finds_no_violation_over_a_thousand_seeds() {
    // 1,000 seeds, natively and on wasm32 in Node.
    let seeds = 1000;
    let started = clock::start();
    let report = brokerlab::swarm::run(0, seeds);
    println!(
        "swarm: {} seeds, {} operations, {} deliveries lost, {} delivered twice, {} violations{}",
        report.seeds,
        report.operations,
        report.deliveries_lost,
        report.deliveries_duplicated,
        report.violations.len(),
        clock::since(started)
    );
    assert!(report.violations.is_empty(), "failing seeds: {:#?}", report.violations);
    assert_eq!(report.seeds, seeds);
    assert!(report.operations > seeds * 100, "{} operations: the scenarios do real work", report.operations);
    // Faults on one delivery are in the mix, and take effect.
    assert!(report.deliveries_lost > 50 && report.deliveries_duplicated > 50, "{report:?}");
}

#[test]
fn swarm_scenarios_are_valid_varied_and_reproducible() {
    use brokerlab::Scenario;
    let mut models = std::collections::BTreeSet::new();
    let mut assignors = std::collections::BTreeSet::new();
    let mut streams = 0;
    let (mut sagas, mut request_reply, mut orchestrated) = (0, 0, 0);
    for seed in 0..200 {
        let json = brokerlab::swarm::scenario_json(seed);
        assert_eq!(json, brokerlab::swarm::scenario_json(seed), "seed {seed} is reproducible");
        let s = Scenario::from_json(&json).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        for q in &s.queues {
            models.insert(format!("{:?}", q.lease).split_whitespace().next().unwrap_or_default().to_string());
        }
        streams += usize::from(!s.groups.is_empty());
        sagas += usize::from(!s.sagas.is_empty());
        request_reply += usize::from(!s.request_reply.is_empty());
        orchestrated += s.sagas.iter().filter(|x| x.orchestrator.is_some()).count();
        assignors.extend(s.groups.iter().map(|g| g.assignor.name()));
    }
    assert_eq!(models.len(), 3, "all three lease models appear: {models:?}");
    assert!((60..140).contains(&streams), "about half the seeds have streams: {streams}");
    assert_eq!(assignors.len(), 4, "every assignor appears: {assignors:?}");
    assert!(sagas > 40 && request_reply > 40 && orchestrated > 20, "workflows: {sagas} {request_reply} {orchestrated}");
    assert_eq!(brokerlab::swarm::run_seed(7), brokerlab::swarm::run_seed(7), "a seed replays exactly");
}

#[test]
fn some_swarm_runs_outlive_an_sqs_retention_in_a_queue_and_in_its_dlq() {
    // SQS-17 and SQS-13 come due in the swarm, not only in the scripted tests.
    use brokerlab::scenario::LeaseModel;
    use brokerlab::{Scenario, Sim, TraceEvent};
    let (mut in_queue, mut in_dlq) = (0, 0);
    for seed in 0..200 {
        let s = Scenario::from_json(&brokerlab::swarm::scenario_json(seed)).unwrap_or_else(|e| panic!("{seed}: {e}"));
        let sqs: Vec<bool> = s.queues.iter().map(|q| matches!(q.lease, LeaseModel::Sqs { .. })).collect();
        if !s.queues.iter().any(|q| q.ttl.is_some_and(|t| t < s.duration)) {
            continue;
        }
        let mut sim = Sim::new(s.clone(), seed);
        sim.run_until(s.end(), u64::MAX).expect("runs");
        for e in sim.drain_trace() {
            if let TraceEvent::Expired { queue, .. } = e {
                let q = queue.index();
                if sqs[q] && s.queues[q].is_dead_letter() {
                    in_dlq += 1;
                } else if sqs[q] {
                    in_queue += 1;
                }
            }
        }
    }
    assert!(in_queue > 10 && in_dlq > 0, "SQS retention expired {in_queue} in queues and {in_dlq} in DLQs");
}

#[test]
fn some_swarm_runs_put_consumers_on_an_optimistic_row_and_see_conflicts() {
    // BO-3 meets crashes, hangs, leases and outages in the swarm, not only in its experiment.
    use brokerlab::trace::ErrorClass;
    use brokerlab::{Scenario, Sim, TraceEvent};
    let (mut runs, mut conflicts, mut writes) = (0, 0, 0);
    for seed in 0..200 {
        let s = Scenario::from_json(&brokerlab::swarm::scenario_json(seed)).unwrap_or_else(|e| panic!("{seed}: {e}"));
        let on_row = |c: u32| s.row_hop(c).is_some();
        if !(0..s.consumers.len()).any(|c| on_row(u32::try_from(c).expect("few"))) {
            continue;
        }
        runs += 1;
        let mut sim = Sim::new(s.clone(), seed);
        sim.run_until(s.end(), u64::MAX).expect("runs");
        for e in sim.drain_trace() {
            match e {
                TraceEvent::Failed { error: ErrorClass::Conflict, .. } => conflicts += 1,
                TraceEvent::EffectApplied { consumer, .. } if on_row(consumer.0) => {
                    writes += 1;
                }
                _ => {}
            }
        }
    }
    assert!(
        runs > 20 && conflicts > 50 && writes > 100,
        "{runs} runs on a row: {conflicts} conflicts, {writes} writes"
    );
}

#[test]
fn some_swarm_runs_route_through_exchanges_fan_out_dead_letter_through_a_dlx_and_park() {
    // Issue 25: the swarm's routing, with every checker on (the swarm's own run above); here,
    // that its runs do route, fan out, miss, and dead-letter through exchanges.
    use brokerlab::trace::DEAD_LETTERING;
    use brokerlab::{Scenario, Sim, TraceEvent};
    let (mut routed, mut fanned, mut unroutable, mut via_dlx, mut copies, mut parked) = (0, 0, 0, 0, 0, 0);
    for seed in 0..200 {
        let s = Scenario::from_json(&brokerlab::swarm::scenario_json(seed)).unwrap_or_else(|e| panic!("{seed}: {e}"));
        if s.topology.exchanges.is_empty() {
            continue;
        }
        let mut sim = Sim::new(s.clone(), seed);
        sim.run_until(s.end(), u64::MAX).expect("runs");
        let mut published_at = std::collections::BTreeMap::<(u64, u32), u32>::new();
        for e in sim.drain_trace() {
            match e {
                TraceEvent::Routed { at, msg, .. } => {
                    routed += 1;
                    // A copy remembers whose it is; the first of a publish keeps the key.
                    let of = sim.broker().extra(msg).copy_of.unwrap_or(sim.broker().msg(msg).key);
                    *published_at.entry((at.as_micros(), of)).or_default() += 1;
                }
                TraceEvent::Unroutable { .. } => unroutable += 1,
                TraceEvent::DeadLettered { from, .. } if s.queues[from.index()].dlx.is_some() => via_dlx += 1,
                TraceEvent::Published { producer, .. } if producer == DEAD_LETTERING => copies += 1,
                TraceEvent::Published { producer, .. } if producer == brokerlab::trace::REPUBLISHED => parked += 1,
                _ => {}
            }
        }
        fanned += published_at.values().filter(|&&n| n > 1).count();
    }
    assert!(
        routed > 500 && fanned > 20 && unroutable > 50 && via_dlx > 20 && copies > 0 && parked > 0,
        "routed {routed}, fanned out {fanned}, unroutable {unroutable}, dead-lettered via a DLX {via_dlx}, DLX copies {copies}, parked by a retry loop {parked}"
    );
}

/// Wall time for the summary line, natively; wasm32-unknown-unknown has no clock to read.
#[allow(clippy::disallowed_types)] // a test reporting its own duration; the engine never sees it
mod clock {
    #[cfg(not(target_arch = "wasm32"))]
    pub fn start() -> Option<std::time::Instant> {
        Some(std::time::Instant::now())
    }
    #[cfg(target_arch = "wasm32")]
    pub fn start() -> Option<()> {
        None
    }
    #[cfg(not(target_arch = "wasm32"))]
    pub fn since(start: Option<std::time::Instant>) -> String {
        start.map(|s| format!(" in {:.2} s", s.elapsed().as_secs_f64())).unwrap_or_default()
    }
    #[cfg(target_arch = "wasm32")]
    pub fn since(_start: Option<()>) -> String {
        String::new()
    }
}

#[test]
fn swarm_runs_evict_members_that_stop_polling_and_retry_in_place() {
    // KC-14..17 and in-place retries come due in the swarm, not only in the scripted tests.
    use brokerlab::trace::{MemberChange, RecordOutcome};
    use brokerlab::{Scenario, Sim, TraceEvent as T};
    let (mut evicted, mut refused, mut in_place, mut poison) = (0, 0, 0, 0);
    for seed in 0..200 {
        let s = Scenario::from_json(&brokerlab::swarm::scenario_json(seed)).unwrap_or_else(|e| panic!("{seed}: {e}"));
        if s.groups.is_empty() {
            continue;
        }
        poison += usize::from(s.producers.iter().any(|p| !p.poison.is_empty() && p.keys.is_some()));
        let mut sim = Sim::new(s.clone(), seed);
        sim.run_until(s.end(), u64::MAX).expect("runs");
        for e in sim.drain_trace() {
            match e {
                T::MemberChanged { change: MemberChange::Evicted, .. } => evicted += 1,
                T::CommitFailed { .. } => refused += 1,
                T::RecordDone { outcome: RecordOutcome::RetryingInPlace, .. } => in_place += 1,
                _ => {}
            }
        }
    }
    assert!(evicted > 10 && refused > 10 && in_place > 50 && poison > 3, "{evicted} {refused} {in_place} {poison}");
}

#[test]
fn swarm_runs_trip_circuit_breakers_through_every_phase() {
    // The breakers the swarm generates open, half-open and close under its faults and
    // outages, with the checkers on in the swarm runs themselves.
    use brokerlab::{Scenario, Sim, TraceEvent as T};
    let mut seen = [0u32; 3];
    for seed in 0..300 {
        let s = Scenario::from_json(&brokerlab::swarm::scenario_json(seed)).unwrap_or_else(|e| panic!("{seed}: {e}"));
        if s.consumers.iter().all(|c| c.breaker.is_none()) {
            continue;
        }
        let mut sim = Sim::new(s.clone(), seed);
        sim.run_until(s.end(), u64::MAX).expect("runs");
        for e in sim.drain_trace() {
            if let T::BreakerChanged { phase, .. } = e {
                seen[phase.code() as usize] += 1;
            }
        }
    }
    let [closed, open, half] = seen;
    assert!(open > 10 && half > 10 && closed > 3, "{seen:?}");
}
