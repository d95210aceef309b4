//! Cross-platform determinism at scale (issue 8): every preset under seeds 1..=100 reaches the
//! trace hash in tests/golden/preset-hashes.txt, written natively by `brokerlab hashes`. This
//! binary runs natively and on wasm32 in Node; tests/browser.rs runs the same table in
//! Chromium. A change to the engine's behaviour changes the table: regenerate it with
//! `cargo run --release -- hashes > tests/golden/preset-hashes.txt` and say why in the commit.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const GOLDEN: &str = include_str!("../golden/preset-hashes.txt");

#[test]
fn every_preset_under_a_hundred_seeds_reaches_the_golden_hash() {
    let presets = brokerlab::scenario::presets().len();
    match brokerlab::golden::check_preset_hashes(GOLDEN) {
        Ok(matched) => assert_eq!(matched, presets * 100, "the table covers every preset and seed 1..=100"),
        Err(wrong) => {
            panic!("{} runs differ from the golden table, first: {:#?}", wrong.len(), &wrong[..wrong.len().min(5)])
        }
    }
}

/// The readable golden (issue 24): per preset, at its own seed, a hash of each run of `CHUNK`
/// readable trace lines, in tests/golden/preset-lines.txt. When a run's trace changes, this
/// says where it first changed and prints those lines as they read now, instead of two hashes.
/// Rewrite it with `BROKERLAB_BLESS=1 cargo test --test sim readable` (natively) and say why.
const LINES: &str = include_str!("../golden/preset-lines.txt");
const CHUNK: usize = 64;

/// FNV-1a over a chunk's lines: stable everywhere, and enough to find where two traces part.
fn fnv(lines: &[String]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in lines.iter().flat_map(|l| l.bytes().chain([b'\n'])) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[test]
fn every_presets_readable_trace_matches_its_golden_chunks() {
    let mut table = String::new();
    let mut first_change: Option<String> = None;
    for p in brokerlab::scenario::presets() {
        let scenario = crate::load(p.id);
        let seed = scenario.seed.expect("presets carry their seed");
        let (sim, trace) = crate::run_traced(scenario, seed);
        let lines: Vec<String> =
            trace.iter().map(|e| brokerlab::readable::line(e, sim.scenario()).to_string()).collect();
        let chunks: Vec<u64> = lines.chunks(CHUNK).map(fnv).collect();
        table.push_str(&format!(
            "{} {}\n",
            p.id,
            chunks.iter().map(|h| format!("{h:016x}")).collect::<Vec<_>>().join(" ")
        ));
        let golden: Vec<&str> = LINES
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{} ", p.id)))
            .map_or(Vec::new(), |r| r.split(' ').collect());
        let now: Vec<String> = chunks.iter().map(|h| format!("{h:016x}")).collect();
        if first_change.is_none() && golden != now {
            let k = golden.iter().zip(&now).position(|(a, b)| a != b).unwrap_or(golden.len().min(now.len()));
            let from = k * CHUNK;
            let shown: Vec<String> =
                lines.iter().enumerate().skip(from).take(CHUNK).map(|(i, l)| format!("  event {i}: {l}")).collect();
            first_change = Some(format!(
                "{} (seed {seed}): its trace first differs from the golden in events {from}..{} ({} events now; \
                 {} chunks of {CHUNK} then); they read now:\n{}",
                p.id,
                from + CHUNK,
                lines.len(),
                golden.len(),
                shown.join("\n")
            ));
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    if std::env::var_os("BROKERLAB_BLESS").is_some() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/preset-lines.txt");
        std::fs::write(path, &table).expect("write the golden");
        return;
    }
    if let Some(change) = first_change {
        panic!(
            "{change}\n(if the change is meant, rewrite the golden: BROKERLAB_BLESS=1 cargo test --test sim readable)"
        );
    }
}
