// DOM -> intents for the transport and scenario controls. No drawing and no engine here:
// each control calls one intent, and showTransport() mirrors the state back into the controls.

// Keys that a focused control uses itself: typing and choosing, and a button's own space
// and Enter. Shortcuts stand aside for them.
const ownsKey = (el, key) => el instanceof HTMLInputElement || el instanceof HTMLSelectElement
  || el instanceof HTMLTextAreaElement
  || (el instanceof HTMLButtonElement && (key === ' ' || key === 'Enter'));

/**
 * intents: {togglePlay, step, stepBack, seek(ms), beat(±1), toBeat(k), setSpeed(x), changeSpeed(±1),
 *           reset(seedText), randomSeed(), selectScenario(id), selectEvent(n, msg),
 *           moveSelection(±1), …}
 */
export function bindControls(doc, intents) {
  const $ = (id) => doc.getElementById(id);
  $('play').addEventListener('click', () => intents.togglePlay());
  $('step').addEventListener('click', () => intents.step());
  $('back').addEventListener('click', () => intents.stepBack());
  $('timeline').addEventListener('input', (e) => intents.seek(Number(e.target.value)));
  $('speed').addEventListener('change', (e) => intents.setSpeed(Number(e.target.value)));
  $('reset').addEventListener('click', () => intents.reset($('seed').value));
  $('seed').addEventListener('keydown', (e) => {
    if (e.key === 'Enter') intents.reset($('seed').value);
  });
  $('random-seed').addEventListener('click', () => intents.randomSeed());
  $('share').addEventListener('click', () => intents.share());
  $('export-trace').addEventListener('click', () => intents.exportTrace());
  $('embed').addEventListener('click', () => intents.embed());
  for (const which of ['element', 'iframe']) {
    $(`copy-${which}`).addEventListener('click', () => {
      $(`embed-${which}`).select();
      navigator.clipboard?.writeText($(`embed-${which}`).value).catch(() => {});
    });
  }
  $('export-diagram').addEventListener('click', () => intents.exportDiagram());
  for (const b of doc.querySelectorAll('#badges button[data-jump]')) b.addEventListener('click', () => intents.jump(b.dataset.jump));
  $('break').addEventListener('click', () => intents.breakIt($('break-what').value));
  $('editor').addEventListener('toggle', (e) => { if (e.target.open) intents.openEditor(); });
  $('editor-text').addEventListener('input', (e) => intents.editScenario(e.target.value));
  $('editor-run').addEventListener('click', () => intents.runEdited($('editor-text').value));
  const help = () => ($('help').open ? $('help').close() : $('help').showModal());
  $('help-button').addEventListener('click', help);
  $('scenario').addEventListener('change', (e) => intents.selectScenario(e.target.value));
  // The log and the sequence diagram select the same events; ↑ and ↓ move the selection.
  const pick = (li) => intents.selectEvent(Number(li.dataset.n), li.dataset.msg === undefined ? undefined : Number(li.dataset.msg));
  $('log').addEventListener('click', (e) => {
    const li = e.target.closest('li');
    if (li) pick(li);
  });
  $('log').addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowUp' && e.key !== 'ArrowDown') return;
    e.preventDefault();
    const cur = $('log').querySelector('li.selected');
    const li = !cur ? $('log').lastElementChild : e.key === 'ArrowUp' ? cur.previousElementSibling : cur.nextElementSibling;
    if (li) pick(li);
  });
  $('sequence').addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowUp' && e.key !== 'ArrowDown') return;
    e.preventDefault();
    intents.moveSelection(e.key === 'ArrowUp' ? -1 : +1);
  });

  doc.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || ownsKey(e.target, e.key)) return;
    const keys = {
      ' ': () => intents.togglePlay(),
      ArrowRight: () => intents.step(),
      ArrowLeft: () => intents.stepBack(),
      '?': help,
      '[': () => intents.changeSpeed(-1),
      ']': () => intents.changeSpeed(+1),
      n: () => intents.beat(+1),
      p: () => intents.beat(-1),
    };
    const act = keys[e.key];
    if (act) {
      e.preventDefault();
      act();
    }
  });
}

/** The things a user can break in this scenario, as live inputs (script steps without time). */
export function showBreakMenu(doc, layout) {
  const items = [];
  const add = (label, op) => items.push([label, JSON.stringify(op)]);
  for (const c of layout.consumers) {
    add(`crash ${c.name}`, { op: 'crash', consumer: c.name });
    add(`restart ${c.name}`, { op: 'restart', consumer: c.name });
  }
  for (const p of layout.producers) if (p.queue !== null && p.queue !== undefined) add(`poison ${p.name}'s next message`, { op: 'poison_next', producer: p.name });
  for (const d of layout.dependencies ?? []) {
    add(`take ${d} down`, { op: 'dependency_down', dependency: d });
    add(`bring ${d} up`, { op: 'dependency_up', dependency: d });
  }
  for (const g of layout.groups) {
    add(`add a member to ${g.name}`, { op: 'add_member', group: g.name });
    for (let m = 1; m <= 3; m++) add(`crash ${g.name}-${m}`, { op: 'crash_member', group: g.name, member: `${g.name}-${m}` });
  }
  for (const r of layout.request_reply) {
    for (let i = 1; i <= r.requesters; i++) add(`kill ${r.name}.requester-${i}`, { op: 'kill_requester', system: r.name, requester: `${r.name}.requester-${i}` });
  }
  doc.getElementById('break-what').replaceChildren(...items.map(([label, op]) => {
    const o = doc.createElement('option');
    o.value = op;
    o.textContent = label;
    return o;
  }));
  doc.getElementById('break').disabled = items.length === 0;
}

/** Marks each beat whose moment is known on the timeline (a beat plan, engine.js). */
export function showBeatMarks(doc, plan) {
  const list = doc.getElementById('beat-marks');
  const known = plan.filter((b) => b.at_ms !== null);
  const key = known.map((b) => b.at_ms).join();
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  list.replaceChildren(...known.map((b) => {
    const o = doc.createElement('option');
    o.value = String(b.at_ms);
    o.label = b.text;
    return o;
  }));
}

// The catalog, grouped by pattern; a preset not listed here falls under "More".
const CATALOG = [
  ['Work queues', ['competing-consumers', 'slow-worker', 'backlog', 'prefetch-hoarding', 'autoscaling', 'mmc-erlang-c']],
  ['Leases, acks and delivery', ['lease-models', 'ack-modes', 'delivery-guarantees', 'idempotency', 'fifo-groups', 'ttl-expiry']],
  ['Retries and dead letters', ['retry-storm', 'occ-contention', 'error-classes', 'poison-redrive']],
  ['Streams', ['partition-keys', 'fan-out', 'rebalancing', 'commit-semantics', 'hot-partition', 'pubsub-vs-stream', 'retry-topics', 'compaction']],
  ['Workflows', ['request-reply', 'saga-happy-path', 'saga-compensation', 'saga-compensation-retry', 'saga-duplicates', 'saga-styles']],
];

/** Fills the scenario menu, grouped by pattern. */
export function showScenarios(doc, presets, selectedId) {
  const select = doc.getElementById('scenario');
  const option = (p) => {
    const o = doc.createElement('option');
    o.value = p.id;
    o.textContent = p.name;
    o.selected = p.id === selectedId;
    return o;
  };
  const listed = new Set(CATALOG.flatMap(([, ids]) => ids));
  const groups = [...CATALOG, ['More', presets.map((p) => p.id).filter((id) => !listed.has(id))]];
  select.replaceChildren(...groups.map(([label, ids]) => {
    const group = doc.createElement('optgroup');
    group.label = label;
    group.append(...ids.map((id) => presets.find((p) => p.id === id)).filter(Boolean).map(option));
    return group;
  }).filter((g) => g.childElementCount > 0));
}

/** The speed options, as numbers, in order. */
export function speedSteps(doc) {
  return [...doc.getElementById('speed').options].map((o) => Number(o.value));
}

const seconds = (ms) => `${(ms / 1000).toFixed(1)}s`;

/** Mirrors {playing, speed, cursor, duration, seed, error} into the controls. */
export function showTransport(doc, s) {
  const $ = (id) => doc.getElementById(id);
  const play = $('play');
  const label = s.playing ? 'Pause' : s.cursor >= s.duration ? 'Ended' : 'Play';
  if (play.textContent !== label) play.textContent = label;
  play.setAttribute('aria-pressed', String(s.playing));
  $('clock').value = `t=${seconds(s.cursor)} / ${seconds(s.duration)}`;
  const tl = $('timeline');
  if (Number(tl.max) !== s.duration) tl.max = String(s.duration);
  if (doc.activeElement !== tl || s.playing) tl.value = String(s.cursor);
  tl.setAttribute('aria-valuetext', `t=${seconds(s.cursor)}`);
  const speed = $('speed');
  if (Number(speed.value) !== s.speed) speed.value = String(s.speed);
  const seed = $('seed');
  if (doc.activeElement !== seed && seed.value !== String(s.seed)) seed.value = String(s.seed);
  setText($('error'), s.error);
}

/** Writes only on change, so an unchanged frame does not touch the DOM. */
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}
