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
// long: one binding per control, in the toolbar's order
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
  $('export-rabbitmq').addEventListener('click', () => intents.exportRabbitmq());
  $('embed').addEventListener('click', () => intents.embed());
  for (const which of ['element', 'iframe']) {
    $(`copy-${which}`).addEventListener('click', () => {
      $(`embed-${which}`).select();
      navigator.clipboard?.writeText($(`embed-${which}`).value).catch(() => {});
    });
  }
  $('export-diagram').addEventListener('click', () => intents.showDiagram());
  $('diagram-download').addEventListener('click', () => intents.exportDiagram());
  for (const b of doc.querySelectorAll('#badges button[data-jump]')) b.addEventListener('click', () => intents.jump(b.dataset.jump));
  $('break').addEventListener('click', () => intents.breakIt($('break-what').value));
  $('edit').addEventListener('click', () => intents.openEditor());
  $('editor-text').addEventListener('input', (e) => intents.editScenario(e.target.value));
  // The line numbers scroll with the text.
  $('editor-text').addEventListener('scroll', (e) => { $('editor-lines').scrollTop = e.target.scrollTop; });
  $('editor-run').addEventListener('click', () => intents.runEdited($('editor-text').value));
  const help = () => ($('help').open ? $('help').close() : $('help').showModal());
  $('help-button').addEventListener('click', help);
  $('scenario').addEventListener('change', (e) => intents.selectScenario(e.target.value));
  bindTabs(doc);
  $('beat-ticks').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-index]');
    if (b) intents.toBeat(Number(b.dataset.index));
  });
  // One floating disclosure open at a time; a click elsewhere or Escape closes it.
  const pops = [...doc.querySelectorAll('details.pop')];
  for (const d of pops) d.addEventListener('toggle', () => { if (d.open) for (const o of pops) if (o !== d) o.open = false; });
  doc.addEventListener('click', (e) => { for (const d of pops) if (d.open && !d.contains(e.target)) d.open = false; });
  doc.addEventListener('keydown', (e) => { if (e.key === 'Escape') for (const d of pops) d.open = false; });
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

/**
 * The things a user can break in this scenario, as live inputs (script steps without time).
 * Each option says what it acts on (`data-consumer`, `data-member`, …), so that
 * `showBreakState` can disable the ones that cannot apply now.
 */
export function showBreakMenu(doc, layout) {
  const items = [];
  const add = (label, op, on = {}) => items.push([label, JSON.stringify(op), on]);
  layout.consumers.forEach((c, i) => {
    add(`crash ${c.name}`, { op: 'crash', consumer: c.name }, { consumer: i, wants: 'up' });
    add(`restart ${c.name}`, { op: 'restart', consumer: c.name }, { consumer: i, wants: 'down' });
  });
  for (const p of layout.producers) if (p.queue !== null && p.queue !== undefined) add(`poison ${p.name}'s next message`, { op: 'poison_next', producer: p.name });
  (layout.dependencies ?? []).forEach((d, di) => {
    add(`take ${d} down`, { op: 'dependency_down', dependency: d }, { dependency: di, wants: 'up' });
    add(`bring ${d} up`, { op: 'dependency_up', dependency: d }, { dependency: di, wants: 'down' });
  });
  layout.groups.forEach((g, gi) => {
    add(`add a member to ${g.name}`, { op: 'add_member', group: g.name });
    // As kafka-consumer-groups does it: refused (and the log says why) while members are in it.
    add(`reset ${g.name}'s offsets to the earliest (replay)`, { op: 'reset_offsets', group: g.name, to: 'earliest' });
    for (let m = 1; m <= 3; m++) {
      const member = `${g.name}-${m}`;
      add(`crash ${member}`, { op: 'crash_member', group: g.name, member }, { group: gi, member: m - 1, wants: 'up' });
      add(`restart ${member}`, { op: 'restart_member', group: g.name, member }, { group: gi, member: m - 1, wants: 'down' });
    }
  });
  layout.request_reply.forEach((r, ri) => {
    for (let i = 1; i <= r.requesters; i++) add(`kill ${r.name}.requester-${i}`, { op: 'kill_requester', system: r.name, requester: `${r.name}.requester-${i}` }, { system: ri, requester: i - 1 });
  });
  doc.getElementById('break-what').replaceChildren(...items.map(([label, op, on]) => {
    const o = doc.createElement('option');
    o.value = op;
    o.textContent = label;
    for (const [k, v] of Object.entries(on)) o.dataset[k] = String(v);
    return o;
  }));
  doc.getElementById('break').disabled = items.length === 0;
}

/**
 * Disables what cannot apply now, with the reason in its title: crashing a consumer that is
 * down, restarting one that is up, crashing a member that is not running, killing a requester
 * that is dead, taking a dependency down that is down (or up one that is up). Do it is
 * disabled with the chosen option.
 */
export function showBreakState(doc, view) {
  const select = doc.getElementById('break-what');
  for (const o of select.options) {
    const d = o.dataset;
    let why = '';
    if (d.consumer !== undefined) {
      const up = view.alive[Number(d.consumer)];
      if (d.wants === 'up' && !up) why = 'it is down already: restart it first';
      if (d.wants === 'down' && up) why = 'it is running: crash it first';
    } else if (d.dependency !== undefined) {
      // Taken down by hand, or not (a scheduled outage is its own: bringing it up ends only
      // an outage made by hand).
      const taken = view.dependencyTakenDown[Number(d.dependency)];
      if (d.wants === 'up' && taken) why = 'it is taken down already: bring it up first';
      if (d.wants === 'down' && !taken) why = view.dependencyUp[Number(d.dependency)] ? 'it is up: take it down first' : 'it is in a scheduled outage, not taken down by hand';
    } else if (d.member !== undefined) {
      const m = view.groups[Number(d.group)]?.members[Number(d.member)];
      if (d.wants === 'up' && !m?.alive) why = 'this member is not running';
      if (d.wants === 'down' && !m) why = 'the group has no such member';
      if (d.wants === 'down' && m?.alive) why = 'it is running: crash it first';
    } else if (d.requester !== undefined) {
      if (view.workflows?.request_reply[Number(d.system)]?.killed[Number(d.requester)]) why = 'it is dead already';
    }
    if (o.disabled !== Boolean(why)) o.disabled = Boolean(why);
    const title = why ? `Cannot now: ${why}` : '';
    if (o.title !== title) o.title = title;
  }
  const chosen = select.selectedOptions[0];
  const button = doc.getElementById('break');
  button.disabled = !chosen || chosen.disabled;
  const title = chosen?.disabled ? chosen.title : 'Do it now; in the past, this forks the run';
  if (button.title !== title) button.title = title;
}

/** Marks closer than this (CSS px) would cover each other: they are spread apart. */
const BEAT_MARK_GAP = 14;

/**
 * The beats whose moment is known (a beat plan, engine.js), as ◆ over the timeline at their
 * moments: each one a button to its beat, grey once reached. Beats close in time are spread
 * just enough that each can be clicked.
 */
export function showBeatMarks(doc, plan, duration) {
  const box = doc.getElementById('beat-ticks');
  const known = plan.filter((b) => b.at_ms !== null);
  const width = box.clientWidth;
  const key = `${duration}|${width}|${known.map((b) => `${b.at_ms}${b.reached ? 'r' : ''}`).join()}`;
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  const x = known.map((b) => (width * b.at_ms) / Math.max(duration, 1));
  for (let i = 1; i < x.length; i++) x[i] = Math.max(x[i], x[i - 1] + BEAT_MARK_GAP);
  for (let i = x.length - 1; i >= 0; i--) x[i] = Math.min(x[i], i + 1 < x.length ? x[i + 1] - BEAT_MARK_GAP : width);
  box.replaceChildren(...known.map((b, i) => {
    const button = doc.createElement('button');
    button.type = 'button';
    button.textContent = '◆';
    button.dataset.index = String(b.index);
    button.className = b.reached ? 'reached' : '';
    button.style.left = `${x[i]}px`;
    button.title = `Beat ${b.index + 1}: ${b.text}`;
    button.setAttribute('aria-label', `Beat ${b.index + 1}, at ${seconds(b.at_ms)}`);
    button.tabIndex = -1;
    return button;
  }));
}

/**
 * The panel's tabs (the WAI-ARIA tabs pattern): a click or ←/→ selects one and shows its pane;
 * only the tabs for what the scenario has are shown.
 */
function bindTabs(doc) {
  const tabs = () => [...doc.querySelectorAll('.tabs [role="tab"]')].filter((t) => !t.hidden);
  const list = doc.querySelector('.tabs');
  list.addEventListener('click', (e) => {
    const tab = e.target.closest('[role="tab"]');
    if (tab) selectTab(doc, tab.id);
  });
  list.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
    const all = tabs();
    const i = all.indexOf(doc.activeElement);
    if (i < 0) return;
    e.preventDefault();
    const next = all[(i + (e.key === 'ArrowRight' ? 1 : all.length - 1)) % all.length];
    selectTab(doc, next.id);
    next.focus();
  });
}

/** Shows one pane of the panel, by its tab's id (`tab-state`, `tab-inspector`, …). */
export function selectTab(doc, id) {
  for (const tab of doc.querySelectorAll('.tabs [role="tab"]')) {
    const on = tab.id === id;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    doc.getElementById(tab.getAttribute('aria-controls')).hidden = !on;
  }
}

/** Only the tabs this scenario has something for; the first of them open. */
export function showTabsFor(doc, layout) {
  const has = {
    'tab-state': layout.queues.length > 0,
    'tab-groups': layout.groups.length > 0,
    'tab-workflows': layout.request_reply.length + layout.sagas.length > 0,
    'tab-inspector': layout.queues.length > 0,
    'tab-log': true,
  };
  for (const [id, on] of Object.entries(has)) doc.getElementById(id).hidden = !on;
  doc.getElementById('badge-unroutable').hidden = !(layout.exchanges ?? []).length;
  const first = layout.request_reply.length + layout.sagas.length > 0 ? 'tab-workflows'
    : layout.groups.length > 0 ? 'tab-groups' : 'tab-state';
  selectTab(doc, first);
}

// The catalog, grouped by pattern; a preset not listed here falls under "More".
const CATALOG = [
  ['Work queues', ['competing-consumers', 'slow-worker', 'backlog', 'load-shedding', 'prefetch-hoarding', 'autoscaling', 'mmc-erlang-c']],
  ['Leases, acks and delivery', ['lease-models', 'lock-renewal', 'ack-modes', 'delivery-guarantees', 'idempotency', 'set-vs-increment', 'ordering-fixes', 'dedup-window', 'fifo-groups', 'ttl-expiry']],
  ['Retries and dead letters', ['retry-storm', 'circuit-breaker', 'occ-contention', 'error-classes', 'poison-redrive', 'schema-change', 'dlx-retry-loop']],
  ['RabbitMQ routing', ['topic-routing', 'fanout-vs-direct', 'alternate-exchange']],
  ['Streams', ['queue-vs-log', 'partition-keys', 'fan-out', 'rebalancing', 'assignors', 'commit-semantics', 'hot-partition', 'pubsub-vs-stream', 'retention-loss', 'poison-blocks-partition', 'retry-topics', 'compaction']],
  ['Workflows', ['request-reply', 'request-timeouts', 'saga-happy-path', 'saga-compensation', 'saga-compensation-retry', 'saga-duplicates', 'saga-styles']],
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

function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Mirrors {playing, speed, cursor, duration, seed, error} into the controls. */
export function showTransport(doc, s) {
  const $ = (id) => doc.getElementById(id);
  const play = $('play');
  // At the end the button replays the run from the start.
  const label = s.playing ? 'Pause' : s.cursor >= s.duration && s.duration > 0 ? 'Replay' : 'Play';
  if (play.textContent !== label) play.textContent = label;
  play.setAttribute('aria-pressed', String(s.playing));
  setText($('clock'), `t=${seconds(s.cursor)} / ${seconds(s.duration)}`);
  setText($('seed-shown'), String(s.seed));
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
