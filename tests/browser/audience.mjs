// Audience beacons (docs/audience.md) from ten players in one Debian
// chromium, all through the CDN (nginx with deploy/nginx/cdn.conf):
//   4 sluice player pages (/player/ID), two pinned to the low rung;
//   2 shop pages with hls.js, 3 with Shaka Player, 1 with video.js, each
//     running the code of docs/audience.md as written there (the core and
//     that player's part, extracted from the file), one hls.js and one Shaka
//     page pinned to the low rung. The shop pages are of another origin
//     (http://localhost:PORT, served by this script), as a platform's would be.
//
//   node audience.mjs CDN_BASE ADMIN_A ADMIN_B STREAM_ID SHOT_DIR LOW_RUNG TIMEOUT_S [--fake]
//
// Checks, printing what it measured:
//   - every page plays, and each page's beacons carry one session id of its
//     own, with the rendition its player says it plays;
//   - the stream's audience.viewers reads 10 on the admin API of BOTH
//     origins within 15 s of the last page playing, and audience.renditions
//     matches what the players play;
//   - one player page throttled (DevTools network conditions) shows up as
//     stalled, with rebuffer_ratio above 0, and counts all along;
//   - viewers.json through the CDN, and shown by docs/audience.md's snippet
//     in a shop page, says 10;
//   - one page's renderer is killed (no unload) and the other nine are
//     closed (unload beacons): the count falls to 1 at once (8 s at most),
//     and to 0 within TIMEOUT_S (the killed one's --audience-timeout) plus
//     5 s (the origin's flush, the aggregation, reading the APIs).
// With --fake (no server endpoint yet) the script answers the beacons
// itself in the browser's network layer and adds them up as the spec says:
// a check of the player side only.
// Prints one JSON line {..., problems}; exits 0 only if problems is empty.
import { launch, libraries } from './chromium.mjs';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [cdn, adminA, adminB, streamId, shotDir, lowRung, timeoutArg] = process.argv.slice(2, 9);
const fake = process.argv.includes('--fake');
const TIMEOUT_S = Number(timeoutArg || 15);
const here = path.dirname(fileURLToPath(import.meta.url));
const docPath = path.join(here, '..', '..', 'docs', 'audience.md');
// The shops' pages: a server of this script's on loopback, named
// localhost (another origin than the CDN's 127.0.0.1; a page from a public
// address may not fetch from loopback in Chromium: Private Network Access).
const shopPages = new Map();   // path -> HTML
const shopServer = http.createServer((req, res) => {
  const body = shopPages.get(req.url.split('?')[0]);
  res.writeHead(body ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(body || 'not found');
});
await new Promise((r) => shopServer.listen(0, '127.0.0.1', r));
const SHOP = `http://localhost:${shopServer.address().port}`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const problems = [];
const check = (ok, what) => { if (!ok) problems.push(what); return ok; };
const t0 = Date.now();
const secs = () => +((Date.now() - t0) / 1000).toFixed(1);
const progress = (what) => process.stderr.write(`audience.mjs +${secs()} s: ${what}\n`);
const out = { fake, pages: [], times: {}, failedByThemselves: [] };

async function until(what, fn, limitS) {
  progress(`waiting for ${what}`);
  const end = Date.now() + limitS * 1000;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await sleep(250);
  }
  throw new Error(`timed out after ${limitS} s waiting for ${what}`);
}

// ---- the code of docs/audience.md, as written there -------------------

function snippets() {
  const text = fs.readFileSync(docPath, 'utf8');
  const blocks = {};
  for (const m of text.matchAll(/```(js|html)\n([\s\S]*?)```/g)) {
    const name = /\/\/ sluice audience: ([^\n]*)/.exec(m[2]);
    if (name) blocks[name[1].split(' (')[0].trim()] = m[2];
  }
  for (const k of ['core', 'hls.js', 'Shaka Player', 'video.js', 'viewers.json']) {
    if (!blocks[k]) throw new Error(`docs/audience.md has no "// sluice audience: ${k}" block`);
  }
  const script = /<script>([\s\S]*?)<\/script>/.exec(blocks['viewers.json']);
  blocks.viewersHtml = blocks['viewers.json'];
  blocks.viewersScript = script[1];
  return blocks;
}

// ---- the fake server side (--fake): beacons answered here --------------

const fakeSessions = new Map();   // session -> {b: beacon, at: ms}
function fakeAudience() {
  const now = Date.now();
  const live = [...fakeSessions.values()].filter((x) => now - x.at < TIMEOUT_S * 1000 &&
                                                        !['ended', 'error'].includes(x.b.state));
  const renditions = {};
  const states = {};
  let stall = 0, watch = 0;
  for (const { b } of live) {
    states[b.state] = (states[b.state] || 0) + 1;
    if (['playing', 'stalled', 'paused'].includes(b.state)) {
      const r = b.rendition || 'unknown';
      renditions[r] = (renditions[r] || 0) + 1;
    }
    stall += b.stall_ms || 0;
    watch += b.watch_ms || 0;
  }
  return { viewers: live.length, source: 'beacons', beacon_viewers: live.length, request_viewers: null,
           renditions, states, rebuffer_ratio: stall + watch ? stall / (stall + watch) : 0 };
}

async function routeBeacons(context) {
  if (!fake) return;
  await context.route(/\/beacon\//, async (route) => {
    try {
      const b = JSON.parse(route.request().postData() || '{}');
      if (b.session) fakeSessions.set(b.session, { b, at: Date.now() });
    } catch (e) { /* a bad beacon: the origin answers 400 */ }
    await route.fulfill({ status: 204, headers: { 'access-control-allow-origin': '*' } });
  });
}

// ---- the stream's audience on an origin's admin API --------------------

async function audienceOn(admin) {
  if (fake) return fakeAudience();
  try {
    const r = await fetch(`${admin}/api/v1/streams/${streamId}`);
    const s = await r.json();
    return Object.assign({ top: s.viewers }, s.audience || {});
  } catch (e) {
    return {};
  }
}
const both = () => Promise.all([audienceOn(adminA), audienceOn(adminB)]);

// ---- the pages ----------------------------------------------------------

// Runs in a shop page: the platform's own player, set up as its docs say,
// then the part of docs/audience.md for it (given as source). window.shop
// tells the test what the player itself says it plays.
function shopPlayer([kind, url, pin, core, part]) {
  const video = document.getElementById('v');
  const S = { kind, errors: [] };
  window.shop = S;
  const rung = (uri) => { const m = /(?:^|\/)([a-z0-9_-]{1,15})\/index\.m3u8/.exec(uri || ''); return m ? m[1] : null; };
  const run = (ctx) => new Function(...Object.keys(ctx), core + '\n' + part + '\nreturn audience;')(...Object.values(ctx));
  if (kind === 'hlsjs') {
    const hls = new Hls({ lowLatencyMode: true });
    S.rendition = () => { const l = hls.levels[hls.currentLevel]; return l ? rung(l.url) : null; };
    hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) S.errors.push(`${d.type} ${d.details}`); });
    if (pin) {
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        hls.currentLevel = hls.levels.findIndex((l) => rung(l.url) === pin);
      });
    }
    S.audience = run({ video, url, hls });
    hls.loadSource(url);
    hls.attachMedia(video);
    video.play().catch(() => {});
  } else if (kind === 'shaka') {
    (async () => {
      shaka.polyfill.installAll();
      const player = new shaka.Player();
      await player.attach(video);
      // As docs/interop.md has Shaka 5.2 on sluice's LL-HLS.
      player.configure({ streaming: { lowLatencyMode: true }, manifest: { hls: { sequenceMode: true } } });
      if (pin) player.configure({ abr: { enabled: false } });
      player.addEventListener('error', (e) => S.errors.push(`shaka ${e.detail && e.detail.code}`));
      S.rendition = () => { const t = player.getVariantTracks().find((x) => x.active); return t ? rung(t.originalVideoId) : null; };
      S.audience = run({ video, url, player });
      try {
        await player.load(url);
        if (pin) {
          const t = player.getVariantTracks().find((x) => rung(x.originalVideoId) === pin);
          if (t) player.selectVariantTrack(t, true);
          else S.errors.push(`no ${pin} track`);
        }
        video.play().catch(() => {});
      } catch (e) {
        S.errors.push(`shaka load ${e && (e.code || e.message)}`);
      }
    })();
  } else {
    const player = videojs(video, { muted: true, autoplay: false, preload: 'auto',
                                     html5: { vhs: { llhls: true, overrideNative: true,
                                                     useNetworkInformationApi: false } } });
    // What Chromium said (video.js only says "no working playlists" after
    // excluding the one that failed).
    player.on('error', () => {
      const e = player.error();
      S.errors.push(`video.js error ${e && e.code}`);
    });
    // (The Html5 tech plays in the page's own <video>.)
    video.addEventListener('error', () => {
      const e = video.error;
      S.errors.push(`media error ${e && e.code}: ${e && e.message}`);
    });
    S.rendition = () => {
      const vhs = player.tech(true) && player.tech(true).vhs;
      const m = vhs && vhs.playlists.media();
      return m ? rung(m.resolvedUri) : null;
    };
    player.src({ src: url, type: 'application/x-mpegURL' });
    S.audience = run({ video, url, player });
    player.play().catch(() => {});
  }
}

// What a page's own player says: {time, playing, rendition, state}.
async function pageStatus(p) {
  try {
    if (p.kind === 'page') {
      return await p.page.evaluate(() => ({ time: document.getElementById('video').currentTime,
        state: window.sluicePlayer.state, rendition: window.sluicePlayer.currentLevelName,
        audience: window.sluicePlayer.audience }));
    }
    return await p.page.evaluate(() => {
      const v = document.querySelector('video');
      return { time: v.currentTime, state: v.paused ? 'paused' : (v.readyState < 3 ? 'waiting' : 'playing'),
               rendition: window.shop.rendition(), errors: window.shop.errors };
    });
  } catch (e) {
    return { time: 0, state: 'gone', rendition: null };
  }
}

async function openPage(browser, spec, docs) {
  const context = await browser.newContext({ viewport: { width: 960, height: 540 } });
  await routeBeacons(context);
  const page = await context.newPage();
  const p = Object.assign({ context, page, beacons: [], consoleErrors: [] }, spec);
  page.on('request', (r) => {
    if (!/\/beacon\//.test(r.url())) return;
    try { p.beacons.push(Object.assign({ at: Date.now() }, JSON.parse(r.postData() || '{}'))); } catch (e) { /* */ }
  });
  page.on('console', (m) => { if (m.type() === 'error') p.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => p.consoleErrors.push(String(e)));
  const master = `${cdn}/hls/${streamId}/master.m3u8`;
  if (spec.kind === 'page') {
    await page.goto(`${cdn}/player/${streamId}`);
    return p;
  }
  // The shop's own page, of its own origin.
  shopPages.set('/player', '<!doctype html><style>body{margin:0} video{width:960px;height:540px}</style>' +
                          '<video id="v" muted playsinline width="960" height="540"></video>');
  await page.goto(`${SHOP}/player`);
  const lib = { hlsjs: 'hls.js', shaka: 'shaka-player', videojs: 'video.js' }[spec.kind];
  await page.addScriptTag({ path: libraries[lib] });
  const part = { hlsjs: 'hls.js', shaka: 'Shaka Player', videojs: 'video.js' }[spec.kind];
  await page.evaluate(shopPlayer, [spec.kind, master, spec.pin || null, docs.core, docs[part]]);
  return p;
}

function sessionsOf(p) {
  return [...new Set(p.beacons.map((b) => b.session))];
}

async function main() {
  const docs = snippets();
  const browser = await launch();
  const pages = [];
  try {
    const specs = [
      { name: 'page-1', kind: 'page' },
      { name: 'page-2', kind: 'page', throttle: true },
      { name: 'page-3-low', kind: 'page', pin: lowRung },
      { name: 'page-4-low', kind: 'page', pin: lowRung, crash: true },
      { name: 'hlsjs-1', kind: 'hlsjs' },
      { name: 'hlsjs-2-low', kind: 'hlsjs', pin: lowRung },
      { name: 'shaka-1', kind: 'shaka' },
      { name: 'shaka-2', kind: 'shaka' },
      { name: 'shaka-3-low', kind: 'shaka', pin: lowRung },
      { name: 'videojs-1', kind: 'videojs' },
    ];
    pages.push(...await Promise.all(specs.map((s) => openPage(browser, s, docs))));
    progress('ten pages open');

    // 1. Every page plays (its currentTime moves); player pages pinned by
    // their quality selector, as a viewer picks a rung.
    const playing = async (p) => {
      const a = await pageStatus(p);
      await sleep(300);
      const b = await pageStatus(p);
      return b.time > 1 && b.time > a.time && b.state === 'playing';
    };
    for (const p of pages.filter((x) => x.kind === 'page')) {
      await until(`${p.name} playing`, () => playing(p), 40);
      if (p.pin) await p.page.selectOption('#quality', { label: p.pin });
    }
    // A library player (hls.js, Shaka, video.js snippet pages) that threw
    // an uncaught exception of its own before it ever played -- video.js
    // once under the two-core load: "TypeError: Cannot read properties of
    // undefined (reading 'start')", stuck waiting -- is closed, said, and
    // left out of every count below: the audience must then count the
    // players that do play. At most one, and never a page another check
    // needs (the player pages, the pinned, throttled or crashed one).
    for (const p of pages) {
      await until(`${p.name} playing`, () => playing(p), 40).catch(async (e) => {
        const thrown = p.consoleErrors.filter((t) => /\b(TypeError|ReferenceError|RangeError)\b/.test(t));
        if (!thrown.length || p.kind === 'page' || p.pin || p.throttle || p.crash ||
            out.failedByThemselves.length) throw e;
        out.failedByThemselves.push({ name: p.name, thrown: thrown.slice(0, 3), status: await pageStatus(p) });
        console.error(`${p.name}: its player threw before it played (${thrown[0]}); left out of the counts`);
        await p.page.close({ runBeforeUnload: true });
        p.gone = true;
      });
    }
    const live = pages.filter((p) => !p.gone);
    const N = live.length;
    for (const p of pages.filter((x) => x.pin)) {
      await until(`${p.name} on ${p.pin}`, async () => (await pageStatus(p)).rendition === p.pin, 20)
        .catch(async (e) => {
          // What the page was doing: its menu's value and its state.
          const menu = p.kind === 'page'
            ? await p.page.evaluate(() => document.getElementById('quality').value).catch(() => '?') : '-';
          throw new Error(`${e.message} (quality menu ${menu}, status ${JSON.stringify(await pageStatus(p))})`);
        });
    }
    const allPlaying = Date.now();
    out.times.allPlaying = secs();

    // 2. Ten viewers on both origins within one beacon interval + aggregation.
    let first = null;
    await until(`audience.viewers ${N} on both origins`, async () => {
      const [a, b] = await both();
      first = [a, b];
      return a.viewers === N && b.viewers === N;
    }, 15).catch((e) => problems.push(`${e.message}: ${JSON.stringify(first)}`));
    out.times.tenOnBoth = +((Date.now() - allPlaying) / 1000).toFixed(1);
    out.audienceAtTen = first && first[0];
    progress(`viewers: ${JSON.stringify(first && first.map((x) => [x.viewers, x.top, x.source, x.request_viewers]))}`);
    check(!first || first.every((x) => x.source === 'beacons' && x.top === N || fake),
          `source/top-level viewers: ${JSON.stringify(first)}`);

    // The dashboard of origin A shows them: the audience line, and the
    // viewers chart with the request-based count beside it.
    if (!fake) {
      const dctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const dash = await dctx.newPage();
      const dashErrors = [];
      dash.on('pageerror', (e) => dashErrors.push(String(e)));
      await dash.goto(`${adminA}/dashboard#stream=${streamId}`);
      out.dashboard = await until(`the dashboard saying ${N} viewers`, () => dash.evaluate((n) => {
        const a = document.getElementById('audience');
        const chart = document.querySelectorAll('#chart-viewers .u-legend .u-series').length;
        return a && a.dataset.viewers === String(n) && a.dataset.source === 'beacons' && chart >= 3
          ? { text: a.textContent, series: chart - 1 } : null;
      }, N), 10).catch((e) => { problems.push(e.message); return null; });
      // A few points in the chart for the picture.
      await until('three points in the viewers chart', () => dash.evaluate(() =>
        Number(document.getElementById('chart-viewers').dataset.points) >= 3), 8).catch(() => {});
      await dash.screenshot({ path: path.join(shotDir, 'audience-dashboard.png'), fullPage: true }).catch(() => {});
      check(!dashErrors.length, `dashboard errors: ${dashErrors.join(' | ')}`);
      await dctx.close();
    }

    // 3. Renditions: the audience's per-rendition counts are what the
    // players say they play (read at the same moment, a few tries for an
    // ABR switch in between).
    let rends = null;
    await until('audience.renditions matching the players', async () => {
      const said = {};
      for (const p of live) {
        const r = (await pageStatus(p)).rendition || 'unknown';
        said[r] = (said[r] || 0) + 1;
      }
      await sleep(2500);  // a beacon at most 1 s after a switch, aggregation every 2 s
      const [a, b] = await both();
      rends = { players: said, originA: a.renditions, originB: b.renditions };
      const same = (x) => JSON.stringify(Object.entries(x || {}).filter(([, n]) => n).sort()) ===
                          JSON.stringify(Object.entries(said).sort());
      return same(a.renditions) && same(b.renditions);
    }, 15).catch((e) => problems.push(`${e.message}: ${JSON.stringify(rends)}`));
    out.renditions = rends;
    check(rends && (rends.players[lowRung] || 0) >= 4, `pinned pages not on ${lowRung}: ${JSON.stringify(rends)}`);

    // Each page: one session of its own in every beacon it sent, the
    // rendition in its latest beacon as its player says.
    const allSessions = new Set();
    for (const p of live) {
      const ss = sessionsOf(p);
      const last = p.beacons[p.beacons.length - 1] || {};
      const st = await pageStatus(p);
      out.pages.push({ name: p.name, sessions: ss.length, beacons: p.beacons.length,
                       states: [...new Set(p.beacons.map((b) => b.state))], rendition: st.rendition,
                       playerErrors: st.errors,
                       lastBeacon: { state: last.state, rendition: last.rendition, latency_ms: last.latency_ms,
                                     startup_ms: last.startup_ms, player: last.player } });
      check(ss.length === 1 && /^[A-Za-z0-9_-]{22,64}$/.test(ss[0]), `${p.name}: sessions ${JSON.stringify(ss)}`);
      ss.forEach((s) => allSessions.add(s));
      check(p.beacons.length && p.beacons[0].state === 'starting', `${p.name}: first beacon ${JSON.stringify(p.beacons[0])}`);
      // A player that failed on its own (Shaka's CRITICAL errors under the
      // two-core load) must say so: state error with its error counted.
      if (last.state === 'error') console.error(`${p.name}: its player failed; last beacon ${JSON.stringify(last)}`);
      check((['playing', 'stalled'].includes(last.state) || (last.state === 'error' && last.errors > 0)) &&
            last.startup_ms > 0 && last.latency_ms >= 0 && last.latency_ms < 30000 &&
            typeof last.player === 'string', `${p.name}: last beacon ${JSON.stringify(last)}`);
    }
    check(allSessions.size === N, `${allSessions.size} distinct sessions of ${N} pages`);

    // 4. A throttled player: stalled, with a rebuffering ratio above 0, and
    // still counted.
    const slow = pages.find((p) => p.throttle);
    const cdp = await slow.context.newCDPSession(slow.page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions',
                   { offline: false, latency: 400, downloadThroughput: 20000, uploadThroughput: -1 });
    const throttledAt = Date.now();
    const stalledBefore = slow.beacons.filter((b) => b.state === 'stalled').length;
    const rebufferBefore = (await audienceOn(adminA)).rebuffer_ratio;
    let seen = null;
    await until('the throttled player stalled in the audience, rebuffer_ratio > 0', async () => {
      const [a, b] = await both();
      const mine = slow.beacons.slice(-1)[0];
      seen = { states: a.states, rebuffer_ratio: a.rebuffer_ratio, viewers: [a.viewers, b.viewers],
               pageState: (await pageStatus(slow)).state, lastBeacon: mine && mine.state };
      return slow.beacons.filter((x) => x.state === 'stalled').length > stalledBefore &&
             mine.state === 'stalled' && a.states && a.states.stalled >= 1 &&
             a.rebuffer_ratio > 0 && b.rebuffer_ratio > 0;
    }, 25).catch((e) => problems.push(`${e.message}: ${JSON.stringify(seen)}`));
    seen.rebufferBefore = rebufferBefore;
    out.throttled = Object.assign({ after_s: +((Date.now() - throttledAt) / 1000).toFixed(1) }, seen);
    check(seen && seen.viewers.every((n) => n === N), `viewers while one stalls: ${JSON.stringify(seen)}`);
    check(slow.beacons.some((b) => b.state === 'stalled' && b.stalls >= 1), 'the throttled page sent no stalled beacon');
    await cdp.send('Network.emulateNetworkConditions',
                   { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });

    // 5. viewers.json through the CDN, and the docs' snippet on a shop page.
    const vjUrl = `${cdn}/hls/${streamId}/viewers.json`;
    let vj = null;
    if (!fake) {
      await until(`viewers.json through the CDN saying ${N}`, async () => {
        const r = await fetch(vjUrl);
        vj = { status: r.status, cache: r.headers.get('cache-control'), xcache: r.headers.get('x-cache-status'),
               body: await r.json().catch(() => null) };
        return vj.body && vj.body.viewers === N && vj.body.live === true;
      }, 15).catch((e) => problems.push(`${e.message}: ${JSON.stringify(vj)}`));
      out.viewersJson = vj;
      const shopCtx = await browser.newContext();
      const shop = await shopCtx.newPage();
      shopPages.set('/product', '<!doctype html>' + docs.viewersHtml.replace(/<script>[\s\S]*<\/script>/, ''));
      await shop.goto(`${SHOP}/product`);
      await shop.addScriptTag({ content: docs.viewersScript.replace(
        'https://live.example.com/hls/shop-1/viewers.json', vjUrl) });
      out.shopBadge = await until(`the shop page showing "${N} watching"`, async () => {
        const t = await shop.textContent('#watching');
        return t === `${N} watching` ? t : null;
      }, 15).catch((e) => { problems.push(e.message); return null; });
      await shop.screenshot({ path: path.join(shotDir, 'audience-shop.png') }).catch(() => {});
      await shopCtx.close();
    }
    await pages[0].page.screenshot({ path: path.join(shotDir, 'audience-player.png') }).catch(() => {});

    // 6. The end: one renderer killed (no unload beacon), the other nine
    // closed (their unload beacons). 1 at once, 0 after the timeout.
    // Console errors while playing (closing a page aborts its requests,
    // which a player may log as errors: those are not counted).
    for (const p of live) {
      p.errorsPlaying = p.consoleErrors.slice();
      if (p.errorsPlaying.length) p.playerErrorsAtEnd = (await pageStatus(p)).errors;
    }
    const crashed = live.find((p) => p.crash);
    // Killed right after a beacon of its own, so that it has a whole
    // timeout ahead of it: killed at the end of its interval, it timed out
    // before the others' unload beacons were counted, and "1 left" never
    // showed (10 straight to 0; CI, 2026-12-07).
    const beforeKill = crashed.beacons.length;
    await until(`a fresh beacon from ${crashed.name}`, () => crashed.beacons.length > beforeKill, 15);
    await crashed.page.evaluate(() => 0);
    const crashCdp = await crashed.context.newCDPSession(crashed.page);
    crashCdp.send('Page.crash').catch(() => {});
    await sleep(300);
    const lastCrashedBeacon = crashed.beacons.length ? crashed.beacons[crashed.beacons.length - 1].at : Date.now();
    const closedAt = Date.now();
    await Promise.all(live.filter((p) => p !== crashed).map((p) => p.page.close({ runBeforeUnload: true })));
    let after = null;
    await until(`viewers 1 on both origins after the other ${N - 1} pages closed`, async () => {
      const [a, b] = await both();
      after = [a.viewers, b.viewers];
      return a.viewers === 1 && b.viewers === 1;
    }, 8).catch((e) => problems.push(`${e.message}: ${JSON.stringify(after)}`));
    out.times.closedToOne = +((Date.now() - closedAt) / 1000).toFixed(1);
    await until('viewers 0 on both origins (the killed page timed out)', async () => {
      const [a, b] = await both();
      after = [a.viewers, b.viewers];
      return a.viewers === 0 && b.viewers === 0;
    }, TIMEOUT_S + 8).catch((e) => problems.push(`${e.message}: ${JSON.stringify(after)}`));
    out.times.closedToZero = +((Date.now() - closedAt) / 1000).toFixed(1);
    out.times.lastCrashedBeaconToZero = +((Date.now() - lastCrashedBeacon) / 1000).toFixed(1);
    // Its last beacon was before the kill: gone within the timeout of the
    // kill, plus the origin's flush (1 s) and the aggregation (2 s), and
    // the time to read both admin APIs on a busy machine.
    check(out.times.closedToZero <= TIMEOUT_S + 5,
          `the killed page dropped out ${out.times.closedToZero} s after the kill ` +
          `(${out.times.lastCrashedBeaconToZero} s after the last beacon the test saw it send)`);
    const [fa, fb] = await both();
    out.audienceAtEnd = fa;
    check(fa.viewers === 0 && fb.viewers === 0, `at the end: ${JSON.stringify([fa, fb])}`);
    for (const p of live) {
      if (p === crashed) continue;
      // (A beacon sent while the page closes is not always reported to
      // the test: the count falling at once is the check.)
      if (p.beacons.some((b) => b.state === 'ended')) out.endedSeen = (out.endedSeen || 0) + 1;
      // (video.js 8.24's VHS throws "reading 'start'" of its own under
      // load, known from the player matrix; the page's counts are checked
      // above whatever it logs.)
      const errs = p.errorsPlaying.filter((t) => !/status of 404/.test(t) &&
        !(p.kind === 'videojs' && /TypeError: Cannot read properties of undefined \(reading 'start'\)/.test(t)));
      check(!errs.length, `${p.name}: console errors ${errs.slice(0, 3).join(' | ')}` +
            (p.playerErrorsAtEnd ? ` (the player: ${JSON.stringify(p.playerErrorsAtEnd)})` : ''));
    }
  } catch (e) {
    // Where each page was, to see why.
    out.debug = [];
    for (const p of pages) {
      out.debug.push({ name: p.name, status: await pageStatus(p), beacons: p.beacons.length,
                       console: p.consoleErrors.slice(0, 4) });
    }
    throw e;
  } finally {
    await browser.close();
  }
}

try {
  await main();
} catch (e) {
  problems.push(String(e && e.stack || e));
}
out.problems = problems;
console.log(JSON.stringify(out));
process.exitCode = problems.length ? 1 : 0;
shopServer.closeAllConnections();
shopServer.close();
