// Plays a live sluice stream in Debian's chromium with hls.js (lowLatencyMode,
// as the player page configures it) while the test drops the publisher and
// brings it back within the reconnect window: hls.js must follow the same
// playlists across the EXT-X-DISCONTINUITY and keep playing, with no fatal
// error and no reload by the page. The buffer running dry while the
// publisher is away is expected (counted as stalls). Prints one JSON line;
// exits 0 only if every check held.
//
//   node hls_reconnect.mjs http://127.0.0.1:PORT/hls/demo/master.m3u8 PLAY_S
import { launch, hlsPage } from './chromium.mjs';

const url = process.argv[2];
const playS = Number(process.argv[3] || 30);

const browser = await launch();
let result;
try {
  const { page, consoleErrors } = await hlsPage(browser);
  result = await page.evaluate(async ({ url, playS }) => {
    const video = document.getElementById('v');
    const out = { fatal: null, errors: [], stalls: 0, ccPlayed: [], afterJoin: 0,
                  manifestLoads: 0 };
    if (!Hls.isSupported()) { out.fatal = 'hls.js not supported'; return out; }
    const hls = new Hls({ lowLatencyMode: true, capLevelToPlayerSize: false, debug: false });
    hls.on(Hls.Events.MANIFEST_LOADING, () => out.manifestLoads++);
    hls.on(Hls.Events.ERROR, (_, d) => {
      if (d.details === 'bufferStalledError') { out.stalls++; return; }
      // hls.js nudges over tiny holes MSE leaves (see hls_ll.mjs); and the
      // held reloads time out while nothing is published (the gap).
      if (!d.fatal && (d.details === 'bufferSeekOverHole' || d.details === 'bufferNudgeOnStall' ||
                       d.details === 'levelLoadTimeOut' || d.details === 'audioTrackLoadTimeOut' ||
                       d.details === 'fragLoadTimeOut' || d.details === 'fragLoadError' ||
                       d.details === 'levelLoadError' || d.details === 'audioTrackLoadError')) {
        out.errors.push(`(non-fatal) ${d.details}`);
        return;
      }
      out.errors.push(`${d.type}/${d.details}${d.fatal ? ' (fatal)' : ''} at ` +
                      `${video.currentTime.toFixed(3)}${d.reason ? ' ' + d.reason : ''}`);
      if (d.fatal) out.fatal = d.details;
    });
    let joinAt = null;
    hls.on(Hls.Events.FRAG_CHANGED, (_, d) => {
      if (d.frag.type !== 'main') return;
      if (!out.ccPlayed.includes(d.frag.cc)) out.ccPlayed.push(d.frag.cc);
      if (d.frag.cc > 0 && joinAt === null) joinAt = video.currentTime;
    });
    const manifest = new Promise((resolve) => hls.on(Hls.Events.MANIFEST_PARSED, resolve));
    hls.loadSource(url);
    hls.attachMedia(video);
    await manifest;
    await video.play().catch((e) => { out.errors.push('play(): ' + e); });
    const end = performance.now() + playS * 1000;
    while (performance.now() < end && !out.fatal) {
      await new Promise((r) => setTimeout(r, 250));
      if (joinAt !== null) out.afterJoin = Math.max(out.afterJoin, video.currentTime - joinAt);
    }
    out.currentTime = video.currentTime;
    out.frames = video.getVideoPlaybackQuality().totalVideoFrames;
    hls.destroy();
    return out;
  }, { url, playS });
  result.consoleErrors = consoleErrors;
} finally {
  await browser.close();
}
const problems = [];
if (result.fatal) problems.push(`fatal: ${result.fatal}`);
if (!result.ccPlayed.some((cc) => cc > 0)) problems.push('never played past the discontinuity');
if (result.afterJoin < 4) problems.push(`played only ${result.afterJoin.toFixed(1)} s after the join`);
if (result.manifestLoads !== 1) problems.push(`the master was loaded ${result.manifestLoads} times`);
const hard = result.errors.filter((e) => !e.startsWith('(non-fatal)'));
if (hard.length) problems.push(`hls.js errors: ${hard.join('; ')}`);
result.problems = problems;
console.log(JSON.stringify(result));
process.exit(problems.length ? 1 : 0);
