//! The golden tables: every preset run to its end, as a trace hash and as the moments of its
//! beats, the figures the cross-platform tests compare (natively, in wasm under Node, in
//! Chromium) against `tests/golden/`. Above the driver: it runs `Sim`s.

use crate::scenario::{preset, Preset, Scenario};
use crate::sim::Sim;

/// Enough events for any preset to run to its end.
const PRESET_EVENTS_MAX: u64 = 50_000_000;

/// The trace hash of `preset` run to its end with `seed`: the figure the cross-platform
/// determinism tests compare (natively, in wasm under Node, in Chromium) against
/// `tests/golden/preset-hashes.txt`, which `brokerlab hashes` writes.
pub fn preset_hash(preset: &Preset, seed: u64) -> Result<String, String> {
    let scenario = Scenario::from_json(preset.json).map_err(|e| format!("{}: {e}", preset.id))?;
    let end = scenario.end();
    let mut sim = Sim::new(scenario, seed);
    sim.set_recording(false);
    sim.run_until(end, PRESET_EVENTS_MAX).map_err(|e| format!("{} seed {seed}: {e}", preset.id))?;
    Ok(sim.trace_hash().hex())
}

/// Where `preset` reaches each of its beats with `seed`, in microseconds, `-` for a beat not
/// reached: the figures `tests/golden/preset-beats.txt` holds (`brokerlab beats` writes it).
pub fn preset_beats(preset: &Preset, seed: u64) -> Result<String, String> {
    let scenario = Scenario::from_json(preset.json).map_err(|e| format!("{}: {e}", preset.id))?;
    let (end, beats) = (scenario.end(), scenario.markers.len());
    let mut sim = Sim::new(scenario, seed);
    sim.set_recording(false);
    sim.run_until(end, PRESET_EVENTS_MAX).map_err(|e| format!("{} seed {seed}: {e}", preset.id))?;
    let reached = sim.beats_reached();
    let at =
        |k: usize| reached.get(k).copied().flatten().map_or_else(|| "-".to_string(), |t| t.as_micros().to_string());
    Ok((0..beats).map(at).collect::<Vec<_>>().join(" "))
}

/// Checks a golden table of `PRESET SEED HASH` lines (what `brokerlab hashes` prints) on this
/// platform: the number of runs that matched, or every line that did not, with what it got.
pub fn check_preset_hashes(golden: &str) -> Result<usize, Vec<String>> {
    check_golden(golden, preset_hash, |_| true)
}

/// Checks a golden table of `PRESET SEED T1 T2 …` lines (what `brokerlab beats` prints), for the
/// presets `keep` picks, the same way.
pub fn check_preset_beats(golden: &str, keep: impl Fn(&Scenario) -> bool) -> Result<usize, Vec<String>> {
    check_golden(golden, preset_beats, |p| Scenario::from_json(p.json).is_ok_and(|s| keep(&s)))
}

fn check_golden(
    golden: &str,
    compute: fn(&Preset, u64) -> Result<String, String>,
    keep: impl Fn(&Preset) -> bool,
) -> Result<usize, Vec<String>> {
    let mut wrong = Vec::new();
    let mut matched = 0;
    for line in golden.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.splitn(3, ' ');
        let outcome = match (fields.next(), fields.next().map(str::parse::<u64>), fields.next()) {
            (Some(id), Some(Ok(seed)), Some(want)) => match preset(id) {
                Some(p) if !keep(p) => continue,
                Some(p) => compute(p, seed).map(|got| (got == want, got)),
                None => Err(format!("no preset {id}")),
            },
            _ => Err("not PRESET SEED VALUE".to_string()),
        };
        match outcome {
            Ok((true, _)) => matched += 1,
            Ok((false, got)) => wrong.push(format!("{line}: got {got}")),
            Err(e) => wrong.push(format!("{line}: {e}")),
        }
    }
    if wrong.is_empty() {
        Ok(matched)
    } else {
        Err(wrong)
    }
}
