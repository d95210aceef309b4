// (ctx, view, now) -> pixels. Reads the view model, never changes it. Motion is interpolated
// from each message's start and end time, so the picture is smooth between engine events.

const PULSE_MS = 600;
const DOT = 6;

/** Where everything sits, for a canvas of w x h CSS pixels. Pure. */
export function geometry(layout, w, h) {
  const top = 44;
  const bottom = h - 16;
  const spread = (n, i) => top + ((bottom - top) * (i + 0.5)) / Math.max(n, 1);
  const prodX = Math.max(70, w * 0.1);
  const queueW = Math.min(w * 0.34, 420);
  const queueX = w * 0.46 - queueW / 2;
  const consX = w * 0.8;
  const consW = Math.min(150, w * 0.17);
  const consH = Math.min(46, ((bottom - top) / Math.max(layout.consumers.length, 1)) * 0.7);
  return {
    columns: [
      { label: 'Producers', x: prodX },
      { label: 'Broker', x: queueX + queueW / 2 },
      { label: 'Consumers', x: consX + consW / 2 },
    ],
    producers: layout.producers.map((_, i) => ({ x: prodX, y: spread(layout.producers.length, i) })),
    queues: layout.queues.map((_, i) => ({
      x: queueX, y: spread(layout.queues.length, i) - 22, w: queueW, h: 44,
    })),
    consumers: layout.consumers.map((_, i) => ({
      x: consX, y: spread(layout.consumers.length, i) - consH / 2, w: consW, h: consH,
    })),
  };
}

const lerp = (a, b, t) => a + (b - a) * t;

/** How far along [t0, t1] `now` is, 0..1. Without motion, a message jumps at the end. */
function progress(now, t0, t1, motion) {
  if (t1 <= t0) return 1;
  const p = Math.min(1, Math.max(0, (now - t0) / (t1 - t0)));
  return motion ? p : p >= 1 ? 1 : 0;
}

function queueEntry(q) { return { x: q.x, y: q.y + q.h / 2 }; }
function queueExit(q) { return { x: q.x + q.w, y: q.y + q.h / 2 }; }
function consumerEntry(c) { return { x: c.x, y: c.y + c.h / 2 }; }

function dot(ctx, x, y, fill, stroke, r = DOT) {
  ctx.beginPath();
  ctx.arc(x, y, r, 0, Math.PI * 2);
  if (fill) { ctx.fillStyle = fill; ctx.fill(); }
  if (stroke) { ctx.strokeStyle = stroke; ctx.lineWidth = 2; ctx.stroke(); }
}

function box(ctx, x, y, w, h, fill, stroke) {
  ctx.beginPath();
  ctx.roundRect(x, y, w, h, 8);
  ctx.fillStyle = fill;
  ctx.fill();
  ctx.strokeStyle = stroke;
  ctx.lineWidth = 1.5;
  ctx.stroke();
}

function label(ctx, text, x, y, color, align = 'center', font = '12px system-ui, sans-serif') {
  ctx.font = font;
  ctx.fillStyle = color;
  ctx.textAlign = align;
  ctx.textBaseline = 'middle';
  ctx.fillText(text, x, y);
}

/**
 * Draws the whole frame.
 * opts: {width, height, palette, motion}; palette holds the theme's CSS colors.
 */
export function draw(ctx, view, now, opts) {
  const { width: w, height: h, palette: p, motion } = opts;
  const g = geometry(view.layout, w, h);
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = p.canvas;
  ctx.fillRect(0, 0, w, h);

  for (const col of g.columns) label(ctx, col.label, col.x, 18, p.muted, 'center', '600 12px system-ui, sans-serif');

  // Edges first, so nodes and dots sit on top.
  ctx.strokeStyle = p.edge;
  ctx.lineWidth = 1.5;
  view.layout.producers.forEach((prod, i) => {
    const a = g.producers[i];
    const b = queueEntry(g.queues[prod.queue]);
    ctx.beginPath(); ctx.moveTo(a.x + 40, a.y); ctx.lineTo(b.x, b.y); ctx.stroke();
  });
  view.layout.consumers.forEach((cons, i) => {
    const a = queueExit(g.queues[cons.queue]);
    const b = consumerEntry(g.consumers[i]);
    ctx.beginPath(); ctx.moveTo(a.x, a.y); ctx.lineTo(b.x, b.y); ctx.stroke();
  });

  view.layout.producers.forEach((prod, i) => {
    const { x, y } = g.producers[i];
    box(ctx, x - 40, y - 16, 80, 32, p.node, p.edge);
    label(ctx, prod.name, x, y, p.ink);
  });

  // Delivered but not yet started (prefetch > 1) shows as the consumer's buffer.
  const buffered = view.layout.consumers.map(() => 0);
  for (const m of view.messages.values()) {
    if (m.state === 'delivering' && now >= m.t1) buffered[m.consumer]++;
  }
  view.layout.queues.forEach((name, qi) => drawQueue(ctx, view, g.queues[qi], name, qi, p));
  view.layout.consumers.forEach((cons, ci) => drawConsumer(ctx, view, g.consumers[ci], cons, ci, buffered[ci], now, p));

  // Messages on the wire: publishing (neutral) and delivering (amber, unacked).
  for (const m of view.messages.values()) {
    if (m.state === 'publishing') {
      const a = g.producers[m.producer];
      const b = queueEntry(g.queues[m.queue]);
      const t = progress(now, m.t0, m.t1, motion);
      dot(ctx, lerp(a.x + 40, b.x, t), lerp(a.y, b.y, t), p.ready);
    } else if (m.state === 'delivering' && now < m.t1) {
      const a = queueExit(g.queues[m.queue]);
      const b = consumerEntry(g.consumers[m.consumer]);
      const t = progress(now, m.t0, m.t1, motion);
      dot(ctx, lerp(a.x, b.x, t), lerp(a.y, b.y, t), p.inflight);
    }
  }

  // Acks: a brief green pulse with a check mark, then the message is only a count.
  for (const pulse of view.pulses) {
    const age = now - pulse.at;
    if (age < 0 || age > PULSE_MS) continue;
    const c = g.consumers[pulse.consumer];
    const t = motion ? age / PULSE_MS : 0.5;
    ctx.globalAlpha = 1 - t;
    dot(ctx, c.x + c.w - 16, c.y + c.h / 2, null, p.acked, DOT + 10 * t);
    ctx.strokeStyle = p.acked;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(c.x + c.w - 20, c.y + c.h / 2);
    ctx.lineTo(c.x + c.w - 17, c.y + c.h / 2 + 3);
    ctx.lineTo(c.x + c.w - 12, c.y + c.h / 2 - 3);
    ctx.stroke();
    ctx.globalAlpha = 1;
  }
}

function drawQueue(ctx, view, q, name, qi, p) {
  box(ctx, q.x, q.y, q.w, q.h, p.node, p.edge);
  label(ctx, name, q.x + 8, q.y - 10, p.ink, 'left', '600 12px system-ui, sans-serif');
  const ready = view.ready[qi];
  label(ctx, `ready ${ready.length}`, q.x + q.w, q.y - 10, p.muted, 'right');
  // The head of the queue (oldest) sits at the exit, on the right.
  const step = DOT * 2 + 4;
  const fit = Math.max(1, Math.floor((q.w - 16) / step));
  const shown = Math.min(ready.length, ready.length > fit ? fit - 1 : fit);
  for (let i = 0; i < shown; i++) {
    dot(ctx, q.x + q.w - 12 - i * step, q.y + q.h / 2, p.ready);
  }
  if (ready.length > shown) label(ctx, `+${ready.length - shown}`, q.x + 18, q.y + q.h / 2, p.muted);
}

function drawConsumer(ctx, view, c, cons, ci, buffered, now, p) {
  box(ctx, c.x, c.y, c.w, c.h, p.node, p.edge);
  label(ctx, cons.name, c.x + 8, c.y + 12, p.ink, 'left');
  label(ctx, `prefetch ${cons.prefetch}`, c.x + c.w, c.y - 8, p.muted, 'right', '11px system-ui, sans-serif');
  const id = view.processing[ci];
  if (id >= 0) {
    const m = view.messages.get(id);
    dot(ctx, c.x + c.w - 16, c.y + c.h / 2, p.inflight);
    label(ctx, `m${id}`, c.x + c.w - 28, c.y + c.h / 2, p.ink, 'right', '11px ui-monospace, monospace');
    // Processing progress along the bottom edge.
    const t = m ? Math.min(1, Math.max(0, (now - m.t0) / Math.max(m.t1 - m.t0, 1e-9))) : 0;
    ctx.fillStyle = p.inflight;
    ctx.fillRect(c.x + 6, c.y + c.h - 6, (c.w - 12) * t, 3);
  }
  // Delivered but not started: hollow amber dots in a tray left of the box.
  const step = DOT * 2 + 2;
  const shown = Math.min(buffered, 6);
  for (let i = 0; i < shown; i++) {
    dot(ctx, c.x - 12 - i * step, c.y + c.h / 2, p.canvas, p.inflight, DOT - 1);
  }
  if (buffered > shown) label(ctx, `+${buffered - shown}`, c.x - 12 - shown * step - 6, c.y + c.h / 2, p.muted, 'right');
}
