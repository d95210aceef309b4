// <broker-lab>: one run in a box, for tutorials and blog posts. Every element on a page shares
// the one wasm module (engine.js loads it once) and runs its own (scenario, seed, inputs).
// It draws with render.js, and it never animates while it is off screen.
//
//   <script type="module" src="https://…/element.js"></script>
//   <broker-lab scenario="lease-models" seed="1" start-at="6000" controls="minimal"></broker-lab>
//
// Attributes, API and events: README.md, "Embed it".
import { ALARMS, counters, loadEngine, presets, Run, validate } from './engine.js';
import { draw } from './render.js';

const css = (file) => new URL(file, import.meta.url).href;
const SPEEDS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 100];
// After a long pause between frames, do not jump ahead by more than this.
const FRAME_WALL_MS_MAX = 250;
// A scenario fetched from a URL is read up to this many characters.
const SCENARIO_CHARS_MAX = 1_000_000;
const seconds = (ms) => `${(ms / 1000).toFixed(1)}s`;

/** Author markers from the attribute: "12400: The lease runs out; 20000: …". */
function parseMarkers(text) {
  return text.split(';').map((part) => {
    const at = part.indexOf(':');
    return { at_ms: Number(part.slice(0, at)), text: part.slice(at + 1).trim() };
  }).filter((m) => Number.isFinite(m.at_ms) && m.at_ms >= 0).sort((a, b) => a.at_ms - b.at_ms);
}

export class BrokerLab extends HTMLElement {
  static observedAttributes = ['scenario', 'seed', 'start-at', 'speed', 'controls', 'markers', 'height', 'theme'];

  #run = null;
  #cursor = 0;
  #playing = false;
  #speed = 1;
  #raf = 0;
  #lastWall = null;
  #visible = false;
  #dirty = true;
  #seen = {};
  #loads = 0;
  #size = { width: 0, height: 0 };
  #palette = null;
  #ui;
  #observers = [];
  #description = '';
  #recolor;

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    const el = (tag, props = {}, ...kids) => {
      const e = Object.assign(document.createElement(tag), props);
      e.append(...kids);
      return e;
    };
    const links = ['palette.css', 'palette-dark.css', 'element.css'].map((f) => el('link', { rel: 'stylesheet', href: css(`./${f}`) }));
    const narration = el('p', { className: 'narration', part: 'narration' });
    narration.setAttribute('aria-live', 'polite');
    const canvas = el('canvas', { part: 'canvas' });
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', 'Messages moving from producers through the broker to consumers');
    const play = el('button', { type: 'button', className: 'play', textContent: 'Play' });
    const back = el('button', { type: 'button', className: 'back full', textContent: '|◂', title: 'Step back' });
    const step = el('button', { type: 'button', className: 'step full', textContent: '▸|', title: 'Step one event' });
    const timeline = el('input', { type: 'range', className: 'timeline', min: '0', max: '1', step: 'any', value: '0' });
    timeline.setAttribute('aria-label', 'Simulated time');
    const clock = el('output', { className: 'clock' });
    const beat = el('button', { type: 'button', className: 'beat full', textContent: 'beat ›', title: 'On to the next beat' });
    const speed = el('select', { className: 'speed full', title: 'Speed' });
    speed.setAttribute('aria-label', 'Speed');
    speed.append(...SPEEDS.map((x) => el('option', { value: String(x), textContent: `${x}×`, selected: x === 1 })));
    const error = el('p', { className: 'error', part: 'error' });
    error.setAttribute('role', 'alert');
    const bar = el('div', { className: 'bar', part: 'controls' }, play, back, step, timeline, clock, beat, speed);
    root.append(...links, el('div', { className: 'frame' }, narration, canvas, bar, error));
    this.#ui = { darkPalette: links[1], narration, canvas, ctx: canvas.getContext('2d'), play, back, step, timeline, clock, beat, speed, error, bar };

    // Colors come from the stylesheets: read them again once they load, or the scheme changes.
    const recolor = () => { this.#palette = null; this.#show(); };
    for (const l of links) l.addEventListener('load', recolor);
    this.#recolor = recolor;
    play.addEventListener('click', () => (this.#playing ? this.pause() : this.play()));
    back.addEventListener('click', () => this.stepBack());
    step.addEventListener('click', () => this.step());
    beat.addEventListener('click', () => this.nextMarker());
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
    else if (name === 'markers') this.#useMarkers();
    else this.#applyLook();
  }

  // ---- The API -------------------------------------------------------------------------

  /** Plays from where the run is; pauses at each beat unless markers="off". */
  play() {
    if (!this.#run || this.#cursor >= this.#run.durationMs) return;
    this.#playing = true;
    this.#lastWall = null;
    this.#schedule();
  }

  pause() {
    this.#playing = false;
    this.#show();
  }

  /** Moves to `ms` of simulated time (paused), exactly as if played there. */
  seek(ms) {
    const run = this.#run;
    if (!run || !Number.isFinite(ms)) return;
    this.#playing = false;
    const t = Math.min(Math.max(0, ms), run.durationMs);
    run.seekTime(t);
    this.#cursor = t;
    this.#seen = counters(run.view);
    this.#show();
  }

  /** One trace event forward. */
  step() {
    const run = this.#run;
    if (!run) return;
    this.#playing = false;
    run.stepEvent(this.#cursor);
    this.#cursor = Math.min(Math.max(this.#cursor, run.nowMs), run.durationMs);
    this.#afterMove();
    this.#show();
  }

  /** Undoes the last step, or goes back one event. */
  stepBack() {
    const run = this.#run;
    if (!run) return;
    this.#playing = false;
    this.#cursor = run.stepBack(this.#cursor).cursor;
    this.#seen = counters(run.view);
    this.#show();
  }

  /** Moves to the next beat and announces it with a `marker` event. */
  nextMarker() {
    const m = this.markers.find((x) => x.at_ms > this.#cursor);
    if (!m) return;
    this.seek(m.at_ms);
    this.#emit('marker', { ...m, index: this.markers.indexOf(m) });
  }

  /**
   * Loads a scenario: a preset id, a URL of a JSON file, or the JSON itself (text or object).
   * `options`: {seed, inputs: [{p, t, op}] as in a share link, at: ms}. Resolves when ready.
   */
  load(scenario, options = {}) {
    return this.#load(scenario, options);
  }

  /** The beats of this run: the scenario's, or the author's from the `markers` attribute. */
  get markers() {
    return this.#markerList ?? [];
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

  #markerList = null;

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
      const { json, description } = await this.#resolve(scenario);
      const problem = validate(json);
      if (problem) throw new Error(`the scenario is not valid: ${problem}`);
      const seed = options.seed ?? JSON.parse(json).seed ?? 1;
      if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`seed: "${seed}" is not a whole number ≥ 0`);
      if (ticket !== this.#loads) return;
      this.#run?.engine.free();
      const run = new Run(json, seed);
      this.#run = run;
      this.#description = description;
      this.#playing = false;
      this.#cursor = 0;
      this.#ui.error.textContent = '';
      this.#useMarkers();
      if (options.inputs?.length) run.setInputs(options.inputs.map((i) => ({ position: i.p, time: i.t, op: i.op })));
      run.advanceTo(0);
      this.#seen = counters(run.view);
      if (options.at > 0 || options.inputs?.length) this.seek(options.at ?? 0);
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

  #useMarkers() {
    const attr = this.getAttribute('markers');
    const own = this.#run?.layout.markers ?? [];
    this.#markerList = attr && attr !== 'on' && attr !== 'off' ? parseMarkers(attr) : own;
    this.#show();
  }

  #applyLook() {
    const theme = this.getAttribute('theme');
    this.#ui.darkPalette.media = theme === 'dark' ? 'all' : theme === 'light' ? 'not all' : '(prefers-color-scheme: dark)';
    const controls = this.getAttribute('controls') ?? 'full';
    this.#ui.bar.dataset.controls = controls;
    this.#ui.bar.hidden = controls === 'none';
    this.#ui.narration.hidden = controls === 'none';
    const h = this.getAttribute('height');
    this.style.height = h === null ? '' : /^\d+$/.test(h) ? `${h}px` : h;
    const speed = Number(this.getAttribute('speed'));
    if (this.hasAttribute('speed') && speed > 0 && speed <= 1000) {
      this.#speed = speed;
      this.#ui.speed.value = String(SPEEDS.includes(speed) ? speed : 1);
    }
    this.#palette = null;
    this.#fit();
  }

  #fit() {
    const c = this.#ui.canvas;
    const rect = c.getBoundingClientRect();
    const dpr = devicePixelRatio || 1;
    c.width = Math.round(rect.width * dpr);
    c.height = Math.round(rect.height * dpr);
    this.#ui.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.#size = { width: rect.width, height: rect.height };
    this.#show();
  }

  #readPalette() {
    const css = getComputedStyle(this.#ui.canvas);
    const v = (name) => css.getPropertyValue(name).trim();
    return {
      canvas: v('--canvas'), ink: v('--ink'), muted: v('--muted'), edge: v('--edge'), node: v('--node'),
      ready: v('--ready'), inflight: v('--inflight'), acked: v('--acked'), danger: v('--danger'),
      focus: v('--focus'), dark: v('--dark') === '1',
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
      const from = this.#cursor;
      const target = Math.min(from + dt * this.#speed, run.durationMs);
      const passed = this.markers.filter((m) => m.at_ms > from && m.at_ms <= target);
      const stopAt = this.getAttribute('markers') === 'off' ? undefined : passed[0];
      const { stopped } = run.advanceTo(stopAt ? stopAt.at_ms : target);
      this.#cursor = stopped ? run.nowMs : stopAt ? stopAt.at_ms : target;
      for (const m of stopAt ? [stopAt] : passed) this.#emit('marker', { ...m, index: this.markers.indexOf(m) });
      if (stopped) this.#ui.error.textContent = `Brokerlab: ${stopped}. Lower the speed to keep up.`;
      if (stopAt || stopped) this.#playing = false;
      this.#afterMove();
    }
    this.#paint();
    if (this.#playing) this.#schedule();
  }

  /** After the run moved forward: announces new alarms and the end. */
  #afterMove() {
    const now = counters(this.#run.view);
    for (const name of ALARMS) {
      if (now[name] > (this.#seen[name] ?? 0)) this.#emit('invariant', { name, count: now[name], at_ms: this.#cursor });
    }
    this.#seen = now;
    if (this.#cursor >= this.#run.durationMs) {
      this.#playing = false;
      this.#emit('ended', { at_ms: this.#cursor, trace_hash: this.#run.traceHash() });
    }
  }

  #paint() {
    const run = this.#run;
    const ui = this.#ui;
    if (this.#size.width > 0) {
      this.#palette ??= this.#readPalette();
      const motion = !matchMedia('(prefers-reduced-motion: reduce)').matches;
      draw(ui.ctx, run.view, this.#cursor, { ...this.#size, palette: this.#palette, motion });
    }
    if (!this.#dirty && this.#playing === false) return;
    this.#dirty = false;
    const ended = this.#cursor >= run.durationMs;
    const label = this.#playing ? 'Pause' : ended ? 'Ended' : 'Play';
    if (ui.play.textContent !== label) ui.play.textContent = label;
    ui.play.setAttribute('aria-pressed', String(this.#playing));
    ui.timeline.max = String(run.durationMs);
    ui.timeline.value = String(this.#cursor);
    ui.clock.value = `t=${seconds(this.#cursor)} / ${seconds(run.durationMs)}`;
    const reached = this.markers.filter((m) => m.at_ms <= this.#cursor);
    const text = reached.length ? reached.at(-1).text : this.#description;
    if (ui.narration.textContent !== text) ui.narration.textContent = text;
    ui.beat.disabled = !this.markers.some((m) => m.at_ms > this.#cursor);
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }
}

if (!customElements.get('broker-lab')) customElements.define('broker-lab', BrokerLab);
