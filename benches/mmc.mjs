// The M/M/c benchmark in wasm under Node: the same scenario as benches/mmc.rs, through the
// same www/pkg build the page loads. Prints one JSON line like the native one.
//
//   node benches/mmc.mjs [MESSAGES]
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import init, { runSummary } from '../www/pkg/brokerlab.js';

const messages = Number(process.argv[2] ?? 1_000_000);
const consumers = Array.from({ length: 10 }, (_, i) => ({
  name: `server-${i + 1}`, from: 'work', processing: { kind: 'exponential', mean_ms: 1000 },
}));
const scenario = JSON.stringify({
  name: 'M/M/c benchmark', seed: 1, duration_ms: (Math.floor(messages / 9) + 3600) * 1000,
  queues: [{ name: 'work' }],
  producers: [{ name: 'arrivals', to: 'work', schedule: { kind: 'poisson', rate_per_s: 9, count: messages } }],
  consumers,
});

await init({ module_or_path: readFileSync(new URL('../www/pkg/brokerlab_bg.wasm', import.meta.url)) });
const runs = 7; // best of 7, as natively
let best = Infinity;
let summary;
for (let i = 0; i < runs; i++) {
  const start = performance.now();
  summary = runSummary(scenario, 1);
  best = Math.min(best, (performance.now() - start) / 1000);
}
console.log(JSON.stringify({
  target: 'wasm-node', messages, events: summary.events, best_of: runs, seconds: best,
  messages_per_s: messages / best, mean_wait_ms: summary.mean_wait_ms, trace_hash: summary.trace_hash,
}));
