#!/usr/bin/env python3
"""Writes docs/rules.md: every rule the code cites (SQS-5, RMQ-52, …), copied with its title,
text and sources from ../shared/semantics.md, so that a reader can follow a citation inside
the repository. A sub-item (SQS-4a, item (a) of SQS-4) is found under its rule. Run it when the code cites a new rule; tests/tidy.rs checks that every cited
id is there."""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ID = re.compile(r"\b((?:SQS|RMQ|ASB|KP|KA|KC|KT|BO|CB|SG|QT|IP)-\d+[a-z]?)\b")

def cited():
    ids = set()
    for d in ("src", "www", "tests", "scenarios"):
        for p in (ROOT / d).rglob("*"):
            if p.is_file() and p.suffix in (".rs", ".js", ".mjs", ".json", ".html") and "pkg" not in p.parts:
                ids.update(ID.findall(p.read_text(errors="ignore")))
    return ids

def blocks(text):
    """Each top-level `- **ID. …` bullet with its indented continuation lines."""
    out, cur, cur_id = {}, [], None
    for line in text.splitlines():
        m = re.match(r"- \*\*((?:SQS|RMQ|ASB|KP|KA|KC|KT|BO|CB|SG|QT|IP)-\d+[a-z]?)\.", line)
        if m or (cur_id and line and not line.startswith((" ", "\t"))):
            if cur_id:
                out.setdefault(cur_id, "\n".join(cur).rstrip())
            cur, cur_id = ([line], m.group(1)) if m else ([], None)
        elif cur_id:
            cur.append(line)
    if cur_id:
        out.setdefault(cur_id, "\n".join(cur).rstrip())
    return out

def order(i):
    p, n = i.split("-")
    return (p, int(re.match(r"\d+", n).group()), n)

def main():
    src = (ROOT.parent / "shared" / "semantics.md").read_text()
    found = blocks(src)
    # A sub-item (SQS-4a: item (a) of SQS-4) is its rule's, unless it is a rule of its own (KC-2a).
    base = lambda i: i if i in found else re.sub(r"[a-z]$", "", i)
    ids = sorted({base(i) for i in cited()}, key=order)
    missing = [i for i in ids if i not in found]
    if missing:
        sys.exit(f"cited but not in semantics.md: {missing}")
    head = src.split("---", 1)[0]
    snapshots = head[head.index("- **Sources**"):head.index("- **Units.**")].rstrip()
    lines = [
        "# The rules Brokerlab cites",
        "",
        "Every rule id the code, tests and presets cite, copied with its text, evidence tags and",
        "sources from the project's research notes on messaging semantics (`shared/semantics.md`),",
        "so that a citation can be followed inside this repository (a sub-item such as SQS-4a is",
        "item (a) of SQS-4). Written by `scripts/rules.py`; `tests/tidy.rs` checks that every cited",
        "id is here.",
        "",
        "Evidence tags: `[DOC]` vendor documentation; `[SRC]` the product's source code; `[TEST]` an",
        "upstream unit test; `[RECOMP]` recomputed independently; `[EMU]` an emulator's behaviour;",
        "`[INFER]` inferred from the documented text; `[UNVERIFIED]` not checked against a primary",
        "source.",
        "",
        snapshots,
        "",
    ]
    prefix = None
    for i in ids:
        p = i.split("-")[0]
        if p != prefix:
            lines += ["", f"## {p}", ""]
            prefix = p
        lines.append(found[i])
    (ROOT / "docs" / "rules.md").write_text("\n".join(lines) + "\n")
    print(f"docs/rules.md: {len(ids)} rules")

main()
