// What every browser test shares: Debian's chromium with the flags this
// machine needs (no sandbox, no GPU, no background traffic, autoplay), and a
// page with a muted <video id="v"> and hls.js from node_modules loaded.
import { chromium } from 'playwright-core';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const hlsPath = path.join(here, 'node_modules', 'hls.js', 'dist', 'hls.min.js');

export async function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--autoplay-policy=no-user-gesture-required'],
  });
}

// A new page with the video element and hls.js; console errors collected
// into the returned array.
export async function hlsPage(browser) {
  const page = await browser.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  await page.setContent('<!doctype html><video id="v" muted playsinline></video>');
  await page.addScriptTag({ path: hlsPath });
  return { page, consoleErrors };
}
