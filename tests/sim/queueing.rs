//! Queueing theory (semantics.md §7) across the worked examples of QT-3, not only the ten
//! servers of the M/M/c preset: one server, two, three to eight, fifty. Each run is checked by
//! batch means (QT-4) on four quantities: P(wait) (Erlang C), Wq, the tail P(Wq > t) =
//! C·e^{−(cμ−λ)t}, and Little's law for the servers, mean busy = a = λ/μ (QT-2). The tail is
//! what FCFS decides: serving the queue in any other order keeps the mean wait but not its
//! spread. The two vectors of `tests/vectors/erlang_c.json` (a copy of shared/vectors/) bring
//! their own t and tail values.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use brokerlab::ids::QueueId;
use brokerlab::message::StateKind;
use brokerlab::time::SimTime;
use brokerlab::{Scenario, Sim, TraceEvent};

const ERLANG_C: &str = include_str!("../vectors/erlang_c.json");

/// Erlang C by the numerically stable Erlang B recursion (QT-1): (P(wait), Wq).
fn erlang_c(lambda: f64, mu: f64, c: u32) -> (f64, f64) {
    let a = lambda / mu;
    let mut b = 1.0;
    for k in 1..=c {
        b = a * b / (f64::from(k) + a * b);
    }
    let p_wait = f64::from(c) * b / (f64::from(c) - a * (1.0 - b));
    (p_wait, p_wait / (f64::from(c) * mu - lambda))
}

/// An M/M/c model as a scenario: Poisson arrivals at `lambda` a second, `c` consumers with
/// exponential service of mean `1/mu` seconds, no network delay, `count` messages.
fn mmc(lambda: f64, mu: f64, c: u32, count: u64) -> Scenario {
    let consumers: Vec<String> = (1..=c)
        .map(|i| {
            format!(
                r#"{{"name": "server-{i}", "from": "work", "processing": {{"kind": "exponential", "mean_ms": {}}}}}"#,
                1000.0 / mu
            )
        })
        .collect();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let duration_ms = ((count as f64 / lambda) * 1000.0 * 1.2) as u64 + 3_600_000;
    let json = format!(
        r#"{{"name": "M/M/{c}", "seed": 1, "duration_ms": {duration_ms},
            "queues": [{{"name": "work"}}],
            "producers": [{{"name": "arrivals", "to": "work",
                            "schedule": {{"kind": "poisson", "rate_per_s": {lambda}, "count": {count}}}}}],
            "consumers": [{}]}}"#,
        consumers.join(",")
    );
    Scenario::from_json(&json).unwrap_or_else(|e| panic!("M/M/{c}: {e}"))
}

/// One batch's measurements, from the trace of the deliveries and jobs inside it.
#[derive(Default)]
struct Batch {
    delivered: u64,
    waited: u64,
    beyond_t: u64,
    wait_total_s: f64,
    busy_total_s: f64,
}

/// Per-batch (P(wait), Wq, P(Wq > t), mean busy servers), after a warm-up (QT-4). Times in s.
fn batches(sim: &mut Sim, warm_up_s: f64, batch_s: f64, n: usize, t: f64) -> Vec<[f64; 4]> {
    let micros = |s: f64| {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        SimTime::from_micros((s * 1e6) as u64)
    };
    let mut enqueued_at: Vec<u64> = Vec::new();
    let mut note = |event: &TraceEvent, batch: Option<&mut Batch>| match *event {
        TraceEvent::Enqueued { at, msg, .. } => {
            let i = msg.index();
            if enqueued_at.len() <= i {
                enqueued_at.resize(i + 1, u64::MAX);
            }
            enqueued_at[i] = at.as_micros();
        }
        TraceEvent::Delivered { at, msg, .. } => {
            if let Some(b) = batch {
                let wait_us = at.as_micros() - enqueued_at[msg.index()];
                #[allow(clippy::cast_precision_loss)]
                let wait = wait_us as f64 / 1e6;
                b.delivered += 1;
                b.waited += u64::from(wait_us > 0);
                b.beyond_t += u64::from(wait > t);
                b.wait_total_s += wait;
            }
        }
        TraceEvent::ProcessingStarted { at, done_at, .. } => {
            if let Some(b) = batch {
                #[allow(clippy::cast_precision_loss)]
                let busy = (done_at.as_micros() - at.as_micros()) as f64 / 1e6;
                b.busy_total_s += busy;
            }
        }
        _ => {}
    };
    sim.run_until(micros(warm_up_s), u64::MAX).expect("runs");
    for event in sim.drain_trace() {
        note(&event, None);
    }
    (1..=n)
        .map(|k| {
            #[allow(clippy::cast_precision_loss)]
            sim.run_until(micros(warm_up_s + k as f64 * batch_s), u64::MAX).expect("runs");
            let mut b = Batch::default();
            for event in sim.drain_trace() {
                note(&event, Some(&mut b));
            }
            #[allow(clippy::cast_precision_loss)]
            let d = b.delivered as f64;
            #[allow(clippy::cast_precision_loss)]
            [b.waited as f64 / d, b.wait_total_s / d, b.beyond_t as f64 / d, b.busy_total_s / batch_s]
        })
        .collect()
}

fn mean_and_standard_error(xs: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let xs: Vec<f64> = xs.into_iter().collect();
    #[allow(clippy::cast_precision_loss)]
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// Runs M/M/c with `customers` arrivals and checks the four quantities against theory: each
/// within 3.5 batch-means standard errors (two-sided 99.95%), and each resolved finely enough
/// (standard error under `resolution` of the value) that a real bias would show. `t` is the
/// tail's threshold in seconds, `tail` its expected value when a vector gives one.
#[allow(clippy::print_stdout, clippy::too_many_arguments)]
fn check_mmc(name: &str, lambda: f64, mu: f64, c: u32, customers: u64, t: f64, tail: Option<f64>, seed: u64) {
    let (p_wait, wq) = erlang_c(lambda, mu, c);
    let theory_tail = p_wait * libm::exp(-(f64::from(c) * mu - lambda) * t);
    if let Some(given) = tail {
        assert!((given - theory_tail).abs() < 1e-9, "{name}: the vector's tail {given} vs QT-1's {theory_tail}");
    }
    let mut sim = Sim::new(mmc(lambda, mu, c, customers), seed);
    // Ten percent of the customers to warm up (QT-4), then 30 batches over the rest.
    #[allow(clippy::cast_precision_loss)]
    let span_s = customers as f64 / lambda;
    let (warm_up_s, n) = (span_s * 0.1, 30);
    let batch_s = span_s * 0.85 / f64::from(n);
    #[allow(clippy::cast_possible_truncation)]
    let got = batches(&mut sim, warm_up_s, batch_s, n as usize, t);
    let expected =
        [("P(wait)", p_wait, 0.03), ("Wq", wq, 0.06), ("P(Wq > t)", theory_tail, 0.06), ("busy", lambda / mu, 0.01)];
    for (i, (what, want, resolution)) in expected.into_iter().enumerate() {
        let (mean, se) = mean_and_standard_error(got.iter().map(|b| b[i]));
        println!("{name}: {what} {mean:.5} ± {se:.5} vs theory {want:.5}");
        assert!(
            (mean - want).abs() <= 3.5 * se && se < resolution * want,
            "{name} (seed {seed}): {what} by batch means {mean:.5} ± {se:.5}, theory {want:.5}"
        );
    }
}

/// The two vectors of erlang_c.json, with their own tail thresholds. Time units are the
/// vector's own (per second for the first, per hour for the help desk, run here as seconds:
/// the model has no clock of its own to care).
#[test]
fn the_erlang_c_vectors_hold_in_simulation() {
    let doc: serde_json::Value = serde_json::from_str(ERLANG_C).expect("json");
    let vectors = doc["vectors"].as_array().expect("vectors");
    assert_eq!(vectors.len(), 2, "every vector is run");
    for (i, v) in vectors.iter().enumerate() {
        let f = |k: &str| v["inputs"][k].as_f64().unwrap_or_else(|| panic!("{k}"));
        let (lambda, mu) = (f("lambda_"), f("mu"));
        let c = u32::try_from(v["inputs"]["c"].as_u64().expect("c")).expect("small");
        let (p_wait, wq) = erlang_c(lambda, mu, c);
        assert!((p_wait - v["p_wait_erlang_c"].as_f64().expect("p")).abs() < 1e-9, "QT-1 formula, vector {i}");
        assert!((wq - v["Wq"].as_f64().expect("Wq")).abs() < 1e-9, "QT-1 Wq, vector {i}");
        let tail = &v["p_wait_exceeds_t"];
        let name = v["name"].as_str().expect("name");
        check_mmc(
            name,
            lambda,
            mu,
            c,
            400_000,
            tail["t"].as_f64().expect("t"),
            tail["value"].as_f64(),
            1000 + i as u64,
        );
    }
}

/// The other rows of QT-3's table, each with the tail at the mean wait of those who wait,
/// 1/(cμ − λ), where theory says P(Wq > t) = C/e.
#[test]
fn the_worked_examples_of_qt3_hold_in_simulation() {
    // (λ, μ, c, customers): rows 3, 4, 6 and 7 (rows 1 and 2 are the vectors, row 5 is
    // `mmc_matches_erlang_c`). Fifty servers at 90% load settle slowly, so they get more.
    let rows = [(2.5, 1.0, 5, 200_000), (150.0, 100.0, 2, 300_000), (45.0, 1.0, 50, 1_000_000), (2.5, 1.0, 4, 200_000)];
    for (k, (lambda, mu, c, customers)) in rows.into_iter().enumerate() {
        let t = 1.0 / (f64::from(c) * mu - lambda);
        check_mmc(&format!("M/M/{c} at λ={lambda}, μ={mu}"), lambda, mu, c, customers, t, None, 7 + k as u64);
    }
}

/// QT-3's staffing check: at 30 calls an hour of 5 minutes (a = 2.5), the smallest number of
/// agents for which at most 10% of callers wait is 6. Found here by simulation alone.
#[test]
fn simulation_alone_finds_the_staffing_answer() {
    let (lambda, mu) = (30.0, 12.0);
    let p_wait = |c: u32| {
        let mut sim = Sim::new(mmc(lambda, mu, c, 100_000), 40 + u64::from(c));
        let got = batches(&mut sim, 300.0, 300.0, 10, f64::INFINITY);
        mean_and_standard_error(got.iter().map(|b| b[0])).0
    };
    let smallest = (3..=8).find(|&c| p_wait(c) <= 0.10);
    assert_eq!(smallest, Some(6), "the smallest c with P(wait) <= 0.10");
}

/// QT-4: discard a warm-up, then compare Wq and P(wait) with Erlang C by batch means, since
/// waiting times are autocorrelated: the formula must lie within 3.5 standard errors of the
/// simulated mean (two-sided 99.95%), and the standard error must be under 2.5% of it, so that
/// a bias of a tenth cannot pass. (At ρ = 0.9 a batch of 40,000 customers still varies by
/// about 15%, so it takes a million and a half to resolve the mean that finely.)
#[test]
#[allow(clippy::print_stdout)] // the comparison is worth seeing; scripts/test.sh shows it
fn mmc_matches_erlang_c() {
    // QT-1, QT-3 example 5 scaled by 10 in time: λ=9/s, μ=1/s, c=10, ρ=0.9.
    let (p_wait, wq_s) = erlang_c(9.0, 1.0, 10);
    assert!((p_wait - 0.668732).abs() < 1e-6, "Erlang C formula: {p_wait}");
    let json = load_json("mmc-erlang-c")
        .replace(r#""rate_per_s": 9 }"#, r#""rate_per_s": 9, "count": 1600000 }"#)
        .replace(r#""duration_ms": 300000"#, r#""duration_ms": 259200000"#);
    let scenario = Scenario::from_json(&json).expect("valid");
    let mut sim = Sim::new(scenario.clone(), 2024);
    sim.set_recording(false);
    // 1.6 million arrivals take about 177,800 s: 5,000 s of warm-up, then 40 batches of 4,300 s.
    let (warm_up_s, batch_s, batches) = (5_000, 4_300, 40);
    sim.run_until(SimTime::from_millis(warm_up_s * 1000), u64::MAX).expect("runs");
    let mut before = sim.stats();
    let (mut wq, mut pw) = (Vec::new(), Vec::new());
    for b in 1..=batches {
        sim.run_until(SimTime::from_millis((warm_up_s + b * batch_s) * 1000), u64::MAX).expect("runs");
        let now = sim.stats();
        let n = (now.deliveries - before.deliveries) as f64;
        wq.push((now.wait_total_us - before.wait_total_us) as f64 / 1e6 / n);
        pw.push((now.waited - before.waited) as f64 / n);
        before = now;
    }
    sim.run_until(scenario.end(), u64::MAX).expect("runs");
    brokerlab::check::check(&sim).expect("invariants hold at the end");
    assert_eq!(sim.counts(QueueId(0)).get(StateKind::Acked), 1_600_000, "everything drains within three days");
    for (what, xs, want) in [("Wq (s)", &wq, wq_s), ("P(wait)", &pw, p_wait)] {
        let (mean, se) = mean_and_standard_error(xs.iter().copied());
        assert!(
            (mean - want).abs() <= 3.5 * se && se / want < 0.025,
            "{what}: batch means {mean:.4} ± {se:.4} vs Erlang C {want:.4}"
        );
        println!("{what}: batch means {mean:.4} ± {se:.4} (standard error) vs Erlang C {want:.4}");
    }
}

/// QT-2, Little's law on the sample path: a run that starts and ends empty has
/// ∫ Lq(t) dt = Σ Wq exactly, the area under the queue the page draws equal to the waits the
/// engine reports, to the microsecond. So the time-average depth is λ·Wq of this very run.
#[test]
fn the_queue_drawn_over_time_holds_exactly_the_waits_reported() {
    let json = load_json("mmc-erlang-c")
        .replace(r#""rate_per_s": 9 }"#, r#""rate_per_s": 9, "count": 20000 }"#)
        .replace(r#""duration_ms": 300000"#, r#""duration_ms": 3000000"#);
    let scenario = Scenario::from_json(&json).expect("valid");
    let mut sim = Sim::new(scenario.clone(), 7);
    sim.run_until(scenario.end(), u64::MAX).expect("runs");
    let (mut depth, mut last, mut area, mut peak) = (0u64, 0u64, 0u128, 0u64);
    for event in sim.drain_trace() {
        let at = event.at().as_micros();
        area += u128::from(depth) * u128::from(at - last);
        last = at;
        match event {
            brokerlab::TraceEvent::Enqueued { depth: d, .. } => {
                depth += 1;
                assert_eq!(depth, u64::from(d), "the trace's own depth agrees");
            }
            brokerlab::TraceEvent::Delivered { .. } => depth -= 1,
            _ => {}
        }
        peak = peak.max(depth);
    }
    let stats = sim.stats();
    assert_eq!((depth, stats.deliveries), (0, 20_000), "empty at both ends, everything delivered once");
    assert!(peak > 20, "a queue formed (peak {peak}): the identity is not trivially 0 = 0");
    assert_eq!(area, u128::from(stats.wait_total_us), "∫ Lq dt = Σ Wq");
}

fn load_json(id: &str) -> String {
    brokerlab::scenario::preset(id).map(|p| p.json.to_string()).unwrap_or_default()
}
