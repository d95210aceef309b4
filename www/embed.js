// embed.html#<shared state>?…: the widget without page chrome, for an <iframe>, driven by
// postMessage. The fragment is a share link's (share.js); the query tunes the frame:
//
//   allow=<origin>[,<origin>…]  origins whose commands are obeyed and to which events are
//                               posted (default: this page's own origin; "*": any)
//   readonly                    obey no commands; still post events
//   controls, theme, speed, markers, panel, autoplay   as the element's attributes
//
// Commands in:  {brokerlab: 1, command: 'play' | 'pause' | 'step' | 'nextMarker' | 'seek' | 'toMarker', ms, index}
// Events out:   {brokerlab: 1, event: 'ready' | 'marker' | 'invariant' | 'ended' | 'error', detail}
// A message from any other origin, or not from the parent window, is ignored.
import './element.js';
import { decodeShare } from './share.js';

const params = new URLSearchParams(location.search);
const allowed = (params.get('allow') ?? location.origin).split(',').map((s) => s.trim()).filter(Boolean);
const readonly = params.has('readonly');
const lab = document.getElementById('lab');
for (const name of ['controls', 'theme', 'speed', 'markers', 'panel']) if (params.has(name)) lab.setAttribute(name, params.get(name));

const COMMANDS = {
  play: () => lab.play(),
  pause: () => lab.pause(),
  step: () => lab.step(),
  nextMarker: () => lab.nextMarker(),
  toMarker: (m) => { if (Number.isInteger(m.index)) lab.toMarker(m.index); },
  seek: (m) => { if (typeof m.ms === 'number') lab.seek(m.ms); },
};

window.addEventListener('message', (e) => {
  if (readonly || e.source !== window.parent || window.parent === window) return;
  if (!allowed.includes('*') && !allowed.includes(e.origin)) return;
  const m = e.data;
  if (typeof m !== 'object' || m === null || m.brokerlab !== 1 || !Object.hasOwn(COMMANDS, m.command)) return;
  COMMANDS[m.command](m);
});

for (const type of ['ready', 'marker', 'invariant', 'ended', 'error']) {
  lab.addEventListener(type, (e) => {
    if (window.parent === window) return;
    for (const origin of allowed) window.parent.postMessage({ brokerlab: 1, event: type, detail: e.detail }, origin);
  });
}

async function open() {
  const autoplay = params.has('autoplay');
  if (location.hash.length > 1) {
    const link = await decodeShare(location.hash.slice(1));
    await lab.load(link.json ?? link.preset, { seed: link.seed, inputs: link.inputs, at: link.t, autoplay });
  } else {
    const seed = params.get('seed');
    await lab.load(params.get('scenario') ?? 'competing-consumers', { seed: seed === null ? undefined : Number(seed), autoplay });
  }
}

open().catch((err) => {
  document.getElementById('embed-error').textContent = `This embed cannot be opened: ${err.message ?? err}`;
});
