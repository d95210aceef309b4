//! The wasm door in a real browser: headless Chromium, through wasm-bindgen-test. It drives
//! `brokerlab::wasm::Engine` exactly as www/engine.js does and checks that the trace hash
//! matches the native golden.
#![cfg(target_arch = "wasm32")]

use brokerlab::scenario::preset;
use brokerlab::wasm::{presets, random_seed, validate_scenario, Engine};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// The engine hands trace events over as one JSON string; the page parses it the same way.
fn parse(json: &str) -> JsValue {
    js_sys::JSON::parse(json).expect("the engine's JSON parses")
}

fn get(value: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(value, &JsValue::from_str(key)).expect("property")
}

#[wasm_bindgen_test]
fn a_preset_runs_in_chromium_to_the_native_golden_hash() {
    let json = preset("competing-consumers").expect("preset").json;
    let mut engine = Engine::new(json, 7.0).map_err(JsValue::from).expect("engine");
    let layout = engine.layout().map_err(JsValue::from).expect("layout");
    let duration = get(&layout, "duration_ms").as_f64().expect("number");
    assert_eq!(duration.to_bits(), 30_000f64.to_bits(), "exactly 30 s");
    // In frame-sized slices, as the page does; the hash cannot depend on the slicing.
    let mut t = 0.0;
    let mut lines = 0;
    while t < duration {
        t = (t + 16.7).min(duration);
        let advanced = parse(&engine.run_until(t, 100_000).map_err(JsValue::from).expect("runs"));
        assert!(get(&advanced, "stopped").is_undefined() || get(&advanced, "stopped").is_null());
        let events = js_sys::Array::from(&get(&advanced, "events"));
        for e in events.iter() {
            let line = get(&e, "line").as_string().unwrap_or_default();
            assert!(line.split_once("s ").is_some_and(|(t, _)| t.parse::<f64>().is_ok()), "a timed line: {line}");
            lines += 1;
        }
    }
    assert!(lines > 200, "{lines} events");
    assert_eq!(engine.trace_hash(), "929b17e78e258e22", "matches tests/sim GOLDEN and the CLI");
    let summary = engine.summary().map_err(JsValue::from).expect("summary");
    let queues = js_sys::Array::from(&get(&summary, "queues"));
    let acked = get(&get(&queues.get(0), "messages"), "acked").as_f64();
    assert_eq!(acked, Some(72.0), "state counts cross as plain numbers in plain objects");
}

#[wasm_bindgen_test]
fn a_budget_stop_still_returns_the_events_it_handled() {
    let json = preset("backlog").expect("preset").json;
    let mut engine = Engine::new(json, 11.0).map_err(JsValue::from).expect("engine");
    let mut seen = 0u32;
    let mut stops = 0u32;
    loop {
        let advanced = parse(&engine.run_until(60_000.0, 7).map_err(JsValue::from).expect("runs"));
        let events = js_sys::Array::from(&get(&advanced, "events"));
        seen += events.length();
        match get(&advanced, "stopped").as_string() {
            Some(message) => {
                assert!(message.contains("budget of 7 events"), "{message}");
                assert!(events.length() > 0, "the events before the stop come back");
                assert!(engine.now_ms() < 60_000.0, "time is short of the target");
                stops += 1;
            }
            None => break,
        }
    }
    assert!(stops > 10, "{stops} stops");
    let mut whole = Engine::new(json, 11.0).map_err(JsValue::from).expect("engine");
    let all = parse(&whole.run_until(60_000.0, 1_000_000).map_err(JsValue::from).expect("runs"));
    assert_eq!(seen, js_sys::Array::from(&get(&all, "events")).length(), "no event lost across stops");
    assert_eq!(engine.trace_hash(), "ce80d3eeda2f60b1", "the golden of tests/sim");
}

/// Streams cross the door too: the layout names topics and groups, `groups` gives each
/// group's counters, and `retained` which offsets compaction left.
#[wasm_bindgen_test]
fn streams_cross_as_layout_group_counters_and_retained_offsets() {
    let json = preset("compaction").expect("preset").json;
    let mut engine = Engine::new(json, 2.0).map_err(JsValue::from).expect("engine");
    let layout = engine.layout().map_err(JsValue::from).expect("layout");
    let topics = js_sys::Array::from(&get(&layout, "topics"));
    assert_eq!(get(&topics.get(0), "name").as_string().as_deref(), Some("profiles"));
    assert_eq!(get(&topics.get(0), "compact").as_bool(), Some(true));
    let groups = js_sys::Array::from(&get(&layout, "groups"));
    assert_eq!(get(&groups.get(0), "assignor").as_string().as_deref(), Some("range"));
    engine.run_until(60_000.0, 1_000_000).map_err(JsValue::from).expect("runs");
    let stats = js_sys::Array::from(&engine.groups().map_err(JsValue::from).expect("groups"));
    let processed = get(&stats.get(0), "processed").as_f64().expect("a number");
    let kept: u32 =
        (0..2).map(|p| engine.retained(0, p, 0.0, 1_000.0).iter().map(|&b| u32::from(b)).sum::<u32>()).sum();
    assert!(kept > 0, "compaction kept the latest values");
    assert_eq!(f64::from(kept).to_bits(), processed.to_bits(), "the rebuild read what compaction kept");
    assert!(engine.retained(0, 0, 0.0, 1_000.0).contains(&0), "and some offsets are gone");
    assert!(engine.retained(9, 0, 0.0, 10.0).is_empty(), "an unknown topic has nothing");
}

#[wasm_bindgen_test]
fn bad_input_comes_back_as_errors_not_panics() {
    let err = Engine::new("{\"name\": 5}", 1.0).err().map(JsValue::from).expect("error");
    let message = js_sys::Error::from(err).message().as_string().unwrap_or_default();
    assert!(message.starts_with("name: invalid type"), "{message}");
    assert!(Engine::new(preset("backlog").expect("preset").json, -1.0).is_err(), "negative seed");
    assert!(Engine::new(preset("backlog").expect("preset").json, 0.5).is_err(), "fractional seed");
    assert_eq!(validate_scenario("{}").as_deref(), Some("scenario: missing field `name`"));
    assert_eq!(validate_scenario(preset("backlog").expect("preset").json), None);
    let list = js_sys::Array::from(&presets().map_err(JsValue::from).expect("presets"));
    assert!(list.length() >= 4);
    let seeds: Vec<u32> = (0..4).map(|_| random_seed().map_err(JsValue::from).expect("seed")).collect();
    assert!(seeds.windows(2).any(|w| w[0] != w[1]), "getrandom gives varying seeds: {seeds:?}");
}

/// Cross-platform determinism at scale (issue 8): the same golden table as tests/sim (natively
/// and in Node), here in Chromium's wasm engine.
#[wasm_bindgen_test]
fn every_preset_under_a_hundred_seeds_reaches_the_golden_hash_in_chromium() {
    let golden = include_str!("golden/preset-hashes.txt");
    let presets = brokerlab::scenario::presets().len();
    match brokerlab::golden::check_preset_hashes(golden) {
        Ok(matched) => assert_eq!(matched, presets * 100),
        Err(wrong) => panic!("{} runs differ in Chromium, first: {:#?}", wrong.len(), &wrong[..wrong.len().min(5)]),
    }
}

/// RMQ-3 crosses the door: a RabbitMQ consumer with prefetch 0 is unlimited (the page says so),
/// one with a number is not.
#[wasm_bindgen_test]
fn an_unlimited_rabbitmq_prefetch_crosses_as_unlimited() {
    let json = r#"{"name": "t", "duration_ms": 1000, "queues": [{"name": "q"}],
        "producers": [{"name": "p", "to": "q", "schedule": {"kind": "fixed_rate", "interval_ms": 100}}],
        "consumers": [{"name": "all", "from": "q", "prefetch": 0}, {"name": "some", "from": "q", "prefetch": 5}]}"#;
    let engine = Engine::new(json, 1.0).map_err(JsValue::from).expect("engine");
    let layout = engine.layout().map_err(JsValue::from).expect("layout");
    let consumers = js_sys::Array::from(&get(&layout, "consumers"));
    let unlimited = |i: u32| get(&consumers.get(i), "unlimited").as_bool();
    assert_eq!((unlimited(0), unlimited(1)), (Some(true), Some(false)));
    assert_eq!(get(&consumers.get(1), "prefetch").as_f64(), Some(5.0));
}

/// Beats by event resolve to the same microsecond in Chromium as natively and in Node: the
/// golden table of tests/sim/beats.rs, per family, and the page's own way of getting there,
/// `runToBeat` through the door in frame-sized slices, for one preset of each family.
fn beats_in_chromium(family: brokerlab::scenario::Family, id: &str, seed: u64) {
    let golden = include_str!("golden/preset-beats.txt");
    match brokerlab::golden::check_preset_beats(golden, family.test()) {
        Ok(matched) => assert!(matched >= 30, "{matched} runs"),
        Err(wrong) => panic!("{} runs differ in Chromium, first: {:#?}", wrong.len(), &wrong[..wrong.len().min(5)]),
    }
    let want: Vec<f64> = golden
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{id} {seed} ")))
        .expect("a golden line")
        .split(' ')
        .map(|us| us.parse::<f64>().expect("reached") / 1000.0)
        .collect();
    #[allow(clippy::cast_precision_loss)]
    let mut engine = Engine::new(preset(id).expect("preset").json, seed as f64).map_err(JsValue::from).expect("engine");
    let mut stops = Vec::new();
    let mut t = 0.0;
    while t < 60_000.0 {
        let advanced = parse(&engine.run_to_beat(t + 16.7, 200_000).map_err(JsValue::from).expect("runs"));
        assert!(get(&advanced, "stopped").is_null(), "no budget stop");
        t = engine.now_ms();
        if let Some(k) = get(&advanced, "beat").as_f64() {
            assert_eq!(k.to_bits(), (stops.len() as f64).to_bits(), "beats come in order");
            stops.push(t);
        }
    }
    assert_eq!(stops, want, "{id} seed {seed}: the page stops where the golden table says");
    let beats = js_sys::Array::from(&engine.beats().map_err(JsValue::from).expect("beats"));
    assert!(beats.iter().all(|b| get(&b, "missed").is_null()));
}

#[wasm_bindgen_test]
fn queue_beats_resolve_in_chromium_as_natively() {
    beats_in_chromium(brokerlab::scenario::Family::Queues, "poison-redrive", 3);
}

#[wasm_bindgen_test]
fn stream_beats_resolve_in_chromium_as_natively() {
    beats_in_chromium(brokerlab::scenario::Family::Streams, "rebalancing", 2);
}

#[wasm_bindgen_test]
fn workflow_beats_resolve_in_chromium_as_natively() {
    beats_in_chromium(brokerlab::scenario::Family::Workflows, "saga-compensation-retry", 4);
}
