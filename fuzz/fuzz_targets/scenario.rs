//! The scenario parser and validator on arbitrary text: it never panics, and it refuses what it
//! refuses with a path and a reason. What it accepts runs for a while with every checker on.
#![no_main]
use brokerlab::{Scenario, Sim, SimTime};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Scenario::from_json(text) {
        Err(e) => {
            assert!(!e.path.is_empty() && !e.reason.is_empty(), "an error without a path or a reason: {e:?}");
        }
        Ok(scenario) => {
            let mut sim = Sim::new(scenario, 1);
            // A bounded run: the event budget stops it, as it stops the page.
            let _ = sim.run_until(SimTime::from_millis(60_000), 20_000);
            if let Err(v) = brokerlab::check::check(&sim) {
                panic!("an accepted scenario broke an invariant: {v}\n{text}");
            }
        }
    }
});
