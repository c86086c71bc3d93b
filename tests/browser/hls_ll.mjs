// Plays a live sluice stream in Debian's chromium with hls.js in
// lowLatencyMode and measures how far behind live it plays. Proves that a
// real LL-HLS client gets what it needs from sluice: the playlist's
// EXT-X-PART/EXT-X-SERVER-CONTROL are understood, parts are loaded, playlist
// reloads are blocking (_HLS_msn/_HLS_part), and playback keeps going without
// errors. Prints one JSON line; exits 0 only if every check held.
//
//   node hls_ll.mjs http://127.0.0.1:PORT/hls/demo/master.m3u8 [PLAY_S] [TIMEOUT_S]
//
// Latency is measured two ways, sampled every 250 ms once playing:
//   - "pdt": wall clock now minus the EXT-X-PROGRAM-DATE-TIME of the frame on
//     screen (hls.playingDate). sluice stamps a segment with the time its
//     first frame reached the ingest, so this is ingest-to-screen latency.
//   - "hls": hls.js's own hls.latency (live edge of the playlist minus the
//     playhead).
import { launch, hlsPage, stat } from './chromium.mjs';

const url = process.argv[2];
const playS = Number(process.argv[3] || 15);
const timeoutS = Number(process.argv[4] || playS + 30);

const browser = await launch();
let result;
try {
  const { page, consoleErrors } = await hlsPage(browser);
  // Every playlist request hls.js makes, to see its delivery directives.
  const playlistUrls = [];
  page.on('request', (r) => { if (r.url().includes('.m3u8')) playlistUrls.push(r.url()); });
  result = await page.evaluate(async ({ url, playS, timeoutS }) => {
    const video = document.getElementById('v');
    const out = { fatal: null, errors: [], parts: 0, fragments: 0, pdt: [], hls: [],
                  partTarget: null, canBlockReload: null, stalls: 0 };
    if (!Hls.isSupported()) { out.fatal = 'hls.js not supported'; return out; }
    // As an LL-HLS page would configure it: catch up to the target latency by
    // playing up to 1.5x when behind (hls.js plays at 1x by default).
    const hls = new Hls({ lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5,
                          capLevelToPlayerSize: false, debug: false });
    hls.on(Hls.Events.ERROR, (_, d) => {
      // A start gap of about a microsecond that Chromium's MSE leaves in
      // front of the first sample is nudged over by hls.js (see
      // docs/testing.md); nothing a viewer could see. Recorded apart.
      const m = /seeking from ([0-9.]+) to ([0-9.]+)/.exec(d.reason || '');
      if (d.details === 'bufferSeekOverHole' && !d.fatal && m &&
          Number(m[2]) - Number(m[1]) < 0.1) {
        out.startNudge = d.reason;
        return;
      }
      // A playlist reload that hls.js gave up waiting for (its own timer),
      // recovered by its retry: a part came late because the sanitizer
      // build beside chromium ran short of CPU. Counted and bounded below;
      // a server that stopped answering held requests would exceed it.
      if (!d.fatal && (d.details === 'levelLoadTimeOut' || d.details === 'audioTrackLoadTimeOut')) {
        out.reloadTimeouts = (out.reloadTimeouts || 0) + 1;
        return;
      }
      if (d.details === 'bufferStalledError') out.stalls++;
      out.errors.push(`${d.type}/${d.details}${d.fatal ? ' (fatal)' : ''} at ` +
                      `${video.currentTime.toFixed(3)}${d.reason ? ' ' + d.reason : ''}`);
      if (d.fatal) out.fatal = d.details;
    });
    hls.on(Hls.Events.LEVEL_LOADED, (_, d) => {
      out.partTarget = d.details.partTarget;
      out.canBlockReload = d.details.canBlockReload;
    });
    hls.on(Hls.Events.FRAG_LOADED, (_, d) => {
      if (d.part) out.parts++;
      else out.fragments++;
    });
    const manifest = new Promise((resolve) => hls.on(Hls.Events.MANIFEST_PARSED, resolve));
    hls.loadSource(url);
    hls.attachMedia(video);
    await manifest;
    const deadline = performance.now() + timeoutS * 1000;
    const playing = new Promise((resolve) => video.addEventListener('playing', resolve, { once: true }));
    await video.play();
    await Promise.race([playing, new Promise((r) => setTimeout(r, timeoutS * 1000))]);
    const start = performance.now();
    while (performance.now() < deadline && !out.fatal && performance.now() - start < playS * 1000) {
      await new Promise((r) => setTimeout(r, 250));
      // Skip the first two seconds: hls.js is still catching up to its target.
      if (performance.now() - start < 2000 || video.paused) continue;
      if (hls.playingDate) out.pdt.push((Date.now() - hls.playingDate.getTime()) / 1000);
      if (Number.isFinite(hls.latency)) out.hls.push(hls.latency);
    }
    out.played = video.currentTime;
    out.targetLatency = hls.targetLatency;
    const q = video.getVideoPlaybackQuality();
    out.frames = q.totalVideoFrames;
    out.mediaError = video.error ? video.error.code : null;
    hls.destroy();
    return out;
  }, { url, playS, timeoutS });
  result.consoleErrors = consoleErrors;
  result.blockingReloads = playlistUrls.filter((u) => u.includes('_HLS_msn=')).length;
  result.playlistRequests = playlistUrls.length;
} finally {
  await browser.close();
}

result.latencyPdt = stat(result.pdt);
result.latencyHls = stat(result.hls);
delete result.pdt;
delete result.hls;

const problems = [];
if (result.fatal) problems.push(`fatal hls.js error ${result.fatal}`);
if (result.mediaError) problems.push(`media error ${result.mediaError}`);
if (!result.partTarget) problems.push('hls.js saw no EXT-X-PART-INF');
if (!result.canBlockReload) problems.push('hls.js saw no CAN-BLOCK-RELOAD');
if (result.parts === 0) problems.push('no part was loaded');
if (result.blockingReloads === 0) problems.push('no blocking playlist reload was made');
if (!result.latencyPdt) problems.push('latency was never measured (not playing?)');
if (result.errors.length) problems.push(`hls.js errors: ${result.errors.join(', ')}`);
// One late round (the video and the audio playlist) is tolerated; more means
// held reloads are not being answered.
if ((result.reloadTimeouts || 0) > 2)
  problems.push(`${result.reloadTimeouts} playlist reloads timed out`);
result.problems = problems;
console.log(JSON.stringify(result));
process.exit(problems.length ? 1 : 0);
