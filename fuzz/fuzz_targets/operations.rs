//! Random operation sequences against the engine: a generated scenario (the swarm's, from the
//! first 8 bytes) and faults where and as the rest of the input says, every checker after every
//! operation. Any violation or panic is a crash.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let seed = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
    // The swarm's scenarios are small; keep the seed space where they stay quick.
    if let Err(what) = brokerlab::swarm::run_plan(seed % 1_000_000, &data[8..]) {
        panic!("seed {seed}: {what}");
    }
});
