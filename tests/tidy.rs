//! Style as a test. Fails on what breaks determinism or the module boundaries:
//! wall clocks and hash-ordered collections in `src/`, `#[wasm_bindgen]` outside
//! `src/wasm.rs`, `Math.random` or `Date.now` in `www/`, a second importer of `www/pkg`, and
//! a `.ci/run` that does not run the README's test command.
#![cfg(not(target_arch = "wasm32"))]

use std::fs;
use std::path::{Path, PathBuf};

fn files(dir: &str, ext: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "pkg") {
                    stack.push(p);
                }
            } else if p.extension().and_then(|x| x.to_str()).is_some_and(|x| ext.contains(&x)) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Code lines without `//` comments (good enough for these checks: none of the banned
/// words is legitimately inside a string).
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split("//").next().unwrap_or("").to_string()))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect()
}

fn rel(p: &Path) -> String {
    p.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(p).display().to_string()
}

#[test]
fn src_has_no_wall_clock_no_hash_order_and_no_platform_float_math() {
    let banned = [
        "HashMap",
        "HashSet",
        "std::time",
        "Instant",
        "SystemTime",
        "thread_rng",
        "rand::",
        ".ln()",
        ".exp()",
        ".powf(",
        ".powi(",
        ".log2()",
        ".log10()",
        ".sin()",
        ".cos()",
        ".exp2()",
        ".cbrt()",
        ".hypot(",
        "DefaultHasher",
    ];
    let mut found = Vec::new();
    for path in files("src", &["rs"]) {
        for (n, line) in code_lines(&path) {
            for word in banned {
                if line.contains(word) {
                    found.push(format!("{}:{n}: {word}: {}", rel(&path), line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "determinism hazards in src/:\n{}", found.join("\n"));
}

#[test]
fn only_src_wasm_rs_knows_wasm_bindgen() {
    let mut found = Vec::new();
    for path in files("src", &["rs"]) {
        if path.ends_with("src/wasm.rs") {
            continue;
        }
        for (n, line) in code_lines(&path) {
            if line.contains("wasm_bindgen") || line.contains("js_sys") || line.contains("web_sys") {
                found.push(format!("{}:{n}: {}", rel(&path), line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "wasm-bindgen outside src/wasm.rs:\n{}", found.join("\n"));
}

#[test]
fn www_has_no_ambient_randomness_or_clock_and_one_importer_of_pkg() {
    let www = files("www", &["js", "mjs", "html"]);
    assert!(www.iter().any(|p| p.ends_with("www/engine.js")), "www/engine.js exists");
    let mut found = Vec::new();
    for path in &www {
        for (n, line) in code_lines(path) {
            for word in ["Math.random", "Date.now", "new Date("] {
                if line.contains(word) {
                    found.push(format!("{}:{n}: {word}", rel(path)));
                }
            }
            if line.contains("pkg/") && !path.ends_with("www/engine.js") {
                found.push(format!("{}:{n}: imports the wasm package; only www/engine.js may", rel(path)));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_trace_carries_only_fixed_width_integers() {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/trace.rs")).unwrap_or_default();
    let start = text.find("pub enum TraceEvent {").expect("TraceEvent is in src/trace.rs");
    let body = &text[start..start + text[start..].find("\n}").expect("enum ends")];
    for word in ["usize", "isize", "f32", "f64", "String"] {
        assert!(!body.contains(word), "TraceEvent has a {word} field: it differs across targets or is unbounded");
    }
}

#[test]
fn ci_runs_the_readme_test_command() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).expect("README.md");
    let ci = fs::read_to_string(root.join(".ci/run")).expect(".ci/run");
    // The README marks its two commands with `# serve` and `# test` comments in one block.
    let test_cmd = readme
        .lines()
        .find_map(|l| l.strip_suffix("# test").map(str::trim))
        .expect("README has a line ending in `# test`");
    assert!(
        ci.lines().any(|l| l.trim() == test_cmd || l.trim() == format!("exec {test_cmd}")),
        ".ci/run must run the README's test command `{test_cmd}`"
    );
    assert!(readme.lines().any(|l| l.trim_end().ends_with("# serve")), "README has a serve command");
}

/// The page folds the trace by kinds and codes, never by the words meant for people (issue
/// 24): no comparison on an event's `reason`, `outcome`, `change`, `tombstone`, `up`, `active`,
/// `retried`, `note`, `error` or `line` text, and no bare `u32::MAX` (the codes name `NONE`).
#[test]
fn the_page_folds_the_trace_by_codes_not_by_its_words() {
    let fields = ["reason", "outcome", "change", "tombstone", "up", "active", "retried", "note", "error", "line"];
    let mut found = Vec::new();
    for path in files("www", &["js"]) {
        for (n, line) in code_lines(&path) {
            let text = line.replace(' ', "");
            let hit = fields.iter().any(|f| {
                let at = format!("e.{f}");
                ["===", "!==", "==", "!=", ".startsWith(", ".endsWith(", ".includes(", ".match("]
                    .iter()
                    .any(|op| text.contains(&format!("{at}{op}")))
            }) || text.contains("4294967295");
            if hit {
                found.push(format!("{}:{n}: {}", path.display(), line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "compare the event's *_code with the codes (traceCodes) instead:\n{}", found.join("\n"));
}

/// Every reason field the trace writes has its code beside it in the JSON (`reason_code`).
#[test]
fn every_reason_field_in_the_trace_json_has_a_code_key() {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/trace.rs")).unwrap_or_default();
    let mut missing = Vec::new();
    for part in text.split(".reason(\"").skip(1) {
        let name = part.split('"').next().unwrap_or("");
        if !text.contains(&format!("\"{name}\" => \"{name}_code\"")) {
            missing.push(name.to_string());
        }
    }
    assert!(missing.is_empty(), "no `{{name}}_code` key in code_key for: {missing:?}");
}

/// Every rule the code, tests and presets cite (a prefix such as `SQS`, a dash, a number and
/// perhaps a letter) is in `docs/rules.md`, with its text and sources, so that a citation
/// resolves inside the repository (`scripts/rules.py` writes it from the research notes). A
/// sub-item such as item (a) of rule 4 resolves to its rule.
#[test]
fn every_cited_rule_is_in_docs_rules_md() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = fs::read_to_string(root.join("docs/rules.md")).expect("docs/rules.md");
    let prefixes = ["SQS", "RMQ", "ASB", "KP", "KA", "KC", "KT", "BO", "CB", "SG", "QT", "IP"];
    let mut missing = std::collections::BTreeSet::new();
    let mut cited = 0;
    for dir in ["src", "www", "tests", "scenarios"] {
        for path in files(dir, &["rs", "js", "mjs", "json", "html"]) {
            let text = fs::read_to_string(&path).unwrap_or_default();
            for (i, _) in text.match_indices('-') {
                let before = &text[..i];
                let Some(prefix) = prefixes.iter().find(|p| before.ends_with(*p)) else { continue };
                let start = i - prefix.len();
                if before[..start].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric()) {
                    continue;
                }
                let digits: String = text[i + 1..].chars().take_while(char::is_ascii_digit).collect();
                if digits.is_empty() {
                    continue;
                }
                let id = format!("{prefix}-{digits}");
                let letter = text[i + 1 + digits.len()..].chars().next().filter(char::is_ascii_lowercase);
                let sub = letter.map(|l| format!("{id}{l}"));
                let found = |x: &str| rules.contains(&format!("**{x}."));
                cited += 1;
                if !(sub.as_deref().is_some_and(found) || found(&id)) {
                    missing.insert(sub.unwrap_or(id));
                }
            }
        }
    }
    assert!(cited > 100, "citations read: {cited}");
    assert!(missing.is_empty(), "cited but not in docs/rules.md (run scripts/rules.py): {missing:?}");
}

/// The lease models' rules live in `src/lease.rs` (issue 24): no other file matches on
/// `LeaseModel` (a `matches!`, an `if let` or a match arm); they ask it, by a method named for
/// the decision. Building one (validation, a workflow's queues) is not matching.
#[test]
fn only_src_lease_rs_matches_on_the_lease_model() {
    let mut found = Vec::new();
    for path in files("src", &["rs"]) {
        if path.ends_with("src/lease.rs") {
            continue;
        }
        for (n, line) in code_lines(&path) {
            let Some(at) = line.find("LeaseModel::") else { continue };
            let arm = line[at..].contains("=>");
            // `matches!(x, LeaseModel::…)`, `if let LeaseModel::…` or `let LeaseModel::… =`; a
            // construction (`let lease = LeaseModel::Sqs { … }`) is not a test.
            let test = line[..at].contains("matches!(") || line[..at].trim_end().ends_with("let");
            if arm || test {
                found.push(format!("{}:{n}: {}", rel(&path), line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "matches on the lease model outside src/lease.rs:\n{}", found.join("\n"));
}

/// The engine's import graph between the top-level modules of `src/`: `crate::a::…` (and
/// `super::…`) in the code of each file outside its tests and comments. A directory module's
/// files are one module (`stream/log.rs` is part of `stream`). Issue 24: the components sit
/// below the driver (`sim`), and nothing below imports what is above.
fn import_graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let module_of = |p: &Path| -> String {
        let r = p.strip_prefix(&root).expect("under src").with_extension("");
        let s = r.to_string_lossy().replace('/', "::");
        s.strip_suffix("::mod").map_or(s.clone(), str::to_string)
    };
    let exists = |m: &str| {
        let base = root.join(m.replace("::", "/"));
        base.with_extension("rs").exists() || base.join("mod.rs").exists()
    };
    let mut graph = std::collections::BTreeMap::new();
    for path in files("src", &["rs"]) {
        let me = module_of(&path);
        if me == "lib" || me.starts_with("bin") {
            continue;
        }
        let text = fs::read_to_string(&path).expect("readable");
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        let text: String = text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
        let text = text.as_str();
        let parent = me.rsplit_once("::").map_or("", |(p, _)| p).to_string();
        let top = me.split("::").next().unwrap_or("").to_string();
        let mut deps = std::collections::BTreeSet::new();
        for (prefix, base) in [("crate::", String::new()), ("super::", parent.clone())] {
            for (at, _) in text.match_indices(prefix) {
                if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let tail: String = text[at + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let mut target = base.clone();
                for seg in tail.split("::").filter(|s| !s.is_empty()) {
                    let next = if target.is_empty() { seg.to_string() } else { format!("{target}::{seg}") };
                    if !exists(&next) {
                        break;
                    }
                    target = next;
                }
                assert!(
                    !target.is_empty() || prefix == "super::",
                    "{}: `crate::{tail}` names a re-export of lib.rs; name its module",
                    rel(&path)
                );
                let target = target.split("::").next().unwrap_or("").to_string();
                if !target.is_empty() && target != top {
                    deps.insert(target);
                }
            }
        }
        graph.entry(top).or_insert_with(std::collections::BTreeSet::new).extend(deps);
    }
    graph
}

#[test]
fn the_engines_import_graph_has_no_circle() {
    let graph = import_graph();
    // Depth-first search for a back edge; report the circle it closes.
    fn visit<'a>(
        g: &'a std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        m: &'a str,
        path: &mut Vec<&'a str>,
        done: &mut std::collections::BTreeSet<&'a str>,
        circles: &mut Vec<String>,
    ) {
        if let Some(i) = path.iter().position(|p| *p == m) {
            circles.push(format!("{} -> {m}", path[i..].join(" -> ")));
            return;
        }
        if !done.insert(m) {
            return;
        }
        path.push(m);
        for d in g.get(m).into_iter().flatten() {
            visit(g, d, path, done, circles);
        }
        path.pop();
    }
    let (mut done, mut circles) = (std::collections::BTreeSet::new(), Vec::new());
    for m in graph.keys() {
        visit(&graph, m, &mut Vec::new(), &mut done, &mut circles);
    }
    let list: Vec<String> =
        graph.iter().map(|(m, d)| format!("{m} -> {}", d.iter().cloned().collect::<Vec<_>>().join(", "))).collect();
    assert!(
        circles.is_empty(),
        "circles in the import graph of src/:\n{}\n\nthe graph:\n{}",
        circles.join("\n"),
        list.join("\n")
    );
}

/// `text` with its comments, strings, characters, template literals and (in JS) regular
/// expression literals blanked out (newlines kept), so that braces can be counted. Close
/// enough for both languages.
fn code_only(text: &str, js: bool) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let rest = |k: usize| c.get(i + k).copied().unwrap_or('\0');
        let before = out.trim_end().chars().last().unwrap_or('(');
        if js && c[i] == '/' && !matches!(rest(1), '/' | '*') && "(,=:[!&|?{};".contains(before) {
            // A regular expression literal: to the next `/` outside a character class.
            let mut class = false;
            blank(&mut out, c[i]);
            i += 1;
            while i < c.len() && (class || c[i] != '/') && c[i] != '\n' {
                match c[i] {
                    '\\' => {
                        blank(&mut out, c[i]);
                        i += 1;
                    }
                    '[' => class = true,
                    ']' => class = false,
                    _ => {}
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            continue;
        }
        let (open, close): (&str, &str) = match (c[i], rest(1)) {
            ('/', '/') => ("//", "\n"),
            ('/', '*') => ("/*", "*/"),
            ('"', _) => ("\"", "\""),
            ('`', _) => ("`", "`"),
            ('r', '#') if rest(2) == '"' => ("r#\"", "\"#"),
            ('\'', _) if rest(2) == '\'' || (rest(1) == '\\' && (rest(3) == '\'' || rest(1) == '\\')) => ("'", "'"),
            _ => {
                out.push(c[i]);
                i += 1;
                continue;
            }
        };
        for _ in 0..open.len() {
            blank(&mut out, c[i]);
            i += 1;
        }
        let close: Vec<char> = close.chars().collect();
        while i < c.len() && c[i..].iter().take(close.len()).ne(close.iter()) {
            if c[i] == '\\' && open != "//" && open != "/*" && open != "r#\"" {
                blank(&mut out, c[i]);
                i += 1;
            }
            if i < c.len() {
                blank(&mut out, c[i]);
                i += 1;
            }
        }
        for _ in 0..close.len() {
            if i < c.len() {
                blank(&mut out, c[i]);
                i += 1;
            }
        }
    }
    out
}

/// Functions longer than `max` lines in `path` (its code before `#[cfg(test)]`) that carry no
/// `// long: <reason>` among the comments and attributes just above them.
fn long_functions(path: &Path, max: usize) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    let raw: Vec<&str> = text.lines().collect();
    let js = path.extension().is_some_and(|x| x != "rs");
    let code = code_only(text, js);
    let lines: Vec<&str> = code.lines().collect();
    let starts = |l: &str| -> Option<String> {
        let t = l.trim_start();
        let mut t = t;
        while let Some(rest) = ["pub(crate) ", "pub(super) ", "pub ", "const ", "async ", "export ", "static "]
            .iter()
            .find_map(|p| t.strip_prefix(p))
        {
            t = rest;
        }
        let name =
            |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '#').collect::<String>();
        if let Some(rest) = t.strip_prefix("fn ").or_else(|| t.strip_prefix("function ")) {
            return Some(name(rest));
        }
        if js {
            // A method (`name(args) {`) or an arrow function bound to a name.
            let n = name(t);
            let after = t[n.len()..].trim_start();
            let keyword = ["if", "for", "while", "switch", "catch", "return", "else"].contains(&n.as_str());
            if !n.is_empty() && !keyword && after.starts_with('(') && l.trim_end().ends_with('{') && !l.contains('=') {
                return Some(n);
            }
            if let Some(rest) = t.strip_prefix("const ").or_else(|| t.strip_prefix("let ")) {
                if rest.contains("=>") && l.trim_end().ends_with('{') {
                    return Some(name(rest));
                }
            }
        }
        None
    };
    let mut found = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(name) = starts(l) else { continue };
        let (mut depth, mut opened, mut end) = (0i32, false, None);
        for (j, l) in lines.iter().enumerate().skip(i) {
            for ch in l.chars() {
                match ch {
                    '{' => (depth, opened) = (depth + 1, true),
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if opened && depth <= 0 {
                end = Some(j);
                break;
            }
            if !opened && l.trim_end().ends_with(';') {
                break;
            }
        }
        let Some(end) = end else { continue };
        let length = end - i + 1;
        if length <= max {
            continue;
        }
        let above = raw[..i].iter().rev().take_while(|l| {
            let t = l.trim_start();
            t.starts_with("//") || t.starts_with("#[") || t.starts_with("*") || t.starts_with("/**")
        });
        if !above.into_iter().any(|l| l.trim_start().starts_with("// long: ")) {
            found.push(format!("{}:{}: {name} is {length} lines", rel(path), i + 1));
        }
    }
    found
}

/// TigerBeetle's rule, at 60 lines: a function longer than that does more than one thing, or
/// says why it does not in a `// long: <reason>` comment above it.
#[test]
fn no_function_is_longer_than_sixty_lines_without_a_reason() {
    let mut found = Vec::new();
    for path in files("src", &["rs"]).into_iter().chain(files("www", &["js", "mjs"])) {
        found.extend(long_functions(&path, 60));
    }
    assert!(
        found.is_empty(),
        "{} functions over 60 lines without a `// long: <reason>`:\n{}",
        found.len(),
        found.join("\n")
    );
}
