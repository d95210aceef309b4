// The side panels: messages by state (from the engine's own counts) and the event log.
// DOM only; they read what they are given and keep their size bounded.

const LOG_ITEMS_MAX = 200;

/** Builds the counts table for a layout: one row per state, one column per queue. */
export function setupCounts(doc, layout) {
  const table = doc.getElementById('counts');
  const head = doc.createElement('tr');
  head.append(cell(doc, 'th', 'State', 'col'));
  for (const q of layout.queues) head.append(cell(doc, 'th', q, 'col', 'num'));
  table.tHead.replaceChildren(head);
  table.tBodies[0].replaceChildren(...layout.states.map((state) => {
    const row = doc.createElement('tr');
    row.append(cell(doc, 'th', state, 'row'));
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

/** Appends the events' lines to the log, keeping the newest LOG_ITEMS_MAX. */
export function appendLog(doc, events) {
  if (events.length === 0) return;
  const log = doc.getElementById('log');
  const frag = doc.createDocumentFragment();
  for (const e of events.slice(-LOG_ITEMS_MAX)) {
    const li = doc.createElement('li');
    li.className = e.kind;
    li.textContent = e.line;
    frag.append(li);
  }
  log.append(frag);
  while (log.childElementCount > LOG_ITEMS_MAX) log.firstElementChild.remove();
  log.scrollTop = log.scrollHeight;
}

export function clearLog(doc) {
  doc.getElementById('log').replaceChildren();
}
