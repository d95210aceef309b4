//! The native CLI. Tutorial authors check scenarios with it; tests and benchmarks drive it.
//!
//! ```text
//! brokerlab run <scenario.json> [--seed N] [--until-ms T] [--trace] [--max-events N]
//! brokerlab swarm [--seeds N] [--from S]   random scenarios and faults, every checker on
//! brokerlab presets            list the built-in scenarios
//! brokerlab show <preset-id>   print a preset's JSON, to copy and edit
//! brokerlab export rabbitmq <scenario.json>   its RabbitMQ topology as a definitions file
//! brokerlab partition --partitions N KEY...   where Kafka puts each key: KEY<TAB>PARTITION
//! brokerlab assign --assignor NAME FILE       a consumer group's assignment, as JSON
//! brokerlab hashes [--seeds N]  every preset's trace hash for seeds 1..=N: PRESET SEED HASH
//! brokerlab beats [--seeds N]   when every preset reaches each beat, seeds 1..=N: PRESET SEED µs…
//! ```
//!
//! Exit codes: 0 success, 2 bad usage or bad scenario (the message names the path),
//! 3 the run stopped early (event budget), or the swarm found a violation.
#![allow(clippy::print_stdout)]

use brokerlab::scenario::{limits, preset, presets};
use brokerlab::{Scenario, Sim, SimTime};
use std::io::Write;
use std::process::ExitCode;

const USAGE: &str = "usage:
  brokerlab run <scenario.json> [--seed N] [--until-ms T] [--trace] [--max-events N]
  brokerlab swarm [--seeds N] [--from SEED]
  brokerlab presets
  brokerlab show <preset-id>
  brokerlab export rabbitmq <scenario.json>
  brokerlab partition --partitions N KEY...
  brokerlab assign --assignor range|roundrobin|sticky|cooperative-sticky FILE
  brokerlab hashes [--seeds N]
  brokerlab beats [--seeds N]";

/// Kafka counts partitions in a Java `int`.
const KAFKA_PARTITIONS_MAX: u32 = i32::MAX as u32;

/// Enough for any scenario within the limits; a run that needs more stops with exit code 3.
const MAX_EVENTS_DEFAULT: u64 = 100_000_000;

struct RunArgs {
    path: String,
    seed: Option<u64>,
    /// `--until-ms`, to the microsecond (a beat's moment, as the page shows it).
    until_us: Option<u64>,
    trace: bool,
    max_events: u64,
}

enum Failure {
    Usage(String),
    Scenario(String),
    Run(String),
}

fn main() -> ExitCode {
    // Arguments that are not UTF-8 are refused rather than mangled: keys are hashed as UTF-8.
    let args: Result<Vec<String>, _> = std::env::args_os().skip(1).map(std::ffi::OsString::into_string).collect();
    let Ok(args) = args else {
        eprintln!("brokerlab: arguments must be UTF-8");
        return ExitCode::from(2);
    };
    let result = match args.first().map(String::as_str) {
        Some("partition") => partition(&args[1..]),
        Some("assign") => assign(&args[1..]),
        Some("run") => parse_run(&args[1..]).and_then(|a| run(&a)),
        Some("swarm") => swarm(&args[1..]),
        Some("hashes") => table(&args[1..], 100, brokerlab::golden::preset_hash),
        Some("beats") => table(&args[1..], 5, brokerlab::golden::preset_beats),
        Some("presets") => {
            list_presets();
            Ok(())
        }
        Some("show") => show(args.get(1)),
        Some("export") => export(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(Failure::Usage(USAGE.to_string())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) | Err(Failure::Scenario(msg)) => {
            eprintln!("brokerlab: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Run(msg)) => {
            eprintln!("brokerlab: {msg}");
            ExitCode::from(3)
        }
    }
}

/// "3625.117" (ms) -> 3_625_117 (µs): a whole number of ms with up to three decimals.
fn micros_of_ms(v: &str) -> Option<u64> {
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (!frac.is_empty() && (!digits(frac) || frac.len() > 3)) {
        return None;
    }
    let frac: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<3}").parse().ok()? };
    whole.parse::<u64>().ok()?.checked_mul(1000)?.checked_add(frac)
}

fn parse_run(args: &[String]) -> Result<RunArgs, Failure> {
    let mut out =
        RunArgs { path: String::new(), seed: None, until_us: None, trace: false, max_events: MAX_EVENTS_DEFAULT };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut number = |flag: &str| -> Result<u64, Failure> {
            let v = it.next().ok_or_else(|| Failure::Usage(format!("{flag} needs a value\n{USAGE}")))?;
            v.parse().map_err(|_| Failure::Usage(format!("{flag}: \"{v}\" is not a whole number ≥ 0")))
        };
        match arg.as_str() {
            "--seed" => out.seed = Some(number("--seed")?),
            "--until-ms" => {
                let v = it.next().ok_or_else(|| Failure::Usage(format!("--until-ms needs a value\n{USAGE}")))?;
                let us = micros_of_ms(v).ok_or_else(|| {
                    Failure::Usage(format!(
                        "--until-ms: \"{v}\" is not a number of ms ≥ 0 (to the µs: at most 3 decimals)"
                    ))
                })?;
                out.until_us = Some(us);
            }
            "--max-events" => out.max_events = number("--max-events")?,
            "--trace" => out.trace = true,
            flag if flag.starts_with("--") => return Err(Failure::Usage(format!("unknown option {flag}\n{USAGE}"))),
            path if out.path.is_empty() => out.path = path.to_string(),
            extra => return Err(Failure::Usage(format!("unexpected argument \"{extra}\"\n{USAGE}"))),
        }
    }
    if out.path.is_empty() {
        return Err(Failure::Usage(format!("run needs a scenario file\n{USAGE}")));
    }
    if out.seed.is_some_and(|s| s > limits::SEED_MAX) {
        return Err(Failure::Usage(format!("--seed: must be at most {} (2^53 − 1)", limits::SEED_MAX)));
    }
    if out.until_us.is_some_and(|t| t > limits::DURATION_MS_MAX.saturating_mul(1000)) {
        return Err(Failure::Usage(format!("--until-ms: must be at most {}", limits::DURATION_MS_MAX)));
    }
    Ok(out)
}

fn run(args: &RunArgs) -> Result<(), Failure> {
    let text =
        std::fs::read_to_string(&args.path).map_err(|e| Failure::Usage(format!("cannot read {}: {e}", args.path)))?;
    let scenario = Scenario::from_json(&text).map_err(|e| Failure::Scenario(format!("{}: {e}", args.path)))?;
    let seed = args.seed.or(scenario.seed).unwrap_or(1);
    let until = args.until_us.map_or(scenario.end(), SimTime::from_micros);
    let mut sim = Sim::new(scenario, seed);
    sim.set_recording(args.trace);
    if args.trace {
        sim.record_deliveries();
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // Stopping at each beat checks its `expect` there; the run and its trace are the same.
    let outcome = sim.run_checking_beats(until, args.max_events);
    if args.trace {
        let (events, deliveries) = sim.drain_trace_with_deliveries();
        let mut deliveries = deliveries.into_iter().peekable();
        for (i, event) in events.iter().enumerate() {
            // The event's own fields first (kind, at_ms, …), then its readable line, then for
            // a delivery what the consumer reads on it.
            let mut json = serde_json::to_string(&event).map_err(|e| Failure::Run(e.to_string()))?;
            let line = serde_json::Value::from(brokerlab::readable::line(event, sim.scenario()).to_string());
            json.pop();
            write!(out, "{json},\"line\":{line}").map_err(|e| Failure::Run(e.to_string()))?;
            if let Some((_, mut meta)) = deliveries.next_if(|(at, _)| *at == i) {
                if let brokerlab::TraceEvent::Delivered { msg, .. } = *event {
                    meta.message_id = sim.name_of(msg).map(str::to_owned);
                }
                let meta = serde_json::to_string(&meta).map_err(|e| Failure::Run(e.to_string()))?;
                write!(out, ",\"delivery\":{meta}").map_err(|e| Failure::Run(e.to_string()))?;
            }
            writeln!(out, "}}").map_err(|e| Failure::Run(e.to_string()))?;
        }
    }
    let mut summary = sim.summary();
    if let Ok(beats) = &outcome {
        summary.beats.clone_from(beats);
        for (k, b) in beats.iter().enumerate() {
            for problem in b.missed.iter().chain(&b.failed) {
                eprintln!("brokerlab: beat {}: {problem}", k + 1);
            }
        }
    }
    let json = if args.trace { serde_json::to_string(&summary) } else { serde_json::to_string_pretty(&summary) };
    writeln!(out, "{}", json.map_err(|e| Failure::Run(e.to_string()))?).map_err(|e| Failure::Run(e.to_string()))?;
    out.flush().map_err(|e| Failure::Run(e.to_string()))?;
    outcome.map(|_| ()).map_err(|e| Failure::Run(e.to_string()))
}

/// Random scenarios with random live faults, every checker after every step. Prints a JSON
/// report; exits 3 if any seed broke an invariant (each is listed with its seed).
fn swarm(args: &[String]) -> Result<(), Failure> {
    let mut seeds = 1000u64;
    let mut from = 0u64;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = it.next().and_then(|v| v.parse::<u64>().ok());
        match (arg.as_str(), value) {
            ("--seeds", Some(n)) => seeds = n,
            ("--from", Some(n)) => from = n,
            _ => return Err(Failure::Usage(format!("swarm: bad argument \"{arg}\"\n{USAGE}"))),
        }
    }
    let report = brokerlab::swarm::run(from, seeds);
    let violations: Vec<serde_json::Value> =
        report.violations.iter().map(|(seed, what)| serde_json::json!({ "seed": seed, "violation": what })).collect();
    let json = serde_json::json!({
        "seeds": report.seeds,
        "first_seed": from,
        "operations": report.operations,
        "deliveries_lost": report.deliveries_lost,
        "deliveries_duplicated": report.deliveries_duplicated,
        "violations": violations.len(),
        "failing": violations,
    });
    println!("{json}");
    if report.violations.is_empty() {
        Ok(())
    } else {
        Err(Failure::Run(format!("{} of {} seeds broke an invariant", report.violations.len(), report.seeds)))
    }
}

/// `export rabbitmq <scenario.json>`: the scenario's RabbitMQ topology as a definitions file,
/// for `rabbitmqctl import_definitions`. Queues of other systems are named on stderr.
fn export(args: &[String]) -> Result<(), Failure> {
    let [kind, path] = args else { return Err(Failure::Usage(USAGE.to_string())) };
    if kind != "rabbitmq" {
        return Err(Failure::Usage(format!("export: \"{kind}\" is not a system Brokerlab exports; try rabbitmq")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Failure::Usage(format!("cannot read {path}: {e}")))?;
    let scenario = Scenario::from_json(&text).map_err(|e| Failure::Scenario(format!("{path}: {e}")))?;
    let (definitions, skipped) = brokerlab::export::rabbitmq_definitions(&scenario);
    if !skipped.is_empty() {
        eprintln!("brokerlab: left out, not RabbitMQ queues: {}", skipped.join(", "));
    }
    let json = serde_json::to_string_pretty(&definitions).map_err(|e| Failure::Run(e.to_string()))?;
    println!("{json}");
    Ok(())
}

fn list_presets() {
    for p in presets() {
        let name = Scenario::from_json(p.json).map(|s| s.name).unwrap_or_else(|e| format!("(invalid: {e})"));
        println!("{:<28} {name}", p.id);
    }
}

fn show(id: Option<&String>) -> Result<(), Failure> {
    let id = id.ok_or_else(|| Failure::Usage(format!("show needs a preset id\n{USAGE}")))?;
    let p = preset(id).ok_or_else(|| {
        let ids: Vec<&str> = presets().iter().map(|p| p.id).collect();
        Failure::Usage(format!("no preset \"{id}\"; the presets are: {}", ids.join(", ")))
    })?;
    print!("{}", p.json);
    Ok(())
}

/// `hashes [--seeds N]`: each preset's trace hash for seeds 1..=N (default 100), one line each,
/// `PRESET SEED HASH`: the golden table of the cross-platform determinism tests.
/// `hashes` and `beats`: one golden line per preset and seed, `PRESET SEED VALUE`.
fn table(
    args: &[String],
    default_seeds: u64,
    value: fn(&brokerlab::scenario::Preset, u64) -> Result<String, String>,
) -> Result<(), Failure> {
    let seeds = match args {
        [] => default_seeds,
        [flag, n] if flag == "--seeds" => n
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| Failure::Usage(format!("--seeds: \"{n}\" is not a whole number from 1 to 10000")))?,
        _ => return Err(Failure::Usage(USAGE.to_string())),
    };
    let mut out = std::io::stdout().lock();
    for p in presets() {
        for seed in 1..=seeds {
            let v = value(p, seed).map_err(Failure::Run)?;
            writeln!(out, "{} {seed} {v}", p.id).map_err(|e| Failure::Run(e.to_string()))?;
        }
    }
    Ok(())
}

/// `partition --partitions N KEY...`: the partition of each key as Kafka's default
/// partitioner chooses it (KP-1): murmur2 of the UTF-8 bytes, sign bit cleared, modulo N.
fn partition(args: &[String]) -> Result<(), Failure> {
    let mut partitions = None;
    let mut keys = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--partitions" => {
                let v = it.next().ok_or_else(|| Failure::Usage(format!("--partitions needs a value\n{USAGE}")))?;
                let n: u32 = v.parse().ok().filter(|n| (1..=KAFKA_PARTITIONS_MAX).contains(n)).ok_or_else(|| {
                    Failure::Usage(format!(
                        "--partitions: \"{v}\" is not a whole number from 1 to {}",
                        KAFKA_PARTITIONS_MAX
                    ))
                })?;
                partitions = Some(n);
            }
            "--" => keys.extend(it.by_ref().cloned()),
            flag if flag.starts_with("--") => return Err(Failure::Usage(format!("unknown option {flag}\n{USAGE}"))),
            key => keys.push(key.to_string()),
        }
    }
    let partitions = partitions.ok_or_else(|| Failure::Usage(format!("partition needs --partitions N\n{USAGE}")))?;
    if keys.is_empty() {
        return Err(Failure::Usage(format!("partition needs at least one key\n{USAGE}")));
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for key in keys {
        let p = brokerlab::kafka::partitioner::partition_for_key(key.as_bytes(), partitions);
        writeln!(out, "{key}\t{p}").map_err(|e| Failure::Run(e.to_string()))?;
    }
    out.flush().map_err(|e| Failure::Run(e.to_string()))
}

/// `assign --assignor NAME FILE`: one case in the shape of `kafka_assignors.json` in, the
/// assignment out (member id → "topic-partition" list). Cooperative-sticky prints the
/// converged assignment under "assignment" and its first round under "first_round".
fn assign(args: &[String]) -> Result<(), Failure> {
    use brokerlab::kafka::assignor::{self, Assignor, Group};
    let mut name = None;
    let mut path = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--assignor" => name = it.next(),
            flag if flag.starts_with("--") => return Err(Failure::Usage(format!("unknown option {flag}\n{USAGE}"))),
            file if path.is_none() => path = Some(file),
            extra => return Err(Failure::Usage(format!("unexpected argument \"{extra}\"\n{USAGE}"))),
        }
    }
    let name = name.ok_or_else(|| Failure::Usage(format!("assign needs --assignor NAME\n{USAGE}")))?;
    let assignor = Assignor::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Assignor::ALL.iter().map(|a| a.name()).collect();
        Failure::Usage(format!("--assignor: \"{name}\" is not one of {}", names.join(", ")))
    })?;
    let path = path.ok_or_else(|| Failure::Usage(format!("assign needs a JSON file\n{USAGE}")))?;
    let text = std::fs::read_to_string(path).map_err(|e| Failure::Usage(format!("cannot read {path}: {e}")))?;
    let group = Group::from_json(&text).map_err(|e| Failure::Scenario(format!("{path}: {e}")))?;
    let json = if assignor == Assignor::CooperativeSticky {
        let (first, converged) = assignor::cooperative_converge(&group.partitions_per_topic, &group.members);
        serde_json::json!({ "assignment": assignor::to_json(&converged), "first_round": assignor::to_json(&first) })
    } else {
        assignor::to_json(&assignor::assign(assignor, &group.partitions_per_topic, &group.members))
    };
    println!("{json}");
    Ok(())
}
