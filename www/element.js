// <broker-lab>: one run in a box, for tutorials and blog posts. Every element on a page shares
// the one wasm module (engine.js loads it once) and runs its own (scenario, seed, inputs).
// It draws with render.js, narrates with caption.js, and never animates while off screen.
//
//   <script type="module" src="https://…/element.js"></script>
//   <broker-lab scenario="lease-models" seed="1" start-at="6000" controls="minimal"></broker-lab>
//
// Attributes, API and events: README.md, "Embed it".
import { ALARMS, counters, FRAME_EVENT_BUDGET, loadEngine, presets, Run, validate } from './engine.js';
import { draw, drawLagChart, drawSwimlanes, fitCanvas } from './render.js';
import { createCaption, lead } from './caption.js';

const css = (file) => new URL(file, import.meta.url).href;
const SPEEDS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 100];
// After a long pause between frames, do not jump ahead by more than this.
const FRAME_WALL_MS_MAX = 250;
// A scenario fetched from a URL is read up to this many characters.
const SCENARIO_CHARS_MAX = 1_000_000;
// The compact panel: what `panel` may name, and how many log lines it keeps.
const PANELS = ['counters', 'sagas', 'lag', 'log'];
const LOG_LINES = 4;
const seconds = (ms) => `${(ms / 1000).toFixed(1)}s`;

/** Author beats from the attribute, "12400: The lease runs out; 20000: …", as scenario markers. */
function parseMarkers(text) {
  return text.split(';').map((part) => {
    const at = part.indexOf(':');
    return { at_ms: Number(part.slice(0, at)), text: part.slice(at + 1).trim() };
  }).filter((m) => Number.isFinite(m.at_ms) && m.at_ms >= 0 && m.text).sort((a, b) => a.at_ms - b.at_ms);
}

export class BrokerLab extends HTMLElement {
  static observedAttributes = ['scenario', 'seed', 'start-at', 'speed', 'controls', 'markers', 'height', 'theme', 'panel'];

  #run = null;
  #cursor = 0;
  #playing = false;
  #speed = 1;
  #raf = 0;
  #lastWall = null;
  #visible = false;
  #dirty = true;
  #seen = {};
  #beatSeen = -1;
  #loads = 0;
  #size = { width: 0, height: 0 };
  #panelSize = { width: 0, height: 0 };
  #palette = null;
  #ui;
  #caption;
  #observers = [];
  /** The scenario as loaded, before the `markers` attribute is applied, and its description. */
  #source = { json: '', description: '' };
  #log = [];
  #recolor;

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    const el = (tag, props = {}, ...kids) => {
      const e = Object.assign(document.createElement(tag), props);
      e.append(...kids);
      return e;
    };
    const links = ['palette.css', 'palette-dark.css', 'caption.css', 'element.css'].map((f) => el('link', { rel: 'stylesheet', href: css(`./${f}`) }));
    const canvas = el('canvas', { part: 'canvas' });
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', 'Messages moving from producers through the broker to consumers');
    this.#caption = createCaption(document, {
      onPrev: () => this.#toBeat(this.#beatIndex() - 1),
      onNext: () => this.nextMarker(),
      onBeat: (k) => this.#toBeat(k),
    }, { about: true });
    this.#caption.root.part = 'caption';
    const panelCanvas = el('canvas', { className: 'panel-chart' });
    panelCanvas.setAttribute('role', 'img');
    const panelText = el('div', { className: 'panel-text' });
    const panel = el('div', { className: 'panel', part: 'panel' }, panelCanvas, panelText);
    panel.hidden = true;
    const play = el('button', { type: 'button', className: 'play', textContent: 'Play' });
    const back = el('button', { type: 'button', className: 'back full', textContent: '|◂', title: 'Step back' });
    const step = el('button', { type: 'button', className: 'step full', textContent: '▸|', title: 'Step one event' });
    const timeline = el('input', { type: 'range', className: 'timeline', min: '0', max: '1', step: 'any', value: '0' });
    timeline.setAttribute('aria-label', 'Simulated time');
    const clock = el('output', { className: 'clock' });
    const speed = el('select', { className: 'speed full', title: 'Speed' });
    speed.setAttribute('aria-label', 'Speed');
    speed.append(...SPEEDS.map((x) => el('option', { value: String(x), textContent: `${x}×`, selected: x === 1 })));
    const error = el('p', { className: 'error', part: 'error' });
    error.setAttribute('role', 'alert');
    const bar = el('div', { className: 'bar', part: 'controls' }, play, back, step, timeline, clock, speed);
    root.append(...links, el('div', { className: 'frame' }, canvas, this.#caption.root, panel, bar, error));
    this.#ui = {
      darkPalette: links[1], canvas, ctx: canvas.getContext('2d'), panel, panelCanvas, panelCtx: panelCanvas.getContext('2d'),
      panelText, play, back, step, timeline, clock, speed, error, bar,
    };

    // Colors come from the stylesheets: read them again once they load, or the scheme changes.
    const recolor = () => { this.#palette = null; this.#show(); };
    for (const l of links) l.addEventListener('load', recolor);
    this.#recolor = recolor;
    play.addEventListener('click', () => (this.#playing ? this.pause() : this.play()));
    back.addEventListener('click', () => this.stepBack());
    step.addEventListener('click', () => this.step());
    timeline.addEventListener('input', () => this.seek(Number(timeline.value)));
    speed.addEventListener('change', () => { this.#speed = Number(speed.value); });
  }

  connectedCallback() {
    const io = new IntersectionObserver((entries) => {
      this.#visible = entries.at(-1).isIntersecting;
      this.#lastWall = null;
      if (this.#visible) this.#schedule();
    });
    io.observe(this);
    const ro = new ResizeObserver(() => this.#fit());
    ro.observe(this.#ui.canvas);
    ro.observe(this.#ui.panelCanvas);
    const scheme = matchMedia('(prefers-color-scheme: dark)');
    scheme.addEventListener('change', this.#recolor);
    this.#observers = [io, ro, { disconnect: () => scheme.removeEventListener('change', this.#recolor) }];
    this.#applyLook();
    // Without a scenario attribute it waits for load().
    if (!this.#run && this.#loads === 0 && this.hasAttribute('scenario')) this.#loadFromAttributes();
  }

  disconnectedCallback() {
    for (const o of this.#observers) o.disconnect();
    this.#observers = [];
    if (this.#raf) cancelAnimationFrame(this.#raf);
    this.#raf = 0;
  }

  attributeChangedCallback(name, old, value) {
    if (!this.isConnected || old === value) return;
    if (name === 'scenario' || name === 'seed') this.#loadFromAttributes();
    else if (name === 'start-at') this.seek(Number(value) || 0);
    else if (name === 'markers') this.#reloadMarkers(old, value);
    else this.#applyLook();
  }

  // ---- The API -------------------------------------------------------------------------

  /** Plays from where the run is; pauses at each beat unless markers="off". */
  play() {
    if (!this.#run || this.#cursor >= this.#run.durationMs) return;
    this.#setPlaying(true);
    this.#lastWall = null;
    this.#schedule();
  }

  pause() {
    this.#setPlaying(false);
  }

  /** Moves to `ms` of simulated time (paused), exactly as if played there. */
  seek(ms) {
    const run = this.#run;
    if (!run || !Number.isFinite(ms)) return;
    this.#setPlaying(false);
    const t = Math.min(Math.max(0, ms), run.durationMs);
    this.#logged(run.seekTime(t), true);
    this.#cursor = t;
    this.#seen = counters(run.view);
    this.#beatSeen = this.#beatIndex();
    this.#show();
  }

  /** One trace event forward. */
  step() {
    const run = this.#run;
    if (!run) return;
    this.#setPlaying(false);
    this.#logged(run.stepEvent(this.#cursor));
    this.#cursor = Math.min(Math.max(this.#cursor, run.nowMs), run.durationMs);
    this.#afterMove();
    this.#show();
  }

  /** Undoes the last step, or goes back one event. */
  stepBack() {
    const run = this.#run;
    if (!run) return;
    this.#setPlaying(false);
    const back = run.stepBack(this.#cursor);
    this.#logged(back.events, true);
    this.#cursor = back.cursor;
    this.#seen = counters(run.view);
    this.#beatSeen = this.#beatIndex();
    this.#show();
  }

  /** Moves to the next beat and announces it with a `marker` event. */
  nextMarker() {
    this.#toBeat(this.#beatIndex() + 1);
  }

  /** Moves to beat `index` (from 0, as `markers` lists them; −1: the start) and announces it. */
  toMarker(index) {
    if (Number.isInteger(index)) this.#toBeat(index);
  }

  /**
   * Loads a scenario: a preset id, a URL of a JSON file, or the JSON itself (text or object).
   * `options`: {seed, inputs: [{p, t, op}] as in a share link, at: ms}. Resolves when ready.
   */
  load(scenario, options = {}) {
    return this.#load(scenario, options);
  }

  /** The beats of this run, [{index, at_ms, text}]: the scenario's, or the author's from the
   * `markers` attribute; `at_ms` is null for a beat the run will not reach. */
  get markers() {
    return this.#run ? this.#run.beatPlan().map(({ index, at_ms, text }) => ({ index, at_ms, text })) : [];
  }

  /** Simulated time now, in ms. */
  get time() {
    return this.#cursor;
  }

  get duration() {
    return this.#run?.durationMs ?? 0;
  }

  get playing() {
    return this.#playing;
  }

  /** The trace hash so far: the same run gives the same hash everywhere. */
  get traceHash() {
    return this.#run?.traceHash() ?? '';
  }

  /** The counters (lost, applied twice, …) now. */
  get counters() {
    return this.#run ? counters(this.#run.view) : {};
  }

  // ---- Inside --------------------------------------------------------------------------

  #markersOn() {
    return this.getAttribute('markers') !== 'off';
  }

  #beatIndex() {
    return this.#run ? this.#run.beatIndex : -1;
  }

  /** A change of the play state always shows: the label, the caption, the bar. */
  #setPlaying(on) {
    if (this.#playing === on) return;
    this.#playing = on;
    this.#show();
  }

  /** To beat `k` (−1: the start), exactly as playing there would stop, and says so. */
  #toBeat(k) {
    const run = this.#run;
    if (!run) return;
    if (k < 0) {
      this.seek(0);
      return;
    }
    const b = run.beatPlan()[k];
    if (!b || b.at_ms === null) return;
    this.seek(b.at_ms);
    this.#emit('marker', { index: k, at_ms: b.at_ms, text: b.text });
  }

  #loadFromAttributes() {
    const seed = this.getAttribute('seed');
    const at = Number(this.getAttribute('start-at'));
    this.#load(this.getAttribute('scenario'), {
      seed: seed === null || seed.trim() === '' ? undefined : Number(seed),
      at: Number.isFinite(at) ? at : 0,
      autoplay: this.hasAttribute('autoplay'),
    }).catch(() => {});
  }

  async #load(scenario, options) {
    const ticket = ++this.#loads;
    try {
      await loadEngine();
      const source = await this.#resolve(scenario);
      const json = this.#withMarkers(source.json);
      const problem = validate(json);
      if (problem) throw new Error(`the scenario is not valid: ${problem}`);
      const seed = options.seed ?? JSON.parse(json).seed ?? 1;
      if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`seed: "${seed}" is not a whole number ≥ 0`);
      if (ticket !== this.#loads) return;
      this.#run?.engine.free();
      const run = new Run(json, seed);
      this.#run = run;
      this.#source = source;
      this.#playing = false;
      this.#cursor = 0;
      this.#log = [];
      this.#ui.error.textContent = '';
      if (options.inputs?.length) run.setInputs(options.inputs.map((i) => ({ position: i.p, time: i.t, op: i.op })));
      this.#logged(run.advanceTo(0).events);
      this.#seen = counters(run.view);
      if (options.at > 0 || options.inputs?.length) this.seek(options.at ?? 0);
      this.#beatSeen = this.#beatIndex();
      this.#ui.timeline.max = String(run.durationMs);
      this.#show();
      this.#emit('ready', { name: run.layout.name, duration_ms: run.durationMs, seed, markers: this.markers });
      if (options.autoplay) this.play();
    } catch (err) {
      if (ticket !== this.#loads) return;
      const message = String(err.message ?? err);
      this.#ui.error.textContent = `Brokerlab: ${message}`;
      this.#emit('error', { message });
      throw err;
    }
  }

  /** The scenario with the author's beats from the `markers` attribute, if it names any. */
  #withMarkers(json) {
    const attr = this.getAttribute('markers');
    if (!attr || attr === 'on' || attr === 'off') return json;
    try {
      return JSON.stringify({ ...JSON.parse(json), markers: parseMarkers(attr) });
    } catch {
      return json; // validate() names the problem with the scenario itself
    }
  }

  /** The `markers` attribute changed: own beats mean another run; on and off only show. */
  #reloadMarkers(old, value) {
    const own = (v) => v !== null && v !== 'on' && v !== 'off';
    if (!this.#run || (!own(old) && !own(value))) {
      this.#show();
      return;
    }
    const { json } = this.#source;
    const inputs = this.#run.inputs.map((i) => ({ p: i.position, t: i.time, op: i.op }));
    this.#load(JSON.parse(json), { seed: this.#run.seed, inputs, at: this.#cursor }).catch(() => {});
  }

  /** The scenario's JSON text and description, from a preset id, a URL, or JSON. */
  async #resolve(scenario) {
    if (typeof scenario === 'object' && scenario !== null) return { json: JSON.stringify(scenario), description: scenario.description ?? '' };
    const text = String(scenario).trim();
    const preset = presets().find((p) => p.id === text);
    if (preset) return { json: preset.json, description: preset.description };
    let json = text;
    if (!text.startsWith('{')) {
      const response = await fetch(new URL(text, document.baseURI));
      if (!response.ok) throw new Error(`${text}: no such preset, and fetching it gave HTTP ${response.status}`);
      json = await response.text();
    }
    if (json.length > SCENARIO_CHARS_MAX) throw new Error(`the scenario is over ${SCENARIO_CHARS_MAX} characters`);
    let description = '';
    try { description = JSON.parse(json).description ?? ''; } catch { /* validate() names the problem */ }
    return { json, description };
  }

  #applyLook() {
    const theme = this.getAttribute('theme');
    this.#ui.darkPalette.media = theme === 'dark' ? 'all' : theme === 'light' ? 'not all' : '(prefers-color-scheme: dark)';
    const controls = this.getAttribute('controls') ?? 'full';
    this.#ui.bar.dataset.controls = controls;
    this.#ui.bar.hidden = controls === 'none';
    const h = this.getAttribute('height');
    this.style.height = h === null ? '' : /^\d+$/.test(h) ? `${h}px` : h;
    const speed = Number(this.getAttribute('speed'));
    if (this.hasAttribute('speed') && speed > 0 && speed <= 1000) {
      this.#speed = speed;
      this.#ui.speed.value = String(SPEEDS.includes(speed) ? speed : 1);
    }
    const panel = this.getAttribute('panel');
    this.#ui.panel.hidden = !PANELS.includes(panel);
    this.#ui.panel.dataset.panel = panel ?? '';
    this.#ui.panelCanvas.hidden = !['sagas', 'lag'].includes(panel);
    this.#palette = null;
    this.#fit();
  }

  #fit() {
    this.#size = fitCanvas(this.#ui.canvas, this.#ui.ctx);
    this.#panelSize = fitCanvas(this.#ui.panelCanvas, this.#ui.panelCtx);
    this.#show();
  }

  #readPalette() {
    const css = getComputedStyle(this.#ui.canvas);
    const v = (name) => css.getPropertyValue(name).trim();
    return {
      canvas: v('--canvas'), ink: v('--ink'), muted: v('--muted'), edge: v('--edge'), node: v('--node'),
      ready: v('--ready'), inflight: v('--inflight'), acked: v('--acked'), danger: v('--danger'),
      focus: v('--focus'), compensate: v('--compensate'), dark: v('--dark') === '1',
    };
  }

  /** Asks for one frame, if one would show anything: never off screen. */
  #schedule() {
    if (!this.#raf && this.#visible) this.#raf = requestAnimationFrame((wall) => this.#frame(wall));
  }

  #show() {
    this.#dirty = true;
    this.#schedule();
  }

  #frame(wall) {
    this.#raf = 0;
    const run = this.#run;
    if (!run || !this.#visible) return;
    if (this.#playing) {
      const dt = this.#lastWall === null ? 0 : Math.min(wall - this.#lastWall, FRAME_WALL_MS_MAX);
      this.#lastWall = wall;
      const target = Math.min(this.#cursor + dt * this.#speed, run.durationMs);
      // A beat on the way: the engine stops at the end of its instant.
      const { events, stopped, beat } = run.advanceTo(target, FRAME_EVENT_BUDGET, this.#markersOn());
      this.#logged(events);
      this.#cursor = stopped || beat !== undefined ? run.nowMs : target;
      if (stopped) this.#ui.error.textContent = `Brokerlab: ${stopped}. Lower the speed to keep up.`;
      if (beat !== undefined || stopped) this.#setPlaying(false);
      this.#afterMove();
    }
    this.#paint();
    if (this.#playing) this.#schedule();
  }

  /** After the run moved forward: announces beats reached, new alarms, and the end. */
  #afterMove() {
    const run = this.#run;
    const plan = run.beatPlan();
    for (let k = this.#beatSeen + 1; k <= this.#beatIndex(); k++) {
      if (plan[k].at_ms !== null) this.#emit('marker', { index: k, at_ms: plan[k].at_ms, text: plan[k].text });
    }
    this.#beatSeen = Math.max(this.#beatSeen, this.#beatIndex());
    const now = counters(run.view);
    for (const name of ALARMS) {
      if (now[name] > (this.#seen[name] ?? 0)) this.#emit('invariant', { name, count: now[name], at_ms: this.#cursor });
    }
    this.#seen = now;
    if (this.#cursor >= run.durationMs) {
      this.#setPlaying(false);
      this.#emit('ended', { at_ms: this.#cursor, trace_hash: run.traceHash() });
    }
  }

  /** Keeps the newest lines for the log panel; `fresh` when the run jumped. */
  #logged(events, fresh = false) {
    if (fresh) this.#log = [];
    for (const e of events.slice(-LOG_LINES)) this.#log.push(e.line);
    this.#log = this.#log.slice(-LOG_LINES);
  }

  #paint() {
    const run = this.#run;
    const ui = this.#ui;
    this.#palette ??= this.#readPalette();
    if (this.#size.width > 0) {
      const motion = !matchMedia('(prefers-reduced-motion: reduce)').matches;
      draw(ui.ctx, run.view, this.#cursor, { ...this.#size, palette: this.#palette, motion });
    }
    if (!this.#dirty && !this.#playing) return;
    this.#dirty = false;
    const ended = this.#cursor >= run.durationMs;
    const label = this.#playing ? 'Pause' : ended ? 'Ended' : 'Play';
    if (ui.play.textContent !== label) ui.play.textContent = label;
    ui.play.setAttribute('aria-pressed', String(this.#playing));
    ui.timeline.max = String(run.durationMs);
    ui.timeline.value = String(this.#cursor);
    ui.clock.value = `t=${seconds(this.#cursor)} / ${seconds(run.durationMs)}`;
    const plan = run.beatPlan();
    ui.bar.dataset.beats = String(plan.length);
    this.#caption.root.hidden = !this.#markersOn() || plan.length === 0;
    if (!this.#caption.root.hidden) {
      const name = run.layout.name;
      const description = this.#source.description;
      this.#caption.show({ plan, index: this.#beatIndex(), intro: `${name}. ${lead(description, 1)}`, description });
    }
    if (!ui.panel.hidden) this.#paintPanel(run);
  }

  /** The one compact panel `panel` names: counters, a saga's swimlanes, lag, or the log. */
  #paintPanel(run) {
    const ui = this.#ui;
    const view = run.view;
    const p = this.#palette;
    const lines = [];
    switch (ui.panel.dataset.panel) {
      case 'counters': {
        const c = counters(view);
        lines.push(`lost ${c.lost} · applied twice ${c.applied_twice} · order violated ${c.order_violated} · duplicates skipped ${c.duplicates_suppressed} · lease expired mid-processing ${c.lease_expired_mid_processing} · in DLQ ${c.dead_lettered}`);
        break;
      }
      case 'sagas': {
        const saga = view.workflows?.sagas[0];
        const info = run.layout.sagas[0];
        if (!saga) {
          lines.push('This scenario has no saga.');
          break;
        }
        if (this.#panelSize.width > 0) drawSwimlanes(ui.panelCtx, saga, info, { ...this.#panelSize, palette: p });
        const s = saga.stats;
        lines.push(`${saga.name}: completed ${s.completed} · compensated ${s.compensated} · compensating ${saga.compensating} · stuck ${s.stuck}`);
        saga.windows.forEach((w, k) => {
          if (!w.open && !w.compensated) return;
          const step = info.steps[k];
          lines.push(`${step.done}, not yet ${step.undone}: ${w.open ? `open now for ${seconds(w.open_longest_ms)}; ` : ''}longest ${seconds(w.longest_ms)}`);
        });
        break;
      }
      case 'lag': {
        if (!run.layout.groups.length) {
          lines.push('This scenario has no consumer group.');
          break;
        }
        if (this.#panelSize.width > 0) drawLagChart(ui.panelCtx, view, { ...this.#panelSize, palette: p });
        lines.push(`lag: ${view.groups.map((g, i) => `${run.layout.groups[i].name} ${g.lag.at(-1)?.lag ?? 0}`).join(' · ')}`);
        break;
      }
      default:
        lines.push(...this.#log);
    }
    const key = lines.join('\n');
    if (ui.panelText.dataset.key === key) return;
    ui.panelText.dataset.key = key;
    ui.panelText.replaceChildren(...lines.map((l) => Object.assign(document.createElement('p'), { textContent: l })));
    ui.panelCanvas.setAttribute('aria-label', lines[0] ?? '');
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }
}

if (!customElements.get('broker-lab')) customElements.define('broker-lab', BrokerLab);
