// Retakes the README's screenshots from the real page in Debian's Chromium: docs/screenshot.png
// (1280×800) and docs/screenshot-phone.png (390×844), lease-models at its second beat.
// Run after scripts/build.sh: node scripts/screenshots.mjs
import { chromium } from 'playwright-core';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from './serve.mjs';

const DOCS = join(resolve(fileURLToPath(new URL('..', import.meta.url))), 'docs');
const SHOTS = [
  { file: 'screenshot.png', width: 1280, height: 800 },
  { file: 'screenshot-phone.png', width: 390, height: 844 },
];

const server = await startServer({ port: 0 });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
try {
  for (const shot of SHOTS) {
    const page = await browser.newPage({ viewport: { width: shot.width, height: shot.height }, colorScheme: 'light' });
    await page.goto(`${server.url}?scenario=lease-models&seed=1`);
    await page.waitForSelector('body[data-ready="true"]');
    for (const n of [1, 2]) {
      await page.click('.caption-next');
      await page.waitForFunction((k) => document.querySelector('.caption-count').textContent.startsWith(`◆ ${k} of`), n);
    }
    await page.evaluate(() => document.activeElement.blur());
    await page.waitForTimeout(200);
    await page.screenshot({ path: join(DOCS, shot.file) });
    await page.close();
    console.log(`docs/${shot.file}`);
  }
} finally {
  await browser.close();
  await server.close();
}
