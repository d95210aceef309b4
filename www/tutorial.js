// tutorial.html: buttons in the prose jump their widget to a beat (data-beat, counted from 1 as
// the caption counts). A <broker-lab> is driven through its API; the <iframe> through
// embed.html's postMessage protocol. A run reaching a beat by itself (a `marker` event) marks
// that beat's buttons in the prose too.
import './element.js';

const frameOrigin = (frame) => new URL(frame.src, location.href).origin;

/** Moves a widget, element or iframe alike, to its beat `index` (from 0). */
function toBeat(target, index) {
  if (target instanceof HTMLIFrameElement) {
    target.contentWindow?.postMessage({ brokerlab: 1, command: 'toMarker', index }, frameOrigin(target));
  } else {
    target.toMarker(index);
  }
}

/** The widget a button drives: its own data-for, else its section's data-widget. */
const widgetOf = (button) => document.getElementById(button.dataset.for ?? button.closest('[data-widget]')?.dataset.widget);

/** Marks the buttons that name beat `index` of `target` as the current step. */
function markBeat(target, index) {
  for (const b of document.querySelectorAll('button[data-beat]')) {
    if (widgetOf(b) !== target) continue;
    if (Number(b.dataset.beat) - 1 === index) b.setAttribute('aria-current', 'step');
    else b.removeAttribute('aria-current');
  }
}

const reducedMotion = matchMedia('(prefers-reduced-motion: reduce)');

document.addEventListener('click', (e) => {
  const b = e.target.closest('button[data-beat]');
  const target = b && widgetOf(b);
  if (!target) return;
  toBeat(target, Number(b.dataset.beat) - 1);
  // The reader's eyes go to the run: bring all of it on screen.
  target.scrollIntoView({ block: 'nearest', behavior: reducedMotion.matches ? 'auto' : 'smooth' });
});

for (const target of document.querySelectorAll('broker-lab, iframe.embed')) {
  if (target instanceof HTMLIFrameElement) {
    window.addEventListener('message', (e) => {
      if (e.source !== target.contentWindow || e.origin !== frameOrigin(target) || e.data?.brokerlab !== 1) return;
      if (e.data.event === 'marker') markBeat(target, e.data.detail.index);
    });
  } else {
    target.addEventListener('marker', (e) => markBeat(target, e.detail.index));
  }
}
