// The side panels: messages by state (from the engine's own counts) and the event log.
// DOM only; they read what they are given and keep their size bounded.

const LOG_ITEMS_MAX = 200;

/** The engine's message states, in the words a person uses (its names stay in data-state). */
export const STATE_LABELS = {
  publishing: 'on its way to the broker',
  delayed: 'waiting (delay or backoff)',
  ready: 'ready',
  delivering: 'on its way to a consumer',
  buffered: 'delivered, not started',
  processing: 'processing',
  acked: 'acked',
  dead_lettered: 'dead-lettered',
  expired: 'expired',
  dropped: 'dropped or refused',
  moved: 'redriven (moved on)',
};

/** A consumer group's phase (Kafka's names in the trace) as the panel says it. */
const PHASE_LABELS = {
  Empty: 'empty',
  PreparingRebalance: 'rebalancing: members rejoining',
  CompletingRebalance: 'rebalancing: syncing the assignment',
  Stable: 'stable',
};

/**
 * A trace line for people: its times to the millisecond with their unit, `1.250 s`, where the
 * engine writes microseconds (`1.250000s`).
 */
export function readable(line) {
  return line.replace(/(\d+\.\d{3})\d*s\b/g, '$1 s');
}

/**
 * A group's state line: phase, generation, assignor and commit mode, then what rebalances have
 * cost, once they cost anything: partitions that changed member, members evicted for not
 * polling (KC-14), and the commits that then failed (KC-15).
 */
function groupLine(g, info, st) {
  const costs = [['moved', st.moved], ['evicted', st.evictions], ['commits refused', st.commits_failed]]
    .filter(([, n]) => n > 0).map(([w, n]) => ` · ${w} ${n}`).join('');
  return ` ${PHASE_LABELS[g.phase] ?? g.phase} · generation ${g.generation} · ${info.assignor}, commit ${info.commit}${costs}`;
}

/** Builds the counts table for a layout: one row per state, one column per queue. */
export function setupCounts(doc, layout) {
  const table = doc.getElementById('counts');
  const head = doc.createElement('tr');
  head.append(cell(doc, 'th', 'State', 'col'));
  for (const q of layout.queues) head.append(cell(doc, 'th', q.name, 'col', 'num'));
  table.tHead.replaceChildren(head);
  table.tBodies[0].replaceChildren(...layout.states.map((state) => {
    const row = doc.createElement('tr');
    row.append(cell(doc, 'th', STATE_LABELS[state] ?? state, 'row'));
    for (let q = 0; q < layout.queues.length; q++) {
      const td = cell(doc, 'td', '0', null, 'num');
      td.dataset.state = state;
      td.dataset.queue = String(q);
      row.append(td);
    }
    return row;
  }));
}

function cell(doc, tag, text, scope, cls) {
  const el = doc.createElement(tag);
  el.textContent = text;
  if (scope) el.scope = scope;
  if (cls) el.className = cls;
  return el;
}

/** Writes the counts, touching only the cells that changed. */
export function showCounts(doc, counts) {
  for (const td of doc.querySelectorAll('#counts td[data-state]')) {
    const n = String(counts[Number(td.dataset.queue)]?.[td.dataset.state] ?? 0);
    if (td.textContent !== n) td.textContent = n;
  }
}

/**
 * The run's means so far under the latency chart: how long deliveries waited in their queue,
 * and how long from a publish to its first effect (the engine's totals, as the CLI reports).
 */
export function showLatency(doc, stats) {
  const el = doc.getElementById('latency');
  const secs = (us, n) => `${(us / 1e6 / n).toFixed(2)} s`;
  const text = !stats?.effects_first
    ? 'Means over the run appear with the first processed message.'
    : `Over the run: queue wait ${secs(stats.wait_total_us, Math.max(stats.deliveries, 1))} · `
      + `publish → effect ${secs(stats.latency_total_us, stats.effects_first)}, mean of ${stats.effects_first} messages`;
  if (el.textContent !== text) el.textContent = text;
}

/** Appends the events' lines to the log, keeping the newest LOG_ITEMS_MAX. */
export function appendLog(doc, events) {
  if (events.length === 0) return;
  const log = doc.getElementById('log');
  const frag = doc.createDocumentFragment();
  for (const e of events.slice(-LOG_ITEMS_MAX)) {
    const li = doc.createElement('li');
    li.className = e.kind;
    li.textContent = readable(e.line);
    li.dataset.n = String(e.n);
    if (e.msg !== undefined) li.dataset.msg = String(e.msg);
    frag.append(li);
  }
  log.append(frag);
  while (log.childElementCount > LOG_ITEMS_MAX) log.firstElementChild.remove();
  log.scrollTop = log.scrollHeight;
}

/**
 * Marks the selected event's line (and scrolls it into view when it changed) and every line of
 * the selected message, touching only the lines whose marks change.
 */
export function markLog(doc, selected, msg) {
  const log = doc.getElementById('log');
  const want = selected === undefined ? '' : String(selected);
  const of = msg === undefined ? '' : String(msg);
  for (const li of log.children) {
    const isSel = li.dataset.n === want;
    if (isSel !== li.classList.contains('selected')) {
      li.classList.toggle('selected', isSel);
      if (isSel) {
        li.setAttribute('aria-current', 'true');
        const top = li.offsetTop; // .log is positioned, so this is within it
        if (top < log.scrollTop || top + li.offsetHeight > log.scrollTop + log.clientHeight) log.scrollTop = top - log.clientHeight / 2;
      } else {
        li.removeAttribute('aria-current');
      }
    }
    const same = of !== '' && li.dataset.msg === of;
    if (same !== li.classList.contains('same-msg')) li.classList.toggle('same-msg', same);
  }
}

export function clearLog(doc) {
  doc.getElementById('log').replaceChildren();
}

/** The counters under the timeline (`counters(view)` in engine.js); the alarming ones turn red. */
export function showBadges(doc, values, firstAt = {}) {
  for (const out of doc.querySelectorAll('#badges output[data-badge]')) {
    const n = String(values[out.dataset.badge] ?? 0);
    if (out.value !== n) out.value = n;
    const alarm = ['lost', 'applied_twice', 'order_violated', 'unroutable'].includes(out.dataset.badge) && n !== '0';
    const li = out.closest('li');
    li.classList.toggle('alarm', alarm);
    const button = out.closest('button');
    if (button) button.disabled = firstAt?.[out.dataset.badge] === undefined;
  }
}

const LAG_ROWS_MAX = 120;

/**
 * The consumer groups as text: each group's state and generation, each member and the
 * partitions it owns (the same facts the canvas draws), then the lag table (KC-8).
 */
export function showGroups(doc, view, lagRows) {
  const layout = view.layout;
  // Its pane shows when its tab is selected (controls.js); this only fills it.
  if (layout.groups.length === 0) return;
  const partName = (k) => {
    const [t, p] = k.split(':').map(Number);
    return `${layout.topics[t].name}-${p}`;
  };
  const list = doc.getElementById('groups');
  const key = JSON.stringify(view.groups.map((g, gi) => [g.phase, g.generation, view.groupStats?.[gi],
    g.members.map((m) => [m.alive, m.inGroup, m.owned.join()]), [...g.committed.values()]]));
  if (list.dataset.key !== key) {
    list.dataset.key = key;
    list.replaceChildren(...view.groups.map((g, gi) => {
      const info = layout.groups[gi];
      const li = doc.createElement('li');
      Object.assign(li.dataset, {
        group: info.name, state: g.phase, generation: String(g.generation),
        processed: String(view.groupStats?.[gi]?.processed ?? 0), moved: String(view.groupStats?.[gi]?.moved ?? 0),
      });
      const rebalancing = g.phase === 'PreparingRebalance' || g.phase === 'CompletingRebalance';
      const name = doc.createElement('strong');
      name.textContent = info.name;
      const state = doc.createElement('span');
      state.className = rebalancing ? 'state rebalancing' : 'state';
      state.textContent = groupLine(g, info, view.groupStats?.[gi] ?? {});
      const members = doc.createElement('ul');
      const rows = lagRows(view, info, g);
      members.append(...g.members.map((m, mi) => {
        const row = doc.createElement('li');
        const owned = m.owned.map(partName);
        Object.assign(row.dataset, { member: `${info.name}-${mi + 1}`, owned: owned.join(' '), alive: String(m.alive) });
        row.classList.toggle('down', !m.alive && m.inGroup);
        const lag = rows.filter((r) => r.owner === mi).reduce((n, r) => n + (r.lag ?? 0), 0);
        const status = !m.alive ? (m.inGroup ? 'crashed' : 'left') : !m.inGroup ? 'evicted (max.poll.interval exceeded), finishing its batch'
          : owned.length ? `${owned.join(' ')} · lag ${lag}` : 'no partitions';
        row.textContent = `${info.name}-${mi + 1}: ${status}`;
        return row;
      }));
      li.append(name, state, members);
      return li;
    }));
  }
  const body = doc.querySelector('#lag tbody');
  const rows = layout.groups.flatMap((info, gi) => lagRows(view, info, view.groups[gi]).map((r) => ({ ...r, gi }))).slice(0, LAG_ROWS_MAX);
  const text = (v) => (v === undefined ? '–' : String(v));
  const cells = rows.map((r) => [layout.groups[r.gi].name, `${layout.topics[r.topic].name}-${r.partition}`, text(r.logEnd),
    text(r.committed), text(r.lag), r.owner >= 0 ? `${layout.groups[r.gi].name}-${r.owner + 1}` : '–']);
  const tableKey = JSON.stringify(cells);
  if (body.dataset.key === tableKey) return;
  body.dataset.key = tableKey;
  body.replaceChildren(...cells.map((c, i) => {
    const tr = doc.createElement('tr');
    Object.assign(tr.dataset, { group: c[0], partition: c[1], lag: c[4] === '–' ? '' : c[4] });
    c.forEach((v, k) => tr.append(cell(doc, k === 0 ? 'th' : 'td', v, k === 0 ? 'row' : null, k >= 2 && k <= 4 ? 'num' : null)));
    return tr;
  }));
}

const DEAD_LETTER_BUTTONS_MAX = 30;

/** One button per dead letter (the newest few), so the inspector is on the keyboard too. */
export function showDeadLetters(doc, view, onPick) {
  const list = doc.getElementById('dead-letters');
  const ids = view.layout.queues.flatMap((q, i) => (q.role === 'dead_letter' ? view.ready[i] : []));
  const shown = ids.slice(-DEAD_LETTER_BUTTONS_MAX);
  const key = shown.join(',');
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  list.replaceChildren(...shown.map((id) => {
    const li = doc.createElement('li');
    const b = doc.createElement('button');
    b.type = 'button';
    b.textContent = `m${id}`;
    b.setAttribute('aria-label', `Inspect dead letter m${id}`);
    b.addEventListener('click', () => onPick(id));
    li.append(b);
    return li;
  }));
}

/**
 * Per dead-letter queue that holds any: how many, how long ago the oldest died, and why they
 * died, most first (the reason, and the last error where it adds to it), as an operator's
 * DLQ view shows them.
 */
export function showDeadReport(doc, view, now) {
  const list = doc.getElementById('dead-report');
  const items = (view.deadLetters ?? []).flatMap((r, i) => {
    if (!r || r.count === 0) return [];
    const age = r.oldest_dead_at_ms === null ? '' : ` · the oldest died ${((now - r.oldest_dead_at_ms) / 1000).toFixed(1)} s ago`;
    const why = r.mix.map((m) => `${m.reason}${m.error && m.error !== m.reason ? ` (${m.error})` : ''}: ${m.count}`).join(' · ');
    const part = r.scanned < r.count ? ` (of the oldest ${r.scanned})` : '';
    return [{ name: view.layout.queues[i].name, head: `${r.count} dead letter${r.count === 1 ? '' : 's'}${age}`, why: why + part }];
  });
  const key = JSON.stringify(items);
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  list.replaceChildren(...items.map((it) => {
    const li = doc.createElement('li');
    const name = doc.createElement('strong');
    name.textContent = it.name;
    li.append(name, `: ${it.head}. Why: ${it.why}.`);
    return li;
  }));
}

/** The inspector: the broker's record of one message, its dead-letter metadata, its history. */
export function showInspector(doc, info, history) {
  const box = doc.getElementById('inspector');
  // Rebuild only when something shown changed, not on every frame.
  const key = info ? JSON.stringify(info) + (history?.length ?? 0) + (history?.at(-1) ?? '') : '';
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  if (!info) {
    box.replaceChildren();
    return;
  }
  const ms = (t) => (t === undefined || t === null ? '–' : `${(t / 1000).toFixed(3)} s`);
  const rows = [
    ['message', `m${info.id}` + (info.key !== info.id ? ` (key m${info.key})` : '')],
    ['state', STATE_LABELS[info.state] ?? info.state],
    ['queue', info.queue],
    ['deliveries', String(info.receive_count)],
    ['failed attempts', String(info.attempts)],
  ];
  // The delivery counters as its consumer reads them, in its system's words (redeliver, …).
  for (const [name, value] of info.headers ?? []) rows.push([name, value]);
  // RabbitMQ: what the consumer's delivery says it came by.
  if (info.routed) {
    rows.push(['exchange', info.routed[0] === '' ? '(default)' : info.routed[0]], ['routing key', `"${info.routed[1]}"`]);
  }
  if (info.lease_until_ms !== undefined && info.lease_until_ms !== null) rows.push(['leased until', ms(info.lease_until_ms)]);
  // Its TTL or retention, named as its system names it (retention ends, ExpiresAtUtc, expires).
  if (info.expires) rows.push([info.expires[0], ms(info.expires[1])]);
  if (info.poison) rows.push(['poison', 'yes: it crashes its consumer']);
  const wf = info.workflow;
  if (wf?.kind === 'request') rows.push(['correlation', `request corr-${wf.corr}, from requester-${wf.requester + 1}`]);
  if (wf?.kind === 'reply') rows.push(['correlation', `reply corr-${wf.corr} to request m${wf.request}, for requester-${wf.requester + 1}`]);
  if (wf?.kind === 'saga') rows.push(['saga', `#${wf.instance}`]);
  if (info.dead) {
    const d = info.dead;
    // Why, in its system's own words where it has them: Service Bus's two properties (ASB-6),
    // RabbitMQ's x-death header (RMQ-14); SQS says nothing, so the page does.
    const why = d.service_bus
      ? [['DeadLetterReason', d.service_bus[0]], ['DeadLetterErrorDescription', d.service_bus[1] || '–']]
      : [['reason', d.reason], ['last error', d.last_error ?? '–']];
    rows.push(['dead-lettered from', d.from], ...why,
      ['first attempt', ms(d.first_attempt_ms)], ['last attempt', ms(d.last_attempt_ms)], ['dead at', ms(d.dead_at_ms)]);
    for (const x of d.x_death) {
      rows.push(['x-death', `${x.queue} · ${x.reason} · count ${x.count} · first ${ms(x.time_ms)} · via ${x.exchange} · key "${x.routing_key}"`]);
    }
  }
  const dl = doc.createElement('dl');
  // A system's own names (DeadLetterErrorDescription, MaxDeliveryCountExceeded) may break
  // between their words on a phone, never inside one.
  const camel = (el, text) => {
    String(text).split(/(?<=[a-z])(?=[A-Z])/).forEach((part, i) => {
      if (i > 0) el.append(doc.createElement('wbr'));
      el.append(part);
    });
    return el;
  };
  for (const [k, v] of rows) dl.append(camel(doc.createElement('dt'), k), camel(doc.createElement('dd'), v));
  const ol = doc.createElement('ol');
  for (const line of history ?? []) {
    const li = doc.createElement('li');
    li.textContent = readable(line);
    ol.append(li);
  }
  box.replaceChildren(dl, ol);
}

const GLYPH = { done: '●', failed: '✗', compensated: '↺', pending: '○' };

/**
 * Request-reply systems and sagas as text: their counters, each saga block's windows of
 * inconsistency (a step done and its saga failed, not yet compensated), and the newest sagas'
 * logs, one glyph per step.
 */
// long: the workflows panel's sections in reading order: systems, saga blocks, windows, logs
export function showWorkflows(doc, view, onPick, drawLanes) {
  const layout = view.layout;
  if (!view.workflows) return;
  const list = doc.getElementById('workflows');
  const key = JSON.stringify(view.workflows) + view.lastReply.join();
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  const secs = (ms) => `${(ms / 1000).toFixed(2)} s`;
  const items = [];
  view.workflows.request_reply.forEach((r, i) => {
    const info = layout.request_reply[i];
    const li = doc.createElement('li');
    const s = r.stats;
    Object.assign(li.dataset, {
      system: r.name, sent: s.sent, matched: s.matched, orphaned: s.orphaned, late: s.late, timedOut: s.timed_out,
    });
    const design = `${info.shared_reply_queue ? 'one shared reply queue' : 'a reply queue per requester'}, ${info.shared_store ? 'pending requests in a shared store' : 'pending requests in local memory'}`;
    const head = doc.createElement('strong');
    head.textContent = r.name;
    const counts = doc.createElement('span');
    counts.className = 'counts';
    const mean = s.matched ? ` · mean reply ${secs(s.latency_total_us / 1000 / s.matched)}` : '';
    counts.textContent = ` (${design}): sent ${s.sent} · matched ${s.matched} · orphaned ${s.orphaned} · late ${s.late} · timed out ${s.timed_out} · retried ${s.retried} · pending ${r.pending}${mean}`;
    li.append(head, counts);
    const last = view.lastReply[i];
    if (last !== undefined) {
      const b = doc.createElement('button');
      b.type = 'button';
      b.className = 'inspect-reply';
      b.textContent = `Inspect the latest reply, m${last}`;
      b.addEventListener('click', () => onPick(last));
      li.append(' ', b);
    }
    const dead = r.killed.map((k, j) => (k ? `${r.name}.requester-${j + 1}` : null)).filter(Boolean);
    if (dead.length) {
      const p = doc.createElement('div');
      p.className = 'stuck';
      p.textContent = `killed: ${dead.join(', ')}`;
      li.append(p);
    }
    items.push(li);
  });
  view.workflows.sagas.forEach((g, i) => {
    const info = layout.sagas[i];
    const li = doc.createElement('li');
    const s = g.stats;
    Object.assign(li.dataset, {
      saga: g.name, started: s.started, completed: s.completed, compensated: s.compensated, stuck: s.stuck,
      running: g.running, compensating: g.compensating, appliedTwice: s.applied_twice,
    });
    const head = doc.createElement('strong');
    head.textContent = g.name;
    const counts = doc.createElement('span');
    counts.className = 'counts';
    counts.textContent = ` (${info.style}): started ${s.started} · completed ${s.completed} · compensated ${s.compensated} · running ${g.running} · compensating ${g.compensating}`
      + (s.applied_twice ? ` · a step ran twice ${s.applied_twice}` : '');
    li.append(head, counts);
    if (s.stuck) {
      const stuck = doc.createElement('div');
      stuck.className = 'stuck';
      stuck.textContent = `saga stuck: ${s.stuck} (a compensation went to a dead-letter queue)`;
      li.append(stuck);
    }
    const windows = doc.createElement('ul');
    g.windows.forEach((w, k) => {
      if (!w.compensated && !w.open) return;
      const row = doc.createElement('li');
      row.className = 'window';
      const step = info.steps[k];
      row.textContent = `${step.done}, not yet ${step.undone}: longest ${secs(w.longest_ms)}`
        + (w.compensated ? `, mean ${secs(w.total_ms / w.compensated)} over ${w.compensated}` : '')
        + (w.open ? `; open now: ${w.open}, for up to ${secs(w.open_longest_ms)}` : '');
      windows.append(row);
    });
    const recent = doc.createElement('ol');
    recent.setAttribute('aria-label', `${g.name}: the newest sagas`);
    for (const inst of g.recent) {
      const row = doc.createElement('li');
      row.dataset.status = inst.status;
      row.textContent = `#${inst.instance} ${inst.status.toLowerCase()}: ` + inst.steps
        .map((st, k) => `${GLYPH[st]} ${st === 'failed' ? info.steps[k].failed : st === 'compensated' ? info.steps[k].undone : info.steps[k].done}`)
        .join('  ');
      recent.append(row);
    }
    const lanes = doc.createElement('canvas');
    lanes.className = 'swimlanes';
    lanes.dataset.saga = g.name;
    lanes.setAttribute('role', 'img');
    lanes.setAttribute('aria-label', `${g.name}: swimlanes of the newest sagas, one lane per service; the list below says the same in text`);
    li.append(lanes, windows, recent);
    items.push(li);
  });
  list.replaceChildren(...items);
  for (const canvas of list.querySelectorAll('canvas.swimlanes')) {
    const i = view.workflows.sagas.findIndex((g) => g.name === canvas.dataset.saga);
    drawLanes(canvas, view.workflows.sagas[i], layout.sagas[i]);
  }
}
