// What every browser test shares: Debian's chromium with the flags this
// machine needs (no sandbox, no GPU, no background traffic, autoplay), and a
// page with a muted <video id="v"> and a player library from node_modules
// loaded (hls.js by default; Shaka Player and video.js for the player matrix).
import { chromium } from 'playwright-core';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const hlsPath = path.join(here, 'node_modules', 'hls.js', 'dist', 'hls.min.js');

// Each player library's browser build, as its package ships it (pinned in
// package-lock.json). Each defines one global: Hls, shaka, videojs.
export const libraries = {
  'hls.js': hlsPath,
  'shaka-player': path.join(here, 'node_modules', 'shaka-player', 'dist', 'shaka-player.compiled.js'),
  'video.js': path.join(here, 'node_modules', 'video.js', 'dist', 'video.min.js'),
};

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

// A page of its own browser context (its own cache, connections and
// DevTools network conditions) with a muted 1280x720 <video id="v"> and the
// given scripts (paths) loaded in order; console messages are collected
// into the returned array as {type, text}. The element has a real size
// because players cap the rendition to it (video.js does by default), and
// the size is a style rule because video.js moves the width and height
// attributes to its own box: the <video> it plays in then took the size of
// the picture it showed (640x360 on 360p), so it never switched up.
export async function playerPage(browser, scripts, videoAttrs = '') {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  const console_ = [];
  page.on('console', (m) => console_.push({ type: m.type(), text: m.text() }));
  await page.setContent('<!doctype html><style>body{margin:0} video{width:1280px;height:720px}</style>' +
                        `<video id="v" muted playsinline width="1280" height="720" ${videoAttrs}></video>`);
  for (const p of scripts) await page.addScriptTag({ path: p });
  return { context, page, console: console_ };
}

// Count, median, 90th percentile, min and max of a list of seconds (3
// decimals); null for an empty list.
export const stat = (xs) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { n: s.length, median: +at(0.5).toFixed(3), p90: +at(0.9).toFixed(3),
           min: +s[0].toFixed(3), max: +s[s.length - 1].toFixed(3) };
};
