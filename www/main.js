// Wiring: the page state, the intents, and the single requestAnimationFrame loop.
// Wall time only drives the animation (cursor += wallDelta × speed); the run itself is the
// engine's, a pure function of (scenario, seed).
import {
  counters, diagramArrows, FRAME_EVENT_BUDGET, lagRows, loadEngine, mermaid, messageFaults, presets as listPresets, randomSeed, Run,
  validate,
} from './engine.js';
import {
  draw, drawLagChart, drawLatencyChart, drawMetricsChart, drawSequence, drawSwimlanes, fitCanvas, layoutHeight, sequenceHeight, sequenceHit, targetAt,
} from './render.js';
import { decodeShare, encodeShare } from './share.js';
import {
  bindControls, selectTab, showBeatMarks, showBreakMenu, showBreakState, showScenarios, showTabsFor, showTransport, speedSteps,
} from './controls.js';
import { beatsPastTheEnd, lineOf } from './editor.js';
import { createCaption, lead } from './caption.js';
import {
  appendLog, clearLog, markLog, setupCounts, showBadges, showCounts, showDeadLetters, showDeadReport, showGroups, showInspector, showLatency, showWorkflows,
} from './panels.js';

const DEFAULT_PRESET = 'competing-consumers';
// After a long pause between frames (a background tab), do not jump ahead by more than this.
const FRAME_WALL_MS_MAX = 250;

const doc = document;
const canvas = doc.getElementById('canvas');
const ctx = canvas.getContext('2d');
const lagCanvas = doc.getElementById('lag-chart');
const lagCtx = lagCanvas.getContext('2d');
const metricsCanvas = doc.getElementById('metrics-chart');
const metricsCtx = metricsCanvas.getContext('2d');
const latencyCanvas = doc.getElementById('latency-chart');
const latencyCtx = latencyCanvas.getContext('2d');
const seqCanvas = doc.getElementById('sequence');
const seqCtx = seqCanvas.getContext('2d');
const reducedMotion = matchMedia('(prefers-reduced-motion: reduce)');
const darkScheme = matchMedia('(prefers-color-scheme: dark)');

const state = {
  presets: [],
  /** A scenario that came from a link or the editor: {id: 'custom', name, description, json}. */
  custom: null,
  presetId: DEFAULT_PRESET,
  run: null,
  playing: false,
  speed: 1,
  cursor: 0,
  error: '',
  inspected: undefined,
  /** The selected trace event (its number), shared by the log and the sequence diagram. */
  selectedEvent: undefined,
};
const caption = createCaption(doc, {
  onPrev: () => intents.beat(-1),
  onNext: () => intents.beat(+1),
  onBeat: (k) => intents.toBeat(k),
});
doc.getElementById('caption-slot').prepend(caption.root);
let rafId = 0;
let lastWall = null;
let palette = readPalette();
let size = { width: 0, height: 0 };
let lagSize = { width: 0, height: 0 };
let metricsSize = { width: 0, height: 0 };
let latencySize = { width: 0, height: 0 };
let seqSize = { width: 0, height: 0 };

function readPalette() {
  const css = getComputedStyle(doc.documentElement);
  const v = (name) => css.getPropertyValue(name).trim();
  return {
    canvas: v('--canvas'), ink: v('--ink'), muted: v('--muted'), edge: v('--edge'), node: v('--node'),
    ready: v('--ready'), inflight: v('--inflight'), acked: v('--acked'), danger: v('--danger'),
    focus: v('--focus'), compensate: v('--compensate'), dark: darkScheme.matches,
  };
}

function preset(id) {
  if (id === 'custom' && state.custom) return state.custom;
  return state.presets.find((p) => p.id === id) ?? state.presets[0];
}

function scenarioList() {
  return state.custom ? [...state.presets, state.custom] : state.presets;
}

/** Makes `json` (already valid) the custom scenario and selects it. */
function useCustom(json) {
  const doc0 = JSON.parse(json);
  state.custom = { id: 'custom', name: `Custom: ${doc0.name}`, description: doc0.description ?? '', json, seed: doc0.seed };
  state.presetId = 'custom';
  showScenarios(doc, scenarioList(), state.presetId);
}

/** Opens a shared link: its scenario, seed and moment, or an error that keeps the page. */
async function openLink(fragment) {
  const link = await decodeShare(fragment);
  if (link.json !== undefined) {
    const problem = validate(link.json);
    if (problem) throw new Error(`its scenario is not valid: ${problem}`);
    useCustom(link.json);
  } else if (state.presets.some((p) => p.id === link.preset)) {
    state.presetId = link.preset;
    showScenarios(doc, scenarioList(), state.presetId);
  } else {
    throw new Error(`no preset is named "${link.preset}"`);
  }
  start(link.seed, { fromLink: true });
  state.run.setInputs(link.inputs.map((i) => ({ position: i.p, time: i.t, op: i.op })));
  if (link.t > 0 || link.inputs.length) intents.seek(link.t);
}

/**
 * Starts the current preset afresh with `seed`. A bad seed leaves the current run alone. A new
 * run drops the address's share link (it was another run's), unless it is that link's.
 */
function start(seed, { fromLink = false } = {}) {
  let run;
  try {
    run = new Run(preset(state.presetId).json, seed);
  } catch (err) {
    state.error = String(err.message ?? err);
    refresh();
    return;
  }
  state.run = run;
  state.cursor = 0;
  state.playing = false;
  state.error = '';
  state.inspected = undefined;
  state.selectedEvent = undefined;
  showInspector(doc, undefined);
  // A link copied for the run before is not a link to this one.
  doc.getElementById('share-link').value = '';
  setupCounts(doc, run.layout);
  // Only a scenario with RabbitMQ queues has a RabbitMQ topology to export.
  doc.getElementById('export-rabbitmq').hidden = !run.rabbitmqDefinitions();
  doc.getElementById('description').textContent = preset(state.presetId)?.description ?? '';
  showBreakMenu(doc, run.layout);
  showTabsFor(doc, run.layout);
  // Where the page scrolls (a phone), the canvas is as tall as the layout needs to read.
  canvas.parentElement.style.setProperty('--least', `${layoutHeight(run.layout)}px`);
  doc.body.classList.toggle('has-streams', run.layout.topics.length > 0);
  doc.body.classList.toggle('has-sagas', run.layout.sagas.length > 0);
  doc.body.classList.toggle('has-exchanges', (run.layout.exchanges ?? []).length > 0);
  doc.body.classList.toggle('has-breakers', run.layout.consumers.some((c) => c.breaker));
  doc.body.classList.toggle('has-alerts', (run.layout.alerts ?? []).length > 0);
  followInUrl(fromLink);
  clearLog(doc);
  // Whatever happens at t = 0 (the first sends) is part of the opening picture.
  advance(0);
  refresh();
}

/**
 * Moves the engine to `t` and shows what happened; with `atBeats`, only as far as the next
 * narrative beat. Returns the beat it stopped at, if it did.
 */
function advance(t, atBeats = false, budget = FRAME_EVENT_BUDGET) {
  const run = state.run;
  const { events, stopped, beat } = run.advanceTo(t, budget, atBeats);
  appendLog(doc, events);
  state.cursor = stopped || beat !== undefined ? run.nowMs : t;
  if (stopped) {
    state.error = `${stopped}. Lower the speed to keep up.`;
    pause();
  }
  return beat;
}

/** The address names the preset and the seed (`?scenario=…&seed=…`), so it can be shared as is. */
function followInUrl(keepLink) {
  const run = state.run;
  if (!run) return;
  const url = new URL(location.href);
  if (!keepLink) url.hash = '';
  if (state.presetId === 'custom') url.search = '';
  else url.search = new URLSearchParams({ scenario: state.presetId, seed: String(run.seed) }).toString();
  if (url.href !== location.href) history.replaceState(null, '', url);
}

function play() {
  if (!state.run) return;
  // At the end, Play is Replay: from the start, the same run.
  if (state.cursor >= state.run.durationMs) intents.seek(0);
  state.playing = true;
  state.error = '';
  lastWall = null;
  if (!rafId) rafId = requestAnimationFrame(frame);
  refresh();
}

function pause() {
  state.playing = false;
  refresh();
}

function frame(wall) {
  rafId = 0;
  const run = state.run;
  if (state.playing && run) {
    const dt = lastWall === null ? 0 : Math.min(wall - lastWall, FRAME_WALL_MS_MAX);
    lastWall = wall;
    const target = Math.min(state.cursor + dt * state.speed, run.durationMs);
    // A beat on the way: the engine stops at the end of its instant, so that its narration
    // meets its moment, whatever the speed.
    const beat = advance(target, doc.getElementById('pause-at-beats').checked);
    if (beat !== undefined) state.playing = false;
    if (state.cursor >= run.durationMs) state.playing = false;
  }
  paint();
  if (state.playing) rafId = requestAnimationFrame(frame);
}

/** Draws the canvas and mirrors the state into the DOM. */
function paint() {
  const run = state.run;
  if (run && size.width > 0) {
    // The selected message gets a ring; a request or reply, a line to its requester too.
    const wf = state.inspected === undefined ? undefined : run.message(state.inspected)?.workflow;
    const correlation = state.inspected === undefined ? undefined : {
      msg: state.inspected,
      consumer: wf && wf.kind !== 'saga' ? run.layout.request_reply[wf.system]?.readers[wf.requester] : undefined,
    };
    // A selected saga message puts its saga in focus on the canvas; else the engine chooses.
    run.layout.sagas.forEach((_, b) => run.focusSaga(b, wf?.kind === 'saga' && wf.saga === b ? wf.instance : -1));
    draw(ctx, run.view, state.cursor, { ...size, palette, motion: !reducedMotion.matches, correlation });
  }
  if (run) {
    showCounts(doc, run.view.counts);
    showBadges(doc, { ...counters(run.view), unroutable: run.view.stats?.unroutable ?? 0 }, run.view.firstAt);
    showGroups(doc, run.view, lagRows);
    showWorkflows(doc, run.view, inspect, (canvas, saga, info) => {
      const ctx2 = canvas.getContext('2d');
      drawSwimlanes(ctx2, saga, info, { ...fitCanvas(canvas, ctx2), palette });
    });
    if (run.layout.groups.length && lagSize.width > 0) drawLagChart(lagCtx, run.view, { ...lagSize, palette });
    if (run.layout.queues.length && metricsSize.width > 0) drawMetricsChart(metricsCtx, run.view, { ...metricsSize, palette });
    if (run.layout.queues.length && latencySize.width > 0) drawLatencyChart(latencyCtx, run.view, { ...latencySize, palette });
    showLatency(doc, run.view.stats);
    showDeadLetters(doc, run.view, inspect);
    showDeadReport(doc, run.view, state.cursor);
    showBreakState(doc, run.view);
    if (seqSize.width > 0) {
      drawSequence(seqCtx, run.view.sequence, { ...seqSize, palette, selected: state.selectedEvent, msg: state.inspected });
    }
    markLog(doc, state.selectedEvent, state.inspected);
    if (state.inspected !== undefined) {
      showInspector(doc, run.message(state.inspected), run.historyOf(state.inspected));
    }
    showFaultButtons(state.inspected === undefined ? [] : messageFaults(run.view, state.inspected, state.cursor));
  }
  const hash = doc.getElementById('trace-hash');
  const h = run ? `hash ${run.traceHash()}` : '';
  if (hash.value !== h) hash.value = h;
  showTransport(doc, {
    playing: state.playing,
    speed: state.speed,
    cursor: state.cursor,
    duration: run ? run.durationMs : 0,
    seed: run ? run.seed : '',
    error: state.error,
  });
  if (run) {
    const plan = run.beatPlan();
    const description = preset(state.presetId)?.description ?? '';
    caption.root.hidden = plan.length === 0;
    caption.show({ plan, index: run.beatIndex, intro: lead(description), description });
    showBeatMarks(doc, plan, run.durationMs);
  }
}

/** Saves `text` as a file the browser downloads. */
function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = doc.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** Repaints once, on the next frame, unless the loop is already running. */
function refresh() {
  if (!rafId) rafId = requestAnimationFrame(frame);
}

/** Shows one message in the inspector, in view, and keeps it up to date while the run moves. */
function inspect(id) {
  state.inspected = id;
  state.selectedEvent = undefined;
  selectTab(doc, 'tab-inspector');
  doc.getElementById('inspector-section').scrollIntoView({ block: 'nearest' });
  refresh();
}

/**
 * The inspected message's faults as buttons under it (the keyboard's way to them): each a
 * live input, recorded as the Break menu records it. Rebuilt only when they change.
 */
function showFaultButtons(faults) {
  const box = doc.getElementById('inspector-actions');
  const key = faults.map((f) => f.label).join('|');
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren(...faults.map((f) => {
    const b = doc.createElement('button');
    b.type = 'button';
    b.textContent = f.label;
    b.addEventListener('click', () => intents.breakIt(JSON.stringify(f.op)));
    return b;
  }));
}

/**
 * Faults by touch: a small menu at what was clicked on the canvas, with only the Break
 * actions that apply to it now (a consumer's crash or restart, a requester's kill, a
 * member's crash or restart; a message's delivery lost or made again). Each is the same
 * recorded live input as in the Break menu. ↑ ↓ move, Escape closes.
 */
function openTouchMenu(target, x, y) {
  const run = state.run;
  const menu = doc.getElementById('touch-menu');
  const items = [];
  let title = '';
  if (target.kind === 'message') {
    title = `m${target.id}`;
    for (const f of messageFaults(run.view, target.id, state.cursor)) items.push({ label: f.label, op: JSON.stringify(f.op) });
    if (!items.length) {
      closeTouchMenu();
      inspect(target.id);
      return;
    }
    items.push({ label: `Inspect m${target.id}`, inspect: target.id });
  } else {
    const rr = run.layout.request_reply.flatMap((r, s) => r.readers.map((c, i) => ({ c, s, i })));
    const mine = (d) => (target.kind === 'consumer'
      ? d.consumer === String(target.index) || rr.some((r) => r.c === target.index && d.system === String(r.s) && d.requester === String(r.i))
      : target.kind === 'dependency' ? d.dependency === String(target.index)
      : d.group === String(target.group) && d.member === String(target.member));
    for (const o of doc.getElementById('break-what').options) if (mine(o.dataset) && !o.disabled) items.push({ label: o.textContent, op: o.value });
    title = target.kind === 'consumer' ? run.layout.consumers[target.index].name
      : target.kind === 'dependency' ? run.layout.dependencies[target.index]
      : `${run.layout.groups[target.group].name}-${target.member + 1}`;
  }
  if (!items.length) {
    closeTouchMenu();
    return;
  }
  const head = doc.createElement('p');
  head.className = 'touch-menu-title';
  head.textContent = title;
  menu.replaceChildren(head, ...items.map((it) => {
    const b = doc.createElement('button');
    b.type = 'button';
    b.setAttribute('role', 'menuitem');
    b.textContent = it.label;
    b.addEventListener('click', () => {
      closeTouchMenu();
      if (it.op) intents.breakIt(it.op);
      else inspect(it.inspect);
    });
    return b;
  }));
  menu.hidden = false;
  const box = menu.parentElement.getBoundingClientRect();
  menu.style.left = `${Math.max(4, Math.min(x, box.width - menu.offsetWidth - 4))}px`;
  menu.style.top = `${Math.max(4, Math.min(y, box.height - menu.offsetHeight - 4))}px`;
  menu.querySelector('button').focus();
}

function closeTouchMenu() {
  const menu = doc.getElementById('touch-menu');
  if (menu.hidden) return;
  const had = menu.contains(doc.activeElement);
  menu.hidden = true;
  menu.replaceChildren();
  if (had) canvas.focus();
}

/** Selects one trace event in the log and the diagram, and its message (if any) everywhere. */
function selectEvent(n, msg) {
  state.selectedEvent = n;
  if (msg !== undefined) state.inspected = msg;
  refresh();
}

const intents = {
  togglePlay: () => (state.playing ? pause() : play()),
  step: () => {
    const run = state.run;
    if (!run) return;
    pause();
    const events = run.stepEvent(state.cursor);
    state.cursor = Math.min(Math.max(state.cursor, run.nowMs), run.durationMs);
    appendLog(doc, events);
    refresh();
  },
  stepBack: () => {
    const run = state.run;
    if (!run) return;
    pause();
    const { events, cursor } = run.stepBack(state.cursor);
    state.cursor = cursor;
    clearLog(doc);
    appendLog(doc, events);
    refresh();
  },
  /** The next (+1) or previous (−1) beat from the one reached. */
  beat: (direction) => {
    const run = state.run;
    if (run) intents.toBeat(run.beatIndex + direction);
  },
  /** Beat `k`'s moment, exactly as playing there stops (−1: the start, before any beat). */
  toBeat: (k) => {
    const run = state.run;
    if (!run) return;
    if (k < 0) {
      intents.seek(0);
      return;
    }
    const b = run.beatPlan()[k];
    if (!b || (b.at_ms === null && b.missed)) return;
    if (b.at_ms !== null) {
      intents.seek(b.at_ms);
      return;
    }
    // Not foreseen (the look ahead ran out of budget): play there, beat by beat, as fast as
    // it goes; a budget stop says so and leaves the run where it got to.
    pause();
    while (run.beatIndex < k && state.cursor < run.durationMs) {
      if (advance(run.durationMs, true, FRAME_EVENT_BUDGET * 10) === undefined) break;
    }
    refresh();
  },
  seek: (t) => {
    const run = state.run;
    if (!run) return;
    pause();
    const target = Math.min(Math.max(0, t), run.durationMs);
    const events = run.seekTime(target);
    state.cursor = target;
    clearLog(doc);
    appendLog(doc, events);
    refresh();
  },
  setSpeed: (x) => {
    state.speed = x;
    refresh();
  },
  changeSpeed: (direction) => {
    const steps = speedSteps(doc);
    const i = steps.indexOf(state.speed);
    state.speed = steps[Math.min(steps.length - 1, Math.max(0, i + direction))];
    refresh();
  },
  reset: (seedText) => {
    const seed = Number(seedText);
    if (seedText.trim() === '' || !Number.isSafeInteger(seed) || seed < 0) {
      state.error = `The seed "${seedText}" is not a whole number from 0 up: the run was not changed. Type a number such as 7.`;
      refresh();
      return;
    }
    start(seed);
  },
  randomSeed: () => start(randomSeed()),
  openEditor: () => {
    const box = doc.getElementById('editor-text');
    box.value = preset(state.presetId).json;
    intents.editScenario(box.value);
    doc.getElementById('editor-dialog').showModal();
    box.focus();
  },
  /**
   * Checks the text as it is typed, with the error at its path and line; beats past the end
   * are a warning, not an error. The running page is left alone either way.
   */
  editScenario: (json) => {
    const problem = validate(json);
    const line = problem ? lineOf(json, problem) : undefined;
    const late = problem ? [] : beatsPastTheEnd(json);
    const status = doc.getElementById('editor-status');
    status.textContent = problem ? `${problem}${line ? ` (line ${line})` : ''}`
      : late.length ? `Valid, but ${late.length === 1 ? 'beat' : 'beats'} ${late.join(', ')} ${late.length === 1 ? 'is' : 'are'} past the end of the run and will not be reached. Run this anyway, or move them.`
        : 'Valid: press Run this to run it.';
    status.classList.toggle('invalid', Boolean(problem));
    status.classList.toggle('warning', late.length > 0);
    doc.getElementById('editor-run').disabled = Boolean(problem);
    const count = json.split('\n').length;
    const numbers = doc.getElementById('editor-lines');
    numbers.replaceChildren(...Array.from({ length: count }, (_, i) => {
      const span = doc.createElement('span');
      span.textContent = `${i + 1}\n`;
      if (i + 1 === line) span.className = 'bad';
      return span;
    }));
  },
  runEdited: (json) => {
    if (validate(json)) return;
    useCustom(json);
    doc.getElementById('editor-dialog').close();
    start(preset('custom').seed ?? 1);
  },
  exportTrace: () => {
    const run = state.run;
    if (!run) return;
    const events = run.traceUpTo(state.cursor);
    download(`brokerlab-trace-${run.seed}.json`, 'application/json', `${JSON.stringify(events, null, 1)}\n`);
  },
  /** The scenario's RabbitMQ topology, as the broker's definitions file. */
  exportRabbitmq: () => {
    const text = state.run?.rabbitmqDefinitions();
    if (text) download('rabbitmq-definitions.json', 'application/json', text);
  },
  /** The run so far as a sequence diagram, drawn in a dialog, with its Mermaid text. */
  showDiagram: () => {
    const run = state.run;
    if (!run) return;
    const events = run.traceUpTo(state.cursor);
    const { arrows } = diagramArrows(run.layout, events);
    const parties = new Set(arrows.flatMap((a) => [a.from.id, a.to.id]));
    const c = doc.getElementById('diagram');
    c.style.width = `${Math.max(560, parties.size * 120)}px`;
    c.style.height = `${sequenceHeight(arrows.length)}px`;
    const dialog = doc.getElementById('diagram-dialog');
    dialog.showModal();
    const context = c.getContext('2d');
    drawSequence(context, arrows, { ...fitCanvas(c, context), palette });
    doc.getElementById('diagram-text').value = mermaid(run.layout, events);
    doc.getElementById('share-menu').open = false;
  },
  exportDiagram: () => {
    const run = state.run;
    if (!run) return;
    download(`brokerlab-sequence-${run.seed}.mmd`, 'text/plain', doc.getElementById('diagram-text').value || mermaid(run.layout, run.traceUpTo(state.cursor)));
  },
  selectEvent,
  /** The next (+1) or previous (−1) arrow of the sequence diagram from the selected one. */
  moveSelection: (direction) => {
    const seq = state.run?.view.sequence ?? [];
    if (seq.length === 0) return;
    const i = seq.findIndex((a) => a.n === state.selectedEvent);
    const next = seq[i < 0 ? seq.length - 1 : Math.min(seq.length - 1, Math.max(0, i + direction))];
    selectEvent(next.n, next.msg);
  },
  /** A badge: to the first moment its counter moved. */
  jump: (badge) => {
    const t = state.run?.view.firstAt[badge];
    if (t !== undefined) intents.seek(t);
  },
  /** A live input: applied now, recorded, and replayed by every seek and shared link. */
  breakIt: (op) => {
    const run = state.run;
    if (!run || !op) return;
    const option = [...doc.getElementById('break-what').options].find((o) => o.value === op);
    if (option?.disabled) {
      state.error = `${option.textContent}: ${option.title.replace('Cannot now: ', 'cannot now, ')}.`;
      refresh();
      return;
    }
    try {
      const events = run.applyInput(op);
      appendLog(doc, events);
      state.error = '';
      // What the input set off at this same instant happens now too, as a replay of the
      // link would have it: the run always stands after every event up to the cursor.
      advance(state.cursor);
    } catch (err) {
      state.error = String(err.message ?? err);
    }
    refresh();
  },
  share: async () => {
    const run = state.run;
    if (!run) return;
    const link = `${location.origin}${location.pathname}#${await shareFragment(run)}`;
    const box = doc.getElementById('share-link');
    box.value = link;
    box.select();
    navigator.clipboard?.writeText(link).catch(() => {});
  },
  /** Snippets for this run at this moment: an element, and an iframe with the inputs too. */
  embed: async () => {
    const run = state.run;
    if (!run) return;
    const p = preset(state.presetId);
    const fragment = await shareFragment(run);
    const base = new URL('.', location.href).href;
    const attr = (text) => String(text).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
    const scenario = state.presetId === 'custom' ? p.json.replace(/\s*\n\s*/g, ' ') : p.id;
    doc.getElementById('embed-element').value = `<script type="module" src="${base}element.js"></script>\n`
      + `<broker-lab scenario="${attr(scenario)}" seed="${run.seed}" start-at="${Math.round(state.cursor)}" controls="full"></broker-lab>`;
    doc.getElementById('embed-iframe').value = `<iframe src="${base}embed.html#${fragment}"\n`
      + `  title="Brokerlab: ${attr(p.name)}" width="800" height="440" loading="lazy"></iframe>`;
    doc.getElementById('embed-note').textContent = run.inputs.length
      ? `This run has ${run.inputs.length} recorded break(s): the iframe replays them; the element shows the scenario without them.`
      : 'To drive the iframe from your page by postMessage, add ?allow=<your origin> before the #.';
    doc.getElementById('embed-dialog').showModal();
  },
  selectScenario: (id) => {
    state.presetId = id;
    start(preset(id).seed ?? 1);
  },
};

/** The share-link fragment for this run at this moment: scenario, seed, inputs and time. */
function shareFragment(run) {
  const p = preset(state.presetId);
  const inputs = run.inputs.map((i) => ({ p: i.position, t: i.time, op: i.op }));
  return encodeShare(state.presetId === 'custom'
    ? { json: p.json, seed: run.seed, t: state.cursor, inputs }
    : { preset: p.id, seed: run.seed, t: state.cursor, inputs });
}

function resize() {
  size = fitCanvas(canvas, ctx);
  lagSize = fitCanvas(lagCanvas, lagCtx);
  metricsSize = fitCanvas(metricsCanvas, metricsCtx);
  latencySize = fitCanvas(latencyCanvas, latencyCtx);
  seqSize = fitCanvas(seqCanvas, seqCtx);
  refresh();
}

// long: the page's start, in the order it must happen: engine, catalog, controls, link, first frame
async function main() {
  await loadEngine();
  state.presets = listPresets().map((p) => ({ ...p, seed: JSON.parse(p.json).seed }));
  showScenarios(doc, scenarioList(), state.presetId);
  bindControls(doc, intents);
  const observer = new ResizeObserver(resize);
  observer.observe(canvas);
  observer.observe(lagCanvas);
  observer.observe(metricsCanvas);
  observer.observe(latencyCanvas);
  observer.observe(seqCanvas);
  canvas.addEventListener('click', (e) => {
    if (!state.run) return;
    const rect = canvas.getBoundingClientRect();
    const [x, y] = [e.clientX - rect.left, e.clientY - rect.top];
    const target = targetAt(state.run.view, rect.width, rect.height, x, y, state.cursor, !reducedMotion.matches);
    if (target) openTouchMenu(target, x, y);
    else closeTouchMenu();
  });
  const menu = doc.getElementById('touch-menu');
  menu.addEventListener('keydown', (e) => {
    const items = [...menu.querySelectorAll('button')];
    const i = items.indexOf(doc.activeElement);
    if (e.key === 'Escape') closeTouchMenu();
    else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') items[(i + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length].focus();
    else return;
    e.preventDefault();
    e.stopPropagation();
  });
  doc.addEventListener('pointerdown', (e) => {
    if (!menu.hidden && !menu.contains(e.target) && e.target !== canvas) closeTouchMenu();
  });
  seqCanvas.addEventListener('click', (e) => {
    if (!state.run) return;
    const rect = seqCanvas.getBoundingClientRect();
    const seq = state.run.view.sequence;
    const n = sequenceHit(seq, rect.width, rect.height, e.clientX - rect.left, e.clientY - rect.top);
    if (n !== undefined) selectEvent(n, seq.find((a) => a.n === n).msg);
  });
  darkScheme.addEventListener('change', () => {
    palette = readPalette();
    refresh();
  });
  reducedMotion.addEventListener('change', refresh);
  // ?scenario=<id>&seed=<n> opens a preset with a seed; a bad one says so and opens the default.
  const query = new URLSearchParams(location.search);
  const asked = query.get('scenario');
  const seedAsked = query.get('seed');
  let seed;
  if (asked !== null && state.presets.some((p) => p.id === asked)) state.presetId = asked;
  else if (asked !== null) state.error = `There is no scenario "${asked}": showing ${preset(DEFAULT_PRESET).name} instead. Pick one from the Scenario menu.`;
  if (seedAsked !== null) {
    const n = Number(seedAsked);
    if (seedAsked.trim() !== '' && Number.isSafeInteger(n) && n >= 0) seed = n;
    else state.error = `The seed "${seedAsked}" in the address is not a whole number from 0 up: using the scenario's own.`;
  }
  showScenarios(doc, scenarioList(), state.presetId);
  const error = state.error;
  start(seed ?? preset(state.presetId).seed ?? 1, { fromLink: location.hash.length > 1 });
  state.error = error;
  await openHash();
  // A share link pasted into this tab's address bar opens here, as a fresh load would.
  addEventListener('hashchange', () => { openHash(); });
  // A read-only window on the run, for tests and the curious: the view model the renderer
  // draws from, the moment shown, and the canvas's size.
  globalThis.brokerlab = Object.freeze({
    view: () => state.run?.view,
    cursor: () => state.cursor,
    canvas: () => ({ ...size, motion: !reducedMotion.matches }),
  });
  doc.body.dataset.ready = 'true';
}

/** Opens the share link in the address's fragment, if any, keeping the page if it is damaged. */
async function openHash() {
  if (location.hash.length <= 1) return;
  try {
    await openLink(location.hash.slice(1));
  } catch (err) {
    state.error = `This shared link cannot be opened: ${err.message ?? err}. Showing a preset instead; ask for the link again, or copy all of it.`;
    refresh();
  }
}

main().catch((err) => {
  doc.getElementById('error').textContent = `Brokerlab could not start: ${err.message ?? err}`;
  throw err;
});
