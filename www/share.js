// Share links: (scenario, seed, time) in the URL fragment, deflated and base64url-encoded.
// No engine here; main.js validates what comes out before anything runs it.

const LINK_VERSION = 1;
// A link never inflates past this: a scenario is at most 1 MiB (the engine's limit).
const INFLATED_MAX = (1 << 20) + 1024;
const FRAGMENT_MAX = 256 * 1024;
const INPUTS_MAX = 1000;

async function pipe(bytes, stream) {
  const out = new Blob([bytes]).stream().pipeThrough(stream).getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await out.read();
    if (done) break;
    size += value.length;
    if (size > INFLATED_MAX) {
      await out.cancel();
      throw new Error('the link inflates to more than a scenario may hold');
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return all;
}

const toBase64Url = (bytes) => {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
};

const fromBase64Url = (text) => {
  const s = atob(text.replaceAll('-', '+').replaceAll('_', '/'));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
};

/** {preset?, json?, seed, t} -> the fragment text (without '#'). */
export async function encodeShare(state) {
  const payload = { v: LINK_VERSION, seed: state.seed, t: state.t, inputs: state.inputs ?? [] };
  if (state.json !== undefined) payload.json = state.json;
  else payload.preset = state.preset;
  const bytes = new TextEncoder().encode(JSON.stringify(payload));
  return toBase64Url(await pipe(bytes, new CompressionStream('deflate-raw')));
}

/**
 * The fragment text -> {preset?, json?, seed, t}. Throws an Error saying what is wrong; the
 * caller shows it and keeps what the user had.
 */
export async function decodeShare(fragment) {
  if (fragment.length > FRAGMENT_MAX) throw new Error('the link is too long');
  let payload;
  try {
    const bytes = await pipe(fromBase64Url(fragment), new DecompressionStream('deflate-raw'));
    payload = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    // The decoder's own words ("invalid stored block lengths") mean nothing to a reader.
    throw new Error('the link is damaged or cut short: part of it is missing or changed');
  }
  if (typeof payload !== 'object' || payload === null || payload.v !== LINK_VERSION) {
    throw new Error('the link is not a Brokerlab link of this version');
  }
  const seed = payload.seed;
  const t = payload.t;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error('seed: must be a whole number ≥ 0');
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) throw new Error('t: must be a time in ms ≥ 0');
  const inputs = payload.inputs ?? [];
  const okInput = (i, k) => i && Number.isSafeInteger(i.p) && i.p >= 0 && typeof i.t === 'number' && Number.isFinite(i.t)
    && typeof i.op === 'string' && i.op.length <= 4096 && (k === 0 || i.p > inputs[k - 1].p);
  if (!Array.isArray(inputs) || inputs.length > INPUTS_MAX || !inputs.every(okInput)) {
    throw new Error(`inputs: must be at most ${INPUTS_MAX} inputs in order`);
  }
  if (typeof payload.json === 'string') return { json: payload.json, seed, t, inputs };
  if (typeof payload.preset === 'string') return { preset: payload.preset, seed, t, inputs };
  throw new Error('the link names no scenario');
}
