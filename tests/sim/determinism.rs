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
    match brokerlab::scenario::check_preset_hashes(GOLDEN) {
        Ok(matched) => assert_eq!(matched, presets * 100, "the table covers every preset and seed 1..=100"),
        Err(wrong) => {
            panic!("{} runs differ from the golden table, first: {:#?}", wrong.len(), &wrong[..wrong.len().min(5)])
        }
    }
}
