// tutorial.html: the prose's beats drive the runs beside them. A <broker-lab> is driven
// through its API; the <iframe> through embed.html's postMessage protocol. A run reaching a
// beat by itself (a `marker` event) marks that beat in the prose too.
import './element.js';

const frameOrigin = (frame) => new URL(frame.src, location.href).origin;

/** Drives a widget, element or iframe alike. */
function command(target, name, ms) {
  if (target instanceof HTMLIFrameElement) {
    target.contentWindow?.postMessage({ brokerlab: 1, command: name, ms }, frameOrigin(target));
  } else if (name === 'seek') {
    target.seek(ms);
  } else {
    target[name]();
  }
}

/** Marks the beat button whose moment is the newest at or before `ms`. */
function markBeat(list, ms) {
  let current = null;
  for (const b of list.querySelectorAll('button[data-seek]')) if (Number(b.dataset.seek) <= ms) current = b;
  for (const b of list.querySelectorAll('button[data-seek]')) {
    if (b === current) b.setAttribute('aria-current', 'step');
    else b.removeAttribute('aria-current');
  }
}

for (const list of document.querySelectorAll('.beats[data-for]')) {
  const target = document.getElementById(list.dataset.for);
  list.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-seek]');
    if (!b) return;
    command(target, 'seek', Number(b.dataset.seek));
    markBeat(list, Number(b.dataset.seek));
  });
  if (target instanceof HTMLIFrameElement) {
    window.addEventListener('message', (e) => {
      if (e.source !== target.contentWindow || e.origin !== frameOrigin(target) || e.data?.brokerlab !== 1) return;
      if (e.data.event === 'marker') markBeat(list, e.data.detail.at_ms);
    });
  } else {
    target.addEventListener('marker', (e) => markBeat(list, e.detail.at_ms));
  }
}
