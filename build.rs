//! Embeds every `scenarios/*.json` as a preset, sorted by file name, so that adding a preset
//! is adding a file.
use std::{env, fs, path::Path};

fn main() {
    let dir = Path::new("scenarios");
    println!("cargo:rerun-if-changed=scenarios");
    let mut ids: Vec<String> = fs::read_dir(dir)
        .expect("scenarios/ exists")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            println!("cargo:rerun-if-changed=scenarios/{name}");
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    ids.sort();
    let mut out = String::from("const PRESETS: &[Preset] = &[\n");
    for id in &ids {
        out.push_str(&format!(
            "    Preset {{ id: {id:?}, json: include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/scenarios/{id}.json\")) }},\n"
        ));
    }
    out.push_str("];\n");
    fs::write(Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join("presets.rs"), out).expect("write presets.rs");
}
