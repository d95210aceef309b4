// (ctx, view, now) -> pixels. Reads the view model, never changes it. Motion is interpolated
// from each message's start and end time, so the picture is smooth between engine events.
// One meaning per mark (../shared/product.md): filled neutral = ready; amber with a draining
// ring = leased; hollow with an arc = waiting out a delay or backoff; red with a cross = dead
// letter; green pulse = acked; red flash = lost; grey clock = expired.

const PULSE_MS = 700;
const DOT = 6;

/**
 * Where everything sits, for a canvas of w x h CSS pixels. Pure. Queues and topics share the
 * broker column, queue consumers and consumer groups the right one, each in proportion to
 * what it shows. `members[g]` is how many member rows group g needs.
 */
// long: one rectangle per region of the canvas, in layout order
export function geometry(layout, w, h, members = []) {
  if (layout.sagas.length) return sagaGeometry(layout, w, h);
  const top = 40;
  // A key legend, when there is one, has a band of its own along the bottom.
  const bottom = h - (hasKeyLegend(layout) ? KEY_BAND : 12);
  const spread = (n, i, lo = top, hi = bottom) => lo + ((hi - lo) * (i + 0.5)) / Math.max(n, 1);
  // RabbitMQ's exchanges get a column of their own between the producers and the queues,
  // with room after it for the bindings' keys.
  const ex = layout.exchanges ?? [];
  // On a narrow canvas (a phone) the consumers take a larger share, so their names fit.
  // On a phone, producers that all publish to exchanges give up their column: each is named
  // over its exchange instead.
  const folded = ex.length > 0 && w < 600 && layout.producers.length > 0 && layout.producers.every((pr) => isSet(pr.exchange));
  const prodW = folded ? 0 : producerWidth(w);
  const prodX = ex.length ? prodW / 2 + 8 : Math.max(prodW / 2 + 8, w * 0.1);
  const consW = ex.length && w < 600 ? Math.min(112, w * 0.3) : Math.max(Math.min(150, w * 0.17), Math.min(132, w * 0.36));
  const consX = Math.min(w * 0.8, w - consW - 8);
  const groupW = Math.max(Math.min(260, w * 0.27), Math.min(150, w * 0.4));
  // The broker column ends where the right one (consumers, or wider groups) begins.
  const rightX = layout.groups.length ? Math.min(consX, w - groupW - 10) : consX;
  const exW = Math.min(120, Math.max(folded ? 64 : 58, w * 0.11));
  const exX = folded ? 8 : prodX + prodW / 2 + Math.min(48, Math.max(10, w * 0.035));
  const brokerX = ex.length ? exX + exW + Math.min(110, Math.max(26, w * 0.09)) : prodX + prodW / 2 + 24;
  const queueW = Math.min(w * 0.34, 420, rightX - 24 - brokerX);
  const queueX = ex.length ? brokerX : Math.min(w * 0.46 - queueW / 2, rightX - 24 - queueW);
  const topicsOf = (t) => layout.topics.map((x, i) => i).filter((i) => layout.topics[i].of === t);
  // The broker column: each main queue or main topic gets a slot: first the least it reads
  // in (a queue stack's, STACK_LEAST), then a share of what is left sized by what it draws.
  const items = [
    ...layout.queues.map((q, i) => ({ kind: 'queue', i, least: STACK_LEAST, weight: q.role === 'main' ? 1 + 0.5 * layout.queues.filter((x) => x.of === i).length : 0 })),
    ...layout.topics.map((t, i) => ({
      kind: 'topic', i, least: 0,
      weight: t.role === 'main' ? [i, ...topicsOf(i)].reduce((n, j) => n + 0.45 + 0.3 * layout.topics[j].partitions, 0) : 0,
    })),
  ].filter((x) => x.weight > 0);
  const total = items.reduce((n, x) => n + x.weight, 0) || 1;
  const leastAll = items.reduce((n, x) => n + x.least, 0);
  const spare = Math.max(0, bottom - top - leastAll);
  const squeeze = Math.min(1, (bottom - top) / Math.max(leastAll, 1));
  const queues = [];
  const topics = [];
  let lo = top;
  for (const item of items) {
    const hi = lo + item.least * squeeze + (spare * item.weight) / total;
    if (item.kind === 'queue') placeQueue(layout, queues, item.i, lo, hi, queueX, queueW);
    else placeTopic(layout, topics, item.i, topicsOf(item.i), lo, hi, queueX, queueW);
    lo = hi;
  }
  // The right column: one row per consumer, a header plus one row per member per group.
  const rows = [
    ...layout.consumers.map((c, i) => ({ kind: 'consumer', i, weight: 1 })),
    ...layout.groups.map((g, i) => ({ kind: 'group', i, weight: 1 + 0.62 * Math.max(members[i] ?? 1, 1) })),
  ];
  const rowTotal = rows.reduce((n, x) => n + x.weight, 0) || 1;
  const consumers = [];
  const groups = [];
  let y = top;
  for (const row of rows) {
    const slot = ((bottom - top) * row.weight) / rowTotal;
    if (row.kind === 'consumer') {
      const ch = Math.min(46, slot * 0.82);
      consumers[row.i] = { x: consX, y: y + slot / 2 - ch / 2, w: consW, h: ch };
    } else {
      groups[row.i] = { x: w - groupW - 10, y: y + 6, w: groupW, h: slot - 12 };
    }
    y += slot;
  }
  // A dependency: a pill under the first consumer that calls it, where the row has room.
  const dependencies = (layout.dependencies ?? []).map((d, di) => {
    const ci = layout.consumers.findIndex((c) => c.dependency === di);
    const c = consumers[ci];
    const below = c && consumers.filter((o) => o.y > c.y).reduce((m, o) => Math.min(m, o.y), bottom);
    return c && below - (c.y + c.h) >= 26 ? { x: c.x, y: c.y + c.h + 5, w: c.w, h: 18 } : undefined;
  });
  const exchanges = placeExchanges(layout, queues, exX, exW, top, bottom);
  // A producer that publishes to an exchange sits level with it, where the column has room.
  const producers = settle(layout.producers.map((pr, i) => (
    isSet(pr.exchange) && exchanges[pr.exchange]
      ? exchanges[pr.exchange].y + exchanges[pr.exchange].h / 2 : spread(layout.producers.length, i))), 32, 10, top, bottom)
    .map((y, i) => (folded ? { ...exchangeTop(exchanges[layout.producers[i].exchange]), w: 0 } : { x: prodX, y, w: prodW }));
  return {
    dependencies,
    folded,
    columns: [
      ...(folded ? [] : [{ label: 'Producers', x: prodX }]),
      ...(ex.length ? [{ label: 'Exchanges', x: exX + exW / 2 }] : []),
      { label: ex.length ? 'Queues' : 'Broker', x: queueX + queueW / 2 },
      { label: layout.groups.length && !layout.consumers.length ? 'Consumer groups' : 'Consumers', x: consX + consW / 2 },
    ],
    producers,
    exchanges,
    queues,
    consumers,
    topics,
    groups,
  };
}

/**
 * A saga block's parts. In a row: its title, the room events arc through, a node, the gap
 * between the orchestrator and the services, the window's words under the row, the gap
 * between blocks. In a column (a phone), units are shorter and closer (`columnNode`, `hop`),
 * the title has a second line for the others, and the side lanes are `lane` wide.
 */
const SAGA = { title: 22, arcs: 40, node: 50, orchGap: 50, band: 24, gap: 14, columnNode: 40, hop: 16, lane: 22, others: 16 };

/** The least height a saga block reads in: in a row (`squeeze` shortens its gaps), or in a column. */
function sagaBlockHeight(info, column, squeeze = 1) {
  const orch = info.style === 'orchestration';
  const units = info.steps.length + (orch ? 1 : 0);
  if (column) return SAGA.title + SAGA.others + SAGA.hop + 8 + units * (SAGA.columnNode + SAGA.hop) - SAGA.hop + SAGA.band;
  return SAGA.title + (orch ? SAGA.node + SAGA.orchGap * squeeze : SAGA.arcs * squeeze) + SAGA.node + SAGA.band;
}

/** What a layout's saga blocks need in all, from `top`. */
const sagasHeight = (layout, column, squeeze = 1) =>
  24 + layout.sagas.reduce((n, info) => n + sagaBlockHeight(info, column, squeeze) + SAGA.gap, -SAGA.gap);

/** A row's widths for n units across w px: the queue, the gap to its node, the node. */
function sagaRow(w, n) {
  const left = 8 + Math.min(64, Math.max(44, w * 0.08)) + 14;
  const unitW = (w - left - 8) / n;
  const qW = Math.max(24, Math.min(44, unitW * 0.22));
  const gapQ = Math.max(6, Math.min(12, unitW * 0.06));
  return { left, unitW, qW, gapQ, nodeW: Math.min(170, unitW - qW - gapQ - Math.max(12, unitW * 0.08)) };
}

/**
 * Sagas as services (issue 23): per saga block one unit per step, the service's queue (its
 * inbox) then its node (the consumer that is the service), and the block's starter. In a row
 * (flow left to right), choreography's compensations arc back over it and orchestration puts
 * the orchestrator's unit above it; in a column (a canvas too narrow for a row's nodes to
 * read, tall enough for the column), units stack top to bottom, and the side lanes carry what
 * goes back up (compensations, replies) and the orchestrator's commands. A service's
 * dead-letter queue sits under its queue. Blocks share the height by what they need.
 */
// long: a saga block's units as a row or, on a phone, a column, with their side lanes
function sagaGeometry(layout, w, h) {
  const top = 12;
  const narrow = layout.sagas.some((info) => sagaRow(w, info.steps.length).nodeW < 100);
  const column = narrow && sagasHeight(layout, true) <= h;
  // A row on a short canvas: its gaps shrink, down to 40%, before anything leaves the canvas.
  const squeeze = column ? 1 : Math.max(0.4, Math.min(1, 1 - (sagasHeight(layout, false) - h) / Math.max(1, sagasHeight(layout, false) - sagasHeight(layout, false, 0))));
  const need = layout.sagas.map((info) => sagaBlockHeight(info, column, squeeze));
  const spare = Math.max(0, h - top - 12 - need.reduce((a, b) => a + b, 0) - SAGA.gap * (layout.sagas.length - 1));
  const queues = [];
  const consumers = [];
  const producers = layout.producers.map(() => ({ x: -999, y: -999, w: 0 }));
  const sagas = [];
  const nodeH = column ? SAGA.columnNode : SAGA.node;
  let y = top;
  layout.sagas.forEach((info, b) => {
    const blockH = need[b] + spare / layout.sagas.length;
    const n = info.steps.length;
    const orch = info.style === 'orchestration';
    const row = column
      ? { left: 8 + SAGA.lane, qW: 40, gapQ: 8, nodeW: Math.min(260, w - (8 + SAGA.lane + 10 + 40 + 8) - SAGA.lane - 16) }
      : sagaRow(w, n);
    const { qW, gapQ, nodeW } = row;
    const unit = (qi, ci, x, ny, nw = nodeW) => {
      const qH = column ? 20 : 26;
      const qy = ny + (column ? 1 : 6);
      queues[qi] = { x, y: qy, w: qW, h: qH, inside: true, title: '', titleW: 4, saga: true };
      // Its dead-letter queue under it, reaching a little left so that "DLQ 3" reads.
      const dlq = layout.queues.findIndex((q) => q.of === qi && q.role === 'dead_letter');
      if (dlq >= 0) queues[dlq] = { x: x - 10, y: qy + qH + 2, w: qW + 10, h: 16, inside: true, title: 'DLQ', titleW: 30, saga: true };
      consumers[ci] = { x: x + qW + gapQ, y: ny, w: nw, h: nodeH, label: layout.consumers[ci].name.slice(info.name.length + 1), quiet: true };
      return { q: queues[qi], node: consumers[ci] };
    };
    const extra = blockH - need[b];
    const startW = column ? 64 : Math.min(64, Math.max(44, w * 0.08));
    const startName = layout.producers[info.starter].name.slice(info.name.length + 1);
    let units;
    let boss = null;
    let rowY;
    let arcs = SAGA.arcs * squeeze;
    if (column) {
      // The starter at the right of the others' line; spare height centres the column.
      producers[info.starter] = { x: w - 8 - startW / 2, y: y + SAGA.title + 16, w: startW, label: startName };
      let uy = y + SAGA.title + SAGA.others + SAGA.hop + 8 + extra / 2;
      const next = (qi, ci) => {
        const u = unit(qi, ci, row.left + 10, uy);
        uy += nodeH + SAGA.hop;
        return u;
      };
      if (orch) boss = next(info.queues[n], info.consumers[n]);
      units = info.steps.map((st, k) => next(info.queues[k], info.consumers[k]));
      rowY = units[0].node.y;
    } else {
      // Spare height first opens the room the events fly through (up to 70 px more), then
      // centres the rows under the block's title.
      const grow = Math.min(70, extra * 0.45);
      const pad = (extra - grow) / 2;
      arcs = SAGA.arcs * squeeze + (orch ? 0 : grow);
      const orchY = y + SAGA.title + pad;
      rowY = orch ? orchY + SAGA.node + SAGA.orchGap * squeeze + grow : y + SAGA.title + pad + arcs;
      units = info.steps.map((st, k) => unit(info.queues[k], info.consumers[k], row.left + k * row.unitW, rowY));
      const bossW = Math.min(190, w - row.left - qW - gapQ - 16);
      if (orch) boss = unit(info.queues[n], info.consumers[n], row.left + (w - row.left - 8) / 2 - (qW + gapQ + bossW) / 2, orchY, bossW);
      producers[info.starter] = { x: 8 + startW / 2, y: (orch ? orchY : rowY) + SAGA.node / 2, w: startW, label: startName };
    }
    sagas.push({ y, h: blockH, units, boss, rowY, arcs, column, nodeH, lanes: [8 + SAGA.lane / 2, w - 8 - SAGA.lane / 2] });
    y += blockH + SAGA.gap;
  });
  return { columns: [], producers, queues, consumers, topics: [], groups: [], sagas };
}

/** The band along the canvas's bottom that a key legend takes. */
const KEY_BAND = 32;
/** Queue dots take a hue per key or group for the first this many; the rest are "other". */
export const KEY_HUES = 8;

function hasKeyLegend(layout) {
  return Boolean(layout.keyed) || layout.topic_keys > 0;
}

/** A leased (amber) message's key or group, as a core of its hue, so that a key can be followed. */
function keyCore(ctx, layout, m, x, y, r, p) {
  if (layout.keyed && m && m.key >= 0 && m.key < KEY_HUES) dot(ctx, x, y, keyColor(m.key, p), null, Math.max(2, r * 0.5));
}

/** A queue message's color: its key's or group's hue (the first KEY_HUES), else ready's. */
function keyedColor(layout, m, p) {
  return layout.keyed && m && m.key >= 0 && m.key < KEY_HUES ? keyColor(m.key, p) : p.ready;
}

/**
 * The key legend along the bottom: one dot per hue with its key or group, "other" past
 * KEY_HUES, and for a FIFO queue what a blocked group looks like; for topics, the first hues
 * of their keys.
 */
function drawKeyLegend(ctx, ink, layout, w, h, p) {
  const y = h - KEY_BAND / 2;
  let x = 8;
  const queues = Boolean(layout.keyed);
  const count = queues ? layout.key_count : layout.topic_keys;
  const name = (k) => (layout.keyed === 'group' ? `g${k}` : `key-${k}`);
  const items = [];
  for (let k = 0; k < Math.min(count, KEY_HUES); k++) items.push({ color: keyColor(k, p), text: name(k) });
  if (count > KEY_HUES) items.push({ color: queues ? p.ready : null, text: queues ? 'other' : `… ${count} keys` });
  if (queues && layout.queues.some((q) => q.fifo)) items.push({ color: p.ready, ring: true, text: 'blocked: its group has one in flight' });
  ctx.font = `${TEXT}px ${SANS}`;
  const lead = `${layout.keyed === 'group' ? 'group' : 'key'}:`;
  ink.text(lead, x, y, { color: p.muted, rank: 0, kind: 'legend' });
  x += ctx.measureText(lead).width + 8;
  for (const it of items) {
    const wide = (it.color ? 18 : 0) + ctx.measureText(it.text).width + 12;
    if (x + wide > w - 4) break;
    if (it.color) {
      dot(ctx, x + 5, y, it.color, null, 5);
      if (it.ring) ring(ctx, x + 5, y, 1, p.ink, 7);
      ink.mark(x + 5, y, it.ring ? 8 : 5, `legend.${it.text}`);
      x += it.ring ? 18 : 14;
    }
    ink.text(it.text, x, y, { color: p.muted, rank: 0, kind: 'legend' });
    x += ctx.measureText(it.text).width + 12;
  }
}

/**
 * Shorter titles for a queue or topic: its bare name; a helper's name without its queue's
 * (`orders.retry.1` under `orders` is `…retry.1`).
 */
function helperNames(x, all) {
  const parent = x.of === undefined || x.of === null ? undefined : all[x.of];
  const own = parent && x.name.startsWith(parent.name) ? x.name.slice(parent.name.length).replace(/^[.\-_]+/, '') : '';
  return [x.name, ...(own ? [`…${own}`] : [])];
}

/** A producer's box: an eighth of the canvas, from 64 to 120 px. */
function producerWidth(w) {
  return Math.min(120, Math.max(64, w * 0.12));
}

/**
 * Centres `want` (each a y) for items `h` high, at least `gap` apart, in order, within
 * [lo, hi]: each keeps its wish where it can, and those that would meet are pushed apart.
 * Pure; returns the centres in the input's order.
 */
function settle(want, h, gap, lo, hi) {
  const order = want.map((y, i) => [y, i]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const ys = order.map(([y]) => y);
  const pitch = h + gap;
  for (let k = 0; k < ys.length; k++) ys[k] = Math.max(ys[k], k ? ys[k - 1] + pitch : lo + h / 2);
  for (let k = ys.length - 1; k >= 0; k--) ys[k] = Math.min(ys[k], k < ys.length - 1 ? ys[k + 1] - pitch : hi - h / 2);
  for (let k = 0; k < ys.length; k++) ys[k] = Math.max(ys[k], k ? ys[k - 1] + pitch : lo + h / 2);
  const out = [];
  order.forEach(([, i], k) => { out[i] = ys[k]; });
  return out;
}

/** Where a folded producer sends from: just over its exchange's middle. */
const exchangeTop = (b) => ({ x: b.x + b.w / 2, y: b.y - 4 });

/** An exchange node's height: its name over its type. */
const EXCHANGE_H = 40;

/**
 * The exchange column: each exchange level with the middle of the queues it binds (its
 * alternate exchange's, if it binds none), pushed apart where they would meet.
 */
function placeExchanges(layout, queues, x, w, top, bottom) {
  const ex = layout.exchanges ?? [];
  const mid = (b) => b.y + b.h / 2;
  const aim = (e, seen = new Set()) => {
    if (seen.has(e)) return undefined;
    seen.add(e);
    const ys = (layout.bindings ?? []).filter((b) => b.exchange === e)
      .map((b) => (isSet(b.queue) && queues[b.queue] ? mid(queues[b.queue]) : isSet(b.to_exchange) ? aim(b.to_exchange, seen) : undefined))
      .filter((y) => y !== undefined);
    if (ys.length) return ys.reduce((a, b) => a + b, 0) / ys.length;
    return isSet(ex[e].alternate) ? aim(ex[e].alternate, seen) : undefined;
  };
  const want = ex.map((_, e) => aim(e) ?? top + ((bottom - top) * (e + 0.5)) / ex.length);
  return settle(want, EXCHANGE_H, 14, top + 4, bottom).map((y) => ({ x, y: y - EXCHANGE_H / 2, w, h: EXCHANGE_H }));
}

/** Queue stacks: a title band over each box, and the least heights that still read well. */
const TITLE = 16;
const MAIN_H = { full: 40, roomy: 24, compact: 16 };
const HELPER_H = { full: 30, roomy: 18 };
/** The least slot a queue stack reads in: a title over a roomy box, or over a compact row. */
const STACK_LEAST = TITLE + MAIN_H.roomy;
/** A helper beside its queue: at most this wide, this far from it. */
const BESIDE_W = 110;
const BESIDE_GAP = 8;
/** Half the width kept, right in a consumer or a member row, for its work and its pulses. */
const LANE = 13;
/** A consumer box at least this high shows its note and job label; under it, it is crowded. */
const ROOMY_CONSUMER_H = 24;

/**
 * A main queue with its retry and dead-letter queues stacked under it. Roomy: each box has
 * its title above it, boxes shrink to fit (not below `roomy`). When even that does not fit
 * (a dozen queues on a short canvas), the stack turns compact: the helpers move beside their
 * queue, in one row, each with a short title inside (`titleW` wide; its dots keep clear of it).
 * The stack is centred in its slot, spare room widening gaps.
 */
function placeQueue(layout, queues, qi, lo, hi, queueX, queueW) {
  const helpers = layout.queues
    .map((q, j) => ({ q, j }))
    .filter(({ q }) => q.of === qi)
    .sort((a, b) => (a.q.role === 'retry' ? 0 : 1) - (b.q.role === 'retry' ? 0 : 1) || a.j - b.j);
  const stack = [{ j: qi, sizes: MAIN_H, inset: 0 }, ...helpers.map(({ q, j }) => ({ j, sizes: HELPER_H, inset: queueW * (q.role === 'retry' ? 0.3 : 0.12) }))];
  const n = stack.length;
  const room = hi - lo;
  const GAP = 8;
  if (n > 1 && room < n * TITLE + GAP * (n - 1) + stack.reduce((sum, s) => sum + s.sizes.roomy, 0)) {
    const helperW = Math.min(BESIDE_W, Math.max(42, queueW * 0.26));
    const h = Math.max(MAIN_H.compact, Math.min(MAIN_H.full, room - TITLE - GAP));
    const y = lo + TITLE + Math.max(0, (room - TITLE - h) / 2);
    // Its title has the band above the whole row: the helpers carry theirs inside.
    queues[qi] = { x: queueX, y, w: queueW - helpers.length * (helperW + BESIDE_GAP), h, inside: false, titleW: 0, titleRoom: queueW };
    helpers.forEach(({ q, j }, k) => {
      const title = q.role === 'retry' ? 'retry' : helperW >= 100 ? 'dead letters' : 'DLQ';
      const x = queueX + queueW - (helpers.length - k) * helperW - (helpers.length - 1 - k) * BESIDE_GAP;
      queues[j] = { x, y, w: helperW, h, inside: true, beside: true, title, titleW: Math.min(helperW, title.length * 7 + 14) };
    });
    return;
  }
  const natural = stack.reduce((sum, s) => sum + s.sizes.full, 0);
  const scale = Math.min(1, Math.max(0, room - n * TITLE - GAP * (n - 1)) / natural);
  const heights = stack.map((s) => Math.max(s.sizes.roomy, s.sizes.full * scale));
  const used = heights.reduce((sum, h) => sum + h, 0) + n * TITLE + GAP * (n - 1);
  const gap = GAP + Math.min(24, Math.max(0, room - used) / n);
  let y = lo + Math.max(0, (room - used - (gap - GAP) * (n - 1)) / 2);
  stack.forEach((s, k) => {
    y += TITLE;
    queues[s.j] = { x: queueX + s.inset, y, w: queueW - 2 * s.inset, h: heights[k], inside: false, titleW: 0 };
    y += heights[k] + gap;
  });
}

/**
 * The canvas height (CSS px) at which every queue stack of a layout fits in its compact form
 * and every consumer gets a row of 24 px (a box its jobs' rings fit in; consumers drop their
 * notes by themselves when rows are short): on a phone, where the page scrolls, the canvas
 * is at least this tall.
 */
export function layoutHeight(layout) {
  if (layout.sagas.length) return sagasHeight(layout, true);
  const stacks = layout.queues.filter((q) => q.role === 'main').length;
  return 52 + Math.max(stacks * STACK_LEAST, layout.consumers.length * 24);
}

/** A topic box with one tape per partition; its retry and dead-letter topics below it. */
function placeTopic(layout, topics, ti, derived, lo, hi, queueX, queueW) {
  const all = [ti, ...derived];
  const weights = all.map((j) => 0.45 + 0.3 * layout.topics[j].partitions);
  const sum = weights.reduce((a, b) => a + b, 0);
  let y = lo;
  all.forEach((j, k) => {
    const slot = ((hi - lo) * weights[k]) / sum;
    const inset = k === 0 ? 0 : queueW * 0.08;
    const n = layout.topics[j].partitions;
    // Room under each tape for the groups' committed-offset marks.
    const pitch = Math.max(Math.min(26, (slot - 30) / n), 4);
    const tapeH = Math.max(Math.min(14, pitch * 0.55), 3);
    const h = n * pitch + 6;
    const b = { x: queueX + inset, y: y + 18 + Math.max(0, (slot - 24 - h) / 2), w: queueW - inset, h };
    b.tapes = Array.from({ length: n }, (_, p) => ({ x: b.x + 30, y: b.y + 4 + p * pitch, w: b.w - 70, h: tapeH }));
    topics[j] = b;
    y += slot;
  });
}

const lerp = (a, b, t) => a + (b - a) * t;
const clamp01 = (x) => Math.min(1, Math.max(0, x));

/** How far along [t0, t1] `now` is, 0..1. Without motion, a message jumps at the end. */
function progress(now, t0, t1, motion) {
  if (t1 <= t0) return 1;
  const p = clamp01((now - t0) / (t1 - t0));
  return motion ? p : p >= 1 ? 1 : 0;
}

const entry = (b) => ({ x: b.x, y: b.y + b.h / 2 });
const exit = (b) => ({ x: b.x + b.w, y: b.y + b.h / 2 });

function dot(ctx, x, y, fill, stroke, r = DOT) {
  ctx.beginPath();
  ctx.arc(x, y, r, 0, Math.PI * 2);
  if (fill) { ctx.fillStyle = fill; ctx.fill(); }
  if (stroke) { ctx.strokeStyle = stroke; ctx.lineWidth = 2; ctx.stroke(); }
}

/** An arc around a dot for the fraction `left` of something that runs down. */
function ring(ctx, x, y, left, color, r = DOT + 4) {
  if (left <= 0) return;
  ctx.beginPath();
  ctx.arc(x, y, r, -Math.PI / 2, -Math.PI / 2 + Math.PI * 2 * Math.min(1, left));
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.stroke();
}

function cross(ctx, x, y, color, r = DOT - 2) {
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(x - r, y - r); ctx.lineTo(x + r, y + r);
  ctx.moveTo(x + r, y - r); ctx.lineTo(x - r, y + r);
  ctx.stroke();
}

function box(ctx, b, fill, stroke, dashed = false) {
  ctx.beginPath();
  ctx.roundRect(b.x, b.y, b.w, b.h, 8);
  ctx.fillStyle = fill;
  ctx.fill();
  ctx.setLineDash(dashed ? [5, 4] : []);
  ctx.strokeStyle = stroke;
  ctx.lineWidth = 1.5;
  ctx.stroke();
  ctx.setLineDash([]);
}

function label(ctx, text, x, y, color, align = 'center', font = '12px system-ui, sans-serif') {
  ctx.font = font;
  ctx.fillStyle = color;
  ctx.textAlign = align;
  ctx.textBaseline = 'middle';
  ctx.fillText(text, x, y);
}

/** Where each visible message of a queue sits: the head (oldest) at the exit, on the right. */
function slotsOf(b, count) {
  const step = DOT * 2 + 4;
  const fit = Math.max(0, Math.floor((b.w - 16 - b.titleW) / step));
  // Too many to show: a box makes room for "+N"; a helper beside its queue says its count in
  // its title instead, and shows none, so that the longer title meets no dot.
  const shown = count <= fit ? count : b.inside ? 0 : Math.max(fit - 1, 0);
  return { shown, at: (i) => ({ x: b.x + b.w - 12 - i * step, y: b.y + b.h / 2 }) };
}

/**
 * Where a consumer's `i`-th job (of the first four) is drawn: right-aligned, below the name in
 * a roomy box; in a crowded one (under 24 px) centred, and small enough that its lease ring
 * (2 px wider than the dot, plus its stroke) stays inside the box.
 */
export function jobAt(c, i) {
  const roomy = c.h >= ROOMY_CONSUMER_H;
  const r = roomy ? DOT : Math.max(2, Math.min(DOT, c.h / 2 - 5));
  return { x: c.x + c.w - 16 - i * (DOT * 2 + 10), y: c.y + c.h / 2 + (roomy ? 4 : 0), r };
}

/** Sizes a canvas's backing store to its CSS box at the screen's pixel ratio; returns the CSS size. */
export function fitCanvas(el, context) {
  const rect = el.getBoundingClientRect();
  const dpr = devicePixelRatio || 1;
  el.width = Math.round(rect.width * dpr);
  el.height = Math.round(rect.height * dpr);
  context.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { width: rect.width, height: rect.height };
}

/** The least size of any text on the canvas, in CSS px (before the canvas's own scale). */
const TEXT = 12;
const SANS = 'system-ui, sans-serif';
const MONO = 'ui-monospace, monospace';

/**
 * How much the canvas enlarges everything: 1 on a laptop, up to 1.5 on a large screen, so
 * that boxes, dots and text grow with the room they have. Never below 1: text stays ≥ 12 px.
 */
export function canvasScale(w, h) {
  return Math.min(1.5, Math.max(1, Math.min(w / 960, h / 600)));
}

/**
 * `text` as it fits in `room` px in the context's font: whole; else, for a name, without its
 * dotted prefix (`…requester-1`), then without its middle, keeping the instance number
 * (`reque…r-1`); else cut at the end with an ellipsis.
 */
function shorten(ctx, text, room, name) {
  const fits = (t) => ctx.measureText(t).width <= room;
  if (fits(text)) return text;
  const rest = name ? text.slice(text.lastIndexOf('.') + 1) : text;
  if (rest !== text && fits(`…${rest}`)) return `…${rest}`;
  const tail = name ? rest.slice(-3) : '';
  let head = rest.slice(0, rest.length - tail.length);
  while (head.length > 1 && !fits(`${head}…${tail}`)) head = head.slice(0, -1);
  return `${head}…${tail}`;
}

/**
 * Every piece of text on the canvas, and every progress bar, goes through here. Each is
 * measured and fitted to the room it may use (shortened with an ellipsis), then placed in rank
 * order: rank 0 (names and titles) always; a lower rank only where it meets nothing placed
 * and stays on the canvas. So nothing is ever drawn over anything else; what cannot fit is
 * left out whole. `placed` is what was drawn, for the geometry test.
 */
class Ink {
  constructor(ctx, w, h) {
    this.ctx = ctx;
    this.w = w;
    this.h = h;
    this.items = [];
  }

  /**
   * opts: {color, align: left|center|right, size, bold, mono, rank (0..3), room (px),
   * within: the id of the shape the text belongs in, kind}. A name (`kind` consumer, producer,
   * group, member) too long for its room is shortened as names are (`shorten`).
   * `shorter`: shorter ways to say it, tried in order before anything is cut. `alts`: other
   * places for it, [dx, dy] from (x, y), tried in order when it does not fit where it is.
   */
  text(text, x, y, { color, align = 'left', size = TEXT, bold = false, mono = false, rank = 1, room = Infinity, within, kind = 'label', shorter = [], alts = [] }) {
    const ctx = this.ctx;
    const font = `${bold ? '600 ' : ''}${size}px ${mono ? MONO : SANS}`;
    ctx.font = font;
    const full = [String(text), ...shorter].find((t) => ctx.measureText(t).width <= room) ?? String(text);
    const shown = shorten(ctx, full, room, ['consumer', 'producer', 'group', 'member'].includes(kind));
    const width = ctx.measureText(shown).width;
    const left = align === 'left' ? x : align === 'right' ? x - width : x - width / 2;
    this.items.push({ kind, text: shown, full, x: left, y: y - size * 0.6, w: width, h: size * 1.2, size, font, color, rank, within, at: { x, y, align }, alts });
  }

  bar(x, y, w, h, color, rank = 3, within = undefined) {
    if (w <= 0) return;
    this.items.push({ kind: 'bar', x, y, w, h, color, rank, within });
  }

  /** A box that text of lower ranks keeps off, unless it belongs in it (`within`). Not drawn. */
  shape(x, y, w, h, id) {
    this.items.push({ kind: 'shape', x, y, w, h, id, rank: -1 });
  }

  /** A dot or ring (drawn by the caller) of radius r at (x, y), that text keeps off likewise. */
  mark(x, y, r, id, about = {}) {
    this.items.push({ kind: 'shape', x: x - r, y: y - r, w: 2 * r, h: 2 * r, id, rank: -1, ...about });
  }

  /** Places and draws; returns what was placed (shapes included, for the geometry test). */
  finish() {
    const placed = [];
    const meets = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
    const inside = (a) => a.x >= -0.5 && a.y >= -0.5 && a.x + a.w <= this.w + 0.5 && a.y + a.h <= this.h + 0.5;
    const clear = (it) => placed.every((o) => (o.kind === 'shape' && o.id === it.within) || !meets(o, it));
    const order = this.items.map((it, i) => [it, i]).sort((a, b) => a[0].rank - b[0].rank || a[1] - b[1]);
    const moved = (it, [dx, dy]) => ({ ...it, x: it.x + dx, y: it.y + dy, at: { ...it.at, x: it.at.x + dx, y: it.at.y + dy } });
    for (const [it] of order) {
      const fits = (c) => it.rank <= 0 || (inside(c) && clear(c));
      const where = [it, ...(it.alts ?? []).map((d) => moved(it, d))].find(fits);
      if (where) placed.push(where);
    }
    const ctx = this.ctx;
    for (const it of placed) {
      if (it.kind === 'bar') {
        ctx.fillStyle = it.color;
        ctx.fillRect(it.x, it.y, it.w, it.h);
      } else if (it.kind !== 'shape') {
        label(ctx, it.text, it.at.x, it.at.y, it.color, it.at.align, it.font);
      }
    }
    return placed;
  }
}

/**
 * Draws the whole frame and returns the text and bars it placed (in the canvas's own units,
 * before its scale), for the geometry test.
 * opts: {width, height, palette, motion, correlation}; palette holds the theme's CSS colors.
 */
export function draw(ctx, view, now, opts) {
  const k = canvasScale(opts.width, opts.height);
  ctx.save();
  ctx.scale(k, k);
  const placed = drawScene(ctx, view, now, { ...opts, width: opts.width / k, height: opts.height / k });
  ctx.restore();
  return placed;
}

// long: the canvas's layers, in paint order
function drawScene(ctx, view, now, opts) {
  const { width: w, height: h, palette: p, motion } = opts;
  const { layout } = view;
  const g = geometry(layout, w, h, view.groups.map((x) => x.members.length));
  const ink = new Ink(ctx, w, h);
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = p.canvas;
  ctx.fillRect(0, 0, w, h);

  for (const col of g.columns) ink.text(col.label, col.x, 16, { color: p.muted, align: 'center', bold: true, rank: 0, kind: 'column' });

  // Edges first, so nodes and dots sit on top.
  ctx.strokeStyle = p.edge;
  ctx.lineWidth = 1.5;
  const line = (a, b) => { ctx.beginPath(); ctx.moveTo(a.x, a.y); ctx.lineTo(b.x, b.y); ctx.stroke(); };
  layout.producers.forEach((prod, i) => {
    if (g.sagas) return; // a saga's starter: its route is drawn with the others' (drawSagaEdges)
    const to = producerTarget(layout, g, prod);
    if (to && !g.folded) line({ x: g.producers[i].x + g.producers[i].w / 2, y: g.producers[i].y }, entry(to));
  });
  if (g.exchanges?.length) drawExchangeEdges(ctx, ink, view, g, now, p);
  layout.consumers.forEach((cons, i) => line(exit(g.queues[cons.queue]), entry(g.consumers[i])));
  // A retry loop's consumer parks what it gives up on: a dashed edge back to the parking lot.
  layout.consumers.forEach((cons, i) => {
    if (!isSet(cons.park) || !g.queues[cons.park] || !g.consumers[i]) return;
    ctx.setLineDash([4, 4]);
    line(entry(g.consumers[i]), exit(g.queues[cons.park]));
    ctx.setLineDash([]);
  });
  layout.groups.forEach((grp, i) => line(exit(g.topics[grp.topics[0]]), { x: g.groups[i].x, y: g.groups[i].y + 12 }));
  layout.queues.forEach((q, i) => {
    if (q.of === undefined || q.of === null) return;
    const from = g.queues[q.of];
    const to = g.queues[i];
    ctx.setLineDash([3, 3]);
    // Across to a helper beside its queue; else down to the helper's title, not through it.
    if (to.beside) line({ x: from.x + from.w, y: from.y + from.h / 2 }, { x: to.x, y: to.y + to.h / 2 });
    else if (to.y - TITLE > from.y + from.h) line({ x: to.x + to.w / 2, y: from.y + from.h }, { x: to.x + to.w / 2, y: to.y - TITLE });
    ctx.setLineDash([]);
  });
  if (g.sagas) drawSagaEdges(ctx, view, g, now, p);

  layout.producers.forEach((prod, i) => {
    const { x, y, w: pw } = g.producers[i];
    if (g.folded) {
      ink.text(`${prod.name} →`, x, y - 8, { color: p.muted, align: 'center', rank: 1, room: 2 * g.exchanges[prod.exchange].w, kind: 'producer' });
      return;
    }
    if (pw === 0) return;
    box(ctx, { x: x - pw / 2, y: y - 16, w: pw, h: 32 }, p.node, p.edge);
    ink.shape(x - pw / 2, y - 16, pw, 32, `P${i}`);
    ink.text(g.producers[i].label ?? prod.name, x, y, { color: p.ink, align: 'center', rank: 0, room: pw - 8, kind: 'producer', within: `P${i}` });
  });

  (g.exchanges ?? []).forEach((_, e) => drawExchange(ctx, ink, view, g, e, now, p));
  layout.queues.forEach((q, qi) => g.queues[qi] && drawQueue(ctx, ink, view, g.queues[qi], q, qi, now, p));
  layout.consumers.forEach((cons, ci) => drawConsumer(ctx, ink, view, g.consumers[ci], cons, ci, now, p));
  (g.dependencies ?? []).forEach((b, di) => b && drawDependency(ctx, ink, view, b, di, p));
  layout.topics.forEach((t, ti) => drawTopic(ctx, ink, view, g.topics[ti], t, ti, p));
  layout.groups.forEach((grp, gi) => drawGroup(ctx, ink, view, g.groups[gi], grp, gi, now, p, opts));

  // Messages on the wire: publishing (neutral) and delivering (amber, leased).
  for (const m of view.messages.values()) {
    if (m.state === 'publishing' && m.saga && g.sagas) {
      drawFlight(ctx, view, g, m, now, motion, p);
    } else if (m.state === 'publishing') {
      const from = g.producers[m.producer];
      const a = { x: from ? from.x + from.w / 2 : 0, y: from?.y };
      const b = entry(g.queues[m.queue]);
      if (m.producer >= layout.producers.length) { a.x = b.x - 60; a.y = b.y; }
      // A message a consumer parks goes from that consumer back to its parking lot's far side.
      const parker = m.parkedBy >= 0 ? g.consumers[m.parkedBy] : undefined;
      const path = parker ? [entry(parker), exit(g.queues[m.queue])] : [a, ...routeHops(layout, g, m.via), b];
      // A routed message travels through the exchanges that routed it.
      const at = polyline(path)(progress(now, m.t0, m.t1, motion));
      dot(ctx, at.x, at.y, keyedColor(layout, m, p));
    } else if (m.state === 'delivering' && now < m.t1) {
      const a = exit(g.queues[m.queue]);
      const b = entry(g.consumers[m.consumer]);
      const t = progress(now, m.t0, m.t1, motion);
      dot(ctx, lerp(a.x, b.x, t), lerp(a.y, b.y, t), p.inflight);
      keyCore(ctx, layout, m, lerp(a.x, b.x, t), lerp(a.y, b.y, t), DOT, p);
    }
  }

  if (g.sagas) drawSagaNodes(ctx, ink, view, g, now, motion, p);
  // Every reply on its way back: a faint dashed line to the requester that waits for it.
  if (layout.request_reply.length) drawReplyLines(ctx, view, g, now, motion, p);
  for (const pulse of view.pulses) drawPulse(ctx, ink, g, pulse, now, motion, p);
  if (opts.correlation) drawCorrelation(ctx, view, g, opts.correlation, p);
  if (hasKeyLegend(layout)) drawKeyLegend(ctx, ink, layout, w, h, p);
  return ink.finish();
}

// --- RabbitMQ's exchanges ----------------------------------------------------------------------

/** How long (ms of run time) an exchange shows the key it routed last and the bindings it matched. */
const ROUTE_MS = 1500;

const isSet = (x) => x !== undefined && x !== null;

/** Where a producer's edge goes: its topic, its exchange or its queue. */
function producerTarget(layout, g, prod) {
  if (isSet(prod.topic)) return g.topics[prod.topic];
  if (isSet(prod.exchange)) return g.exchanges?.[prod.exchange];
  return g.queues[prod.queue];
}

/**
 * The points a routed message passes on its way to its queue: through the exchange it was
 * published to and, when another one took it there (an exchange-to-exchange binding or the
 * alternate exchange), through that one too.
 */
function routeHops(layout, g, via) {
  if (!via || !g.exchanges?.length) return [];
  const last = layout.bindings?.[via.binding]?.exchange;
  return [...new Set([via.exchange, last])].filter((e) => isSet(e) && g.exchanges[e])
    .flatMap((e) => [entry(g.exchanges[e]), exit(g.exchanges[e])]);
}

/** The exchange's newest route, while it still shows (`ROUTE_MS`). */
function liveRoute(view, e, now) {
  const r = view.routes?.[e];
  return r && now >= r.at && now - r.at <= ROUTE_MS ? r : undefined;
}

/**
 * Bindings, alternate exchanges and dead-letter exchanges as edges. A binding is labelled
 * with its key (or its headers match) where it meets its queue; the bindings an exchange just
 * matched are drawn in the focus colour, and so is their key.
 */
// long: the edges of the exchange column and their labels, in paint order
function drawExchangeEdges(ctx, ink, view, g, now, p) {
  const { layout } = view;
  const focus = p.focus ?? p.inflight;
  const lit = new Set(layout.exchanges.flatMap((_, e) => liveRoute(view, e, now)?.bindings ?? []));
  const line = (a, b, color, width, dash = []) => {
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.setLineDash(dash);
    ctx.beginPath(); ctx.moveTo(a.x, a.y); ctx.lineTo(b.x, b.y); ctx.stroke();
    ctx.setLineDash([]);
  };
  // Between two exchanges of the column: down (or up) its right-hand side.
  const across = (from, to) => {
    const x = from.x + from.w - 10;
    return to.y > from.y ? [{ x, y: from.y + from.h }, { x, y: to.y }] : [{ x, y: from.y }, { x, y: to.y + to.h }];
  };
  layout.bindings.forEach((bd, i) => {
    const from = g.exchanges[bd.exchange];
    const on = lit.has(i);
    if (isSet(bd.to_exchange) && g.exchanges[bd.to_exchange]) {
      const [a, b] = across(from, g.exchanges[bd.to_exchange]);
      line(a, b, on ? focus : p.edge, on ? 3 : 1.5);
      return;
    }
    const q = g.queues[bd.queue];
    if (!from || !q) return;
    line(exit(from), entry(q), on ? focus : p.edge, on ? 3 : 1.5);
    if (bd.label) {
      // In the gap before its queue, where it fits whole; else at the right of the queue's title.
      const room = q.x - (from.x + from.w) - 8;
      ctx.font = `${on ? '600 ' : ''}${TEXT}px ${MONO}`;
      const gap = ctx.measureText(bd.label).width <= room;
      const opts = { color: on ? focus : p.muted, align: 'right', mono: true, bold: on, rank: on ? 1 : 2, kind: 'binding' };
      if (gap) ink.text(bd.label, q.x - 5, q.y + q.h / 2 - 9, { ...opts, room, alts: [[0, 18]] });
      else ink.text(bd.label, q.x + q.w, q.y - 9, { ...opts, rank: 1, room: q.w / 2 });
    }
  });
  layout.exchanges.forEach((x, e) => {
    if (!isSet(x.alternate) || !g.exchanges[x.alternate] || !g.exchanges[e]) return;
    const [a, b] = across(g.exchanges[e], g.exchanges[x.alternate]);
    const on = liveRoute(view, x.alternate, now) && liveRoute(view, e, now)?.at === liveRoute(view, x.alternate, now)?.at;
    line({ x: a.x - 20, y: a.y }, { x: b.x - 20, y: b.y }, on ? focus : p.muted, on ? 3 : 1.5, [5, 4]);
  });
  // A queue's dead-letter exchange: dead letters leave the queue's lower left for it.
  layout.queues.forEach((q, qi) => {
    const b = g.queues[qi];
    const x = isSet(q.dlx) ? g.exchanges[q.dlx] : undefined;
    if (!b || !x) return;
    line({ x: b.x, y: b.y + b.h * 0.8 }, { x: x.x + x.w, y: x.y + x.h * 0.8 }, p.danger, 1.5, [3, 3]);
  });
}

/** An exchange: a pill with its name and type; after it routes, the key it routed by. */
function drawExchange(ctx, ink, view, g, e, now, p) {
  const b = g.exchanges[e];
  // Its words may reach as far as the queue column.
  const reach = Math.min(...g.queues.filter(Boolean).map((q) => q.x), b.x + 3 * b.w);
  const x = view.layout.exchanges[e];
  const r = b.h / 2;
  const isDlx = view.layout.queues.some((q) => q.dlx === e);
  ctx.beginPath();
  ctx.moveTo(b.x + r, b.y);
  ctx.lineTo(b.x + b.w - r, b.y);
  ctx.arc(b.x + b.w - r, b.y + r, r, -Math.PI / 2, Math.PI / 2);
  ctx.lineTo(b.x + r, b.y + b.h);
  ctx.arc(b.x + r, b.y + r, r, Math.PI / 2, (3 * Math.PI) / 2);
  ctx.closePath();
  ctx.fillStyle = p.node;
  ctx.fill();
  ctx.strokeStyle = isDlx ? p.danger : p.edge;
  ctx.lineWidth = 1.5;
  ctx.stroke();
  const id = `X${e}`;
  ink.shape(b.x, b.y, b.w, b.h, id);
  ink.text(x.name, b.x + b.w / 2, b.y + 12, { color: p.ink, align: 'center', bold: true, rank: 0, room: b.w - 12, kind: 'exchange', within: id });
  ink.text(isDlx ? `${x.kind} · DLX` : x.kind, b.x + b.w / 2, b.y + b.h - 12, {
    color: isDlx ? p.danger : p.muted, align: 'center', rank: 1, room: b.w - 12, within: id, shorter: [x.kind],
  });
  const route = liveRoute(view, e, now);
  if (route) {
    const key = view.layout.routing_keys?.[route.key] ?? '';
    const left = Math.max(2, b.x - 4);
    // A fanout exchange ignores the key: it says where the publish went instead.
    const said = !route.bindings.length ? `"${key}": no match` : x.kind === 'fanout' ? 'to every queue' : `"${key}"`;
    ink.text(said, left, b.y + b.h + 10, {
      color: route.bindings.length ? p.focus ?? p.inflight : p.danger, mono: true, bold: true, rank: 1, kind: 'route',
      room: reach - left - 2, alts: [[0, -b.h - 20]],
    });
  }
}

/** Where a saga block's node `k` is: a step's service, the orchestrator (k = n), the starter. */
function sagaNode(view, g, b, k) {
  const info = view.layout.sagas[b];
  const n = info.steps.length;
  if (k === n + 1) {
    const s = g.producers[info.starter];
    return { x: s.x - s.w / 2, y: s.y - 16, w: s.w, h: 32 };
  }
  return k === n ? g.sagas[b].boss.node : g.sagas[b].units[k].node;
}

/** A path along points, as a function of t in 0..1 (by length). */
function polyline(points) {
  const lengths = points.slice(1).map((q, i) => Math.hypot(q.x - points[i].x, q.y - points[i].y));
  const total = lengths.reduce((a, b) => a + b, 0) || 1;
  return (t) => {
    let d = clamp01(t) * total;
    for (let i = 0; i < lengths.length; i++) {
      if (d <= lengths[i] || i === lengths.length - 1) {
        const f = lengths[i] > 0 ? Math.min(1, d / lengths[i]) : 1;
        return { x: lerp(points[i].x, points[i + 1].x, f), y: lerp(points[i].y, points[i + 1].y, f) };
      }
      d -= lengths[i];
    }
    return points[points.length - 1];
  };
}

/**
 * The path of a saga message from the node that sends it to the queue it goes to, as a
 * function of t in 0..1. In a row: forward along it, choreography's compensations in an arc
 * back over it, orchestration straight between the orchestrator and the services. In a
 * column: forward down to the next unit's queue; back up the right lane; the orchestrator's
 * commands down the left lane.
 */
function flightPath(view, g, b, flight) {
  const info = view.layout.sagas[b];
  const n = info.steps.length;
  const sg = g.sagas[b];
  const from = sagaNode(view, g, b, flight.from);
  const q = flight.to === n ? sg.boss.q : sg.units[flight.to].q;
  const top = (x) => ({ x: x.x + x.w / 2, y: x.y });
  const bottom = (x) => ({ x: x.x + x.w / 2, y: x.y + x.h });
  const straight = (a, c) => polyline([a, c]);
  const starter = flight.from === n + 1;
  if (sg.column) {
    const [leftLane, rightLane] = sg.lanes;
    const qTop = top(q);
    if (starter || (!sg.boss && flight.to > flight.from)) return polyline([{ x: from.x + 16, y: from.y + from.h }, { x: qTop.x, y: qTop.y }]);
    if (flight.from === n) {
      const a = { x: from.x, y: from.y + from.h - 10 };
      return polyline([a, { x: leftLane, y: a.y }, { x: leftLane, y: entry(q).y }, entry(q)]);
    }
    // Back up: out to the right lane, up to above the queue, across, and down into it.
    const a = { x: from.x + from.w, y: from.y + from.h / 2 };
    return polyline([a, { x: rightLane, y: a.y }, { x: rightLane, y: q.y - 12 }, { x: qTop.x, y: q.y - 12 }, qTop]);
  }
  if (starter || (!sg.boss && flight.to > flight.from)) return straight(exit(from), entry(q));
  if (!sg.boss) {
    const [a, c] = [top(from), top(q)];
    const k = { x: (a.x + c.x) / 2, y: Math.min(a.y, c.y) - sg.arcs * 1.1 };
    return (t) => ({ x: (1 - t) ** 2 * a.x + 2 * (1 - t) * t * k.x + t * t * c.x, y: (1 - t) ** 2 * a.y + 2 * (1 - t) * t * k.y + t * t * c.y });
  }
  return flight.from === n ? straight(bottom(from), top(q)) : straight(top(from), bottom(q));
}

/** A compensation's mark: a diamond, so that it reads without its color too. */
function diamond(ctx, x, y, fill, r = DOT + 1) {
  ctx.beginPath();
  ctx.moveTo(x, y - r); ctx.lineTo(x + r, y); ctx.lineTo(x, y + r); ctx.lineTo(x - r, y); ctx.closePath();
  ctx.fillStyle = fill;
  ctx.fill();
}

/** The saga in focus of block b (the engine chose it, or the user did), or undefined. */
const focusOf = (view, b) => view.workflows?.sagas[b]?.focus ?? undefined;

/** The band over the units a window of inconsistency holds, with room for its words under them. */
function bandOf(sg, open) {
  const us = open.steps.map((k) => sg.units[k]);
  const x = Math.min(...us.map((u) => u.q.x)) - 16;
  const right = Math.max(...us.map((u) => u.node.x + u.node.w)) + 6;
  const y = Math.min(...us.map((u) => u.node.y)) - 6;
  const below = Math.max(...us.map((u) => u.node.y + u.node.h));
  const bottom = below + (sg.column ? SAGA.hop - 1 : SAGA.band);
  return { x, y, w: right - x, h: bottom - y, label: { x: x + 6, y: below + (sg.column ? SAGA.hop / 2 : 14) } };
}

/**
 * Behind the nodes: each block's window of inconsistency while it is open, a band over the
 * services that hold a step not yet undone; then the paths events take (grey forward, dashed
 * in the compensation color back).
 */
function drawSagaEdges(ctx, view, g, now, p) {
  const comp = p.compensate || p.inflight;
  view.layout.sagas.forEach((info, b) => {
    const sg = g.sagas[b];
    const n = info.steps.length;
    const open = focusOf(view, b)?.window;
    if (open) {
      const r = bandOf(sg, open);
      ctx.save();
      ctx.fillStyle = comp;
      ctx.globalAlpha = 0.13;
      ctx.fillRect(r.x, r.y, r.w, r.h);
      ctx.globalAlpha = 0.8;
      ctx.strokeStyle = comp;
      ctx.setLineDash([5, 3]);
      ctx.lineWidth = 1.5;
      ctx.strokeRect(r.x, r.y, r.w, r.h);
      ctx.restore();
    }
    ctx.save();
    ctx.lineWidth = 1.5;
    for (const [code, f] of info.flights.entries()) {
      // One line per route: the first flight along it draws it.
      if (info.flights.findIndex((o) => o.from === f.from && o.to === f.to) !== code) continue;
      if (f.from === f.to || ((f.to === n || f.from === n) && !sg.boss)) continue;
      // Choreography's way back (the starter's way in is forward): none from past the pivot.
      const back = !sg.boss && f.from !== n + 1 && f.to < f.from;
      if (back && info.pivot !== null && info.pivot !== undefined && f.from > info.pivot) continue;
      const path = flightPath(view, g, b, f);
      ctx.strokeStyle = back ? comp : p.edge;
      ctx.globalAlpha = back ? 0.45 : 1;
      ctx.setLineDash(back ? [4, 4] : []);
      ctx.beginPath();
      for (let i = 0; i <= 16; i++) {
        const { x, y } = path(i / 16);
        if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      }
      ctx.stroke();
    }
    ctx.restore();
  });
}

/** A saga message on its way to a queue, along its path: a compensation as a diamond. */
function drawFlight(ctx, view, g, m, now, motion, p) {
  const info = view.layout.sagas[m.saga.block];
  const f = info.flights[m.saga.flight];
  const focus = focusOf(view, m.saga.block)?.instance === m.saga.instance;
  const { x, y } = flightPath(view, g, m.saga.block, f)(progress(now, m.t0, m.t1, motion));
  if (f.compensation) diamond(ctx, x, y, p.compensate || p.inflight, focus ? DOT + 1 : DOT - 1);
  else dot(ctx, x, y, p.ready, null, focus ? DOT : DOT - 2);
}

/** Where a saga message is drawn now (on its way, in a queue, at work), if it is. */
function sagaMessageAt(view, g, m, now, motion) {
  if (m.state === 'publishing') return flightPath(view, g, m.saga.block, view.layout.sagas[m.saga.block].flights[m.saga.flight])(progress(now, m.t0, m.t1, motion));
  return positionOf(view, g, m.id, now, motion);
}

const STATE_COLOR = { pending: 'muted', done: 'ink', failed: 'danger', undone: 'compensate' };

/**
 * Over the nodes: each block's title with the saga in focus and the others as counts per
 * state; each service's local state for the saga in focus, and the stuck sagas it holds; the
 * orchestrator's record; the open window's words and running duration; the name of every
 * message of the saga in focus, wherever it is.
 */
// long: per saga block, in paint order: its title and the other sagas' counts, then each node
function drawSagaNodes(ctx, ink, view, g, now, motion, p) {
  const comp = p.compensate || p.inflight;
  const w = ink.w;
  view.layout.sagas.forEach((info, b) => {
    const sg = g.sagas[b];
    const sum = view.workflows?.sagas[b];
    const focus = sum?.focus;
    const status = (s) => s.toLowerCase();
    const head = focus ? `${info.name} (${info.style}): saga #${focus.instance}${focus.selected ? ', selected,' : ''} ${status(focus.status)}` : `${info.name} (${info.style}): no saga yet`;
    ctx.font = `600 ${TEXT}px ${SANS}`;
    // In a column (a phone) the others go on a line of their own under the title.
    const headW = sg.column ? w : Math.min(ctx.measureText(head).width, w * 0.6);
    ink.text(head, 8, sg.y + 10, { color: p.ink, bold: true, rank: 0, room: sg.column ? w - 16 : w * 0.6, kind: 'title' });
    if (sum) {
      const o = sum.others;
      const parts = [['running', o.running], ['compensating', o.compensating], ['completed', o.completed], ['compensated', o.compensated], ['stuck', o.stuck]]
        .filter(([, k]) => k > 0).map(([s, k]) => `${k} ${s}`);
      const text = parts.length ? `others: ${parts.join(' · ')}` : 'no other saga';
      // (In a column the block's starter sits at the right of that line.)
      const at = sg.column ? { x: 8, y: sg.y + 10 + SAGA.others, align: 'left', room: w - 92 } : { x: w - 8, y: sg.y + 10, align: 'right', room: w - headW - 32 };
      ink.text(text, at.x, at.y, { color: p.muted, align: at.align, rank: 0, room: at.room, shorter: [parts.length ? `others: ${parts.slice(0, 3).join(' · ')}` : text] });
    }
    const nodes = [...sg.units.map((u, k) => ({ u, k })), ...(sg.boss ? [{ u: sg.boss, k: info.steps.length }] : [])];
    for (const { u, k } of nodes) {
      const c = u.node;
      const ci = info.consumers[k];
      const boss = k === info.steps.length;
      const node = boss ? undefined : focus?.nodes[k];
      const word = boss ? focus?.orchestrator : node?.state;
      if (word && view.alive[ci]) {
        const color = boss ? (focus.status === 'Compensating' ? comp : p.ink) : p[STATE_COLOR[node.kind]] || comp;
        ink.text(word, c.x + 8, c.y + c.h - 12, { color, bold: true, rank: 0, room: c.w - 38, within: `C${ci}`, kind: 'state' });
      }
      if (node?.stuck) {
        ctx.strokeStyle = p.danger;
        ctx.lineWidth = 2;
        ctx.strokeRect(c.x - 3, c.y - 3, c.w + 6, c.h + 6);
      }
      const held = sum?.stuck_on[k] ?? 0;
      if (held > 0) ink.text(`stuck ${held}`, c.x + c.w, c.y - 9, { color: p.danger, bold: true, align: 'right', rank: 0, room: c.w, kind: 'stuck' });
    }
    const open = focus?.window;
    if (open) {
      const r = bandOf(sg, open);
      const secs = Math.max(0, now - open.since_ms) / 1000;
      ink.text(`${open.text} · ${secs.toFixed(2)} s`, r.label.x, r.label.y, { color: comp, bold: true, rank: 0, room: w - r.label.x - 8, kind: 'window' });
    }
  });
  // The names of the saga in focus's messages, beside them, wherever they are.
  for (const m of view.messages.values()) {
    if (!m.saga || focusOf(view, m.saga.block)?.instance !== m.saga.instance) continue;
    const at = sagaMessageAt(view, g, m, now, motion);
    if (!at) continue;
    const f = view.layout.sagas[m.saga.block].flights[m.saga.flight];
    // Else below it, beside it, or in the gap above or below the unit it is at.
    const sg = g.sagas[m.saga.block];
    const [up, down] = sg.column ? [14 - sg.nodeH / 2 - SAGA.hop / 2, 14 + sg.nodeH / 2 + SAGA.hop / 2] : [-28, 56];
    ink.text(f.name, at.x, at.y - 14, {
      color: f.compensation ? comp : p.ink, align: 'center', bold: true, rank: 1, kind: 'event',
      alts: [[0, 28], [60, 0], [-60, 0], [0, -28], [-80, up], [-80, down], [-160, up], [-160, down]],
    });
  }
}

function drawReplyLines(ctx, view, g, now, motion, p) {
  ctx.save();
  ctx.strokeStyle = p.acked;
  ctx.globalAlpha = 0.55;
  ctx.lineWidth = 1;
  ctx.setLineDash([3, 4]);
  for (const m of view.messages.values()) {
    const owner = m.replyTo >= 0 ? g.consumers[m.replyTo] : undefined;
    const at = owner && positionOf(view, g, m.id, now, motion);
    if (!at) continue;
    ctx.beginPath(); ctx.moveTo(at.x, at.y); ctx.lineTo(owner.x, owner.y + owner.h / 2); ctx.stroke();
  }
  ctx.restore();
}

/** The keys (FIFO groups) of queue `qi`'s messages in flight now. */
function inFlightKeys(view, qi) {
  const keys = new Set();
  for (const m of view.messages.values()) {
    if (m.queue === qi && m.key >= 0 && (m.state === 'delivering' || m.state === 'processing')) keys.add(m.key);
  }
  return keys;
}

/**
 * Where a message's dot is drawn now, if it is: in its queue, in a consumer's work, or on
 * the wire between them (with `now`; a still frame puts it at its end).
 */
function positionOf(view, g, id, now = Infinity, motion = false) {
  for (let qi = 0; qi < view.layout.queues.length; qi++) {
    const b = g.queues[qi];
    const i = b ? view.ready[qi].indexOf(id) : -1;
    if (i >= 0 && i < slotsOf(b, view.ready[qi].length).shown) return slotsOf(b, view.ready[qi].length).at(i);
  }
  for (let ci = 0; ci < view.layout.consumers.length; ci++) {
    const i = view.jobs[ci].findIndex((j) => j.id === id);
    const c = g.consumers[ci];
    if (i >= 0 && i < 4) return jobAt(c, i);
  }
  const m = view.messages.get(id);
  if (m && m.state === 'delivering' && now < m.t1 && g.queues[m.queue] && g.consumers[m.consumer]) {
    const [a, b] = [exit(g.queues[m.queue]), entry(g.consumers[m.consumer])];
    const t = progress(now, m.t0, m.t1, motion);
    return { x: lerp(a.x, b.x, t), y: lerp(a.y, b.y, t) };
  }
  return undefined;
}

/** A selected request or reply: a ring on it and a dashed line to the requester it is for. */
function drawCorrelation(ctx, view, g, corr, p) {
  const at = positionOf(view, g, corr.msg);
  const owner = corr.consumer === undefined ? undefined : g.consumers[corr.consumer];
  if (at) ring(ctx, at.x, at.y, 1, p.focus ?? p.inflight, DOT + 6);
  if (owner) {
    ctx.strokeStyle = p.focus ?? p.inflight;
    ctx.lineWidth = 2;
    ctx.strokeRect(owner.x - 3, owner.y - 3, owner.w + 6, owner.h + 6);
    if (at) {
      ctx.setLineDash([4, 4]);
      ctx.beginPath(); ctx.moveTo(at.x, at.y); ctx.lineTo(owner.x, owner.y + owner.h / 2); ctx.stroke();
      ctx.setLineDash([]);
    }
  }
}

function drawQueue(ctx, ink, view, b, q, qi, now, p) {
  const dead = q.role === 'dead_letter';
  box(ctx, b, p.node, dead ? p.danger : p.edge, q.role === 'retry');
  ink.shape(b.x, b.y, b.w, b.h, `Q${qi}`);
  const count = view.ready[qi].length;
  if (b.inside) {
    // A compact stack: the helper's role inside its box (its name is its queue's, plus .dlq).
    // Too narrow for its dots, it says how many it holds.
    const shown = (slotsOf(b, count).shown < count ? `${b.title} ${count}` : b.title).trim();
    if (shown) ink.text(shown, b.x + 6, b.y + b.h / 2, { color: dead ? p.danger : p.muted, bold: true, rank: 0, room: b.w - 10, kind: 'title', within: `Q${qi}` });
  } else {
    const title = dead ? `${q.name} (dead letters)` : q.role === 'retry' ? `${q.name} (retry)` : q.name;
    const shorter = helperNames(q, view.layout.queues);
    // A length limit shows beside the count: what it holds against what it may.
    const limit = isSet(q.max_length) ? ` · max ${q.max_length}` : '';
    const ready = `ready ${count}${limit}`;
    ctx.font = `${TEXT}px ${SANS}`;
    // A narrow box gives its title the whole width; the count then shows only if it fits.
    const readyW = q.role === 'main' && b.w >= 200 ? ctx.measureText(`ready 0000${limit}`).width + 12 : 0;
    ink.text(title, b.x + 6, b.y - 9, { color: dead ? p.danger : p.ink, bold: true, rank: 0, room: (b.titleRoom ?? b.w) - 6 - readyW, kind: 'title', shorter });
    if (q.role === 'main') ink.text(ready, b.x + b.w, b.y - 9, { color: p.muted, align: 'right', rank: 1 });
  }
  const slots = slotsOf(b, count);
  // A FIFO queue's groups with a message in flight: their waiting messages are blocked (SQS-21).
  const busy = q.fifo ? inFlightKeys(view, qi) : undefined;
  for (let i = 0; i < slots.shown; i++) {
    const { x, y } = slots.at(i);
    const m = view.messages.get(view.ready[qi][i]);
    const blocked = Boolean(busy && m && busy.has(m.key));
    const color = dead ? p.danger : keyedColor(view.layout, m, p);
    ink.mark(x, y, blocked ? DOT + 3 : DOT, `Q${qi}.${i}`, { msg: m?.id, blocked, color });
    if (dead) {
      dot(ctx, x, y, p.danger);
      cross(ctx, x, y, p.canvas);
    } else {
      dot(ctx, x, y, color);
      if (blocked) ring(ctx, x, y, 1, p.ink, DOT + 2);
    }
  }
  const left = b.x + b.titleW;
  if (count > slots.shown && !b.inside) ink.text(`+${count - slots.shown}`, left + 8, b.y + b.h / 2, { color: p.muted, rank: 1, within: `Q${qi}` });
  // Waiting out a delay or backoff: hollow dots with the arc of time left, in the queue they
  // wait in (a retry queue, or the queue itself).
  // Under the queue, unless a dead-letter or retry queue sits there: then in a row of smaller
  // marks along the box's top edge, clear of the ready row.
  const waiting = [...view.messages.values()].filter((m) => m.state === 'delayed' && m.queue === qi);
  const below = q.role !== 'retry' && !view.layout.queues.some((x) => x.of === qi);
  const r = below || q.role === 'retry' ? DOT - 1 : DOT - 3;
  const step = r * 2 + (below ? 8 : 5);
  waiting.slice(0, Math.max(0, Math.floor((b.x + b.w - left - 20) / step))).forEach((m, i) => {
    const x = left + 12 + i * step;
    const y = q.role === 'retry' ? b.y + b.h / 2 : below ? b.y + b.h + 12 : b.y + r + 2;
    dot(ctx, x, y, p.canvas, p.ready, r);
    ring(ctx, x, y, (m.t1 - now) / Math.max(m.t1 - m.t0, 1e-9), p.muted, r + (below ? 4 : 2));
  });
}

/** A consumer's circuit breaker by phase code: what its note says, and its edge colour. */
const BREAKER = [
  { note: 'circuit closed' },
  { note: 'circuit open: paused', edge: 'danger' },
  { note: 'circuit half-open: trial calls', edge: 'inflight' },
];

/**
 * A downstream dependency under its caller: its name and whether it is up, dashed red when
 * down; under it, once it has been called, the calls made to it and how many failed.
 */
function drawDependency(ctx, ink, view, b, di, p) {
  const up = view.dependencyUp[di];
  box(ctx, b, p.canvas, up ? p.edge : p.danger, !up);
  ink.shape(b.x, b.y, b.w, b.h, `D${di}`);
  ink.text(`→ ${view.layout.dependencies[di]}`, b.x + 6, b.y + b.h / 2, { color: p.ink, rank: 0, room: b.w - 52, within: `D${di}` });
  ink.text(up ? 'up' : 'down', b.x + b.w - 6, b.y + b.h / 2, { color: up ? p.acked : p.danger, bold: true, align: 'right', rank: 0, within: `D${di}` });
  const calls = view.dependencyCalls?.[di];
  if (calls?.calls) {
    ink.text(`${calls.calls} calls · ${calls.failed} failed`, b.x + b.w - 6, b.y + b.h + 9, { color: calls.failed ? p.danger : p.muted, align: 'right', rank: 2, room: b.w + 30 });
  }
}

// long: a consumer's parts in paint order: box and name, its jobs' lane, the prefetch tray, a crashed one's leases
function drawConsumer(ctx, ink, view, c, cons, ci, now, p) {
  const alive = view.alive[ci];
  const jobs = view.jobs[ci];
  // An autoscaled instance that takes nothing new: on standby, or draining what it holds.
  const idle = alive && !view.active[ci];
  // Its circuit breaker, if it has one: open, it pauses; half-open, it tries a few calls.
  const breaker = cons.breaker && alive ? BREAKER[view.breakers[ci]] : undefined;
  const edge = !alive ? p.danger : breaker?.edge ? p[breaker.edge] : p.edge;
  box(ctx, c, idle ? p.canvas : p.node, edge, !alive || idle);
  ink.shape(c.x, c.y, c.w, c.h, `C${ci}`);
  // Crowded (many consumers): the box holds its name and its work; the note and the job's
  // label go where they meet nothing, or not at all.
  const roomy = c.h >= ROOMY_CONSUMER_H;
  const nameY = roomy ? c.y + 12 : c.y + c.h / 2;
  // The jobs' lane, right: the first slot always (an ack or a crash pulses there), and as
  // many more as there are jobs. The name keeps clear of it wherever their rows meet.
  let orphaned = 0;
  for (const m of view.messages.values()) if (m.consumer === ci && !alive && m.leaseUntil > now && m.state !== 'ready') orphaned++;
  const slot = jobAt(c, Math.max(1, Math.min(Math.max(jobs.length, orphaned), 4)) - 1);
  const laneX = Math.abs(slot.y - nameY) < LANE + TEXT * 0.6 ? slot.x - LANE : c.x + c.w;
  ink.text(c.label ?? cons.name, c.x + 8, nameY, { color: !alive ? p.danger : idle ? p.muted : p.ink, rank: 0, room: laneX - c.x - 10, kind: 'consumer', within: `C${ci}` });
  const note = !alive ? 'crashed' : idle ? (jobs.length ? 'draining' : 'standby')
    : breaker?.edge ? breaker.note
      : `prefetch ${cons.unlimited ? 'unlimited' : cons.prefetch}` + (cons.concurrency > 1 ? ` · ${cons.concurrency} at once` : '')
        + (breaker ? ` · ${breaker.note}` : '');
  const noteColor = !alive ? p.danger : breaker?.edge ? p[breaker.edge] : p.muted;
  if (!c.quiet || !alive || idle || breaker?.edge) ink.text(note, c.x + c.w, c.y - 8, { color: noteColor, align: 'right', rank: 2, room: c.w + 40, bold: !!breaker?.edge });
  jobs.slice(0, 4).forEach((job, i) => {
    const m = view.messages.get(job.id);
    const { x, y, r } = jobAt(c, i);
    ink.mark(x, y, r + 5, `C${ci}.${i}`);
    // A job whose message is no longer leased to this consumer is stale: its ack will be refused.
    const stale = !m || m.consumer !== ci;
    if (stale) {
      dot(ctx, x, y, p.canvas, p.muted, r);
    } else {
      dot(ctx, x, y, p.inflight, null, r);
      keyCore(ctx, view.layout, m, x, y, r, p);
      if (m.leaseUntil > 0) ring(ctx, x, y, (m.leaseUntil - now) / Math.max(m.leaseUntil - m.leaseFrom, 1e-9), p.inflight, r + (r < DOT ? 2 : 4));
    }
    if (i === 0) {
      if (roomy) ink.text(stale ? `m${job.id} (stale)` : `m${job.id}`, x - 14, y, { color: stale ? p.muted : p.ink, align: 'right', mono: true, rank: 2, room: c.w * 0.55, within: `C${ci}` });
      ink.bar(c.x + 6, c.y + c.h - 5, (c.w - 12) * clamp01((now - job.t0) / Math.max(job.t1 - job.t0, 1e-9)), 3, stale ? p.muted : p.inflight, 3, `C${ci}`);
    }
  });
  // Delivered, not started (prefetch > concurrency): hollow amber dots in a tray left of the box.
  // A crashed consumer's leases run on (SQS, Service Bus): the broker waits them out, so its
  // messages stay in its box, hollow, with the ring of the lease left.
  let buffered = 0;
  const orphans = [];
  for (const m of view.messages.values()) {
    if (m.consumer !== ci) continue;
    if (!alive && m.leaseUntil > now && m.state !== 'ready') orphans.push(m);
    else if (alive && m.state === 'delivering' && now >= m.t1) buffered++;
  }
  orphans.slice(0, 4).forEach((m, i) => {
    const { x, y, r } = jobAt(c, i);
    ink.mark(x, y, r + 5, `C${ci}.${i}`);
    dot(ctx, x, y, p.canvas, p.inflight, r);
    ring(ctx, x, y, (m.leaseUntil - now) / Math.max(m.leaseUntil - m.leaseFrom, 1e-9), p.inflight, r + (r < DOT ? 2 : 4));
    if (i === 0 && roomy) ink.text(`m${m.id} (leased)`, x - 14, y, { color: p.muted, align: 'right', mono: true, rank: 2, room: c.w * 0.6, within: `C${ci}` });
  });
  const shown = Math.min(buffered, 6);
  for (let i = 0; i < shown; i++) {
    dot(ctx, c.x - 12 - i * (DOT * 2 + 2), c.y + c.h / 2, p.canvas, p.inflight, DOT - 1);
    ink.mark(c.x - 12 - i * (DOT * 2 + 2), c.y + c.h / 2, DOT, `C${ci}.tray${i}`);
  }
  if (buffered > shown) ink.text(`+${buffered - shown}`, c.x - 12 - shown * (DOT * 2 + 2) - 6, c.y + c.h / 2, { color: p.muted, align: 'right', rank: 2 });
}

function drawPulse(ctx, ink, g, pulse, now, motion, p) {
  const age = now - pulse.at;
  if (age < 0 || age > PULSE_MS || pulse.kind === 'assigned') return;
  const t = motion ? age / PULSE_MS : 0.5;
  const grp = pulse.group >= 0 ? g.groups[pulse.group] : undefined;
  // A member's mark sits on its own row, clear of the group's title and state.
  const at = grp ? { x: grp.x + grp.w - 12, y: pulse.member >= 0 ? memberRowY(grp, pulse.member, pulse.members ?? 1) : grp.y + grp.h - 12 }
    // An exchange's mark: just past its right side, clear of its name.
    : isSet(pulse.exchange) ? (g.exchanges?.[pulse.exchange] ? { x: exit(g.exchanges[pulse.exchange]).x + LANE, y: exit(g.exchanges[pulse.exchange]).y } : null)
    : pulse.consumer >= 0 && g.consumers[pulse.consumer]
    ? jobAt(g.consumers[pulse.consumer], 0)
    : g.queues[pulse.queue] ? exit(g.queues[pulse.queue]) : null;
  if (!at) return;
  ctx.globalAlpha = 1 - t;
  const color = {
    acked: p.acked, refused: p.muted, dead: p.danger, lost: p.danger, crashed: p.danger, expired: p.muted,
    twice: p.inflight, stale: p.inflight, retried: p.muted, order: p.danger, returned: p.inflight, uncommitted: p.danger,
  }[pulse.kind];
  // It grows within the lane kept for it (LANE), so that it covers no text.
  dot(ctx, at.x, at.y, null, color, DOT + (LANE - DOT - 2) * t);
  const id = `pulse.${pulse.kind}.${pulse.at}.${pulse.queue}.${pulse.consumer}.${pulse.group}.${pulse.member}.${pulse.exchange}`;
  ink.mark(at.x, at.y, DOT + (LANE - DOT - 2) * t + 1, id);
  if (pulse.kind === 'acked') {
    ctx.strokeStyle = p.acked;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(at.x - 4, at.y); ctx.lineTo(at.x - 1, at.y + 3); ctx.lineTo(at.x + 4, at.y - 3);
    ctx.stroke();
  } else if (pulse.kind === 'lost' || pulse.kind === 'dead') {
    cross(ctx, at.x, at.y, color);
  } else if (pulse.kind === 'order' || pulse.kind === 'twice' || pulse.kind === 'returned' || pulse.kind === 'uncommitted') {
    ink.text({ order: '⇅', twice: '×2', returned: '↩', uncommitted: '✗' }[pulse.kind], at.x, at.y, { color, align: 'center', bold: true, rank: 1, within: id });
  } else if (pulse.kind === 'expired') {
    ctx.strokeStyle = color;
    ctx.beginPath(); ctx.moveTo(at.x, at.y); ctx.lineTo(at.x, at.y - 4); ctx.moveTo(at.x, at.y); ctx.lineTo(at.x + 3, at.y); ctx.stroke();
  }
  ctx.globalAlpha = 1;
}

// --- Streams ---------------------------------------------------------------------------------

const CELL = 9;

/** A stable hue per key, so that per-key order can be seen (../shared/product.md). */
export function keyColor(key, p) {
  if (key < 0) return p.ready;
  return `hsl(${(key * 137.508) % 360} 62% ${p.dark ? 62 : 44}%)`;
}

/** The offsets a tape of width w shows: the newest ones that fit, oldest on the left. */
export function tapeWindow(part, w) {
  const fit = Math.max(1, Math.floor(w / CELL));
  const from = Math.max(part.logEnd - fit, 0);
  return { from, to: part.logEnd, x: (offset, tape) => tape.x + tape.w - (part.logEnd - offset) * CELL };
}

/** The colors a topic's readers mark their committed offsets with, one per group, in order. */
export function groupColor(gi, p) {
  return [p.ink, p.inflight, p.focus, p.acked][gi % 4];
}

function drawTopic(ctx, ink, view, b, t, ti, p) {
  if (!b) return;
  const dead = t.role === 'dead_letter';
  box(ctx, b, p.node, dead ? p.danger : p.edge, t.role === 'retry' || t.kind === 'pubsub');
  ink.shape(b.x, b.y, b.w, b.h, `T${ti}`);
  const note = t.role === 'retry' ? ` (retry after ${(t.delay_ms / 1000).toFixed(1)} s)` : dead ? ' (dead letters)'
    : t.kind === 'pubsub' ? ' (pub/sub: nothing kept)' : t.compact ? ' (compacted)' : '';
  ink.text(t.name + note, b.x + 6, b.y - 9, { color: dead ? p.danger : p.ink, bold: true, rank: 0, room: b.w - 6, kind: 'title', shorter: helperNames(t, view.layout.topics) });
  const readers = view.layout.groups.map((grp, gi) => gi).filter((gi) => view.layout.groups[gi].topics.includes(ti));
  view.topics[ti].parts.forEach((part, pi) => {
    const tape = b.tapes[pi];
    ink.text(`p${pi}`, b.x + 6, tape.y + tape.h / 2, { color: p.muted, mono: true, rank: 1, room: 22, within: `T${ti}` });
    ctx.fillStyle = p.canvas;
    ctx.fillRect(tape.x, tape.y, tape.w, tape.h);
    const win = tapeWindow(part, tape.w);
    const first = part.tape[0]?.offset ?? part.logEnd;
    for (let o = Math.max(win.from, first); o < win.to; o++) {
      tapeCell(ctx, p, part.tape[o - first], win.x(o, tape), tape);
    }
    // The log end offset, the next offset to be written.
    ink.text(String(part.logEnd), tape.x + tape.w + 4, tape.y + tape.h / 2, { color: p.muted, mono: true, rank: 1, room: b.x + b.w - tape.x - tape.w - 6, within: `T${ti}` });
    // The owning member's position (the next offset it fetches): an amber tick above.
    readers.forEach((gi) => {
      const grp = view.groups[gi];
      const key = `${ti}:${pi}`;
      if (!grp.members.some((m) => m.alive && m.owned.includes(key))) return;
      const at = grp.positions.get(key);
      if (at === undefined || at < win.from) return;
      const x = win.x(at, tape);
      ctx.fillStyle = p.inflight;
      ctx.beginPath(); ctx.moveTo(x, tape.y + 2); ctx.lineTo(x - 3, tape.y - 3); ctx.lineTo(x + 3, tape.y - 3); ctx.fill();
    });
    // Each group that reads this topic marks its committed offset under the tape, in its own
    // color (its box carries the same mark as a key).
    readers.forEach((gi) => {
      const committed = view.groups[gi].committed.get(`${ti}:${pi}`);
      if (committed === undefined) return;
      const x = Math.max(tape.x, win.x(committed, tape));
      const y = tape.y + tape.h;
      ctx.fillStyle = committed < win.from ? p.danger : groupColor(gi, p);
      ctx.beginPath(); ctx.moveTo(x, y - 3); ctx.lineTo(x - 3, y + 2); ctx.lineTo(x + 3, y + 2); ctx.fill();
    });
  });
}

/** One record `r` of a tape at `x`: its key's hue, a hollow slashed tombstone, an empty slot
 * for a compacted or deleted one, and a red ring when it failed. */
function tapeCell(ctx, p, r, x, tape) {
  if (!r || !r.retained) {
    ctx.strokeStyle = p.edge;
    ctx.lineWidth = 1;
    ctx.strokeRect(x + 1.5, tape.y + 1.5, CELL - 3, tape.h - 3);
  } else if (r.tombstone) {
    ctx.strokeStyle = keyColor(r.key, p);
    ctx.lineWidth = 1.5;
    ctx.strokeRect(x + 1.5, tape.y + 1.5, CELL - 3, tape.h - 3);
    ctx.beginPath(); ctx.moveTo(x + 1.5, tape.y + tape.h - 1.5); ctx.lineTo(x + CELL - 1.5, tape.y + 1.5); ctx.stroke();
  } else {
    ctx.fillStyle = keyColor(r.key, p);
    ctx.fillRect(x + 1, tape.y + 1, CELL - 2, tape.h - 2);
  }
  if (r?.failed) {
    ctx.strokeStyle = p.danger;
    ctx.lineWidth = 2;
    ctx.strokeRect(x, tape.y - 1, CELL, tape.h + 2);
  }
}

/** The middle of member row `mi` in group box `b` of `n` members. */
function memberRowY(b, mi, n) {
  const rowH = Math.min(22, (b.h - 26) / Math.max(n, 1));
  return b.y + 26 + mi * rowH + rowH / 2;
}

function drawGroup(ctx, ink, view, b, grp, gi, now, p, opts) {
  const g = view.groups[gi];
  const rebalancing = g.phase === 'PreparingRebalance' || g.phase === 'CompletingRebalance';
  box(ctx, b, p.node, rebalancing ? p.inflight : p.edge, rebalancing);
  ink.shape(b.x, b.y, b.w, b.h, `G${gi}`);
  const state = g.phase === 'Stable' ? `gen ${g.generation}` : rebalancing ? `${g.phase === 'PreparingRebalance' ? 'rebalancing' : 'syncing'} · gen ${g.generation}` : 'empty';
  ctx.font = `${TEXT}px ${SANS}`;
  const stateW = ctx.measureText(state).width;
  // The group's key: the mark its committed offsets carry under the tapes.
  ctx.fillStyle = groupColor(gi, p);
  ctx.beginPath(); ctx.moveTo(b.x + 10, b.y + 9); ctx.lineTo(b.x + 6, b.y + 15); ctx.lineTo(b.x + 14, b.y + 15); ctx.fill();
  ink.text(grp.name, b.x + 18, b.y + 12, { color: p.ink, bold: true, rank: 0, room: b.w - 34 - stateW, kind: 'group', within: `G${gi}` });
  ink.text(state, b.x + b.w - 8, b.y + 12, { color: rebalancing ? p.inflight : p.muted, align: 'right', rank: 1, within: `G${gi}` });
  ink.text(grp.assignor, b.x + b.w, b.y - 8, { color: p.muted, align: 'right', rank: 2 });
  const rowH = Math.min(22, (b.h - 26) / Math.max(g.members.length, 1));
  const topics = view.layout.topics;
  g.members.forEach((m, mi) => {
    const y = memberRowY(b, mi, g.members.length);
    const gone = !m.inGroup && m.alive === false && !m.current;
    // Out of the group but alive: evicted (KC-14), still on its batch until its next poll.
    const evicted = m.alive && !m.inGroup;
    const color = !m.alive && m.inGroup ? p.danger : gone ? p.muted : evicted ? p.inflight : p.ink;
    ink.text(`${grp.name}-${mi + 1}`, b.x + 8, y, { color, rank: 1, room: b.w * 0.42 - 12, kind: 'member', within: `G${gi}`, shorter: [`#${mi + 1}`] });
    const text = !m.alive ? (m.inGroup ? 'crashed' : 'left') : evicted ? (m.current ? 'evicted, still working' : 'evicted')
      : m.owned.length === 0 ? (rebalancing && !grp.cooperative ? 'revoked, waiting' : 'no partitions')
      : m.owned.map((k) => {
        const [t, pp] = k.split(':').map(Number);
        return (topics[t].role === 'retry' ? `r${grp.topics.indexOf(t)}-` : 'p') + pp;
      }).join(' ');
    // A partition just taken over: its row is underlined for a moment (still, without motion).
    const taken = view.pulses.find((q) => q.kind === 'assigned' && q.group === gi && q.member === mi && now - q.at >= 0 && now - q.at < PULSE_MS * 2);
    if (taken) {
      ctx.fillStyle = p.acked;
      ctx.globalAlpha = opts.motion ? 1 - (now - taken.at) / (PULSE_MS * 2) : 1;
      ctx.fillRect(b.x + b.w * 0.42, y + 7, b.w * 0.5, 2);
      ctx.globalAlpha = 1;
    }
    // The partitions it owns, as many as fit, then how many more.
    ctx.font = `${TEXT}px ${MONO}`;
    let shown = text;
    const room = b.w * 0.58 - 12 - LANE;
    if (m.owned.length && m.inGroup && m.alive && ctx.measureText(shown).width > room) {
      const chips = text.split(' ');
      let k = chips.length;
      while (k > 1 && ctx.measureText(`${chips.slice(0, k).join(' ')} +${chips.length - k}`).width > room) k--;
      shown = `${chips.slice(0, k).join(' ')} +${chips.length - k}`;
    }
    ink.text(shown, b.x + b.w * 0.42, y, { color: !m.alive ? p.danger : evicted ? p.inflight : m.owned.length ? p.ink : p.muted, mono: !evicted, shorter: evicted ? ['evicted'] : undefined, rank: 2, room, within: `G${gi}` });
    if (m.current && m.alive) {
      dot(ctx, b.x + b.w - 12, y, keyColor(m.current.key, p), null, DOT - 2);
      ink.mark(b.x + b.w - 12, y, DOT - 2, `G${gi}.${mi}`);
      ink.bar(b.x + 8, y + rowH / 2 - 3, (b.w * 0.34) * clamp01((now - m.current.t0) / Math.max(m.current.t1 - m.current.t0, 1e-9)), 2, p.inflight, 3, `G${gi}`);
    }
  });
}

/**
 * A chart over simulated time, on its own small canvas: a legend band on top (never over the
 * data; the value axis's unit at its right when there is room), the value axis on the left (0
 * and the top), the time axis below (its first and last moment, "simulated time" between),
 * one line per series, and a sentence in place of the lines until there are two samples.
 * `series`: [{name, color, dash, values: number[], own}] over `times`; `unit`: what the
 * value axis counts; `opts.fmt`, if given, writes its top value (else a rounded integer), and
 * `opts.least` is the least top value (else 1); `opts.bounds`: alert bounds, [{value, label,
 * fired: times}], drawn as dashed lines with a tick at each moment the alert fired.
 */
// long: a chart's parts in paint order: legend, axes, lines, alert bounds, labels
function drawChart(ctx, opts, times, series, empty, unit) {
  const { width: w, height: h, palette: p } = opts;
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = p.canvas;
  ctx.fillRect(0, 0, w, h);
  const font = `${TEXT}px ${SANS}`;
  let lx = 38;
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.setLineDash(s.dash);
    ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(lx, 9); ctx.lineTo(lx + 14, 9); ctx.stroke();
    ctx.setLineDash([]);
    label(ctx, s.name, lx + 18, 9, p.ink, 'left', font);
    ctx.font = font;
    lx += 28 + ctx.measureText(s.name).width;
  }
  ctx.font = font;
  if (lx + ctx.measureText(unit).width < w - 8) label(ctx, unit, w - 8, 9, p.muted, 'right', font);
  const top = 24;
  const bottom = h - 20;
  const left = 36;
  const right = w - 8;
  ctx.strokeStyle = p.edge;
  ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(left, top); ctx.lineTo(left, bottom); ctx.lineTo(right, bottom); ctx.stroke();
  if (times.length < 2) {
    label(ctx, empty, (left + right) / 2, (top + bottom) / 2, p.muted, 'center', font);
    return;
  }
  const t0 = times[0];
  const t1 = Math.max(times[times.length - 1], t0 + 1);
  const x = (t) => left + ((right - left) * (t - t0)) / (t1 - t0);
  const bounds = opts.bounds ?? [];
  const max = Math.max(opts.least ?? 1, ...series.filter((s) => !s.own).flatMap((s) => s.values), ...bounds.map((b) => b.value * 1.15));
  for (const s of series) {
    const scale = s.own ? Math.max(1, ...s.values) : max;
    const y = (v) => bottom - ((bottom - top) * v) / scale;
    ctx.strokeStyle = s.color;
    ctx.setLineDash(s.dash);
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    s.values.forEach((v, i) => (i ? ctx.lineTo(x(times[i]), y(v)) : ctx.moveTo(x(times[i]), y(v))));
    ctx.stroke();
    ctx.setLineDash([]);
  }
  // Alert bounds: a dashed line at each, its name at its right end, and a tick on it at
  // each moment it fired.
  for (const b of bounds) {
    const y = bottom - ((bottom - top) * b.value) / max;
    ctx.strokeStyle = p.danger;
    ctx.setLineDash([4, 4]);
    ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(right, y); ctx.stroke();
    ctx.setLineDash([]);
    label(ctx, `alert: ${b.label}`, left + 6, y - 7, p.danger, 'left', font);
    ctx.lineWidth = 2;
    for (const t of b.fired.filter((f) => f >= t0 && f <= t1)) {
      ctx.beginPath(); ctx.moveTo(x(t), y - 5); ctx.lineTo(x(t), y + 5); ctx.stroke();
    }
  }
  label(ctx, (opts.fmt ?? ((v) => String(Math.round(v))))(max), left - 4, top + 4, p.muted, 'right', font);
  label(ctx, '0', left - 4, bottom, p.muted, 'right', font);
  const sec = (t) => `${(t / 1000).toFixed(t1 < 10000 ? 1 : 0)} s`;
  label(ctx, sec(t0), left, h - 8, p.muted, 'left', font);
  label(ctx, sec(t1), right, h - 8, p.muted, 'right', font);
  ctx.font = font;
  const ends = ctx.measureText(sec(t0)).width + ctx.measureText(sec(t1)).width + 24;
  if (ctx.measureText('simulated time').width + ends < right - left) label(ctx, 'simulated time', (left + right) / 2, h - 8, p.muted, 'center', font);
}

/**
 * Messages ready, in flight and in dead-letter queues over time, and acks per second (on their
 * own scale), from the samples the run keeps (engine.js, rebuilt by every seek).
 */
export function drawMetricsChart(ctx, view, opts) {
  const { palette: p } = opts;
  const m = view.metrics;
  const rate = m.map((s, i) => (i === 0 ? 0 : ((s.acked - m[i - 1].acked) * 1000) / Math.max(s.at - m[i - 1].at, 1)));
  const series = [
    { name: 'ready', color: p.ready, dash: [], values: m.map((s) => s.ready) },
    { name: 'in flight', color: p.inflight, dash: [5, 3], values: m.map((s) => s.inflight) },
    { name: 'in DLQ', color: p.danger, dash: [2, 2], values: m.map((s) => s.dlq) },
    { name: 'acks/s', color: p.acked, dash: [8, 3, 2, 3], values: rate, own: true },
  ];
  // An alert on a queue: its bound, and the queue's own depth unless the one DLQ is it.
  const dlqs = view.layout.queues.filter((q) => q.role === 'dead_letter').length;
  const queueAlerts = (view.layout.alerts ?? []).map((a, i) => ({ a, i })).filter(({ a }) => a.queue !== null);
  for (const { a, i } of queueAlerts) {
    const own = !(view.layout.queues[a.queue].role === 'dead_letter' && dlqs === 1);
    if (own) series.push({ name: view.layout.queues[a.queue].name, color: p.danger, dash: [], values: m.map((s) => s.alerts?.[i] ?? 0) });
  }
  const bounds = queueAlerts.map(({ a, i }) => alertBound(view, a, i));
  drawChart(ctx, { ...opts, bounds }, m.map((s) => s.at), series, 'The counts appear here as the run plays.', 'messages');
}

/** The samples a latency mean is taken over: the last second of simulated time. */
const LATENCY_WINDOW_SAMPLES = 4;

/**
 * Per metrics sample, the mean queue wait and the mean end-to-end latency (publish to first
 * effect) over the last second, in s; where no message finished in it, a line holds its last
 * value. Pure.
 */
export function latencySeries(metrics) {
  const windowed = (count, total) => {
    let last = 0;
    return metrics.map((s, i) => {
      const from = metrics[Math.max(0, i - LATENCY_WINDOW_SAMPLES)];
      const n = s[count] - from[count];
      if (n > 0) last = (s[total] - from[total]) / 1e6 / n;
      return last;
    });
  };
  return { wait: windowed('deliveries', 'waitUs'), latency: windowed('effects', 'latencyUs') };
}

/**
 * `latencySeries` over time. The gap between the two lines is time the queue's wait does not
 * see: in a consumer's buffer, in retries, in a DLQ.
 */
export function drawLatencyChart(ctx, view, opts) {
  const { palette: p } = opts;
  const { wait, latency } = latencySeries(view.metrics);
  const fmt = (v) => (v < 1 ? v.toFixed(2) : v < 10 ? v.toFixed(1) : String(Math.round(v)));
  drawChart(ctx, { ...opts, fmt, least: 0.1 }, view.metrics.map((s) => s.at), [
    { name: 'queue wait', color: p.ready, dash: [], values: wait },
    { name: 'publish → effect', color: p.inflight, dash: [5, 3], values: latency },
  ], 'Latency appears once messages are processed.', 's, mean over 1 s');
}

/**
 * Saga swimlanes: one lane per service, left to right in step order; one row per saga, stuck
 * sagas pinned at the top (the engine lists them first), then the newest. Each row has two
 * tracks: steps advance left to right on the upper one (solid arrows); compensations run back
 * right to left on the lower one (dashed, in the compensation color), so that the two never
 * read as one double-headed arrow. Marks: ● done, ✗ failed, ↺ compensated, ○ not reached.
 */
export function drawSwimlanes(ctx, saga, info, opts) {
  const { width: w, height: h, palette: p } = opts;
  const comp = p.compensate || p.inflight;
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = p.canvas;
  ctx.fillRect(0, 0, w, h);
  const lanes = info.steps.length;
  const laneW = (w - 36) / lanes;
  const cx = (k) => 36 + laneW * (k + 0.5);
  const head = `${TEXT}px ${SANS}`;
  info.steps.forEach((st, k) => {
    ctx.font = head;
    label(ctx, shorten(ctx, st.service, laneW - 6, false), cx(k), 10, p.muted, 'center', head);
    ctx.strokeStyle = p.edge;
    ctx.setLineDash([2, 4]);
    ctx.beginPath(); ctx.moveTo(cx(k), 19); ctx.lineTo(cx(k), h - 2); ctx.stroke();
    ctx.setLineDash([]);
  });
  const PITCH = 26;
  const rows = saga.recent.slice(0, Math.max(1, Math.floor((h - 24) / PITCH)));
  rows.forEach((inst, r) => {
    const y = 30 + r * PITCH;
    const back = y + 10;
    label(ctx, `#${inst.instance}`, 4, y + 4, inst.status === 'Stuck' ? p.danger : p.muted, 'left', `11px ${MONO}`);
    const arrow = (a, b, at, color, dash) => {
      ctx.strokeStyle = color;
      ctx.setLineDash(dash);
      ctx.lineWidth = 1.5;
      const dir = Math.sign(cx(b) - cx(a));
      const x0 = cx(a) + dir * 7;
      const x1 = cx(b) - dir * 7;
      ctx.beginPath(); ctx.moveTo(x0, at); ctx.lineTo(x1, at);
      ctx.moveTo(x1, at); ctx.lineTo(x1 - dir * 4, at - 3); ctx.moveTo(x1, at); ctx.lineTo(x1 - dir * 4, at + 3);
      ctx.stroke();
      ctx.setLineDash([]);
    };
    inst.steps.forEach((st, k) => {
      if (k > 0 && st !== 'pending') arrow(k - 1, k, y, p.ink, []);
      if (st === 'compensated' && k + 1 < lanes && inst.steps[k + 1] !== 'pending') arrow(k + 1, k, back, comp, [4, 3]);
    });
    inst.steps.forEach((st, k) => {
      const x = cx(k);
      if (st === 'done' || st === 'compensated') dot(ctx, x, y, p.ink, null, 4);
      else if (st === 'pending') dot(ctx, x, y, p.canvas, p.edge, 4);
      else if (st === 'failed') cross(ctx, x, y, p.danger, 4);
      if (st === 'compensated') label(ctx, '↺', x, back, comp, 'center', '600 12px system-ui, sans-serif');
    });
    if (inst.status === 'Stuck') label(ctx, 'stuck', w - 2, back, p.danger, 'right', `600 ${TEXT}px ${SANS}`);
  });
}

const SEQ_HEAD = 40;
const SEQ_ROW = 20;

/** The height a sequence diagram of `n` arrows needs to show them all. */
export function sequenceHeight(n) {
  return SEQ_HEAD + 8 + SEQ_ROW * Math.max(n, 1);
}

/**
 * Where the live sequence diagram puts things: a column per party (senders, then queues and
 * partitions, then consumers and members, as on the canvas) and a row per arrow, the newest
 * at the bottom. Pure; shared by the drawing and the hit test.
 */
export function sequenceGeometry(sequence, w, h) {
  const fit = Math.max(1, Math.floor((h - SEQ_HEAD - 4) / SEQ_ROW));
  const shown = sequence.slice(-fit);
  // Only the parties of the arrows shown get a column, so that each has room for its name.
  const parties = new Map();
  for (const a of shown) for (const party of [a.from, a.to]) parties.set(party.id, party);
  const order = (id) => Number(id.slice(1).replace('_', '.'));
  const cols = [...parties.values()].sort((a, b) => a.rank - b.rank || a.id[0].localeCompare(b.id[0]) || order(a.id) - order(b.id));
  const step = w / Math.max(cols.length, 1);
  const x = new Map(cols.map((c, i) => [c.id, step * (i + 0.5)]));
  const rows = shown.map((a, i) => ({ a, y: SEQ_HEAD + SEQ_ROW * (i + 0.5) + 6 }));
  return { cols, x, step, rows };
}

/**
 * The newest hops as a sequence diagram: lifelines, and an arrow per hop (solid: a send or a
 * delivery; dashed: an ack or commit; red: a return or a dead letter). The arrow of the selected
 * event is drawn heavier, and every arrow of the selected message in the focus color.
 */
export function drawSequence(ctx, sequence, opts) {
  const { width: w, height: h, palette: p, selected, msg } = opts;
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = p.canvas;
  ctx.fillRect(0, 0, w, h);
  if (sequence.length === 0) {
    label(ctx, 'Messages appear here as they move.', w / 2, h / 2, p.muted);
    return;
  }
  const g = sequenceGeometry(sequence, w, h);
  // Column names on two staggered rows when one row cannot hold them whole: each then has
  // two columns' width. What still does not fit is shortened as the canvas shortens names.
  const head = `600 ${TEXT}px ${SANS}`;
  ctx.font = head;
  const stagger = g.cols.some((c) => ctx.measureText(c.name).width > g.step - 6);
  const room = (stagger ? 2 * g.step : g.step) - 8;
  g.cols.forEach((c, i) => {
    const x = g.x.get(c.id);
    const y = stagger && i % 2 ? 26 : 10;
    ctx.font = head;
    // Centred on its lifeline, and inside the canvas.
    label(ctx, shorten(ctx, c.name, Math.min(room, 2 * Math.min(x, w - x) - 4), true), x, y, p.ink, 'center', head);
    ctx.strokeStyle = p.edge;
    ctx.setLineDash([2, 4]);
    ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(x, stagger ? 34 : 18); ctx.lineTo(x, h - 2); ctx.stroke();
    ctx.setLineDash([]);
  });
  for (const { a, y } of g.rows) {
    const x0 = g.x.get(a.from.id);
    const x1 = g.x.get(a.to.id);
    const mine = msg !== undefined && a.msg === msg;
    const bad = a.style === 'fail' || a.style === 'dead';
    const color = mine ? p.focus : bad ? p.danger : a.style === 'reply' ? p.acked : p.ink;
    if (a.n === selected) {
      ctx.fillStyle = p.edge;
      ctx.globalAlpha = 0.35;
      ctx.fillRect(0, y - SEQ_ROW + 4, w, SEQ_ROW);
      ctx.globalAlpha = 1;
    }
    ctx.strokeStyle = color;
    ctx.lineWidth = a.n === selected ? 3 : mine ? 2 : 1.25;
    ctx.setLineDash(a.style === 'reply' || a.style === 'fail' ? [4, 3] : []);
    const dir = Math.sign(x1 - x0) || 1;
    ctx.beginPath(); ctx.moveTo(x0, y); ctx.lineTo(x1, y); ctx.stroke();
    ctx.setLineDash([]);
    ctx.beginPath();
    if (a.style === 'fail') {
      ctx.moveTo(x1 - 3, y - 3); ctx.lineTo(x1 + 3, y + 3); ctx.moveTo(x1 + 3, y - 3); ctx.lineTo(x1 - 3, y + 3);
    } else {
      ctx.moveTo(x1, y); ctx.lineTo(x1 - dir * 5, y - 3); ctx.moveTo(x1, y); ctx.lineTo(x1 - dir * 5, y + 3);
    }
    ctx.stroke();
    label(ctx, a.text, (x0 + x1) / 2, y - 7, color, 'center', `11px ${SANS}`);
  }
}

/** The event number of the arrow under (x, y) in the live sequence diagram, if any. Pure. */
export function sequenceHit(sequence, w, h, x, y) {
  const g = sequenceGeometry(sequence, w, h);
  const row = g.rows.find((r) => y > r.y - SEQ_ROW + 4 && y <= r.y + 4);
  return row?.a.n;
}

/** Alert `a` (the `i`th) as a chart's bound: its value, its name, the moments it fired. */
function alertBound(view, a, i) {
  return { value: a.above, label: a.name, fired: (view.alertFired ?? []).filter((f) => f.alert === i).map((f) => f.at) };
}

/** Total lag per group over time, one line each, on its own small canvas. */
export function drawLagChart(ctx, view, opts) {
  const { palette: p } = opts;
  const dashes = [[], [5, 3], [2, 2], [8, 3, 2, 3]];
  // Every group samples at the same moments; the longest series gives the time axis.
  const longest = view.groups.reduce((a, g) => (g.lag.length > a.length ? g.lag : a), []);
  const series = view.groups.map((g, gi) => ({
    name: view.layout.groups[gi]?.name ?? `group ${gi + 1}`,
    color: gi % 2 ? p.inflight : p.ink,
    dash: dashes[gi % dashes.length],
    values: longest.map((s, i) => g.lag[i - (longest.length - g.lag.length)]?.lag ?? 0),
  }));
  const bounds = (view.layout.alerts ?? []).flatMap((a, i) => (a.group === null ? [] : [alertBound(view, a, i)]));
  drawChart(ctx, { ...opts, bounds }, longest.map((s) => s.at), series, 'Lag appears once a group commits.', 'records behind');
}

/**
 * What is under (px, py) on a canvas of w × h CSS px at `now`: a message (`{kind:
 * 'message', id}`: in a queue, with a consumer, or on its way to one), a group member
 * (`{kind: 'member', group, member}`) or a consumer (`{kind: 'consumer', index}`). Pure.
 */
export function targetAt(view, w, h, px, py, now, motion) {
  const k = canvasScale(w, h);
  const [x, y] = [px / k, py / k];
  const g = geometry(view.layout, w / k, h / k, view.groups.map((m) => m.members.length));
  const near = (a) => Math.hypot(a.x - x, a.y - y) <= DOT + 4;
  const inside = (b) => x >= b.x && x <= b.x + b.w && y >= b.y && y <= b.y + b.h;
  for (let qi = 0; qi < view.layout.queues.length; qi++) {
    const b = g.queues[qi];
    if (!b) continue;
    const ready = view.ready[qi];
    const slots = slotsOf(b, ready.length);
    for (let i = 0; i < slots.shown; i++) if (near(slots.at(i))) return { kind: 'message', id: ready[i] };
  }
  for (let ci = 0; ci < view.layout.consumers.length; ci++) {
    const jobs = view.jobs[ci];
    for (let i = 0; i < Math.min(jobs.length, 4); i++) if (near(jobAt(g.consumers[ci], i))) return { kind: 'message', id: jobs[i].id };
  }
  for (const m of view.messages.values()) {
    if (m.state !== 'delivering' || now >= m.t1) continue;
    const at = positionOf(view, g, m.id, now, motion);
    if (at && near(at)) return { kind: 'message', id: m.id };
  }
  for (let gi = 0; gi < view.groups.length; gi++) {
    const b = g.groups[gi];
    const n = view.groups[gi].members.length;
    for (let mi = 0; mi < n; mi++) {
      const rowY = memberRowY(b, mi, n);
      const rowH = Math.min(22, (b.h - 26) / Math.max(n, 1));
      if (x >= b.x && x <= b.x + b.w && Math.abs(y - rowY) <= rowH / 2) return { kind: 'member', group: gi, member: mi };
    }
  }
  for (const [di, b] of (g.dependencies ?? []).entries()) if (b && inside(b)) return { kind: 'dependency', index: di };
  for (let ci = 0; ci < view.layout.consumers.length; ci++) {
    if (g.consumers[ci] && inside(g.consumers[ci])) return { kind: 'consumer', index: ci };
  }
  return undefined;
}

/**
 * Where `target` (as `targetAt` returns it) is on a canvas of w × h CSS px at `now`, in CSS
 * px from its corner, or undefined when it is not drawn. Pure; the inverse of `targetAt`.
 */
export function locate(view, w, h, now, motion, target) {
  const k = canvasScale(w, h);
  const g = geometry(view.layout, w / k, h / k, view.groups.map((m) => m.members.length));
  let at;
  if (target.kind === 'message') at = positionOf(view, g, target.id, now, motion);
  else if (target.kind === 'consumer') {
    const c = g.consumers[target.index];
    at = c && { x: c.x + 12, y: c.y + c.h / 2 };
  } else if (target.kind === 'dependency') {
    const b = g.dependencies?.[target.index];
    at = b && { x: b.x + 12, y: b.y + b.h / 2 };
  } else if (target.kind === 'member') {
    const b = g.groups[target.group];
    at = b && { x: b.x + 12, y: memberRowY(b, target.member, view.groups[target.group].members.length) };
  }
  return at && { x: at.x * k, y: at.y * k };
}
