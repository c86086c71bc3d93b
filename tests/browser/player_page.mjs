// sluice's own player page (/player/ID) in Debian's chromium, the way a
// viewer meets it: opened before the stream is live, it must show the
// offline state, then play without a reload once the publisher starts; its
// quality selector must list every rung and load the one picked; the latency
// badge must show a number; paused until behind, "Go live" must appear and
// bring it back near the edge; no HLS request may carry a sid (the page
// counts itself with audience beacons, which it must send: docs/audience.md),
// and every one must carry the token from its URL; ?embed=1 must drop the page chrome; without
// MediaSource the page must use the browser's own HLS when it has it and
// otherwise say why it cannot play; when the broadcast ends it must wait
// offline, not replay the ended playlists.
//
// Talks to the Python test over stdio: prints {"phase":"offline"} once the
// offline state shows (the test then starts publishing),
// {"phase":"stop-publishing"} when the publisher should go away, and, at the
// end, one JSON result line. Exits 0 only if every check held.
//
//   node player_page.mjs ORIGIN_BASE ADMIN_BASE STREAM_ID SCREENSHOT_DIR [TIMEOUT_S]
//   node player_page.mjs --signed ORIGIN_BASE STREAM_ID TOKEN   (see below)
import { launch } from './chromium.mjs';
import path from 'node:path';

const [base, adminBase, streamId, shotDir] = process.argv.slice(2, 6);
const timeoutS = Number(process.argv[6] || 60);
const deadline = Date.now() + timeoutS * 1000;

const problems = [];
const result = { phases: [], levels: [], switches: {}, latencyText: null, viewers: null };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn (async) until it returns a truthy value or the overall deadline.
async function until(what, fn, limitS = timeoutS) {
  const end = Math.min(deadline, Date.now() + limitS * 1000);
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function watch(page) {
  const w = { hls: [], beacons: [], consoleErrors: [], pageErrors: [], navigations: 0 };
  page.on('request', (r) => {
    const p = new URL(r.url()).pathname;
    if (p.startsWith('/hls/')) w.hls.push(r.url());
    if (p.startsWith('/beacon/')) {
      try { w.beacons.push(JSON.parse(r.postData() || '{}')); } catch (e) { w.beacons.push({}); }
    }
  });
  // A 404 of the master playlist while offline is the browser's own log
  // line for an expected answer; anything else (a CSP violation, a script
  // error) is a problem.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 404/.test(m.text())) w.consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => w.pageErrors.push(String(e)));
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) w.navigations++; });
  return w;
}

const state = (page) => page.evaluate(() => document.body.dataset.state);
const player = (page) => page.evaluate(() => {
  const p = window.sluicePlayer;
  return { state: p.state, levels: p.levels, currentLevel: p.currentLevel,
           currentLevelName: p.currentLevelName, latency: p.latency, lowLatency: p.lowLatency,
           errors: p.errors, mode: p.mode, time: document.getElementById('video').currentTime };
});

// currentTime keeps moving: playing, not just "started".
async function advances(page, seconds, what) {
  const t0 = (await player(page)).time;
  await until(`${what}: currentTime to advance ${seconds} s past ${t0}`,
              async () => (await player(page)).time > t0 + seconds, 20);
}

// Signed playback (--playback-secret): with the token in its URL the page
// plays and sends that token, once, on every request (the origin also puts it
// into the playlists' URIs: it must not be doubled); without it, the page
// says playback was refused.
//   node player_page.mjs --signed ORIGIN_BASE STREAM_ID TOKEN
if (process.argv[2] === '--signed') {
  const [, , , sBase, sId, sToken] = process.argv;
  const browser = await launch();
  const out = { problems };
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    const w = watch(page);
    await page.goto(`${sBase}/player/${sId}?token=${encodeURIComponent(sToken)}`);
    await until('signed playback playing', async () => (await state(page)) === 'playing', 30);
    await advances(page, 1, 'signed playback');
    const bad = w.hls.filter((u) => {
      const t = new URL(u).searchParams.getAll('token');
      return t.length !== 1 || t[0] !== sToken;
    });
    out.requests = w.hls.length;
    if (!w.hls.length || bad.length) problems.push(`requests without the token once: ${bad.slice(0, 3)}`);
    // The beacons carry it too (the origin refuses them without it).
    out.beacons = w.beacons.length;
    if (!w.beacons.length || w.beacons.some((b) => b.token !== sToken))
      problems.push(`beacons without the token: ${JSON.stringify(w.beacons.slice(0, 2))}`);
    const refused = await context.newPage();
    await refused.goto(`${sBase}/player/${sId}`);
    await until('the refused message', async () => (await state(refused)) === 'error', 15);
    out.refused = await refused.textContent('#message');
    if (!/403/.test(out.refused)) problems.push(`without a token: "${out.refused}"`);
  } catch (e) {
    problems.push(String(e && e.message || e));
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
  process.exit(problems.length ? 1 : 0);
}

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const w = watch(page);

  // 1. No stream yet: the offline state.
  await page.goto(`${base}/player/${streamId}`);
  await until('the offline state', async () => (await state(page)) === 'offline', 20);
  const offlineText = await page.textContent('#message');
  if (!/offline/i.test(offlineText)) problems.push(`offline message says "${offlineText}"`);
  await page.screenshot({ path: path.join(shotDir, 'player-offline.png') });
  await page.evaluate(() => { window.notReloaded = true; });
  result.phases.push('offline');
  console.log(JSON.stringify({ phase: 'offline' }));

  // 2. The test publishes now: playback starts in the same document.
  await until('playing after the stream went live', async () => (await state(page)) === 'playing');
  result.phases.push('playing');
  // The offline phase's fatal manifestLoadError (a 404) is how the page
  // learns the stream is offline; errors from here on are checked.
  const errorsBefore = (await player(page)).errors.length;
  if (!(await page.evaluate(() => window.notReloaded === true))) problems.push('the page reloaded');
  await advances(page, 2, 'first playback');

  // 3. The quality selector: Auto plus every rung the admin API lists.
  const status = await (await fetch(`${adminBase}/api/v1/streams/${streamId}`)).json();
  const rungs = (status.renditions || []).map((r) => r.name);
  const options = await page.$$eval('#quality option', (os) => os.map((o) => o.textContent));
  const p1 = await player(page);
  result.levels = p1.levels;
  result.options = options;
  result.lowLatency = p1.lowLatency;
  if (!/^Auto/.test(options[0] || '')) problems.push(`first quality option is "${options[0]}"`);
  if (rungs.length < 2 || [...rungs].sort().join() !== [...p1.levels].sort().join() ||
      options.slice(1).join() !== [...p1.levels].reverse().join())
    problems.push(`quality options ${JSON.stringify(options)} vs rungs ${JSON.stringify(rungs)}`);
  if (!p1.lowLatency) problems.push('no LL mark although the playlists have parts');
  if (await page.isHidden('#ll')) problems.push('the LL mark is hidden');

  // 4. Picking a rung loads that rung's media, and it plays.
  for (const name of p1.levels) {
    const from = w.hls.length;
    await page.selectOption('#quality', { label: name });
    const media = new RegExp(`/hls/${streamId}/${name}/\\d+(\\.\\d+)?\\.m4s`);
    await until(`${name}: its media requested and shown`, async () =>
      w.hls.slice(from).some((u) => media.test(new URL(u).pathname)) &&
      (await player(page)).currentLevelName === name, 20);
    await advances(page, 1, `${name}`);
    result.switches[name] = w.hls.slice(from).filter((u) => media.test(new URL(u).pathname)).length;
  }
  await page.selectOption('#quality', '-1');
  await until('back to Auto', async () => (await player(page)).currentLevel === -1 ||
              (await page.evaluate(() => window.sluicePlayer.autoLevel)), 10);

  // 5. The latency badge shows a number of seconds behind live.
  result.latencyText = await until('a latency in the badge', async () => {
    const t = await page.textContent('#latency');
    return /^~\d+(\.\d)? s behind live$/.test(t) ? t : null;
  }, 15);
  const lat = (await player(page)).latency;
  if (!(lat > 0 && lat < 30)) problems.push(`latency ${lat}`);
  // The pointer moves over the video: the controls show in the screenshot.
  await page.mouse.move(600, 300);
  await page.mouse.move(640, 320);
  await sleep(500);
  await page.screenshot({ path: path.join(shotDir, 'player.png') });

  // 6. Paused long enough to fall behind: "Go live" appears, and brings the
  // playhead back near the live edge, playing.
  await page.click('#play');
  await until('the paused state', async () => (await state(page)) === 'paused', 5);
  await until('the Go live button while paused', () => page.isVisible('#golive'), 20);
  const behind = (await player(page)).latency;
  await page.click('#golive');
  await until('back near live after Go live', async () => {
    const p = await player(page);
    return p.state === 'playing' && p.latency !== null && p.latency < behind - 2 &&
           await page.isHidden('#golive');
  }, 15);
  result.goLive = { behind, after: (await player(page)).latency };

  // 7. No HLS request carried a sid (it would split a CDN's cache); the
  // page sent its beacons, one session, with the rung it plays; the origin
  // counted one viewer.
  const withSid = w.hls.filter((u) => new URL(u).searchParams.has('sid'));
  if (withSid.length) problems.push(`HLS requests with a sid: ${withSid.slice(0, 3)}`);
  const sessions = new Set(w.beacons.map((b) => b.session));
  const aud = await page.evaluate(() => window.sluicePlayer.audience);
  result.beacons = { sent: w.beacons.length, states: [...new Set(w.beacons.map((b) => b.state))],
                     lastStatus: aud.lastStatus, rendition: aud.rendition };
  if (sessions.size !== 1 || !/^[A-Za-z0-9_-]{22,64}$/.test([...sessions][0] || '') ||
      aud.session !== [...sessions][0])
    problems.push(`beacon sessions ${JSON.stringify([...sessions])}, page's ${aud.session}`);
  if (!w.beacons.length || w.beacons[0].state !== 'starting' ||
      !w.beacons.some((b) => b.state === 'playing') || !w.beacons.some((b) => b.state === 'paused'))
    problems.push(`beacon states ${JSON.stringify(w.beacons.map((b) => b.state))}`);
  const lastB = w.beacons[w.beacons.length - 1] || {};
  if (!p1.levels.includes(lastB.rendition) || !(lastB.startup_ms > 0) || !(lastB.watch_ms > 0) ||
      !/^hls\.js \d/.test(lastB.player || ''))
    problems.push(`last beacon ${JSON.stringify(lastB)}`);
  const after = await (await fetch(`${adminBase}/api/v1/streams/${streamId}`)).json();
  result.viewers = after.viewers;
  // Exactly one: this page (by its beacons, or by its address and browser
  // where the origin takes no beacons).
  if (after.viewers !== 1) problems.push(`viewers ${after.viewers}`);

  const p2 = await player(page);
  const fatal = p2.errors.slice(errorsBefore).filter((e) => e.endsWith(' fatal'));
  if (fatal.length) problems.push(`fatal hls.js errors: ${fatal.join(', ')}`);
  result.hlsErrors = p2.errors;
  result.consoleErrors = w.consoleErrors;
  if (w.consoleErrors.length || w.pageErrors.length)
    problems.push(`console/page errors: ${[...w.consoleErrors, ...w.pageErrors].join(' | ')}`);
  await page.close();

  // 8. ?embed=1 (with a token to pass through): no page chrome, the video
  // fills the frame, the controls a viewer needs are there.
  const embed = await context.newPage();
  const we = watch(embed);
  await embed.goto(`${base}/player/${streamId}?embed=1&token=tok-123`);
  await until('embed playing', async () => (await state(embed)) === 'playing', 20);
  await advances(embed, 1, 'embed');
  if (!(await embed.evaluate(() => document.body.classList.contains('embed'))))
    problems.push('embed: no embed class on <body>');
  for (const sel of ['.page-head', '.page-foot'])
    if (await embed.isVisible(sel)) problems.push(`embed: ${sel} visible`);
  await embed.hover('#video');
  for (const sel of ['#play', '#mute', '#quality', '#fullscreen', '#live'])
    if (!(await embed.isVisible(sel))) problems.push(`embed: ${sel} not visible`);
  const box = await embed.locator('#video').boundingBox();
  if (!box || box.width < 1270 || box.height < 790) problems.push(`embed: video box ${JSON.stringify(box)}`);
  const toks = new Set(we.hls.map((u) => new URL(u).searchParams.get('token')));
  if (toks.size !== 1 || !toks.has('tok-123')) problems.push(`embed: tokens ${JSON.stringify([...toks])}`);
  await embed.screenshot({ path: path.join(shotDir, 'player-embed.png') });
  result.phases.push('embed');
  await embed.close();

  // 9. No MediaSource: the browser's own HLS if it has it (Safari; recent
  // Chromium builds too), else a clear message instead of a black box.
  const noMse = () => { delete window.MediaSource; delete window.ManagedMediaSource;
                        delete window.WebKitMediaSource; };
  const native = await context.newPage();
  await native.addInitScript(noMse);
  await native.goto(`${base}/player/${streamId}`);
  const canNative = await native.evaluate(() =>
    document.createElement('video').canPlayType('application/vnd.apple.mpegurl'));
  result.nativeHls = canNative || 'no';
  if (canNative) {
    await until('native HLS playing', async () => (await state(native)) === 'playing', 20);
    const src = await native.evaluate(() => document.getElementById('video').src);
    if ((await player(native)).mode !== 'native' || !/\/master\.m3u8$/.test(src))
      problems.push(`native: mode ${(await player(native)).mode}, src ${src}`);
  }
  await native.close();
  const neither = await context.newPage();
  await neither.addInitScript(noMse);
  await neither.addInitScript(() => { HTMLMediaElement.prototype.canPlayType = () => ''; });
  await neither.goto(`${base}/player/${streamId}`);
  await until('the unsupported message', async () => (await state(neither)) === 'error', 10);
  const why = await neither.textContent('#message');
  if (!/neither Media Source Extensions nor built-in HLS/.test(why)) problems.push(`unsupported: "${why}"`);
  await neither.close();
  result.phases.push('fallbacks');

  // 10. The broadcast ends: the page plays to the end, then waits offline
  // (the origin keeps the ended playlists; they must not be replayed).
  const ending = await context.newPage();
  await ending.goto(`${base}/player/${streamId}`);
  await until('playing before the end', async () => (await state(ending)) === 'playing', 20);
  console.log(JSON.stringify({ phase: 'stop-publishing' }));
  await until('offline after the broadcast ended', async () => (await state(ending)) === 'offline', 30);
  const endText = await ending.textContent('#message');
  if (!/ended/.test(endText)) problems.push(`after the end the message says "${endText}"`);
  // Every state change from here on, however brief (a replay of the ended
  // playlists shows as offline -> loading -> ...).
  await ending.evaluate(() => {
    window.stateChanges = [];
    new MutationObserver(() => window.stateChanges.push(document.body.dataset.state))
      .observe(document.body, { attributes: true, attributeFilter: ['data-state'] });
  });
  await sleep(6000);
  const changes = await ending.evaluate(() => window.stateChanges);
  if (changes.length) problems.push(`after the end, states: ${changes.join(' -> ')}`);
  result.phases.push('ended');
} catch (e) {
  problems.push(String(e && e.message || e));
} finally {
  await browser.close();
}

result.problems = problems;
console.log(JSON.stringify(result));
process.exit(problems.length ? 1 : 0);
