// End-to-end: the real page, the real wasm build, served with the real CSP header, in
// Debian's Chromium driven by playwright-core. Fails on any console error, page error or CSP
// violation. Screenshots go to target/e2e/. Prints "N passed, N failed".
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { deflateRawSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../scripts/serve.mjs';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const SHOTS = join(ROOT, 'target', 'e2e');
mkdirSync(SHOTS, { recursive: true });

// LocalNetworkAccessChecks would block the test's stand-in third-party pages (intercepted
// routes, which Chromium counts as public) from framing the server on 127.0.0.1.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-features=LocalNetworkAccessChecks'];

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

/** Opens the seed's disclosure in the transport (the seed, restart, random seed, the hash). */
async function openRunInfo(page) {
  if (!(await page.$eval('#run-info', (d) => d.open))) await page.click('#run-info summary');
}

/** Opens the Share menu in the header (share link, embed, diagram, trace), if it is closed. */
async function openShareMenu(page) {
  if (!(await page.$eval('#share-menu', (d) => d.open))) await page.click('#share-menu summary');
}

/** Plays without stopping at the narrative beats (a user can turn that off too). */
async function noBeatPauses(page) {
  await page.uncheck('#pause-at-beats');
  await page.evaluate(() => document.activeElement.blur());
}

async function openPage(ctx, url, problems) {
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console.error: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
  return page;
}

/** Waits (the page paints on the next frame) until the element's text satisfies `ok`. */
async function waitText(page, selector, ok, what) {
  const deadline = 5000;
  const start = process.hrtime.bigint();
  for (;;) {
    const el = await page.$(selector);
    const text = el ? await el.evaluate((e) => ('value' in e && e.tagName !== 'BUTTON' ? e.value : e.textContent)) : null;
    if (text !== null && ok(text)) return text;
    if (Number(process.hrtime.bigint() - start) / 1e6 > deadline) throw new Error(`${what}: ${selector} is "${text}"`);
    await page.waitForTimeout(20);
  }
}

const countOf = (page, state) => page.$eval(`#counts td[data-state="${state}"]`, (td) => Number(td.textContent));
const canvasPixels = (page) => page.$eval('#canvas', (c) => c.toDataURL());
/** How many colors a canvas shows (sampled): a blank one shows one or two. */
const colorsOf = (page, selector) => page.$eval(selector, (c) => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const colors = new Set();
  for (let i = 0; i < d.length; i += 16) colors.add(`${d[i]},${d[i + 1]},${d[i + 2]}`);
  return colors.size;
});

test('play makes messages flow from producers through the queue to consumers, and acks are counted', async ({ page }) => {
  assert(await page.textContent('#play') === 'Play', 'starts paused');
  assert((await page.textContent('.caption-text')).includes('Three workers'), 'the caption opens with the preset');
  await page.click('#play');
  // 3 s of simulated time at 1x: the first acks land after about 1.3 s.
  await page.waitForFunction(() => Number(document.querySelector('#counts td[data-state="acked"]').textContent) > 0,
    null, { timeout: 10000 });
  const before = await canvasPixels(page);
  await page.waitForTimeout(300);
  const after = await canvasPixels(page);
  assert(before !== after, 'the canvas moves while playing');
  const log = await page.$$eval('#log li', (lis) => lis.map((li) => li.textContent));
  assert(log.some((l) => l.includes('published by checkout')), 'log shows publishing');
  assert(log.some((l) => l.includes('delivered orders →')), 'log shows delivery');
  assert(log.some((l) => l.includes('acked by worker-')), 'log shows acks');
  await page.screenshot({ path: join(SHOTS, 'playground.png') });
  await page.click('#play');
  await waitText(page, '#play', (t) => t === 'Play', 'pauses');
});

test('the page runs the preset to the same trace hash as the native CLI', async ({ page }) => {
  const cli = JSON.parse(execFileSync('cargo',
    ['run', '--quiet', '--bin', 'brokerlab', '--', 'run', 'scenarios/competing-consumers.json'],
    { cwd: ROOT, encoding: 'utf8' }));
  const web = await page.evaluate(async () => {
    const m = await import('./engine.js');
    await m.loadEngine();
    const p = m.presets().find((x) => x.id === 'competing-consumers');
    const run = new m.Run(p.json, 7);
    for (let t = 0; t < run.durationMs; t += 16.7) run.advanceTo(t);
    run.advanceTo(run.durationMs);
    // The same run again, with a budget of 3 events per call: it stops often, folds every
    // event all the same, and its view agrees with the engine's counts at every stop.
    const tight = new m.Run(p.json, 7);
    let stops = 0;
    let viewAgrees = true;
    for (;;) {
      const { stopped } = tight.advanceTo(tight.durationMs, 3);
      const v = tight.view;
      const ready = v.ready.reduce((n, q) => n + q.length, 0);
      viewAgrees &&= ready === v.counts.reduce((n, c) => n + c.ready, 0);
      viewAgrees &&= v.messages.size === v.counts.reduce((n, c) => n + c.publishing + c.ready + c.delivering
        + c.buffered + c.processing, 0);
      if (!stopped) break;
      stops++;
    }
    return { hash: run.traceHash(), summary: run.summary(), tightHash: tight.traceHash(), stops, viewAgrees };
  });
  assert(web.stops > 50, `the tight budget stopped ${web.stops} times`);
  assert(web.viewAgrees, 'the folded view agrees with the engine counts at every stop');
  assert(web.tightHash === web.hash, 'stopping on the budget changes nothing');
  assert(cli.trace_hash === '929b17e78e258e22', `CLI hash ${cli.trace_hash}`);
  assert(web.hash === cli.trace_hash, `Chromium ${web.hash} vs CLI ${cli.trace_hash}`);
  assert(JSON.stringify(web.summary.queues) === JSON.stringify(cli.queues), 'same counts per state');
});

test('keyboard: → steps one event, space plays and pauses, [ and ] change speed', async ({ page }) => {
  await page.locator('body').focus();
  const lines = () => page.$$eval('#log li', (lis) => lis.length);
  const n0 = await lines();
  const c0 = await page.textContent('#clock');
  await page.keyboard.press('ArrowRight');
  await page.waitForFunction((n) => document.querySelectorAll('#log li').length > n, n0);
  await waitText(page, '#clock', (t) => t !== c0, 'stepping moves the clock to the next event');
  // With focus on a button (after clicking Step), → still steps; space stays the button's.
  await page.click('#step');
  const n1 = await lines();
  await page.keyboard.press('ArrowRight');
  await page.waitForFunction((n) => document.querySelectorAll('#log li').length > n, n1);
  await page.evaluate(() => document.activeElement.blur());
  await page.keyboard.press(' ');
  await waitText(page, '#play', (t) => t === 'Pause', 'space plays');
  await page.keyboard.press(' ');
  await waitText(page, '#play', (t) => t === 'Play', 'space pauses');
  await page.keyboard.press(']');
  await waitText(page, '#speed', (v) => v === '2', 'faster');
  await page.keyboard.press('[');
  await page.keyboard.press('[');
  await waitText(page, '#speed', (v) => v === '0.5', 'slower');
});

test('? opens the keyboard help and Escape closes it', async ({ page }) => {
  await page.keyboard.press('?');
  await page.waitForFunction(() => document.querySelector('#help').open, null, { timeout: 2000 });
  assert((await page.textContent('#help')).includes('step back'), 'the help lists the keys');
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.querySelector('#help').open, null, { timeout: 2000 });
  const options = await page.$$eval('#speed option', (os) => os.map((o) => Number(o.value)));
  assert(options[0] === 0.01 && options.at(-1) === 1000, `speeds from 1/100x to 1000x: ${options}`);
});

test('a bad seed is refused with a message and the run is kept; a good one resets', async ({ page }) => {
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  const lines = await page.$$eval('#log li', (lis) => lis.length);
  await openRunInfo(page);
  await page.fill('#seed', '-3');
  await page.click('#reset');
  await waitText(page, '#error', (t) => t.startsWith('The seed "-3" is not a whole number'), 'error names the seed');
  assert(await page.$$eval('#log li', (lis) => lis.length) === lines, 'the run was kept');
  await openRunInfo(page);
  await page.fill('#seed', '12');
  await page.press('#seed', 'Enter');
  await waitText(page, '#error', (t) => t === '', 'error cleared');
  assert(await page.inputValue('#seed') === '12', 'seed shown');
  assert(await countOf(page, 'acked') === 0, 'fresh run');
  await openRunInfo(page);
  await page.click('#random-seed');
  await waitText(page, '#seed', (v) => v !== '12' && v !== '', 'random seed differs');
});

test('another scenario loads with its narration and its own table', async ({ page }) => {
  await page.selectOption('#scenario', 'prefetch-hoarding');
  await waitText(page, '#description', (t) => t.includes('prefetch 10'), 'the description changes');
  await waitText(page, '.caption-text', (t) => t.startsWith('A burst of 24 jobs'), 'so does the caption');
  await waitText(page, '#seed', (v) => v === '3', "the preset's seed");
  assert(await page.$eval('#counts thead', (h) => h.textContent.includes('jobs')), 'queue column');
  await page.selectOption('#speed', '10');
  await page.click('#play');
  await page.waitForFunction(() => Number(document.querySelector('#counts td[data-state="buffered"]').textContent) > 0,
    null, { timeout: 10000 });
  await page.screenshot({ path: join(SHOTS, 'prefetch.png') });
});

test('dark mode and reduced motion', async ({ page }) => {
  await page.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' });
  await page.waitForTimeout(100);
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert(bg === 'rgb(16, 19, 23)', `dark background, got ${bg}`);
  await page.click('#play');
  await page.waitForFunction(() => Number(document.querySelector('#counts td[data-state="acked"]').textContent) > 0,
    null, { timeout: 10000 });
  const corner = await page.$eval('#canvas', (c) => Array.from(c.getContext('2d').getImageData(2, 2, 1, 1).data));
  assert(corner[0] < 60 && corner[1] < 60 && corner[2] < 60, `canvas is dark: ${corner}`);
  await page.screenshot({ path: join(SHOTS, 'playground-dark.png') });
});

// Each preset, played to its end at 100x; then the counter its narration is about.
const sumCells = (page, state) => page.$$eval(`#counts td[data-state="${state}"]`, (tds) => tds.reduce((n, td) => n + Number(td.textContent), 0));
/** The count of `state` in the queue named `queue`, from its column of the counts table. */
const cell = (page, queue, state) => page.$eval('#counts', (t, [name, st]) => {
  const col = [...t.tHead.rows[0].cells].findIndex((th) => th.textContent === name) - 1;
  return Number(t.querySelector(`td[data-state="${st}"][data-queue="${col}"]`)?.textContent ?? NaN);
}, [queue, state]);
const badge = (page, name) => page.$eval(`#badges output[data-badge="${name}"]`, (o) => Number(o.value));
const processed = (page, group) => page.$eval(`#groups li[data-group="${group}"]`, (li) => Number(li.dataset.processed));
const moved = (page, group) => page.$eval(`#groups li[data-group="${group}"]`, (li) => Number(li.dataset.moved));
const generation = (page, group) => page.$eval(`#groups li[data-group="${group}"]`, (li) => Number(li.dataset.generation));
const lags = (page) => page.$$eval('#lag tbody tr', (trs) => trs.map((tr) => Number(tr.dataset.lag || 0)).sort((a, b) => a - b));
const wf = (page, attr, name) => page.$eval(`#workflows li[data-${attr}="${name}"]`, (li) => ({ ...li.dataset }));
const num = (o, k) => Number(o[k]);
const PRESET_CHECKS = {
  'request-timeouts': async (p) => {
    const s = await wf(p, 'system', 'orders');
    return num(s, 'late') > 0 && num(s, 'late') <= num(s, 'timedOut') && num(s, 'matched') === 50 && num(s, 'sent') === 50 + num(s, 'timedOut');
  },
  'request-reply': async (p) => {
    const [local, shared] = [await wf(p, 'system', 'local'), await wf(p, 'system', 'shared')];
    return num(local, 'orphaned') > 0 && num(local, 'matched') + num(local, 'orphaned') === num(local, 'sent')
      && num(shared, 'orphaned') === 0 && num(shared, 'matched') === num(shared, 'sent');
  },
  'saga-happy-path': async (p) => {
    const s = await wf(p, 'saga', 'orders');
    return num(s, 'started') === 12 && num(s, 'completed') === 12;
  },
  'saga-compensation': async (p) => {
    const s = await wf(p, 'saga', 'orders');
    return num(s, 'compensated') > 0 && num(s, 'completed') + num(s, 'compensated') === num(s, 'started');
  },
  'saga-compensation-retry': async (p) => {
    const s = await wf(p, 'saga', 'orders');
    return num(s, 'stuck') > 0 && num(s, 'compensated') > 0 && (await badge(p, 'dead_lettered')) >= num(s, 'stuck');
  },
  'saga-duplicates': async (p) => {
    const [idem, naive] = [await wf(p, 'saga', 'idempotent'), await wf(p, 'saga', 'naive')];
    return num(idem, 'appliedTwice') === 0 && num(naive, 'appliedTwice') > 0 && (await badge(p, 'duplicates_suppressed')) > 0;
  },
  'saga-styles': async (p) => {
    const [c, o] = [await wf(p, 'saga', 'choreo'), await wf(p, 'saga', 'orch')];
    return [c, o].every((s) => num(s, 'compensated') > 0 && num(s, 'completed') > 0 && num(s, 'stuck') === 0);
  },
  'queue-vs-log': async (p) => (await processed(p, 'audit-log')) === 150 && (await badge(p, 'order_violated')) > 0
    && (await cell(p, 'orders', 'acked')) === 150,
  assignors: async (p) => (await moved(p, 'sticky')) === 4 && (await moved(p, 'roundrobin')) === 8 && (await moved(p, 'range')) === 5,
  'partition-keys': async (p) => (await processed(p, 'billing')) > 250 && (await badge(p, 'order_violated')) === 0,
  'fan-out': async (p) => (await Promise.all(['email', 'analytics', 'inventory', 'fraud-detection'].map((g) => processed(p, g))))
    .every((n) => n === 320),
  rebalancing: async (p) => (await generation(p, 'cooperative')) > (await generation(p, 'eager')),
  'commit-semantics': async (p) => (await badge(p, 'lost')) > 0 && (await badge(p, 'applied_twice')) > 0,
  'hot-partition': async (p) => {
    const l = await lags(p);
    return l.at(-1) > 100 && l.at(-2) < 10;
  },
  'pubsub-vs-stream': async (p) => (await processed(p, 'live-late')) < 100 && (await processed(p, 'log-late')) === 175,
  // Every eviction is a rebalance: the generation climbs, and one partition's lag with it.
  'retention-loss': async (p) => (await processed(p, 'fast')) === 400 && (await badge(p, 'lost')) > 100,
  'poison-blocks-partition': async (p) => (await generation(p, 'payments')) > 4 && Math.max(...await lags(p)) > 50
    && (await badge(p, 'dead_lettered')) >= 2,
  'retry-topics': async (p) => (await badge(p, 'order_violated')) > 0 && (await badge(p, 'dead_lettered')) > 0,
  compaction: async (p) => {
    const n = await processed(p, 'rebuild');
    return n > 0 && n <= 40;
  },
  autoscaling: async (p) => (await sumCells(p, 'acked')) > 900,
  'ack-modes': async (p) => (await badge(p, 'lost')) > 0 && (await badge(p, 'applied_twice')) > 0,
  backlog: async (p) => (await sumCells(p, 'acked')) === 120,
  'competing-consumers': async (p) => (await sumCells(p, 'acked')) > 60 && (await badge(p, 'order_violated')) > 0,
  'delivery-guarantees': async (p) => (await badge(p, 'lost')) > 0 && (await badge(p, 'applied_twice')) > 0
    && (await badge(p, 'duplicates_suppressed')) > 0,
  'error-classes': async (p) => (await badge(p, 'dead_lettered')) > 0,
  'lock-renewal': async (p) => (await badge(p, 'lease_expired_mid_processing')) > 0 && (await badge(p, 'applied_twice')) > 0
    && (await badge(p, 'dead_lettered')) > 0,
  // Routing: more messages than publishes (one per queue reached), none a duplicate.
  'topic-routing': async (p) => (await sumCells(p, 'acked')) > 28 && (await badge(p, 'applied_twice')) === 0,
  'fanout-vs-direct': async (p) => (await sumCells(p, 'acked')) === 8 * 3 + 14 && (await badge(p, 'applied_twice')) === 0,
  'alternate-exchange': async (p) => (await badge(p, 'unroutable')) > 0 && (await badge(p, 'lost')) === 0,
  // The parking lot holds what ran out of attempts; nothing was lost on the way.
  'dlx-retry-loop': async (p) => (await sumCells(p, 'ready')) > 0 && (await badge(p, 'lost')) === 0,
  'fifo-groups': async (p) => (await sumCells(p, 'acked')) === 90 && (await badge(p, 'order_violated')) === 0,
  idempotency: async (p) => (await badge(p, 'applied_twice')) > 0 && (await badge(p, 'duplicates_suppressed')) > 0,
  'lease-models': async (p) => (await badge(p, 'lease_expired_mid_processing')) > 0 && (await badge(p, 'dead_lettered')) > 0,
  'mmc-erlang-c': async (p) => (await sumCells(p, 'acked')) > 2000,
  'poison-redrive': async (p) => (await sumCells(p, 'moved')) === 1 && (await sumCells(p, 'acked')) === 20,
  // The queue wait hides the buffer; the latency line under the chart shows it (issue 26, item 8).
  'prefetch-hoarding': async (p) => (await sumCells(p, 'acked')) === 24
    && (await p.textContent('#latency')) === 'Over the run: queue wait 1.61 s · publish → effect 8.35 s, mean of 24 messages',
  // The breaker's lane loses nothing; the plain lane's calls to the dead service fill its DLQ.
  'circuit-breaker': async (p) => (await cell(p, 'guarded', 'acked')) === 100
    && (await cell(p, 'guarded.dlq', 'dead_lettered')) === 0 && (await cell(p, 'plain.dlq', 'dead_lettered')) >= 12,
  'retry-storm': async (p) => (await badge(p, 'dead_lettered')) === 30 && (await cell(p, 'fixed', 'acked')) === 30,
  // unbounded takes everything; bounded sheds at its length limit.
  // Only racing reorders; versioned drops its stale updates and keyed reads each key in order.
  'ordering-fixes': async (p) => (await badge(p, 'order_violated')) >= 10 && (await cell(p, 'versioned', 'acked')) === 120
    && (await cell(p, 'racing', 'acked')) === 120,
  'set-vs-increment': async (p) => (await badge(p, 'applied_twice')) >= 2 && (await badge(p, 'order_violated')) >= 1,
  'schema-change': async (p) => (await cell(p, 'events', 'acked')) === 100 && (await cell(p, 'events.dlq', 'moved')) >= 25,
  'dedup-window': async (p) => (await badge(p, 'applied_twice')) === 3 && (await cell(p, 'fifo', 'acked')) === 2
    && (await cell(p, 'service-bus', 'acked')) === 3,
  'load-shedding': async (p) => (await cell(p, 'unbounded', 'acked')) === 120 && (await cell(p, 'unbounded', 'dropped')) === 0
    && (await cell(p, 'bounded', 'dropped')) >= 15 && (await cell(p, 'bounded', 'acked')) + (await cell(p, 'bounded', 'dropped')) === 120,
  'occ-contention': async (p) => (await sumCells(p, 'acked')) === 250,
  'slow-worker': async (p) => (await sumCells(p, 'acked')) === 70,
  'ttl-expiry': async (p) => (await badge(p, 'dead_lettered')) > 0,
};

test('every preset plays to its end in the page and shows its key counter', async ({ page }) => {
  const ids = await page.$$eval('#scenario option', (os) => os.map((o) => o.value));
  assert(JSON.stringify(ids.slice().sort()) === JSON.stringify(Object.keys(PRESET_CHECKS).sort()),
    `a check for every preset: ${ids}`);
  for (const id of ids) {
    await page.selectOption('#scenario', id);
    await page.selectOption('#speed', '100');
    await page.click('#play');
    await page.waitForFunction(() => document.querySelector('#play').textContent === 'Replay', null, { timeout: 20000 });
    assert(await PRESET_CHECKS[id](page), `${id}: its key counter`);
    if (id === 'lease-models') await page.screenshot({ path: join(SHOTS, 'lease-models.png') });
  }
});

// Issue 4: the same join, eager and cooperative, side by side. While the eager group completes
// its rebalance every member owns nothing; while the cooperative one does, its old members
// keep their partitions. Read atomically in the page, from the groups panel (the text form of
// the canvas's group boxes).
test('a rebalance under eager and under cooperative is visibly different', async ({ page }) => {
  await page.selectOption('#scenario', 'rebalancing');
  await page.selectOption('#speed', '2');
  await page.click('#play');
  const during = (group) => page.waitForFunction((g) => {
    const li = document.querySelector(`#groups li[data-group="${g}"]`);
    if (!li || li.dataset.state !== 'CompletingRebalance' || Number(li.dataset.generation) < 2) return false;
    return [...li.querySelectorAll('li[data-member]')].map((m) => ({ member: m.dataset.member, owned: m.dataset.owned, alive: m.dataset.alive }));
  }, group, { timeout: 30000, polling: 'raf' }).then((h) => h.jsonValue());
  const eager = await during('eager');
  assert(eager.filter((m) => m.alive === 'true').every((m) => m.owned === ''), `eager: everyone revoked: ${JSON.stringify(eager)}`);
  await page.screenshot({ path: join(SHOTS, 'rebalance-eager.png') });
  const coop = await during('cooperative');
  const old = coop.filter((m) => ['cooperative-1', 'cooperative-2', 'cooperative-3'].includes(m.member));
  assert(old.length === 3 && old.every((m) => m.owned !== ''), `cooperative: old members keep partitions: ${JSON.stringify(coop)}`);
  await page.screenshot({ path: join(SHOTS, 'rebalance-cooperative.png') });
  const canvasText = await page.$eval('#canvas', (c) => c.getAttribute('aria-label'));
  assert(canvasText.includes('consumer groups'), 'the canvas says what it draws');
});

// Issue 5: the seed's choreography example, and its compensation, in the event log in order.
test("the event log shows the seed's choreography and its compensation in order", async ({ page }) => {
  await page.selectOption('#scenario', 'saga-compensation');
  await page.selectOption('#speed', '2');
  await page.click('#play');
  await page.waitForFunction(() => [...document.querySelectorAll('#log li')].some((li) => li.textContent.endsWith('fully compensated')),
    null, { timeout: 20000 });
  await page.click('#play');
  const lines = await page.$$eval('#log li', (lis) => lis.map((li) => li.textContent));
  const lanes = await colorsOf(page, 'canvas.swimlanes[data-saga="orders"]');
  assert(lanes > 4, `the swimlanes are drawn: ${lanes} colors`);
  const done = lines.find((l) => l.endsWith('fully compensated'));
  const id = done.match(/saga (\S+#\d+):/)[1];
  const mine = lines.filter((l) => l.includes(`saga ${id}:`)).map((l) => l.split(': ').slice(1).join(': '));
  const want = ['started', 'order.created', 'payment.succeeded', 'inventory.failed', 'payment.refunded', 'order.cancelled', 'fully compensated'];
  assert(JSON.stringify(mine) === JSON.stringify(want), `saga ${id}: ${JSON.stringify(mine)}`);
  await page.screenshot({ path: join(SHOTS, 'saga-compensation.png') });
});

// Issue 5: selecting a reply shows its correlation: the request it answers and its requester,
// whose box the canvas outlines.
test('a reply opens in the inspector with the request it correlates with', async ({ page }) => {
  await page.selectOption('#scenario', 'request-reply');
  await page.selectOption('#speed', '5');
  await page.click('#play');
  await page.waitForSelector('#workflows li[data-system="shared"] .inspect-reply', { timeout: 10000 });
  await page.click('#play');
  const before = await canvasPixels(page);
  await page.click('#workflows li[data-system="shared"] .inspect-reply');
  const text = await waitText(page, '#inspector', (t) => t.includes('correlation'), 'the inspector shows the correlation');
  assert(/reply corr-\d+ to request m\d+, for requester-\d/.test(text), `correlation: ${text}`);
  await page.waitForFunction((b) => document.querySelector('#canvas').toDataURL() !== b, before, { timeout: 5000 });
  await page.screenshot({ path: join(SHOTS, 'request-reply.png') });
});

// Issue 6, time travel: the state after step back is the state recorded before the step,
// and seeking away and back gives the same picture as playing there.
const snapshot = (page) => page.evaluate(() => ({
  counts: [...document.querySelectorAll('#counts td')].map((td) => td.textContent).join(','),
  badges: [...document.querySelectorAll('#badges output')].map((o) => o.value).join(','),
  clock: document.querySelector('#clock').value,
  canvas: document.querySelector('#canvas').toDataURL(),
}));
/** Plays `scenario` at `speed` until the timeline passes `ms`, then pauses and lets it paint. */
async function playPast(page, scenario, speed, ms) {
  await page.selectOption('#scenario', scenario);
  await page.selectOption('#speed', speed);
  await page.click('#play');
  await page.waitForFunction((t) => Number(document.querySelector('#timeline').value) > t, ms, { timeout: 10000 });
  await page.click('#play');
  await settle(page);
}

const settle = (page) => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));

test('step back returns to exactly the state before the step', async ({ page }) => {
  await page.selectOption('#scenario', 'lease-models');
  for (let i = 0; i < 12; i++) await page.keyboard.press('ArrowRight');
  await settle(page);
  const before = await snapshot(page);
  for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowRight');
  await settle(page);
  const after = await snapshot(page);
  assert(after.clock !== before.clock || after.counts !== before.counts, 'the steps moved the run');
  for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowLeft');
  await settle(page);
  const back = await snapshot(page);
  for (const k of ['counts', 'badges', 'clock', 'canvas']) assert(back[k] === before[k], `${k} differs after stepping back`);
});

test('seeking away and back gives the same state as playing there', async ({ page }) => {
  await playPast(page, 'retry-storm', '25', 9000);
  const played = await snapshot(page);
  const at = await page.$eval('#timeline', (el) => el.value);
  const seek = (v) => page.$eval('#timeline', (el, x) => { el.value = x; el.dispatchEvent(new Event('input', { bubbles: true })); }, v);
  await seek('2000');
  await settle(page);
  const early = await snapshot(page);
  assert(early.clock.startsWith('t=2.0 s'), `seeked back: ${early.clock}`);
  assert(early.counts !== played.counts, 'an earlier state');
  await seek(at);
  await settle(page);
  const again = await snapshot(page);
  for (const k of ['counts', 'badges', 'clock', 'canvas']) assert(again[k] === played[k], `${k} differs after seeking back to ${at}`);
});

// Issue 21: every preset's beats, walked with ›, land where the native CLI says this run
// reaches them, and show their text; the screenshot of each at its second beat is kept.
test("every preset's beats can be walked in order, at the moments the CLI resolves", async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  const ids = await page.$$eval('#scenario option', (os) => os.map((o) => o.value));
  for (const id of ids) {
    const cli = JSON.parse(execFileSync('cargo', ['run', '--quiet', '--bin', 'brokerlab', '--', 'run', `scenarios/${id}.json`], { cwd: ROOT, encoding: 'utf8' }));
    const texts = await page.evaluate((x) => import('./engine.js').then(async (m) => { await m.loadEngine(); return JSON.parse(m.presets().find((p) => p.id === x).json).markers.map((b) => b.text); }), id);
    await page.selectOption('#scenario', id);
    for (const [i, b] of cli.beats.entries()) {
      assert(!(await page.$eval('.caption-next', (x) => x.disabled)), `${id}: beat ${i + 1} can be reached with ›: ${JSON.stringify(b)}`);
      await page.click('.caption-next');
      await waitText(page, '.caption-count', (t) => t === `◆ ${i + 1} of ${texts.length}`, `${id}: beat ${i + 1}'s number`);
      assert(await page.textContent('.caption-text') === texts[i], `${id}: beat ${i + 1}'s text`);
      const clock = await page.$eval('#clock', (o) => o.value);
      assert(clock.startsWith(`t=${(b.at_ms / 1000).toFixed(1)} s`), `${id}: beat ${i + 1} at ${clock}, the CLI says ${b.at_ms} ms`);
      if (i === 1) {
        // At 1280×800 the caption is on screen under the canvas, with no scrolling.
        const box = await page.evaluate(() => ({ caption: document.querySelector('.caption').getBoundingClientRect().toJSON(), canvas: document.getElementById('canvas').getBoundingClientRect().toJSON(), scroll: scrollY }));
        assert(box.scroll === 0 && box.canvas.top >= 0 && box.caption.top >= box.canvas.bottom - 1 && box.caption.bottom <= 800, `${id}: the caption is on screen: ${JSON.stringify(box)}`);
        await page.screenshot({ path: join(SHOTS, `beat2-${id}.png`) });
      }
    }
    assert(await page.$eval('.caption-next', (b) => b.disabled), `${id}: no beat after the last`);
    await page.click('.caption-prev');
    await waitText(page, '.caption-text', (t) => t === texts.at(-2), `${id}: back a beat`);
  }
});

/** Plays (at `speed`) until the run stops by itself; returns within `ms` of the stop. */
async function playToStop(root, speed, play, playing) {
  await play();
  await root.waitForFunction(playing, true, { timeout: 5000 });
  await root.waitForFunction(playing, false, { timeout: 20000 });
}

// Issue 21: a beat reached by playing shows at once, in the page, in <broker-lab> and in
// embed.html: the caption says the beat, the control says Play, the live region announced it.
const STORY = [
  { id: 'poison-redrive', seed: 9 },
  { id: 'rebalancing', seed: 12 },
  { id: 'saga-compensation', seed: 3 },
];

test('beats: played to, the page shows each at once, says Play and announces it', async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  for (const { id } of STORY) {
    await page.selectOption('#scenario', id);
    await page.selectOption('#speed', '25');
    const texts = await page.evaluate((x) => import('./engine.js').then(async (m) => { await m.loadEngine(); return JSON.parse(m.presets().find((p) => p.id === x).json).markers.map((b) => b.text); }), id);
    for (const k of [0, 1]) {
      // Played (at 25×) until the run stops by itself at the beat: the control says Play again.
      await page.click('#play');
      await page.waitForFunction((n) => document.querySelector('#play').textContent === 'Play'
        && document.querySelector('.caption-count').textContent === n, `◆ ${k + 1} of ${texts.length}`, { timeout: 20000 });
      const shown = await page.evaluate(() => ({
        count: document.querySelector('.caption-count').textContent,
        text: document.querySelector('.caption-text').textContent,
        live: document.querySelector('.caption-live').textContent,
      }));
      assert(shown.count === `◆ ${k + 1} of ${texts.length}` && shown.text === texts[k], `${id}: beat ${k + 1}: ${JSON.stringify(shown)}`);
      assert(shown.live === `Beat ${k + 1} of ${texts.length}: ${texts[k]}`, `${id}: announced: ${shown.live}`);
    }
  }
  // The caption is large, and at 1280×800 it is on screen with the canvas, no scrolling.
  const box = await page.evaluate(() => {
    const r = (s) => document.querySelector(s).getBoundingClientRect();
    return { canvas: r('#canvas'), caption: r('.caption'), font: parseFloat(getComputedStyle(document.querySelector('.caption-text')).fontSize), scroll: scrollY };
  });
  assert(box.font >= 16, `caption at ${box.font}px`);
  assert(box.scroll === 0 && box.canvas.top >= 0 && box.caption.top >= box.canvas.bottom - 1 && box.caption.bottom <= 800,
    `caption under the canvas, on screen: ${JSON.stringify(box)}`);
  // The description is one click away at any moment.
  await page.click('#about summary');
  assert(await page.isVisible('#description'), 'the description opens');
  await page.screenshot({ path: join(SHOTS, 'caption-1280x800.png') });
});

const ELEMENTS = (extra = '') => `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
  <script type="module" src="element.js"></script></head><body>
  ${STORY.map((s) => `<broker-lab id="${s.id}" scenario="${s.id}" seed="${s.seed}" speed="25" ${extra}></broker-lab>`).join('\n')}
  </body></html>`;

test('beats: played to, <broker-lab> and embed.html show each at once, say Play and announce it', async ({ page }) => {
  await page.route(`${server.url}e2e-elements.html`, (route) => route.fulfill({ contentType: 'text/html', body: ELEMENTS() }));
  await page.goto(`${server.url}e2e-elements.html`);
  for (const { id } of STORY) {
    const texts = await page.evaluate((x) => import('./engine.js').then(async (m) => { await m.loadEngine(); return JSON.parse(m.presets().find((p) => p.id === x).json).markers.map((b) => b.text); }), id);
    const lab = page.locator(`#${id}`);
    await lab.scrollIntoViewIfNeeded();
    await page.waitForFunction((x) => document.getElementById(x).duration > 0, id, { timeout: 15000 });
    for (const k of [0, 1]) {
      await lab.locator('.play').click();
      // It stops by itself at the beat (its beat index moves there)…
      await page.waitForFunction(([x, i]) => !document.getElementById(x).playing
        && document.getElementById(x).markers[i].at_ms === document.getElementById(x).time, [id, k], { timeout: 20000 });
      // …and within a second of the stop the view is redrawn: no stale Pause, no old text.
      await page.waitForFunction(([x, n, t]) => {
        const r = document.getElementById(x).shadowRoot;
        return r.querySelector('.play').textContent === 'Play' && r.querySelector('.caption-count').textContent === n
          && r.querySelector('.caption-text').textContent === t && r.querySelector('.caption-live').textContent === `Beat ${n.split(' ')[1]} of ${n.split(' ')[3]}: ${t}`;
      }, [id, `◆ ${k + 1} of ${texts.length}`, texts[k]], { timeout: 1000 });
    }
  }
  // The iframe, played by its own button, the same way.
  const { id, seed } = STORY[2];
  await page.goto(`${server.url}embed.html?scenario=${id}&seed=${seed}&speed=25&panel=sagas`);
  const texts = await page.evaluate((x) => import('./engine.js').then(async (m) => { await m.loadEngine(); return JSON.parse(m.presets().find((p) => p.id === x).json).markers.map((b) => b.text); }), id);
  await page.waitForFunction(() => document.getElementById('lab').duration > 0, null, { timeout: 15000 });
  for (const k of [0, 1]) {
    await page.click('broker-lab .play');
    await page.waitForFunction((i) => !document.getElementById('lab').playing
      && document.getElementById('lab').markers[i].at_ms === document.getElementById('lab').time, k, { timeout: 20000 });
    await page.waitForFunction(([n, t]) => {
      const r = document.getElementById('lab').shadowRoot;
      return r.querySelector('.play').textContent === 'Play' && r.querySelector('.caption-text').textContent === t
        && r.querySelector('.caption-live').textContent.startsWith(`Beat ${n}`);
    }, [k + 1, texts[k]], { timeout: 1000 });
  }
  // Its saga panel: the swimlanes and the window of inconsistency.
  const panel = await page.evaluate(() => document.getElementById('lab').shadowRoot.querySelector('.panel-text').textContent);
  assert(panel.includes('payment.succeeded, not yet payment.refunded'), `the window of inconsistency: ${panel}`);
  await page.screenshot({ path: join(SHOTS, 'embed-saga.png') });
});

test('a 400×300 embed shows the canvas and the caption, the description a click away', async ({ page }) => {
  await page.setViewportSize({ width: 400, height: 300 });
  await page.goto(`${server.url}embed.html?scenario=lease-models&seed=1&controls=minimal`);
  await page.waitForFunction(() => document.getElementById('lab').duration > 0, null, { timeout: 15000 });
  const box = await page.evaluate(() => {
    const r = document.getElementById('lab').shadowRoot;
    const rect = (s) => r.querySelector(s).getBoundingClientRect();
    return { canvas: rect('canvas'), caption: rect('.caption'), about: r.querySelector('.caption-about').open, font: parseFloat(getComputedStyle(r.querySelector('.caption-text')).fontSize) };
  });
  assert(box.canvas.height >= 100 && box.canvas.top >= 0, `the canvas shows: ${JSON.stringify(box.canvas)}`);
  assert(box.caption.top >= box.canvas.bottom - 1 && box.caption.bottom <= 300, `the caption shows: ${JSON.stringify(box.caption)}`);
  assert(!box.about && box.font >= 16, `the description is collapsed, the caption large: ${JSON.stringify(box)}`);
  await page.click('broker-lab .caption-about summary');
  assert(await page.evaluate(() => document.getElementById('lab').shadowRoot.querySelector('.caption-about-text').textContent.includes('SQS')), 'one click shows it');
  await page.screenshot({ path: join(SHOTS, 'embed-400x300.png') });
});

// Issue 6, sharing: a link replays the same run at the same moment in a fresh browser.
test('a share link reproduces the same run and trace hash in a new browser context', async ({ page }) => {
  await page.selectOption('#scenario', 'retry-storm');
  await openRunInfo(page);
  await page.fill('#seed', '12345');
  await page.click('#reset');
  await page.selectOption('#speed', '25');
  await page.click('#play');
  await page.waitForFunction(() => Number(document.querySelector('#timeline').value) > 8000, null, { timeout: 10000 });
  await page.click('#play');
  await settle(page);
  const here = await snapshot(page);
  const hash = await page.$eval('#trace-hash', (o) => o.value);
  await openShareMenu(page);
  await page.click('#share');
  await page.waitForFunction(() => document.querySelector('#share-link').value.includes('#'), null, { timeout: 5000 });
  const link = await page.$eval('#share-link', (i) => i.value);
  const other = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS });
  try {
    const fresh = await (await other.newContext({ viewport: { width: 1280, height: 760 } })).newPage();
    const errors = [];
    fresh.on('pageerror', (e) => errors.push(e.message));
    await fresh.goto(link);
    await fresh.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
    await settle(fresh);
    const there = await snapshot(fresh);
    assert(errors.length === 0, errors.join('; '));
    assert(await fresh.$eval('#seed', (i) => i.value) === '12345', 'the seed came along');
    assert(await fresh.$eval('#trace-hash', (o) => o.value) === hash, 'the same trace hash');
    for (const k of ['counts', 'badges', 'clock']) assert(there[k] === here[k], `${k} differs in the shared run`);
  } finally {
    await other.close();
  }
});

// A link is data from a stranger: names and text in it must render as text, never as markup.
test('a shared link with HTML in its names renders them as text and runs no script', async ({ page }) => {
  const hostile = JSON.stringify({
    name: '<img src=x onerror=window.__pwned=1>',
    description: '<script>window.__pwned=2</script> bold <b>claims</b>',
    duration_ms: 5000,
    queues: [{ name: '<b onmouseover=alert(1)>q' }],
    producers: [{ name: '<svg onload=window.__pwned=3>', to: '<b onmouseover=alert(1)>q',
      schedule: { kind: 'fixed_rate', interval_ms: 500 } }],
    consumers: [{ name: '<i>c</i>', from: '<b onmouseover=alert(1)>q' }],
  });
  const bytes = deflateRawSync(Buffer.from(JSON.stringify({ v: 1, json: hostile, seed: 3, t: 2500 })));
  const fragment = bytes.toString('base64').replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
  await page.goto(`${page.url().split('#')[0]}#${fragment}`);
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
  await settle(page);
  const found = await page.evaluate(() => ({
    pwned: window.__pwned,
    markup: document.querySelectorAll('img, svg, b, i, script:not([src])').length,
    narration: document.querySelector('#description').textContent,
    option: document.querySelector('#scenario').selectedOptions[0].textContent,
    clock: document.querySelector('#clock').value,
  }));
  assert(found.pwned === undefined, 'no script ran');
  assert(found.markup === 0, `no element was made from the names: ${found.markup}`);
  assert(found.narration.startsWith('<script>window.__pwned=2</script>'), `narration as text: ${found.narration}`);
  assert(found.option === 'Custom: <img src=x onerror=window.__pwned=1>', `name as text: ${found.option}`);
  assert(found.clock.startsWith('t=2.5 s'), `at the shared moment: ${found.clock}`);
  await page.screenshot({ path: join(SHOTS, 'hostile-link.png') });
});

test('a damaged link says so and the page still works', async ({ page }) => {
  await page.goto(`${page.url().split('#')[0]}#not-a-real-link`);
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
  const error = await waitText(page, '#error', (t) => t.includes('cannot be opened'), 'an error');
  assert(error.includes('damaged'), error);
  await page.click('#play');
  await page.waitForFunction(() => document.querySelector('#play').textContent === 'Pause', null, { timeout: 5000 });
});

// Issue 6, the editor: a malformed scenario is reported at its path while the page runs on;
// a valid one runs when asked.
test('the scenario editor reports errors at their path and never breaks the running page', async ({ page }) => {
  await page.click('#play');
  await page.click('#edit');
  await page.waitForFunction(() => document.querySelector('#editor-text').value.length > 0, null, { timeout: 5000 });
  const text = await page.$eval('#editor-text', (t) => t.value);
  assert(text.includes('"name": "Competing consumers"'), 'the editor opens on the current scenario');
  await page.fill('#editor-text', text.replace('"prefetch": 1', '"prefetch": 20000'));
  const line = text.replace('"prefetch": 1', '"prefetch": 20000').split('\n').findIndex((l) => l.includes('"prefetch": 20000')) + 1;
  await waitText(page, '#editor-status', (t) => t === `consumers[0].prefetch: must be at most 10000 (line ${line})`, 'a path-specific error, at its line');
  assert(await page.$eval('#editor-lines .bad', (s) => s.textContent.trim()) === String(line), 'its line number is marked');
  assert(await page.$eval('#editor-run', (b) => b.disabled), 'an invalid scenario cannot be run');
  await page.fill('#editor-text', text.slice(0, 40));
  await waitText(page, '#editor-status', (t) => t.includes('EOF while parsing'), 'a syntax error, located');
  assert(await page.textContent('#play') === 'Pause', 'the run kept playing');
  const edited = text.replace('"name": "Competing consumers"', '"name": "Four workers"')
    .replace('"consumers": [', '"consumers": [\n    { "name": "worker-4", "from": "orders" },');
  await page.fill('#editor-text', edited);
  await waitText(page, '#editor-status', (t) => t.startsWith('Valid'), 'valid again');
  await page.click('#editor-run');
  await waitText(page, '#scenario', (v) => v === 'custom', 'the edited scenario is selected');
  assert((await page.$eval('#scenario', (s) => s.selectedOptions[0].textContent)) === 'Custom: Four workers', 'by its name');
  assert(await page.$eval('#counts thead', (h) => h.textContent.includes('orders')), 'its table');
});

test('the editor is large, numbers its lines, and warns of beats past a shortened end instead of refusing', async ({ page }) => {
  await page.selectOption('#scenario', 'poison-redrive');
  await page.click('#edit');
  await page.waitForFunction(() => document.querySelector('#editor-text').value.length > 0);
  const box = await page.$eval('#editor-text', (t) => t.getBoundingClientRect());
  assert(box.width >= 700 && box.height >= 400, `the editor is ${box.width.toFixed(0)}×${box.height.toFixed(0)} px at 1280×760`);
  const text = await page.$eval('#editor-text', (t) => t.value);
  const lines = await page.$eval('#editor-lines', (l) => l.children.length);
  assert(lines === text.split('\n').length, `${lines} line numbers for ${text.split('\n').length} lines`);
  const beat = JSON.parse(text).markers.findIndex((m) => m.at_ms === 25000) + 1;
  assert(beat > 0, 'poison-redrive has a beat at 25 s');
  await page.fill('#editor-text', text.replace('"duration_ms": 40000', '"duration_ms": 20000'));
  const said = await waitText(page, '#editor-status', (t) => t.startsWith('Valid, but'), 'a warning');
  assert(said.includes(`${beat}`) && said.includes('past the end'), said);
  assert(!(await page.$eval('#editor-run', (b) => b.disabled)), 'a run with beats past its end can still be run');
  await page.click('#editor-run');
  await waitText(page, '#scenario', (v) => v === 'custom', 'the shortened scenario runs');
  await seekFraction(page, 1);
  await page.click('.caption-list');
  const item = await page.$eval(`.transcript-list li:nth-child(${beat})`, (li) => ({ text: li.textContent, title: li.querySelector('button').title }));
  assert(item.text.includes('not in this run') && item.title.length > 0, `the transcript reports beat ${beat}: ${JSON.stringify(item)}`);
});

// Issue 6, click-to-break and fork: an input applied in the past forks the run, which then
// matches the original before the fork and differs after it; a shared link carries it.
test('a forked run matches the original before the fork point and differs after it', async ({ page }) => {
  const seek = (v) => page.$eval('#timeline', (el, x) => { el.value = x; el.dispatchEvent(new Event('input', { bubbles: true })); }, v);
  const at = async (v) => { await seek(v); await settle(page); return snapshot(page); };
  const before = await at('8000');
  const later = await at('20000');
  await seek('12000');
  await page.selectOption('#break-what', { label: 'crash worker-1' });
  await page.click('#break');
  await waitText(page, '#log', (t) => t.includes('worker-1 crashed'), 'the crash is in the log');
  const forkedLater = await at('20000');
  assert(forkedLater.counts !== later.counts || forkedLater.canvas !== later.canvas, 'the fork differs after the fork point');
  const forkedBefore = await at('8000');
  for (const k of ['counts', 'badges', 'clock', 'canvas']) assert(forkedBefore[k] === before[k], `${k}: the fork differs before the fork point`);
  // The input survives seeking and travels in a share link.
  const again = await at('20000');
  assert(again.canvas === forkedLater.canvas, 'seeking replays the input');
  await openShareMenu(page);
  await page.click('#share');
  await page.waitForFunction(() => document.querySelector('#share-link').value.includes('#'), null, { timeout: 5000 });
  const link = await page.$eval('#share-link', (i) => i.value);
  const hash = await page.$eval('#trace-hash', (o) => o.value);
  // The page's address names the preset (?scenario=…), the link does not: this is a fresh load.
  await page.goto(link);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
  await waitText(page, '#trace-hash', (t) => t === hash, 'the shared fork replays to the same hash');
});

test('a badge jumps to the moment its counter first moved', async ({ page }) => {
  await page.selectOption('#scenario', 'ack-modes');
  assert(await page.$eval('#badges button[data-jump="lost"]', (b) => b.disabled), 'nothing lost yet: nothing to jump to');
  await page.selectOption('#speed', '100');
  await page.click('#play');
  await page.waitForFunction(() => document.querySelector('#play').textContent === 'Replay', null, { timeout: 20000 });
  await page.click('#badges button[data-jump="lost"]');
  const clock = await waitText(page, '#clock', (t) => !t.startsWith('t=45.0 s'), 'moved back');
  const lastLine = await page.$eval('#log', (l) => l.lastElementChild?.textContent ?? '');
  assert(lastLine.includes('lost'), `at ${clock} the log ends on the loss: ${lastLine}`);
  // D1: a crash loses the message at work and every one acked into its buffer, at one instant.
  const lostLines = await page.$$eval('#log > *', (items) => items.filter((i) => i.textContent.includes('lost')).length);
  assert(await badge(page, 'lost') === lostLines && lostLines >= 1, `the counter reads what was lost at its first move: ${lostLines}`);
});

test('the trace exports as JSON and the run as a Mermaid sequence diagram', async ({ page }) => {
  const seek = (v) => page.$eval('#timeline', (el, x) => { el.value = x; el.dispatchEvent(new Event('input', { bubbles: true })); }, v);
  await seek('5000');
  await openShareMenu(page);
  const [trace] = await Promise.all([page.waitForEvent('download'), page.click('#export-trace')]);
  const events = JSON.parse(readFileSync(await trace.path(), 'utf8'));
  assert(events.length > 20 && events.every((e) => e.at_ms <= 5000 && typeof e.line === 'string'), `${events.length} events up to 5 s`);
  assert(events[0].kind === 'published', 'from the start');
  await openShareMenu(page);
  await page.click('#export-diagram');
  // The diagram opens in the page, drawn; the Mermaid text is a secondary export.
  await page.waitForFunction(() => document.getElementById('diagram-dialog').open && document.getElementById('diagram').width > 0);
  assert(await colorsOf(page, '#diagram') > 3, 'the diagram is drawn in the page');
  const [diagram] = await Promise.all([page.waitForEvent('download'), page.click('#diagram-download')]);
  const text = readFileSync(await diagram.path(), 'utf8');
  assert(text.startsWith('sequenceDiagram\n  participant'), text.slice(0, 80));
  assert(/P0->>Q0: m0/.test(text) && /Q0->>C\d: m0 \(delivery 1\)/.test(text) && /C\d-->>Q0: ack m0/.test(text), text.slice(0, 400));
  // Issue 25: the RabbitMQ topology, as the broker's definitions file.
  await page.keyboard.press('Escape');
  await openShareMenu(page);
  const [defs] = await Promise.all([page.waitForEvent('download'), page.click('#export-rabbitmq')]);
  const definitions = JSON.parse(readFileSync(await defs.path(), 'utf8'));
  assert(definitions.queues.some((q) => q.name === 'orders') && Array.isArray(definitions.bindings), JSON.stringify(definitions).slice(0, 300));
});

test('a RabbitMQ dead letter shows the exchange and key it came by, and its x-death', async ({ page }) => {
  const text = await firstDeadLetter(page, 'ttl-expiry', 'x-death');
  assert(/exchange\s*\(default\)/.test(text) && /routing key\s*"quotes\.dlq"/.test(text), `how it came to the DLQ: ${text}`);
  assert(/x-death\s*quotes · expired · count 1 .* via \(default\) · key "quotes"/.test(text), `x-death with its first trip: ${text}`);
});

// Issue 25: RabbitMQ's routing on the canvas. At a beat of each routing preset, the exchange
// has just routed a publish: its route is the exchange (and, for the alternate exchange, the
// one it handed it to), the bindings it matched, and the queues behind them; the canvas writes
// the routing key by the exchange (a fanout, which ignores it, where it went) and draws exactly
// the matched bindings' keys in the focus colour; a message of that publish is on its way to
// (or in) one of those queues.
/** Walks with › to beat `n` (1-based); a beat at 0 s is shown from the start. */
async function toBeat(page, id, n) {
  const at = () => page.$eval('.caption-count', (c) => c.textContent);
  for (let i = 0; i <= n && !(await at()).startsWith(`◆ ${n} of`); i++) {
    const before = await at();
    await page.click('.caption-next');
    await waitText(page, '.caption-count', (t) => t !== before, `${id}: the beat after "${before}"`);
  }
  assert((await at()).startsWith(`◆ ${n} of`), `${id}: at beat ${n}: ${await at()}`);
}

const ROUTES = [
  // [preset, beat (1-based), exchange, routing key, exchanges passed, {queue reached: binding key}]
  ['topic-routing', 2, 'orders', 'eu.high', ['orders'], { 'eu-orders': 'eu.*', urgent: '*.high', audit: '#' }],
  ['fanout-vs-direct', 1, 'user.signedup', '', ['user.signedup'], { email: '', sms: '', crm: '' }, 'to every queue'],
  ['alternate-exchange', 1, 'orders', 'refund', ['orders', 'catch-all'], { unrouted: '' }],
  ['dlx-retry-loop', 2, 'work', 'jobs', ['work'], { jobs: 'jobs' }],
];

test('a routed message goes through its exchange by the bindings it matched, drawn as such, in each routing preset', async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  for (const [id, beat, exchange, key, passed, reached, said = `"${key}"`] of ROUTES) {
    await page.selectOption('#scenario', id);
    await toBeat(page, id, beat);
    const route = await page.evaluate((x) => {
      const v = window.brokerlab.view();
      const { layout } = v;
      const e = layout.exchanges.findIndex((ex) => ex.name === x);
      const r = v.routes[e];
      const bindings = (r?.bindings ?? []).map((b) => layout.bindings[b]);
      const messages = [...v.messages.values()].filter((m) => m.via?.exchange === e).map((m) => ({
        queue: layout.queues[m.queue].name,
        state: m.state,
        through: [...new Set([m.via.exchange, layout.bindings[m.via.binding].exchange])].map((i) => layout.exchanges[i].name),
      }));
      return {
        now: window.brokerlab.cursor(),
        at: r?.at,
        key: r && layout.routing_keys[r.key],
        reached: Object.fromEntries(bindings.map((b) => [layout.queues[b.queue].name, b.label])),
        messages,
      };
    }, exchange);
    const tag = `${id} beat ${beat}`;
    assert(route.at === route.now, `${tag}: ${exchange} routed at this moment (${route.at} vs ${route.now})`);
    assert(route.key === key, `${tag}: routed with key "${key}", not "${route.key}"`);
    assert(JSON.stringify(route.reached) === JSON.stringify(reached), `${tag}: matched ${JSON.stringify(route.reached)}`);
    const m = route.messages.find((x) => x.queue in reached);
    assert(m && JSON.stringify(m.through) === JSON.stringify(passed), `${tag}: a message of it went through ${passed}: ${JSON.stringify(route.messages)}`);
    const placed = await placedNow(page);
    const focus = await page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--focus').trim());
    assert(placed.some((it) => it.kind === 'route' && it.text === said), `${tag}: the canvas writes ${said} by ${exchange}`);
    const lit = placed.filter((it) => it.kind === 'binding' && it.color === focus).map((it) => it.text).sort();
    const want = Object.values(reached).filter(Boolean).sort();
    assert(JSON.stringify(lit) === JSON.stringify(want), `${tag}: the matched bindings are lit: ${lit} (want ${want})`);
    for (const it of placed.filter((x) => x.kind === 'exchange')) assert(it.text.length > 1, `${tag}: exchange name ${it.text}`);
  }
  // Unroutable: a publish to an exchange with no alternate exchange is dropped, counted.
  await page.selectOption('#scenario', 'alternate-exchange');
  await toBeat(page, 'alternate-exchange', 2);
  assert(await badge(page, 'unroutable') === 1, 'the unroutable badge counts the dropped refund');
  assert(await page.$eval('#badge-unroutable', (li) => !li.hidden), 'the unroutable badge shows where there are exchanges');
  const placed = await placedNow(page);
  assert(placed.some((it) => it.kind === 'route' && it.text === '"refund": no match'), 'orders-v1 says its key matched nothing');
  await page.selectOption('#scenario', 'competing-consumers');
  assert(await page.$eval('#badge-unroutable', (li) => li.hidden), 'no unroutable badge without exchanges');
});

test('the page fits a 360 px wide screen', async ({ page }) => {
  await page.setViewportSize({ width: 360, height: 740 });
  for (const id of ['competing-consumers', 'request-reply', 'saga-styles', 'rebalancing', 'lease-models']) {
    await page.selectOption('#scenario', id);
    await settle(page);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert(wide <= 360, `${id}: the page is ${wide} px wide`);
  }
  await page.screenshot({ path: join(SHOTS, 'narrow.png'), fullPage: true });
});

// Layout, at the four sizes the page is made for: two laptops, a desktop and a phone.
const VIEWPORTS = [[1280, 800], [1440, 900], [1920, 1080], [390, 844]];
const presetIds = (page) => page.$$eval('#scenario option', (os) => os.map((o) => o.value).filter((v) => v !== 'custom'));

/** Drags the timeline to a fraction of the run, as a user would. */
async function seekFraction(page, fraction) {
  await page.$eval('#timeline', (el, f) => {
    el.value = String(Number(el.max) * f);
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }, fraction);
  await settle(page);
}

/**
 * Text in the panel that cannot be read where it is: cut by an ancestor that hides its
 * overflow (one that scrolls is fine: the text is a scroll away), or shortened with an
 * ellipsis and no title to give it whole. Only what is shown counts.
 */
const clippedText = (page) => page.evaluate(() => {
  const found = [];
  const panel = document.querySelector('.panel');
  const walker = document.createTreeWalker(panel, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent.trim();
    const el = n.parentElement;
    if (!text || !el.checkVisibility({ visibilityProperty: true })) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    const rects = [...range.getClientRects()].filter((r) => r.width > 0);
    const s0 = getComputedStyle(el);
    if (s0.textOverflow === 'ellipsis' && el.scrollWidth > el.clientWidth + 1 && !el.closest('[title]')) {
      found.push(`"${text.slice(0, 40)}" ends in an ellipsis`);
    }
    // Out to the body: a box that hides overflow must hold the text whole; past a box that
    // scrolls, only what the box shows of it is left to hold.
    for (const rect of rects) {
      let r = { left: rect.left, right: rect.right, top: rect.top, bottom: rect.bottom };
      for (let a = el; a && a !== document.body && r.left < r.right && r.top < r.bottom; a = a.parentElement) {
        const s = getComputedStyle(a);
        if (s.overflowX === 'visible' && s.overflowY === 'visible') continue;
        const scrolls = (o) => o === 'auto' || o === 'scroll';
        const box = a.getBoundingClientRect();
        const b = { left: box.left + a.clientLeft, top: box.top + a.clientTop };
        b.right = b.left + a.clientWidth;
        b.bottom = b.top + a.clientHeight;
        const outX = r.left < b.left - 1 || r.right > b.right + 1;
        const outY = r.top < b.top - 1 || r.bottom > b.bottom + 1;
        if ((outX && !scrolls(s.overflowX)) || (outY && !scrolls(s.overflowY))) {
          found.push(`"${text.slice(0, 40)}" is cut by <${a.tagName.toLowerCase()} class="${a.className}">`);
          break;
        }
        r = { left: Math.max(r.left, b.left), right: Math.min(r.right, b.right), top: Math.max(r.top, b.top), bottom: Math.min(r.bottom, b.bottom) };
      }
    }
  }
  return found;
});

/** Which of the canvas's corners (4 px in) and centre something else covers. */
const canvasCovered = (page) => page.evaluate(() => {
  const c = document.getElementById('canvas');
  c.scrollIntoView({ block: 'nearest' });
  const r = c.getBoundingClientRect();
  const points = { 'top left': [r.left + 4, r.top + 4], 'top right': [r.right - 4, r.top + 4], 'bottom left': [r.left + 4, r.bottom - 4],
    'bottom right': [r.right - 4, r.bottom - 4], centre: [(r.left + r.right) / 2, (r.top + r.bottom) / 2] };
  return Object.entries(points).filter(([, [x, y]]) => document.elementFromPoint(x, y) !== c)
    .map(([where, [x, y]]) => {
      const e = document.elementFromPoint(x, y);
      return `${where} (${Math.round(x)}, ${Math.round(y)}) under ${e ? `<${e.tagName.toLowerCase()} id="${e.id}" class="${e.className}">` : 'nothing: off the screen'}`;
    });
});

/** Words the page shows that were written for the engine, not for people. */
function unreadable(text) {
  const snake = [...new Set(text.match(/\b[a-z]+(?:_[a-z0-9]+)+\b/g) ?? [])];
  const long = [...new Set(text.match(/\d\.\d{4,}/g) ?? [])];
  const enums = [...new Set(text.match(/\b(?:PreparingRebalance|CompletingRebalance|PeekLock|ReceiveAndDelete)\b/g) ?? [])];
  return [...snake.map((s) => `snake_case "${s}"`), ...long.map((d) => `"${d}" has more than three decimals`),
    ...enums.map((e) => `the engine's name "${e}"`)];
}

for (const [vw, vh] of VIEWPORTS) {
  const phone = vw < 600;
  test(`layout at ${vw}×${vh}: every preset fits, the canvas is uncovered, no panel text is clipped or unreadable, the log has room${phone ? ', Play and the canvas on screen together' : ''}`, async ({ page }) => {
    await page.setViewportSize({ width: vw, height: vh });
    const found = [];
    for (const id of await presetIds(page)) {
      await page.selectOption('#scenario', id);
      await page.evaluate(() => scrollTo(0, 0));
      await seekFraction(page, 0.6);
      // Give the inspector a message: the newest log line that names one.
      await page.click('#tab-log');
      const line = await page.$('#log li[data-msg]:last-child') ?? (await page.$$('#log li[data-msg]')).pop();
      if (line) await line.click();
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      if (wide > vw) found.push(`${id}: the page is ${wide} px wide`);
      for (const what of await canvasCovered(page)) found.push(`${id}: the canvas's ${what}`);
      const logH = await page.$eval('#log', (l) => l.getBoundingClientRect().height);
      if (logH < 120) found.push(`${id}: the event log is ${logH.toFixed(0)} px tall`);
      for (const tab of await page.$$('.tabs [role="tab"]:not([hidden])')) {
        await tab.click();
        await settle(page);
        const name = await tab.textContent();
        const panes = await page.$$eval('.pane', (ps) => ps.filter((x) => x.checkVisibility()).map((x) => x.id));
        const own = await tab.getAttribute('aria-controls');
        if (panes.join() !== own) found.push(`${id}, ${name}: the panes shown are ${panes.join(', ')}, not ${own} alone`);
        for (const what of await clippedText(page)) found.push(`${id}, ${name}: ${what}`);
        const text = await page.evaluate(() => document.body.innerText);
        for (const what of unreadable(text)) found.push(`${id}, ${name}: ${what}`);
      }
      if (phone) {
        await page.evaluate(() => scrollTo(0, 0));
        await page.click('#play');
        await settle(page);
        const seen = await page.evaluate(() => {
          const inView = (r) => r.top >= 0 && r.bottom <= innerHeight && r.left >= 0 && r.right <= innerWidth;
          const c = document.getElementById('canvas').getBoundingClientRect();
          const bar = document.querySelector('.controls-main').getBoundingClientRect();
          const visible = Math.max(0, Math.min(c.bottom, innerHeight, bar.top) - Math.max(c.top, 0));
          return { play: inView(document.getElementById('play').getBoundingClientRect()), half: visible / c.height };
        });
        if (!seen.play || seen.half < 0.5) found.push(`${id}: after Play, play on screen ${seen.play}, ${(seen.half * 100).toFixed(0)}% of the canvas`);
        if (await page.$eval('#play', (b) => b.textContent === 'Pause')) await page.click('#play');
      }
    }
    await page.screenshot({ path: join(SHOTS, `layout-${vw}x${vh}.png`), fullPage: phone });
    assert(found.length === 0, `${found.length} problems:\n${found.slice(0, 12).join('\n')}`);
  });
}

/** Share → Copy a link to this moment: the link, once the page has made it; the menu closed. */
async function copyShareLink(page) {
  await openShareMenu(page);
  await page.$eval('#share-link', (i) => { i.value = ''; });
  await page.click('#share');
  await page.waitForFunction(() => document.querySelector('#share-link').value.includes('#'));
  const link = await page.$eval('#share-link', (i) => i.value);
  await page.keyboard.press('Escape');
  return link;
}

/** Which break action is offered, and whether it can apply now (and why not). */
const breakOption = (page, label) => page.$eval('#break-what', (s, l) => {
  const o = [...s.options].find((x) => x.textContent === l);
  return o ? { disabled: o.disabled, title: o.title } : null;
}, label);

async function breakIt(page, label) {
  await page.selectOption('#break-what', { label });
  await page.click('#break');
  await settle(page);
}

test('controls always answer: Replay at the end, break actions that cannot apply, ?scenario= links, a pasted share link, ◆ beat marks', async ({ page }) => {
  // At the end, Play is Replay, and it plays the same run again from the start.
  await page.selectOption('#scenario', 'competing-consumers');
  await seekFraction(page, 1);
  await waitText(page, '#play', (t) => t === 'Replay', 'at the end');
  await page.click('#play');
  await page.waitForFunction(() => document.querySelector('#play').textContent === 'Pause'
    && Number(document.querySelector('#timeline').value) > 0 && Number(document.querySelector('#timeline').value) < 5000, null, { timeout: 5000 });
  await page.click('#play');

  // Break actions: what cannot apply is disabled, with the reason, and becomes possible when it can.
  let o = await breakOption(page, 'restart worker-1');
  assert(o.disabled && o.title === 'Cannot now: it is running: crash it first', `restart a running worker: ${JSON.stringify(o)}`);
  await breakIt(page, 'crash worker-1');
  o = await breakOption(page, 'crash worker-1');
  assert(o.disabled && o.title.includes('down already'), `crash a crashed worker: ${JSON.stringify(o)}`);
  assert(!(await breakOption(page, 'restart worker-1')).disabled, 'a crashed worker can be restarted');
  await page.selectOption('#scenario', 'retry-storm');
  // At 0 s payments-a is in its scheduled outage (0 to 5 s): down, but not by hand.
  o = await breakOption(page, 'bring payments-a up');
  assert(o.disabled && o.title.includes('scheduled outage'), `bring up what an outage holds down: ${JSON.stringify(o)}`);
  await breakIt(page, 'take payments-a down');
  assert((await breakOption(page, 'take payments-a down')).disabled, 'a dependency that is down cannot be taken down');
  assert(!(await breakOption(page, 'bring payments-a up')).disabled, 'and it can be brought up');

  // The address follows the preset and the seed; ?scenario=&seed= opens them.
  await page.selectOption('#scenario', 'lease-models');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('scenario') === 'lease-models');
  await openRunInfo(page);
  await page.fill('#seed', '9');
  await page.click('#reset');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('seed') === '9');
  await page.goto(`${server.url}?scenario=retry-storm&seed=7`);
  await page.waitForSelector('body[data-ready="true"]');
  assert(await page.$eval('#scenario', (s) => s.value) === 'retry-storm', 'the deep link opens its scenario');
  assert(await page.$eval('#seed', (s) => s.value) === '7', 'with its seed');
  await page.goto(`${server.url}?scenario=no-such-thing`);
  await page.waitForSelector('body[data-ready="true"]');
  await waitText(page, '#error', (t) => t.includes('There is no scenario "no-such-thing"') && t.includes('Scenario menu'), 'a bad deep link');

  // A share link pasted into the address bar of a tab that shows the playground opens there.
  await page.selectOption('#scenario', 'retry-storm');
  await seekFraction(page, 0.4);
  const at = await page.$eval('#timeline', (t) => Number(t.value));
  const link = await copyShareLink(page);
  await page.goto(`${server.url}?scenario=competing-consumers`);
  await page.waitForSelector('body[data-ready="true"]');
  await page.evaluate((h) => { location.hash = h; }, new URL(link).hash);
  await page.waitForFunction((t) => document.querySelector('#scenario').value === 'retry-storm'
    && Math.abs(Number(document.querySelector('#timeline').value) - t) < 1, at, { timeout: 10000 });

  // Beats are ◆ over the timeline, as the help says; each jumps to its beat.
  await page.selectOption('#scenario', 'competing-consumers');
  assert((await page.$eval('#help', (h) => h.textContent)).includes('◆'), 'the help describes the marks');
  const total = Number((await page.$eval('.caption-count', (c) => c.textContent)).match(/^(\d+) beats/)[1]);
  const marks = await page.$$eval('#beat-ticks button', (bs) => bs.map((b) => b.textContent));
  assert(marks.length === total && marks.every((m) => m === '◆'), `${marks.length} ◆ for ${total} beats: ${marks}`);
  await page.click('#beat-ticks button[data-index="2"]');
  await waitText(page, '.caption-count', (t) => t === `◆ 3 of ${total}`, 'the third mark goes to the third beat');
});

/** How many pixels of the plot area (under the legend band, right of the axis) carry a series' color. */
const chartInk = (page, selector) => page.$eval(selector, (c) => {
  const css = getComputedStyle(document.documentElement);
  const probe = document.createElement('canvas').getContext('2d');
  const rgb = (name) => {
    probe.fillStyle = css.getPropertyValue(name).trim();
    const hex = probe.fillStyle;
    return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  };
  // The series' colors, but "ready": its neutral grey is too near the text's and the axis's.
  const colors = ['--inflight', '--danger', '--acked'].map(rgb);
  const k = c.width / c.getBoundingClientRect().width;
  const x0 = Math.round(38 * k);
  const y0 = Math.round(26 * k);
  const d = c.getContext('2d').getImageData(x0, y0, c.width - x0 - Math.round(8 * k), c.height - y0 - Math.round(22 * k)).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (colors.some(([r, g, b]) => Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b) < 40)) n++;
  }
  return n;
});

test('the metrics and lag charts show their data after a seek and after a share link opens', async ({ page }) => {
  await page.selectOption('#scenario', 'retry-storm');
  await settle(page);
  const empty = await chartInk(page, '#metrics-chart');
  assert(empty === 0, `at t = 0 the chart has no lines: ${empty} pixels`);
  const said = await page.evaluate(() => document.getElementById('metrics-chart').getAttribute('aria-label'));
  assert(said.includes('Over time'), said);
  await seekFraction(page, 0.6);
  const seeked = await chartInk(page, '#metrics-chart');
  assert(seeked > 150, `after a seek the metrics chart has lines: ${seeked} pixels`);
  const link = await copyShareLink(page);

  await page.selectOption('#scenario', 'rebalancing');
  await seekFraction(page, 0.5);
  await page.click('#tab-groups');
  await settle(page);
  const lag = await chartInk(page, '#lag-chart');
  const lagLink = await copyShareLink(page);

  const fresh = await page.context().newPage();
  try {
    await fresh.goto(link);
    await fresh.waitForSelector('body[data-ready="true"]');
    await settle(fresh);
    const shared = await chartInk(fresh, '#metrics-chart');
    assert(shared > 150, `a share link's metrics chart has lines: ${shared} pixels`);
    await fresh.goto('about:blank');
    await fresh.goto(lagLink);
    await fresh.waitForSelector('body[data-ready="true"]');
    await fresh.click('#tab-groups');
    await settle(fresh);
    const sharedLag = await chartInk(fresh, '#lag-chart');
    assert(lag > 100 && sharedLag > 100, `the lag chart has lines after a seek (${lag} pixels) and from a share link (${sharedLag})`);
  } finally {
    await fresh.close();
  }
});

/** Clicks what `target` names on the canvas (a consumer, member or message), where the page draws it now. */
async function clickOnCanvas(page, target) {
  const at = await page.evaluate(async (t) => {
    const { locate } = await import('./render.js');
    const { width, height, motion } = window.brokerlab.canvas();
    const p = locate(window.brokerlab.view(), width, height, window.brokerlab.cursor(), motion, t);
    const r = document.getElementById('canvas').getBoundingClientRect();
    return p && { x: r.left + p.x, y: r.top + p.y };
  }, target);
  assert(at, `${JSON.stringify(target)} is drawn`);
  await page.mouse.click(at.x, at.y);
  await page.waitForSelector('#touch-menu:not([hidden])', { timeout: 2000 });
  return page.$$eval('#touch-menu button', (bs) => bs.map((b) => b.textContent));
}

// Issue 23: a dependency is on the canvas too, under its caller: a click offers what applies to
// it now. A saga message selected on the canvas puts its saga in focus.
test('a dependency is taken down and brought up from the canvas; a selected saga message puts its saga in focus', async ({ page }) => {
  await page.selectOption('#scenario', 'retry-storm');
  await seekFraction(page, 0.2);
  let items = await clickOnCanvas(page, { kind: 'dependency', index: 0 });
  assert(items.join() === 'take payments-a down', `an up dependency offers its outage only: ${items}`);
  await page.click('#touch-menu button');
  await page.waitForFunction(() => window.brokerlab.view().dependencyUp[0] === false, null, { timeout: 3000 });
  items = await clickOnCanvas(page, { kind: 'dependency', index: 0 });
  assert(items.join() === 'bring payments-a up', `a down dependency offers its recovery only: ${items}`);
  await page.click('#touch-menu button');
  await page.waitForFunction(() => window.brokerlab.view().dependencyUp[0] === true, null, { timeout: 3000 });

  await page.selectOption('#scenario', 'saga-compensation');
  await seekFraction(page, 0.3);
  // A message of a saga other than the one in focus, where the canvas draws it.
  const pick = await page.evaluate(async () => {
    const { locate } = await import('./render.js');
    const v = window.brokerlab.view();
    const { width, height, motion } = window.brokerlab.canvas();
    const focus = v.workflows.sagas[0].focus.instance;
    const m = [...v.messages.values()].find((x) => x.saga && x.saga.instance !== focus
      && locate(v, width, height, window.brokerlab.cursor(), motion, { kind: 'message', id: x.id }));
    return m && { id: m.id, instance: m.saga.instance, focus };
  });
  assert(pick, 'a message of another saga is on the canvas');
  items = await clickOnCanvas(page, { kind: 'message', id: pick.id });
  await page.click(`#touch-menu button:text-is("Inspect m${pick.id}")`);
  await page.waitForFunction((i) => window.brokerlab.view().workflows.sagas[0].focus.instance === i, pick.instance, { timeout: 3000 });
  const focus = await page.evaluate(() => window.brokerlab.view().workflows.sagas[0].focus);
  assert(focus.selected, `the selected saga is marked as chosen: ${JSON.stringify(focus)}`);
  const title = (await placedNow(page)).find((it) => it.kind === 'title' && it.text.startsWith('orders'))?.text;
  assert(title?.includes(`saga #${pick.instance}, selected,`), `the canvas says which saga it shows: ${title}`);
});

test('faults by touch: crash and restart a consumer and lose a delivery from the canvas; each replays after a seek and in a link', async ({ page }) => {
  await page.selectOption('#scenario', 'competing-consumers');
  await seekFraction(page, 0.1);
  let items = await clickOnCanvas(page, { kind: 'consumer', index: 0 });
  assert(items.join() === 'crash worker-1', `a running worker offers its crash only: ${items}`);
  await page.click('#touch-menu button');
  await waitText(page, '#log', (t) => t.includes('worker-1 crashed'), 'the crash is in the log');
  assert(await page.$eval('#touch-menu', (m) => m.hidden), 'the menu closes');
  items = await clickOnCanvas(page, { kind: 'consumer', index: 0 });
  assert(items.join() === 'restart worker-1', `a crashed worker offers its restart only: ${items}`);
  // The keyboard works the menu too: Enter on the focused item.
  await page.keyboard.press('Enter');
  await waitText(page, '#log', (t) => t.includes('worker-1 restarted'), 'the restart is in the log');
  // Step until a message is on its way to a consumer (a 150 ms network), then lose it.
  let msg;
  for (let i = 0; i < 60 && msg === undefined; i++) {
    await page.click('#step');
    msg = await page.evaluate(() => {
      const now = window.brokerlab.cursor();
      return [...window.brokerlab.view().messages.values()].find((m) => m.state === 'delivering' && now < m.t1 && !m.lost)?.id;
    });
  }
  assert(msg !== undefined, 'a delivery on the wire');
  items = await clickOnCanvas(page, { kind: 'message', id: msg });
  assert(items[0].startsWith(`Lose m${msg}'s delivery`) && items.at(-1) === `Inspect m${msg}`, `a message on the wire: ${items}`);
  await page.click('#touch-menu button');
  await waitText(page, '#log', (t) => t.includes(`m${msg} never reached`), 'the loss is in the log');
  // The run goes on; its inputs replay the same after a seek, and in a share link.
  const later = await page.$eval('#timeline', (t) => Number(t.value) + 8000);
  const seek = (v) => page.$eval('#timeline', (el, x) => { el.value = String(x); el.dispatchEvent(new Event('input', { bubbles: true })); }, v);
  await seek(later);
  await settle(page);
  await openRunInfo(page);
  const hash = await page.$eval('#trace-hash', (o) => o.value);
  await seek(0);
  await settle(page);
  await seek(later);
  await settle(page);
  assert(await page.$eval('#trace-hash', (o) => o.value) === hash, 'the same run after a seek away and back');
  const link = await copyShareLink(page);
  const fresh = await page.context().newPage();
  try {
    await fresh.goto(link);
    await fresh.waitForSelector('body[data-ready="true"]');
    await settle(fresh);
    await openRunInfo(fresh);
    assert(await fresh.$eval('#trace-hash', (o) => o.value) === hash, 'and in a share link');
    // RabbitMQ (classic): the lost delivery holds its prefetch slot until the consumer timeout.
    const lost = await fresh.evaluate((id) => window.brokerlab.view().messages.get(id)?.lost, msg);
    assert(lost === true, `the link carries the loss of m${msg}: ${lost}`);
  } finally {
    await fresh.close();
  }
});

/** The page's view drawn offscreen at its canvas's size: what `draw` placed (text, bars, marks). */
const placedNow = (page) => page.evaluate(async () => {
  const { draw } = await import('./render.js');
  const { width, height, motion } = window.brokerlab.canvas();
  const css = getComputedStyle(document.documentElement);
  const v = (name) => css.getPropertyValue(name).trim();
  const palette = { canvas: v('--canvas'), ink: v('--ink'), muted: v('--muted'), edge: v('--edge'), node: v('--node'),
    ready: v('--ready'), inflight: v('--inflight'), acked: v('--acked'), danger: v('--danger'), focus: v('--focus'),
    compensate: v('--compensate'), dark: false };
  const c = document.createElement('canvas');
  [c.width, c.height] = [width, height];
  return draw(c.getContext('2d'), window.brokerlab.view(), window.brokerlab.cursor(), { width, height, palette, motion })
    .map(({ kind, text, id, msg, blocked, color }) => ({ kind, text, id, msg, blocked, color }));
});

// Issue 23: sagas as services with state. At a beat of each saga preset (a compensation beat
// where the preset has compensations), the view the renderer draws from has the saga in focus
// with each service's local state, and the canvas shows the compensating event's name, the
// changed node state, the band of the open window (and for orchestration the orchestrator's
// record); the native CLI, run to the same moment, gives the same saga in focus, node for node.
const SAGA_BEATS = [
  // [preset, beat (1-based), block, what must show]
  ['saga-compensation', 2, 0, { event: 'payment.refunded', state: 'refunded', window: 'created, not yet cancelled' }],
  ['saga-compensation-retry', 3, 0, { event: 'payment.refunded', state: 'refunded', window: 'created, not yet cancelled' }],
  ['saga-styles', 3, 0, { event: 'inventory.failed', state: 'failed', window: 'charged, not yet refunded' }],
  ['saga-styles', 4, 1, { event: 'inventory.failed', state: 'failed', window: 'charged, not yet refunded', orchestrator: 'undoing payment' }],
  // No compensation in these two: the forward event and the state it leaves.
  ['saga-happy-path', 2, 0, { event: 'payment.succeeded', state: 'charged' }],
  ['saga-duplicates', 2, 1, { state: 'reserved ×2' }],
];

test('sagas are services with state: at a compensation beat the canvas names the event, shows the node state and the window, as the CLI does', async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  for (const [id, beat, block, want] of SAGA_BEATS) {
    await page.selectOption('#scenario', id);
    for (let i = 0; i < beat; i++) {
      await page.click('.caption-next');
      await waitText(page, '.caption-count', (t) => t.startsWith(`◆ ${i + 1} of`), `${id}: beat ${i + 1}`);
    }
    const at = await page.evaluate(() => window.brokerlab.cursor());
    const { focus, flights } = await page.evaluate((b) => ({
      focus: window.brokerlab.view().workflows.sagas[b].focus,
      flights: window.brokerlab.view().layout.sagas[b].flights,
    }), block);
    const tag = `${id} beat ${beat} block ${block}`;
    assert(focus, `${tag}: a saga is in focus`);
    const placed = await placedNow(page);
    const texts = (kind) => placed.filter((it) => it.kind === kind).map((it) => it.text);
    // The node state: the view has it, and the canvas shows it.
    assert(focus.nodes.some((n) => n.state === want.state) && texts('state').includes(want.state), `${tag}: state ${want.state}: ${JSON.stringify(focus.nodes)} / ${texts('state')}`);
    if (want.event) {
      assert(texts('event').includes(want.event), `${tag}: the event ${want.event} is named on the canvas: ${texts('event')}`);
      const comp = flights.find((f) => f.name === want.event).compensation;
      assert(comp === Boolean(want.window), `${tag}: ${want.event} is ${comp ? '' : 'not '}part of a compensation`);
    }
    if (want.window) {
      assert(focus.window?.text === want.window, `${tag}: the open window: ${JSON.stringify(focus.window)}`);
      assert(texts('window').some((t) => t.startsWith(`${want.window} · `)), `${tag}: the band's words: ${texts('window')}`);
      assert(focus.nodes.some((n) => ['undone', 'failed'].includes(n.kind)), `${tag}: a node changed state backwards`);
    } else {
      assert(!focus.window && texts('window').length === 0, `${tag}: no window is open`);
    }
    if (want.orchestrator) {
      assert(focus.orchestrator === want.orchestrator && texts('state').includes(want.orchestrator), `${tag}: the orchestrator: ${focus.orchestrator}`);
    }
    // The same run natively, to the same moment: the same saga in focus, the same states.
    const cli = JSON.parse(execFileSync('cargo', ['run', '--quiet', '--bin', 'brokerlab', '--', 'run', `scenarios/${id}.json`, '--until-ms', String(at)], { cwd: ROOT, encoding: 'utf8' }));
    assert(JSON.stringify(cli.sagas[block].focus) === JSON.stringify(focus), `${tag}: the CLI's saga in focus ${JSON.stringify(cli.sagas[block].focus)} is the page's ${JSON.stringify(focus)}`);
    await page.screenshot({ path: join(SHOTS, `saga-${id}-${beat}.png`) });
  }
});

test('queue messages show their key or FIFO group by hue, with a legend, and a blocked group is marked while one of its messages is in flight', async ({ page }) => {
  // competing-consumers: three order keys.
  await page.selectOption('#scenario', 'competing-consumers');
  await seekFraction(page, 0.3);
  let placed = await placedNow(page);
  const legend = placed.filter((it) => it.kind === 'legend').map((it) => it.text);
  assert(legend.join(' ') === 'key: key-0 key-1 key-2', `the key legend: ${legend}`);
  // fifo-groups: step until a group has one in flight and another waiting, then check every waiting dot.
  await page.selectOption('#scenario', 'fifo-groups');
  let seen = false;
  for (let i = 0; i < 200 && !seen; i++) {
    await page.click('#step');
    const { expected } = await page.evaluate(() => {
      const v = window.brokerlab.view();
      const q = v.layout.queues.findIndex((x) => x.fifo);
      const busy = new Set([...v.messages.values()].filter((m) => m.queue === q && (m.state === 'delivering' || m.state === 'processing')).map((m) => m.key));
      return { expected: Object.fromEntries(v.ready[q].map((id) => [id, { blocked: busy.has(v.messages.get(id).key), key: v.messages.get(id).key }])) };
    });
    const blockedIds = Object.entries(expected).filter(([, e]) => e.blocked).map(([id]) => Number(id));
    if (!blockedIds.length || blockedIds.length === Object.keys(expected).length) continue;
    placed = await placedNow(page);
    const dots = placed.filter((it) => it.msg !== undefined && /^Q\d+\.\d+$/.test(it.id));
    for (const d of dots) {
      assert(d.blocked === expected[d.msg].blocked, `m${d.msg} (group ${expected[d.msg].key}) blocked ${d.blocked}, expected ${expected[d.msg].blocked}`);
    }
    const hues = new Set(dots.map((d) => d.color));
    assert(hues.size >= 2, `the groups' dots differ in hue: ${[...hues]}`);
    seen = dots.some((d) => d.blocked) && dots.some((d) => !d.blocked);
  }
  assert(seen, 'a moment with a blocked group and a free one');
  const fifoLegend = placed.filter((it) => it.kind === 'legend').map((it) => it.text).join(' ');
  assert(fifoLegend.startsWith('group: g0 g1 g2') && fifoLegend.includes('blocked'), fifoLegend);
  await page.locator('#canvas').screenshot({ path: join(SHOTS, 'fifo-groups-blocked.png') });
});

// Every label and bar the canvas draws, for every preset, at the size the page gives its canvas
// at each of the four viewports, at five moments of the run: none meets another, none leaves
// the canvas, none is smaller than 12 CSS px, and none sits on a box it does not belong to.
test('canvas labels and bars never overlap, in any preset, at the four sizes', async ({ page }) => {
  const sizes = {};
  for (const [vw, vh] of VIEWPORTS) {
    await page.setViewportSize({ width: vw, height: vh });
    for (const id of await presetIds(page)) {
      await page.selectOption('#scenario', id);
      await settle(page);
      const { width, height } = await page.$eval('#canvas', (c) => c.getBoundingClientRect());
      (sizes[id] ??= []).push([`${vw}×${vh}`, width, height]);
    }
  }
  const found = await page.evaluate(async (sizes) => {
    const { loadEngine, presets, Run } = await import('./engine.js');
    const { draw, canvasScale } = await import('./render.js');
    await loadEngine();
    const css = getComputedStyle(document.documentElement);
    const v = (name) => css.getPropertyValue(name).trim();
    const palette = { canvas: v('--canvas'), ink: v('--ink'), muted: v('--muted'), edge: v('--edge'), node: v('--node'),
      ready: v('--ready'), inflight: v('--inflight'), acked: v('--acked'), danger: v('--danger'), focus: v('--focus'), dark: false };
    const canvas = document.createElement('canvas');
    const ctx = canvas.getContext('2d');
    const out = [];
    const meets = (a, b) => a.x < b.x + b.w - 0.5 && b.x < a.x + a.w - 0.5 && a.y < b.y + b.h - 0.5 && b.y < a.y + a.h - 0.5;
    const name = (it) => (it.kind === 'bar' ? `a bar at (${it.x.toFixed(0)}, ${it.y.toFixed(0)})` : `"${it.text}"`);
    let checked = 0;
    for (const p of presets()) {
      for (const [vp, w, h] of sizes[p.id]) {
        const run = new Run(p.json, 1);
        const k = canvasScale(w, h);
        for (const f of [0, 0.25, 0.5, 0.75, 1]) {
          const t = run.durationMs * f;
          for (let guard = 0; run.nowMs < t && guard < 100; guard++) run.advanceTo(t);
          canvas.width = w;
          canvas.height = h;
          const placed = draw(ctx, run.view, t, { width: w, height: h, palette, motion: false });
          const shapes = placed.filter((it) => it.kind === 'shape');
          const ink = placed.filter((it) => it.kind !== 'shape');
          checked += ink.length;
          const at = `${p.id} at ${vp} (canvas ${w.toFixed(0)}×${h.toFixed(0)}), t=${(t / 1000).toFixed(1)} s`;
          for (const [i, a] of ink.entries()) {
            if (a.x < -0.5 || a.y < -0.5 || a.x + a.w > w / k + 0.5 || a.y + a.h > h / k + 0.5) out.push(`${at}: ${name(a)} leaves the canvas`);
            if (a.kind !== 'bar' && a.size * k < 12) out.push(`${at}: ${name(a)} is ${a.size * k} px`);
            if (a.kind !== 'bar' && a.text === '…') out.push(`${at}: a label shortened to nothing (${a.full})`);
            for (const b of ink.slice(i + 1)) if (meets(a, b)) out.push(`${at}: ${name(a)} meets ${name(b)}`);
            if (a.kind !== 'bar') {
              for (const s of shapes) if (s.id !== a.within && meets(a, s)) out.push(`${at}: ${name(a)} lies on ${/^[PQCTG]\d+$/.test(s.id) ? 'box' : 'mark'} ${s.id}`);
            }
            // A box's text stays in it (a mark's, such as a pulse's ×2, is centred on it).
            const home = shapes.find((s) => s.id === a.within && /^[PQCTG]\d+$/.test(s.id));
            if (home && (a.x < home.x - 0.5 || a.y < home.y - 0.5 || a.x + a.w > home.x + home.w + 0.5 || a.y + a.h > home.y + home.h + 0.5)) {
              out.push(`${at}: ${name(a)} spills out of its box ${home.id}`);
            }
          }
        }
        run.engine.free();
      }
    }
    return { out, checked };
  }, sizes);
  assert(found.checked > 10000, `only ${found.checked} labels and bars were checked`);
  writeFileSync(join(SHOTS, 'collisions.txt'), [`${found.checked} labels and bars checked`, ...found.out].join('\n'));
  assert(found.out.length === 0, `${found.out.length} collisions (all in target/e2e/collisions.txt):\n${[...new Set(found.out)].slice(0, 12).join('\n')}`);
});

// The canvas's queue column: for every preset, at sizes from a phone to a desktop (at least
// the height the page gives that layout) and in the tutorial's short embeds, no queue box
// overlaps another and no title (its glyphs reach 15 px above its box; a compact stack's
// helpers carry theirs inside) runs into the box above it. The tutorial's saga iframe once
// drew each DLQ title over its queue, and saga-styles drew seventeen queues on top of each other.
test('queue boxes and their titles never overlap, and jobs stay in their consumers, at any size, in any preset', async ({ page }) => {
  const problems = await page.evaluate(async () => {
    const { loadEngine, presets, Run } = await import('./engine.js');
    const { geometry, jobAt, layoutHeight } = await import('./render.js');
    await loadEngine();
    const found = [];
    // The queue presets the tutorial shows in short widgets.
    const tutorial = ['competing-consumers', 'lease-models', 'retry-storm', 'saga-compensation'];
    const ids = presets().map((p) => p.id);
    for (const id of tutorial.filter((t) => !ids.includes(t))) found.push(`${id} is not a preset`);
    for (const p of presets()) {
      const run = new Run(p.json, 1);
      const least = layoutHeight(run.layout);
      const short = tutorial.includes(p.id);
      const sizes = [[360, 420], [900, 280], [1400, 900]].map(([w, h]) => [w, Math.max(h, least)]);
      for (const [w, h] of [...(short ? [[360, 320], [900, 320]] : []), ...sizes]) {
        const boxes = geometry(run.layout, w, h).queues.filter(Boolean);
        boxes.forEach((a, i) => boxes.forEach((b, j) => {
          if (i === j) return;
          const band = a.inside ? 0 : 15;
          const across = a.x < b.x + b.w && b.x < a.x + a.w;
          if (across && a.y - band < b.y + b.h && b.y < a.y + a.h) {
            found.push(`${p.id} at ${w}x${h}: queue ${i} (top ${a.y.toFixed(1)}, title band ${band}) meets queue ${j} (${b.y.toFixed(1)} to ${(b.y + b.h).toFixed(1)})`);
          }
        }));
        if (boxes.some((b) => b.h < 10 || b.y < 40 || b.y + b.h > h)) found.push(`${p.id} at ${w}x${h}: a box is too thin or off the canvas`);
        // A consumer's jobs (their dots and strokes) stay inside its box, however many consumers.
        for (const c of geometry(run.layout, w, h).consumers.filter(Boolean)) {
          const { y, r } = jobAt(c, 0);
          if (y - r - 1 < c.y || y + r + 1 > c.y + c.h) found.push(`${p.id} at ${w}x${h}: a job dot (r ${r}) spills out of a ${c.h.toFixed(1)} px consumer`);
        }
      }
      run.engine.free();
    }
    return found;
  });
  assert(problems.length === 0, problems.slice(0, 5).join('; '));
});

test('the metrics chart draws depth, in flight, dead letters and throughput over time', async ({ page }) => {
  await page.selectOption('#scenario', 'retry-storm');
  const blank = await page.$eval('#metrics-chart', (c) => c.toDataURL());
  await page.selectOption('#speed', '25');
  await page.click('#play');
  await page.waitForFunction(() => Number(document.querySelector('#timeline').value) > 20000, null, { timeout: 10000 });
  await page.click('#play');
  await settle(page);
  const drawn = { url: await page.$eval('#metrics-chart', (c) => c.toDataURL()), colors: await colorsOf(page, '#metrics-chart') };
  assert(drawn.url !== blank && drawn.colors > 4, `the chart has lines in several colors: ${drawn.colors}`);
});

/** Plays preset `id` to its end and opens its first dead letter in the inspector: its text, once it says `word`. */
async function firstDeadLetter(page, id, word) {
  await page.selectOption('#scenario', id);
  await page.selectOption('#speed', '100');
  await page.click('#play');
  await page.waitForFunction(() => document.querySelector('#play').textContent === 'Replay', null, { timeout: 20000 });
  await page.click('#tab-inspector');
  await page.click('#dead-letters button');
  return waitText(page, '#inspector', (t) => t.includes(word), `${id}: the inspector shows the dead letter`);
}

test('a dead letter opens in the inspector with its metadata', async ({ page }) => {
  const text = await firstDeadLetter(page, 'error-classes', 'reason');
  assert(/reason(permanent error|attempts exhausted)/.test(text.replace(/\s+/g, '')) || text.includes('permanent error')
    || text.includes('attempts exhausted'), `a reason: ${text}`);
  assert(text.includes('dead-lettered from') && text.includes('payments'), 'its source queue');
  assert(!text.includes('x-death'), `x-death is RabbitMQ's header, not an SQS dead letter's (D5): ${text}`);
  assert(/ApproximateReceiveCount\s*[1-9]/.test(text), `SQS's own receive counter (SQS-9): ${text}`);
  // SQS-13: the DLQ's 4-day retention (SQS-17) runs from the original enqueue, a few seconds in.
  assert(/retention ends\s*3456\d\d\.\d{3} s/.test(text), `when the DLQ deletes it: ${text}`);
  assert(text.includes('failed on worker'), 'and its history');
  await page.screenshot({ path: join(SHOTS, 'inspector.png') });
});

// Issue 26, item 7: the DLQ's report (how many, the oldest's age, why), and one dead letter
// resubmitted from the inspector after fixing its payload: it leaves the DLQ and is processed.
test('a dead letter can be fixed and resubmitted from the inspector, and the DLQ says why they died', async ({ page }) => {
  await page.selectOption('#scenario', 'poison-redrive');
  for (const n of [1, 2, 3, 4]) {
    await page.click('.caption-next');
    await page.waitForFunction((k) => document.querySelector('.caption-count').textContent.startsWith(`◆ ${k} of`), n);
  }
  await page.click('#tab-inspector');
  const report = await waitText(page, '#dead-report', (t) => t.includes('orders.dlq'), 'the DLQ report');
  assert(/orders\.dlq: 1 dead letter · the oldest died \d+\.\d s ago\. Why: maxReceiveCount exceeded: 1\./.test(report), report);
  await page.click('#dead-letters button');
  await page.getByRole('button', { name: /^Fix m4's payload, then resubmit it$/ }).click();
  await waitText(page, '#dead-report', (t) => t === '', 'the DLQ is empty');
  await page.selectOption('#speed', '100');
  await page.click('#play');
  await page.waitForFunction(() => document.querySelector('#play').textContent === 'Replay', null, { timeout: 20000 });
  const [acked, moved] = [await cell(page, 'orders', 'acked'), await cell(page, 'orders.dlq', 'moved')];
  assert(acked === 20, `m4 done as its fixed copy, the other 19 too: ${acked}`);
  assert(moved === 1, `m4 moved out of the DLQ once: the later redrive found it empty: ${moved}`);
});

// Issue 6: the event log and the sequence diagram show the same run; selecting in either
// selects in both, and the message on the canvas and in the inspector.
test('the log and the sequence diagram select the same event and message', async ({ page }) => {
  await playPast(page, 'competing-consumers', '5', 3000);
  await page.click('#tab-log');
  await page.waitForFunction(() => document.getElementById('sequence').width > 0);
  const sequencePixels = () => page.$eval('#sequence', (c) => c.toDataURL());
  // The diagram draws on the frame after the tab opens: give it a few frames under load.
  let colors = await colorsOf(page, '#sequence');
  for (let tries = 0; colors <= 4 && tries < 50; tries += 1) {
    await page.waitForTimeout(100);
    colors = await colorsOf(page, '#sequence');
  }
  assert(colors > 4, `the diagram draws arrows: ${colors} colors`);
  const before = await sequencePixels();
  const canvasBefore = await canvasPixels(page);

  // A log line of a delivery: it, and every line of its message, are marked; the inspector
  // opens on the message, and the diagram and the canvas draw the selection.
  const li = (await page.$$('#log li.delivered')).at(-1);
  const { n, msg } = await li.evaluate((el) => ({ n: el.dataset.n, msg: el.dataset.msg }));
  await li.click();
  await settle(page);
  assert(await page.$eval('#log li.selected', (el) => el.dataset.n) === n, 'the clicked line is selected');
  const same = await page.$$eval('#log li.same-msg', (els) => els.map((el) => el.dataset.msg));
  assert(same.length >= 2 && same.every((m) => m === msg), `the lines of m${msg} are marked: ${same}`);
  await waitText(page, '#inspector', (t) => t.includes(`m${msg}`), 'the inspector shows the message');
  assert(await sequencePixels() !== before, 'the diagram marks the selection');
  // The canvas redraws on its next frame after the selection; wait for it (a slow frame on a
  // loaded machine comes later than two).
  const rung = await page.waitForFunction((was) => document.querySelector('#canvas').toDataURL() !== was,
    canvasBefore, { timeout: 3000 }).then(() => true, () => false);
  assert(rung, 'the canvas rings the message');

  // The diagram's newest arrow: the log selects the newest line that is a hop.
  const box = await page.$eval('#sequence', (c) => { const r = c.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; });
  const hops = ['published', 'delivered', 'acked', 'returned', 'dead_lettered'];
  const rows = Math.floor((box.h - 34) / 18);
  await page.click('#sequence', { position: { x: box.w / 2, y: 30 + 18 * (rows - 0.5) + 6 } });
  await settle(page);
  const newest = await page.$$eval('#log li', (els, kinds) => els.filter((el) => kinds.includes(el.className.split(' ')[0])).at(-1).dataset.n, hops);
  const got = await page.$eval("#log li.selected", (el) => `${el.dataset.n} ${el.className} ${el.textContent}`).catch(() => "none");
  assert(got.split(" ")[0] === newest, `the newest hop (${newest}) is selected in the log: ${got}`);

  // ↑ on the diagram moves to the hop before it, in both.
  await page.focus('#sequence');
  await page.keyboard.press('ArrowUp');
  await settle(page);
  const previous = await page.$$eval('#log li', (els, kinds) => els.filter((el) => kinds.includes(el.className.split(' ')[0])).at(-2).dataset.n, hops);
  assert(await page.$eval('#log li.selected', (el) => el.dataset.n) === previous, 'ArrowUp selects the hop before');
  await page.screenshot({ path: join(SHOTS, 'sequence.png') });
});

// Issue 8, limits: a run that would need more events in one frame than the budget stops with
// a message and stays usable, instead of freezing the tab.
test('a run that outruns the event budget stops with a message and the page stays usable', async ({ page }) => {
  const heavy = JSON.stringify({
    name: 'A flood', seed: 1, duration_ms: 60000,
    queues: [{ name: 'q' }],
    producers: [{ name: 'p', to: 'q', schedule: { kind: 'poisson', rate_per_s: 30000 } }],
    consumers: Array.from({ length: 50 }, (_, i) => ({ name: `c${i}`, from: 'q', prefetch: 100, concurrency: 100, processing: { kind: 'constant', ms: 1 } })),
  }, null, 1);
  await page.click('#edit');
  await page.waitForFunction(() => document.querySelector('#editor-text').value.length > 0, null, { timeout: 5000 });
  await page.fill('#editor-text', heavy);
  await waitText(page, '#editor-status', (t) => t.startsWith('Valid'), 'the flood is a valid scenario');
  await page.click('#editor-run');
  await page.selectOption('#speed', '1000');
  const started = Date.now();
  await page.click('#play');
  const error = await waitText(page, '#error', (t) => t.includes('budget'), 'the budget message');
  assert(error.includes('Lower the speed'), `it says what to do: ${error}`);
  assert(Date.now() - started < 5000, 'it stopped promptly');
  assert(await page.textContent('#play') === 'Play', 'paused, not frozen');
  const clock = await page.$eval('#clock', (o) => o.value);
  assert(!clock.startsWith('t=60.0 s'), `short of the end: ${clock}`);
  await page.selectOption('#speed', '1');
  const hash = await page.$eval('#trace-hash', (o) => o.value);
  await page.click('#step');
  await waitText(page, '#trace-hash', (t) => t !== hash, 'a step still moves the run');
});

// Issue 7: embedding. The tutorial's widgets (three elements and an iframe) are driven through
// their API and through postMessage; each keeps to its own run, and their events arrive.
const collectEvents = () => {
  window.__events = [];
  for (const type of ['ready', 'marker', 'invariant', 'ended']) {
    document.addEventListener(type, (e) => window.__events.push({ from: e.target.id, type, detail: e.detail }), true);
  }
  window.addEventListener('message', (e) => {
    if (e.data?.brokerlab === 1) window.__events.push({ from: 'frame', type: e.data.event, detail: e.data.detail, origin: e.origin });
  });
};
const eventsOf = (page, from, type) => page.evaluate(([f, t]) => window.__events.filter((e) => e.from === f && e.type === t), [from, type]);
const widget = (page, id, fn, arg) => page.$eval(`#${id}`, fn, arg);

test('the tutorial drives its widgets through the API and postMessage; they stay independent and report events', async ({ page }) => {
  await page.addInitScript(collectEvents);
  const response = await page.goto(`${server.url}tutorial.html`);
  const csp = response.headers()['content-security-policy'];
  assert(csp.includes("script-src 'self' 'wasm-unsafe-eval'") && !csp.includes('unsafe-inline') && !csp.includes("'unsafe-eval'"), `strict CSP: ${csp}`);
  const ids = ['w-leases', 'w-retry', 'w-dlq', 'w-groups', 'w-play'];
  await page.waitForFunction((all) => all.every((id) => window.__events.some((e) => e.from === id && e.type === 'ready'))
    && window.__events.some((e) => e.from === 'frame' && e.type === 'ready'), ids, { timeout: 15000 });
  const state = () => page.evaluate((all) => Object.fromEntries(all.map((id) => {
    const w = document.getElementById(id);
    return [id, { time: w.time, hash: w.traceHash }];
  })), ids);
  const start = await state();

  // API: seek one; step another; the rest do not move.
  await widget(page, 'w-groups', (w) => w.seek(13000));
  for (let i = 0; i < 5; i++) await widget(page, 'w-retry', (w) => w.step());
  const moved = await state();
  assert(moved['w-groups'].time === 13000 && moved['w-groups'].hash !== start['w-groups'].hash, 'w-groups sought to 13 s');
  assert(moved['w-retry'].hash !== start['w-retry'].hash, 'w-retry stepped');
  assert(JSON.stringify(moved['w-leases']) === JSON.stringify(start['w-leases']), 'w-leases did not move');

  // nextMarker() moves to the next beat and says so.
  await widget(page, 'w-retry', (w) => w.nextMarker());
  const marker = (await eventsOf(page, 'w-retry', 'marker')).at(-1);
  assert(marker?.detail.index === 0 && marker.detail.at_ms === 200 && marker.detail.text.includes('503'), `marker: ${JSON.stringify(marker)}`);

  // play() runs it to the end: a lease expired mid-processing is an invariant event; then ended.
  await widget(page, 'w-leases', (w) => { w.setAttribute('markers', 'off'); w.setAttribute('speed', '100'); w.play(); });
  await page.waitForFunction(() => window.__events.some((e) => e.from === 'w-leases' && e.type === 'ended'), null, { timeout: 15000 });
  const alarms = await eventsOf(page, 'w-leases', 'invariant');
  assert(alarms.some((e) => e.detail.name === 'lease_expired_mid_processing' && e.detail.count >= 1), `invariant events: ${JSON.stringify(alarms)}`);
  const ended = (await eventsOf(page, 'w-leases', 'ended'))[0];
  const after = await state();
  assert(ended.detail.trace_hash === after['w-leases'].hash && after['w-leases'].time === 60000, 'ended at the end, with its hash');
  assert(JSON.stringify(after['w-groups']) === JSON.stringify(moved['w-groups']), 'w-groups is untouched by the others');
  assert((await eventsOf(page, 'w-leases', 'marker')).length === 6, 'markers off: no stops, but every beat still reported');

  // The same run played by a fresh element reaches the same hash: the widgets share a module, not state.
  const fresh = await page.evaluate(async () => {
    const w = document.createElement('broker-lab');
    document.body.append(w);
    await w.load('lease-models', { seed: 1 });
    w.seek(60000);
    const h = w.traceHash;
    w.remove();
    return h;
  });
  assert(fresh === after['w-leases'].hash, `a fresh element agrees: ${fresh} vs ${after['w-leases'].hash}`);

  // A malformed scenario is an error naming its path, in the element and as an event.
  const bad = await page.evaluate(async () => {
    const w = document.createElement('broker-lab');
    let said = '';
    w.addEventListener('error', (e) => { said = e.detail.message; });
    document.body.append(w);
    await w.load('{"name": "x", "duration_ms": "ten"}').catch(() => {});
    const shown = w.shadowRoot.querySelector('.error').textContent;
    w.remove();
    return { said, shown };
  });
  assert(bad.said.includes('duration_ms') && bad.shown.includes('duration_ms'), `a bad scenario names its path: ${JSON.stringify(bad)}`);
  // An author's beat past the run's end is not an error: it is listed as not in this run.
  const late = await page.evaluate(async () => {
    const w = document.createElement('broker-lab');
    w.setAttribute('markers', '1000: early; 99999999: after the end');
    document.body.append(w);
    await w.load('backlog').catch(() => {});
    const shown = { error: w.shadowRoot.querySelector('.error').textContent, markers: w.markers };
    w.remove();
    return shown;
  });
  assert(late.error === '' && late.markers[0].at_ms === 1000 && late.markers[1].at_ms === null, `an author's beat past the end: ${JSON.stringify(late)}`);
});

// Issue 21: the tutorial is five guided sections; the buttons in each one's prose walk its
// widget through its beats, and the caption there says each beat; the saga's in an iframe.
test('the tutorial walks each of its five sections through its beats', async ({ page }) => {
  await page.addInitScript(collectEvents);
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(`${server.url}tutorial.html`);
  await page.waitForFunction(() => window.__events.filter((e) => e.type === 'ready').length >= 6, null, { timeout: 15000 });
  const sections = await page.$$eval('main > section', (ss) => ss.map((s) => ({
    id: s.id, widget: s.dataset.widget ?? null, beats: [...s.querySelectorAll('button[data-beat]')].map((b) => ({ n: Number(b.dataset.beat), for: b.dataset.for ?? null })),
  })));
  const guided = sections.filter((s) => s.beats.length > 0);
  assert(guided.length >= 5, `five guided sections: ${guided.map((s) => s.id)}`);
  for (const s of guided) {
    const target = s.widget ?? s.beats[0].for;
    const frame = target === 'w-saga' ? page.frame({ url: /embed\.html/ }) : null;
    const scenario = frame ? 'saga-compensation' : await page.getAttribute(`#${target}`, 'scenario');
    const texts = await page.evaluate((x) => import('./engine.js').then(async (m) => { await m.loadEngine(); return JSON.parse(m.presets().find((p) => p.id === x).json).markers.map((b) => b.text); }), scenario);
    for (const [i, b] of s.beats.entries()) {
      const button = page.locator(`#${s.id} button[data-beat="${b.n}"]`).first();
      await button.scrollIntoViewIfNeeded();
      await button.click();
      const root = frame ?? page;
      const host = frame ? '#lab' : `#${target}`;
      await root.waitForFunction(([h, n, t]) => {
        const r = document.querySelector(h).shadowRoot;
        return r.querySelector('.caption-count').textContent.startsWith(`◆ ${n} of`) && r.querySelector('.caption-text').textContent === t;
      }, [host, b.n, texts[b.n - 1]], { timeout: 5000 });
      await page.waitForFunction(([sec, n]) => document.querySelector(`#${sec} button[data-beat="${n}"]`).getAttribute('aria-current') === 'step', [s.id, b.n], { timeout: 5000 });
      if (i === 0) await page.screenshot({ path: join(SHOTS, `tutorial-${s.id}.png`) });
    }
  }
});

test('an off-screen widget uses no animation frames, and starts when scrolled into view', async ({ page }) => {
  await page.addInitScript(() => {
    let n = 0;
    const raf = window.requestAnimationFrame.bind(window);
    window.requestAnimationFrame = (cb) => { n++; return raf(cb); };
    window.__frames = () => n;
  });
  await page.addInitScript(collectEvents);
  await page.goto(`${server.url}tutorial.html`);
  await page.waitForFunction(() => window.__events.some((e) => e.from === 'w-play' && e.type === 'ready'), null, { timeout: 15000 });
  await page.waitForTimeout(300);
  const before = await page.evaluate(() => window.__frames());
  await page.waitForTimeout(800);
  const idle = await page.evaluate(() => window.__frames());
  const off = await widget(page, 'w-play', (w) => ({ time: w.time, playing: w.playing }));
  assert(off.playing && off.time === 0, `autoplay is on but the run waits off screen: ${JSON.stringify(off)}`);
  assert(idle === before, `no animation frames while off screen: ${before} then ${idle}`);
  await page.locator('#w-play').scrollIntoViewIfNeeded();
  // It plays to its first beat (0.15 s) and pauses there; played on, it moves on.
  await page.waitForFunction(() => document.getElementById('w-play').time > 100 && !document.getElementById('w-play').playing, null, { timeout: 5000 });
  await widget(page, 'w-play', (w) => w.play());
  await page.waitForFunction(() => document.getElementById('w-play').time > 500, null, { timeout: 5000 });
  assert(await page.evaluate(() => window.__frames()) > idle + 10, 'frames once on screen');
  await widget(page, 'w-play', (w) => w.setAttribute('markers', 'off'));
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.waitForTimeout(200);
  const t0 = await widget(page, 'w-play', (w) => w.time);
  await page.waitForTimeout(500);
  assert(await widget(page, 'w-play', (w) => w.time) === t0, 'scrolled away again, it stops');
});

test('the iframe obeys only the origins it allows, and a read-only one obeys none', async ({ page }) => {
  const host = (src) => `<!doctype html><title>a blog</title><script>window.got = []; addEventListener('message', (e) => got.push(e.data));</script>
    <iframe id="f" src="${src}" width="800" height="400"></iframe>`;
  const embed = (extra) => `${server.url}embed.html?scenario=competing-consumers&allow=http://allowed.test${extra}`;
  const tryHost = async (origin, extra) => {
    await page.route(`${origin}/**`, (route) => route.fulfill({ contentType: 'text/html', body: host(embed(extra)) }));
    await page.goto(`${origin}/post.html`);
    const frame = await (await page.waitForSelector('#f')).contentFrame();
    await frame.waitForFunction(() => document.getElementById('lab')?.duration > 0, null, { timeout: 15000 });
    await page.evaluate(() => document.getElementById('f').contentWindow.postMessage({ brokerlab: 1, command: 'seek', ms: 5000 }, '*'));
    await page.waitForTimeout(400);
    return { time: await frame.evaluate(() => document.getElementById('lab').time), got: await page.evaluate(() => window.got) };
  };
  const stranger = await tryHost('http://blog.test', '');
  assert(stranger.time === 0, `a command from another origin is ignored: t=${stranger.time}`);
  assert(stranger.got.length === 0, `and it hears no events: ${JSON.stringify(stranger.got)}`);
  const friend = await tryHost('http://allowed.test', '');
  assert(friend.time === 5000, `the allowed origin drives it: t=${friend.time}`);
  assert(friend.got.some((m) => m.event === 'ready'), `and hears its events: ${JSON.stringify(friend.got)}`);
  const readonly = await tryHost('http://allowed.test', '&readonly');
  assert(readonly.time === 0 && readonly.got.some((m) => m.event === 'ready'), `read-only: no commands, events still: ${JSON.stringify(readonly)}`);
});

// The engine keeps time in microseconds and rounds the cursor to the nearest: an input made at
// a cursor a hair below the microsecond it rounds up to must still replay on a seek there.
test('an input made between microseconds replays at its place on a seek and in a link', async ({ page }) => {
  const got = await page.evaluate(async () => {
    const m = await import('./engine.js');
    const p = m.presets().find((x) => x.id === 'retry-storm');
    const t = 8350.0006; // the engine's now becomes 8350.001 ms
    const run = new m.Run(p.json, 2015);
    run.advanceTo(t);
    run.applyInput(JSON.stringify({ op: 'crash', consumer: 'w-exponential' }));
    run.advanceTo(t);
    const again = new m.Run(p.json, 2015);
    again.setInputs(run.inputs);
    again.seekTime(t);
    return { time: run.inputs[0].time, replayed: again.traceHash() === run.traceHash(), trace: again.traceUpTo(t).some((e) => e.kind === 'consumer_crashed') };
  });
  assert(got.time > 8350.0006 && got.replayed && got.trace, `replayed at its place: ${JSON.stringify(got)}`);
});

test('Embed gives an element and an iframe snippet that show the same moment of the same run', async ({ page }) => {
  await playPast(page, 'retry-storm', '25', 8000);
  await page.selectOption('#break-what', { index: 0 });
  await page.click('#break');
  await settle(page); // the hash shown is the one after the break
  await openShareMenu(page);
  await page.click('#embed');
  await page.waitForFunction(() => document.getElementById('embed-dialog').open && document.getElementById('embed-iframe').value.includes('embed.html#'));
  const element = await page.$eval('#embed-element', (t) => t.value);
  const iframe = await page.$eval('#embed-iframe', (t) => t.value);
  const seed = await page.$eval('#seed', (i) => i.value);
  const at = Number(element.match(/start-at="(\d+)"/)?.[1]);
  assert(element.includes('scenario="retry-storm"') && element.includes(`seed="${seed}"`) && at > 8000, `${element} (seed ${seed})`);
  assert(await page.$eval('#embed-note', (p) => p.textContent.includes('1 recorded break')), 'the note says the iframe carries the break');
  const hash = (await page.$eval('#trace-hash', (o) => o.value)).replace('hash ', '');
  await page.keyboard.press('Escape');
  // The iframe's link replays the break; the element shows the preset without it.
  const src = iframe.match(/src="([^"]+)"/)[1];
  const other = await page.context().newPage();
  await other.goto(src);
  await other.waitForFunction(() => document.getElementById('lab').duration > 0 && document.getElementById('lab').time > 0, null, { timeout: 15000 });
  // start-at is whole milliseconds; the link keeps the exact cursor.
  const there = await other.$eval('#lab', (w) => `${w.traceHash} at ${Math.round(w.time)}`);
  assert(there === `${hash} at ${at}`, `the iframe reaches the same trace hash at the same moment: ${there} vs ${hash} at ${at}`);
  // The element, on somebody else's page: its script, styles and wasm come across origins.
  await other.route('http://blog.test/**', (route) => route.fulfill({ contentType: 'text/html', body: `<!doctype html><title>a blog</title>${element}` }));
  await other.goto('http://blog.test/post.html');
  await other.waitForFunction((t) => document.querySelector('broker-lab')?.time === t, at, { timeout: 15000 });
  await other.close();
});

const server = await startServer({ port: 0 });
const userDir = mkdtempSync(join(tmpdir(), 'brokerlab-e2e-'));
const ctx = await chromium.launchPersistentContext(userDir, {
  executablePath: '/usr/bin/chromium', headless: true, args: ARGS, viewport: { width: 1280, height: 760 },
});
let passed = 0;
let failed = 0;
for (const t of tests.filter((x) => !process.env.E2E_ONLY || x.name.includes(process.env.E2E_ONLY))) {
  const problems = [];
  let page;
  try {
    page = await openPage(ctx, server.url, problems);
    if (!t.name.includes('beats')) await noBeatPauses(page);
    await t.fn({ page });
    assert(problems.length === 0, problems.join('\n'));
    passed++;
    console.log(`ok   ${t.name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${t.name}\n     ${String(err.message ?? err).split('\n').join('\n     ')}`);
  } finally {
    await page?.close();
  }
}
await ctx.close();
await server.close();
rmSync(userDir, { recursive: true, force: true });
console.log(`screenshots: ${SHOTS}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
