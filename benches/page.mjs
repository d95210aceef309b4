// The page's figures (issue 6), in headless Chromium with vsync and the frame-rate limit off so
// that real frame cost shows: frame time with 100, 1,000 and 5,000 messages in motion, seek
// latency in a run of about a million events, and the load (gzipped sizes, first frame).
// Prints one JSON object.
//
//   node benches/page.mjs
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { gzipSync, deflateRawSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { startServer } from '../scripts/serve.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const gz = (path) => gzipSync(readFileSync(new URL(path, new URL('..', import.meta.url)))).length;
const link = (scenario) => deflateRawSync(Buffer.from(JSON.stringify({ v: 1, json: JSON.stringify(scenario), seed: 1, t: 0, inputs: [] })))
  .toString('base64').replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');

// `n` messages on the wire at once: a burst with a long network delay, so they glide.
const inMotion = (n) => ({
  name: `${n} in motion`, duration_ms: 60000, network: { latency_ms: 20000 },
  queues: [{ name: 'q' }],
  producers: [{ name: 'p', to: 'q', schedule: { kind: 'fixed_rate', interval_ms: 10000 / n, count: n } }],
  consumers: [{ name: 'c', from: 'q', prefetch: 10, concurrency: 10, processing: { kind: 'constant', ms: 50 } }],
});

const percentile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

const server = await startServer({ port: 0, quiet: true });
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-gpu-vsync', '--disable-frame-rate-limit'],
});
const result = { frames: {}, seek: {}, load: {} };
try {
  // The first frame of a first visit: each load in a fresh context (an empty cache, so the
  // wasm is fetched and compiled anew), five of them; the median is the figure, the worst beside it.
  const firsts = [];
  for (let i = 0; i < 5; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 760 } });
    const cold = await context.newPage();
    const t0 = Date.now();
    await cold.goto(server.url);
    await cold.waitForSelector('body[data-ready="true"]');
    firsts.push(await cold.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(performance.now())))));
    result.load.ready_wall_ms = Date.now() - t0;
    await context.close();
  }
  result.load.first_frame_ms = percentile(firsts, 0.5);
  result.load.first_frame_max_ms = Math.max(...firsts);
  const page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
  for (const n of [100, 1000, 5000]) {
    await page.goto(`${server.url}#${link(inMotion(n))}`);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    await page.uncheck('#pause-at-beats');
    await page.click('#play');
    await page.waitForFunction(() => Number(document.querySelector('#timeline').value) > 10500, null, { timeout: 60000 });
    const frames = await page.evaluate(() => new Promise((resolve) => {
      const times = [];
      let last = performance.now();
      const tick = (now) => {
        times.push(now - last);
        last = now;
        if (times.length < 300) requestAnimationFrame(tick); else resolve(times);
      };
      requestAnimationFrame(tick);
    }));
    const moving = await page.evaluate(() => document.querySelector('#counts td[data-state="publishing"]')?.textContent);
    result.frames[n] = { in_motion: Number(moving), p50_ms: percentile(frames, 0.5), p95_ms: percentile(frames, 0.95), frames: frames.length };
    await page.click('#play');
  }
  // Seek: a run of about a million events, then jumps to 20 places, back and forth.
  result.seek = await page.evaluate(async () => {
    const m = await import('./engine.js');
    const scenario = JSON.stringify({
      name: 'a million events', seed: 1, duration_ms: 64000,
      queues: [{ name: 'q' }],
      producers: [{ name: 'p', to: 'q', schedule: { kind: 'poisson', rate_per_s: 8000 } }],
      consumers: Array.from({ length: 10 }, (_, i) => ({ name: `c${i}`, from: 'q', prefetch: 4, concurrency: 4, processing: { kind: 'exponential', mean_ms: 4 } })),
    });
    const run = new m.Run(scenario, 1);
    const s0 = performance.now();
    for (let t = 0; t <= run.durationMs; t += 500) run.advanceTo(t);
    const build = performance.now() - s0;
    const events = run.position;
    const times = [];
    for (let i = 0; i < 20; i++) {
      const t = ((i * 7919) % 20) * (run.durationMs / 20);
      const a = performance.now();
      run.seekTime(t);
      times.push(performance.now() - a);
    }
    times.sort((a, b) => a - b);
    return { events, play_to_end_ms: build, seeks: times.length, p50_ms: times[10], max_ms: times.at(-1) };
  });
} finally {
  await browser.close();
  await server.close();
}
const files = ['www/pkg/brokerlab_bg.wasm', 'www/pkg/brokerlab.js', 'www/engine.js', 'www/main.js', 'www/render.js',
  'www/panels.js', 'www/controls.js', 'www/share.js', 'www/style.css', 'www/index.html'];
result.load.gzip_bytes = Object.fromEntries(files.map((f) => [f, gz(f)]));
result.load.gzip_total = Object.values(result.load.gzip_bytes).reduce((a, b) => a + b, 0);
console.log(JSON.stringify(result));
void ROOT;
