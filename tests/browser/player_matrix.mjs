// The browser player matrix: plays one live master playlist with several
// players at once in Debian's chromium, each in a page (and browser context)
// of its own, and reports per player what a viewer got: error events, gap
// jumps and nudges, stalls after the first frame, every request to the
// origin that failed, the renditions listed and the ones actually shown,
// switches, and the latency (wall clock minus the playhead's
// EXT-X-PROGRAM-DATE-TIME). Optionally throttles each page's network through
// the DevTools protocol (Network.emulateNetworkConditions) so that each player
// must switch down to the lowest rendition, then lifts it so it must switch
// up again. Prints one JSON line per player; exits 0 only if every player
// passed (its "problems" list is empty).
//
//   node player_matrix.mjs MASTER_URL [options]
//     --players hlsjs-ll,hlsjs,shaka-ll,shaka,videojs   (default: all five)
//     --seconds 60            play time, counted once every player shows a frame
//     --start-timeout 25      seconds to wait for the first frames
//     --expect-heights 720,480,360   the renditions every player must list
//     --throttle DOWN,UP[,KBPS]      at DOWN s throttle to KBPS (default: from
//                             the master, between the two lowest variants),
//                             at UP s lift it; both counted like --seconds
//     --link-kbps N|auto      the link's rate before DOWN and after UP
//                             (default: no limit; auto: 4 x the highest
//                             BANDWIDTH in the master)
//     --start-kbps N|auto     the link's rate from the page's start until DOWN
//                             (auto: the --throttle rate), so that a player
//                             starts on the lowest rendition
//     --throttle-by devtools|relay   how: DevTools' network emulation inside
//                             Chromium (default), or a TCP relay per page
//                             (throttle_relay.mjs) that delays the bytes on
//                             the wire like a slow link
//
// The in-page half (player_matrix_page.js) defines stalls, latency and
// "played" the same way for every player.
import { launch, libraries, playerPage, stat } from './chromium.mjs';
import { startRelay } from './throttle_relay.mjs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

const here = path.dirname(fileURLToPath(import.meta.url));
const pageScript = path.join(here, 'player_matrix_page.js');

// name -> [in-page kind, low latency, library]
const CONFIGS = {
  'hlsjs-ll': ['hlsjs', true, 'hls.js'],
  'hlsjs': ['hlsjs', false, 'hls.js'],
  'shaka-ll': ['shaka', true, 'shaka-player'],
  'shaka': ['shaka', false, 'shaka-player'],
  'videojs': ['videojs', true, 'video.js'],
};

function parseArgs(argv) {
  const a = { url: null, players: Object.keys(CONFIGS), seconds: 60, startTimeout: 25,
              expectHeights: null, throttle: null, throttleBy: 'devtools',
              linkKbps: 0, startKbps: 0 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => argv[++i];
    if (k === '--players') a.players = v().split(',');
    else if (k === '--seconds') a.seconds = Number(v());
    else if (k === '--start-timeout') a.startTimeout = Number(v());
    else if (k === '--expect-heights') a.expectHeights = v().split(',').map(Number).sort((x, y) => y - x);
    else if (k === '--throttle') {
      const [down, up, kbps] = v().split(',').map(Number);
      a.throttle = { down, up, kbps: kbps || null };
    } else if (k === '--throttle-by') a.throttleBy = v();
    else if (k === '--start-kbps') {
      const x = v();
      a.startKbps = x === 'auto' ? 'auto' : Number(x);
    }
    else if (k === '--link-kbps') {
      const x = v();
      a.linkKbps = x === 'auto' ? 'auto' : Number(x);
    }
    else if (!a.url) a.url = k;
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.url) throw new Error('usage: node player_matrix.mjs MASTER_URL [options]');
  if (!['devtools', 'relay'].includes(a.throttleBy)) throw new Error(`--throttle-by devtools|relay, not ${a.throttleBy}`);
  for (const p of a.players) if (!CONFIGS[p]) throw new Error(`unknown player ${p}`);
  return a;
}

// What a request to the origin is, from its path (docs/urls.md).
function kindOf(u) {
  const p = u.pathname;
  if (p.endsWith('/master.m3u8')) return 'master';
  if (p.endsWith('.m3u8')) return u.searchParams.has('_HLS_msn') ? 'blockingPlaylist' : 'playlist';
  if (/\/init[^/]*\.mp4$/.test(p)) return 'init';
  if (/\/\d+\.\d+\.m4s$/.test(p)) return 'part';
  if (/\/\d+\.m4s$/.test(p)) return 'segment';
  return 'other';
}

// A throughput that fits the lowest variant but not the one above it:
// 1.3 x the lowest BANDWIDTH, never past the midpoint of the two lowest.
async function throttleKbps(url) {
  const text = await (await fetch(url)).text();
  const bws = [...text.matchAll(/#EXT-X-STREAM-INF:[^\n]*?\bBANDWIDTH=(\d+)/g)].map((m) => Number(m[1]))
    .sort((x, y) => x - y);
  if (bws.length < 2) throw new Error('throttling needs at least two variants in the master');
  return Math.round(Math.min(bws[0] * 1.3, (bws[0] + bws[1]) / 2) / 1000);
}

// A link with room for every variant: 4 x the highest BANDWIDTH.
async function linkKbps(url) {
  const text = await (await fetch(url)).text();
  const bws = [...text.matchAll(/#EXT-X-STREAM-INF:[^\n]*?\bBANDWIDTH=(\d+)/g)].map((m) => Number(m[1]));
  return Math.round((4 * Math.max(...bws)) / 1000);
}

async function setThroughput(run, kbps) {
  if (run.relay) {
    run.relay.setKbps(kbps);
    return;
  }
  await run.cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0,
    downloadThroughput: kbps ? (kbps * 1000) / 8 : -1,
    uploadThroughput: -1,
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startOne(browser, name, args, origin) {
  const [kind, ll, lib] = CONFIGS[name];
  const { context, page, console: consoleMsgs } = await playerPage(browser, [libraries[lib], pageScript]);
  const net = { requests: {}, renditionsRequested: {}, failed: [], aborted: 0, recording: true };
  const t0 = Date.now();
  const rel = () => +((Date.now() - t0) / 1000).toFixed(3);
  const short = (u) => (u.startsWith(origin.origin) ? u.slice(origin.origin.length) : u);
  // Anything on the origin's host (any port): the master may come from
  // elsewhere than the media, as behind a CDN.
  const mine = (r) => { try { return new URL(r.url()).hostname === origin.hostname; } catch (e) { return false; } };
  // PLAYER_MATRIX_TRACE=DIR: every request and its answer, one line each,
  // in DIR/<player>.trace (when it went out, when it ended, status, path;
// seconds from the wall clock on its first line, '# t0 UNIX_SECONDS'):
  // what to read when a player leaves a hole.
  const trace = process.env.PLAYER_MATRIX_TRACE
    ? fs.createWriteStream(path.join(process.env.PLAYER_MATRIX_TRACE, `${name}.trace`)) : null;
  if (trace) {
    // The first line: the wall clock (Unix seconds) the times below count
    // from, so that they can be set beside the server's own clock.
    trace.write(`# t0 ${t0 / 1000}\n`);
    page.on('console', (m) => trace.write(`${rel()} console ${m.type()} ${m.text().slice(0, 400)}\n`));
    const sent = new Map();
    page.on('request', (r) => { if (mine(r)) sent.set(r, rel()); });
    const done = (r, status) => {
      if (!mine(r)) return;
      trace.write(`${sent.get(r)} ${rel()} ${status} ${short(r.url())}\n`);
      sent.delete(r);
    };
    page.on('requestfinished', async (r) => {
      const resp = await r.response().catch(() => null);
      done(r, resp ? resp.status() : 0);
    });
    page.on('requestfailed', (r) => done(r, (r.failure() || {}).errorText || 'failed'));
  }
  page.on('request', (r) => {
    if (!net.recording || !mine(r)) return;
    const u = new URL(r.url());
    const k = kindOf(u);
    net.requests[k] = (net.requests[k] || 0) + 1;
    const rend = u.pathname.split('/').slice(-2, -1)[0];
    if (k !== 'master') net.renditionsRequested[rend] = (net.renditionsRequested[rend] || 0) + 1;
  });
  page.on('response', (r) => {
    if (!net.recording || !mine(r.request()) || r.status() < 400) return;
    net.failed.push({ t: rel(), url: short(r.url()), status: r.status() });
  });
  page.on('requestfailed', (r) => {
    if (!net.recording || !mine(r)) return;
    const text = (r.failure() || {}).errorText || 'failed';
    // A player cancelling its own request (a switch, a part it no longer
    // needs) is not a failure of the server; counted apart.
    if (text === 'net::ERR_ABORTED') net.aborted++;
    else net.failed.push({ t: rel(), url: short(r.url()), status: text });
  });
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  // With --throttle-by relay the page reaches the origin through a relay
  // of its own (same host, another port; the playlists' URIs are relative).
  let url = args.url;
  let relay = null;
  if (args.throttle && args.throttleBy === 'relay') {
    relay = await startRelay(origin.hostname, Number(origin.port) || 80);
    const u = new URL(args.url);
    u.port = String(relay.port);
    url = u.href;
  }
  if (args.startKbps || args.linkKbps) await setThroughput({ relay, cdp }, args.startKbps || args.linkKbps);
  await page.evaluate(([k, u, l]) => window.startPlayer(k, u, l), [kind, url, ll]);
  return { name, ll, context, page, cdp, net, consoleMsgs, relay, throttled: [] };
}

function problemsOf(r, args) {
  const p = [];
  if (r.firstFrameS === null) p.push('never showed a frame');
  if (r.errors.length) p.push(`${r.errors.length} error events, first: ${r.errors[0].source} ${r.errors[0].text}`);
  if (r.gapJumps.length) p.push(`${r.gapJumps.length} gap jumps/nudges, first: ${r.gapJumps[0].text}`);
  if (r.stalls.length) p.push(`${r.stalls.length} stalls after the first frame, ${r.stalledS} s in all`);
  if (r.failedRequests.length) {
    const f = r.failedRequests[0];
    p.push(`${r.failedRequests.length} failed requests, first: ${f.url} -> ${f.status}`);
  }
  if (!r.latency) p.push('latency never measured');
  if (args.expectHeights && JSON.stringify(r.listed) !== JSON.stringify(args.expectHeights))
    p.push(`lists renditions ${r.listed}, expected ${args.expectHeights}`);
  if (args.throttle) {
    if (r.throttleError) p.push(`throttling failed: ${r.throttleError}`);
    if (!r.switchesDown) p.push('did not switch down under throttling');
    else if (!r.switchesUpAfterLift) p.push('did not switch up after the throttle was lifted');
    if (args.expectHeights && !r.played.includes(Math.min(...args.expectHeights)))
      p.push(`never played the lowest rendition (${Math.min(...args.expectHeights)}) while throttled`);
  }
  return p;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const origin = new URL(args.url);
  if (args.throttle && !args.throttle.kbps) args.throttle.kbps = await throttleKbps(args.url);
  if (args.linkKbps === 'auto') args.linkKbps = await linkKbps(args.url);
  if (args.startKbps === 'auto') args.startKbps = args.throttle ? args.throttle.kbps : await throttleKbps(args.url);
  const browser = await launch();
  const results = [];
  try {
    const runs = await Promise.all(args.players.map((n) => startOne(browser, n, args, origin)));
    // Play time counts from the moment every player shows a frame (or the
    // start timeout): each then plays at least --seconds.
    const startDeadline = Date.now() + args.startTimeout * 1000;
    while (Date.now() < startDeadline) {
      const started = await Promise.all(runs.map((r) => r.page.evaluate(() => window.matrix.out.firstFrameS !== null)
        .catch(() => true)));
      if (started.every(Boolean)) break;
      await sleep(250);
    }
    const playStart = Date.now();
    const at = (s) => playStart + s * 1000;
    const plan = [];
    if (args.throttle) {
      plan.push([at(args.throttle.down), args.throttle.kbps]);
      plan.push([at(args.throttle.up), args.linkKbps]);
    }
    for (const [when, kbps] of plan) {
      await sleep(Math.max(0, when - Date.now()));
      await Promise.all(runs.map(async (r) => {
        try {
          await setThroughput(r, kbps);
          r.throttled.push([await r.page.evaluate(() => (performance.now() - window.matrix.t0) / 1000), kbps]);
        } catch (e) {
          r.throttleError = e.message;
        }
      }));
    }
    await sleep(Math.max(0, at(args.seconds) - Date.now()));
    for (const r of runs) {
      r.net.recording = false;
      // A page that crashed or no longer answers is a result too (a
      // failing one), not the end of the whole run.
      let o;
      try {
        o = await Promise.race([r.page.evaluate(() => window.collect()),
                                sleep(20000).then(() => { throw new Error('page did not answer in 20 s'); })]);
      } catch (e) {
        o = { errors: [{ t: null, source: 'harness', text: `collecting failed: ${e.message}`, fatal: true }],
              gapJumps: [], stalls: [], stalledS: 0, firstFrameS: null, listed: [], heights: [], latency: [],
              playerSwitches: 0, notes: [], estimates: [] };
      }
      results.push(summarise(r, o, args));
      await r.context.close().catch(() => {});
      if (r.relay) await r.relay.close();
    }
  } finally {
    await browser.close();
  }
  // exitCode, not process.exit(): stdout to a pipe is written
  // asynchronously, and exiting at once cut the long lines short (players
  // went missing from the output).
  for (const r of results) console.log(JSON.stringify(r));
  process.exitCode = results.every((r) => r.problems.length === 0) ? 0 : 1;
}

function summarise(run, o, args) {
  const heights = o.heights.map(([, h]) => h);
  let down = 0, up = 0, upAfterLift = 0;
  const lift = run.throttled.length === 2 ? run.throttled[1][0] : Infinity;
  for (let i = 1; i < o.heights.length; i++) {
    if (o.heights[i][1] < o.heights[i - 1][1]) down++;
    else {
      up++;
      if (o.heights[i][0] >= lift) upAfterLift++;
    }
  }
  const r = {
    player: run.name,
    lowLatency: run.ll,
    firstFrameS: o.firstFrameS,
    latency: stat(o.latency),
    stalls: o.stalls,
    stalledS: o.stalledS,
    errors: o.errors,
    gapJumps: o.gapJumps,
    failedRequests: run.net.failed,
    abortedRequests: run.net.aborted,
    requests: run.net.requests,
    renditionsRequested: run.net.renditionsRequested,
    listed: [...o.listed].sort((a, b) => b - a),
    played: [...new Set(heights)].sort((a, b) => b - a),
    heights: o.heights,
    switchesDown: down,
    switchesUp: up,
    switchesUpAfterLift: upAfterLift,
    playerSwitches: o.playerSwitches,
    throttled: run.throttled,
    throttleError: run.throttleError,
    frames: o.frames,
    droppedFrames: o.droppedFrames,
    currentTime: o.currentTime,
    paused: o.paused,
    notes: o.notes,
    estimates: o.estimates,
    sbOps: o.sbOps,
    consoleErrors: run.consoleMsgs.filter((m) => m.type === 'error').map((m) => m.text.slice(0, 300)).slice(0, 20),
  };
  r.problems = problemsOf(r, args);
  return r;
}

await main();
