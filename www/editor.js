// The scenario editor's helpers: where an error is in the text, and which beats a run will
// not reach. Pure functions of the text; no DOM, no engine.

// A scenario is at most 1 MiB: the scanner stops well within that.
const SCAN_STEPS_MAX = 2_000_000;

/**
 * The line of the text an error is about: a syntax error's own line, else the line where the
 * value at its path (`consumers[1].prefetch: …`) starts, or its nearest parent's.
 */
export function lineOf(text, problem) {
  const syntax = problem.match(/at line (\d+) column \d+/);
  if (syntax) return Number(syntax[1]);
  const lines = pathLines(text);
  let path = problem.slice(0, Math.max(0, problem.indexOf(':')));
  while (path) {
    if (lines.has(path)) return lines.get(path);
    path = path.replace(/(\.[^.[\]]*|\[\d+\])$/, '');
  }
  return undefined;
}

/** Every value's path in a JSON text (`a.b[2].c`), with the line its key or element starts on. */
export function pathLines(text) {
  const out = new Map();
  let i = 0;
  let line = 1;
  let steps = 0;
  const more = () => i < text.length && steps++ < SCAN_STEPS_MAX;
  const space = () => {
    while (more() && /\s/.test(text[i])) {
      if (text[i] === '\n') line++;
      i++;
    }
  };
  const string = () => {
    let s = '';
    i++;
    while (more() && text[i] !== '"') {
      if (text[i] === '\\') {
        s += text[i + 1];
        i += 2;
      } else {
        s += text[i++];
      }
    }
    i++;
    return s;
  };
  const value = (path) => {
    space();
    if (text[i] === '{') {
      i++;
      space();
      while (more() && text[i] !== '}') {
        space();
        const at = line;
        const key = string();
        const inner = path ? `${path}.${key}` : key;
        out.set(inner, at);
        space();
        i++; // the colon
        value(inner);
        space();
        if (text[i] === ',') i++;
        space();
      }
      i++;
    } else if (text[i] === '[') {
      i++;
      space();
      for (let k = 0; more() && text[i] !== ']'; k++) {
        space();
        out.set(`${path}[${k}]`, line);
        value(`${path}[${k}]`);
        space();
        if (text[i] === ',') i++;
        space();
      }
      i++;
    } else if (text[i] === '"') {
      string();
    } else {
      while (more() && !/[\s,}\]]/.test(text[i])) i++;
    }
  };
  value('');
  return out;
}

/** The beats (counted from 1) whose moment is past the scenario's end: a run will not reach them. */
export function beatsPastTheEnd(json) {
  try {
    const s = JSON.parse(json);
    return (s.markers ?? []).flatMap((m, k) => (typeof m.at_ms === 'number' && m.at_ms > s.duration_ms ? [k + 1] : []));
  } catch {
    return [];
  }
}
