// Plays a sluice master playlist in Debian's chromium with hls.js and walks
// through every rendition, switching at segment boundaries, to prove the
// ladder is switchable the way buyers' players use it: every level loads,
// plays and hands over to the next without a media error or a stall that
// needs a seek. Prints one JSON line with what happened; exits 0 only if
// every check held.
//
//   node hls_switch.mjs http://127.0.0.1:PORT/hls/demo/master.m3u8 [TIMEOUT_S]
import { launch, hlsPage } from './chromium.mjs';

const url = process.argv[2];
const timeoutS = Number(process.argv[3] || 90);

const browser = await launch();
let result;
try {
  const { page, consoleErrors } = await hlsPage(browser);
  result = await page.evaluate(async ({ url, timeoutS }) => {
    const video = document.getElementById('v');
    const out = { levels: [], switched: [], played: {}, fatal: null, errors: [], ended: false };
    if (!Hls.isSupported()) { out.fatal = 'hls.js not supported'; return out; }
    // Capping to the player size would hide the top rungs from a tiny video element.
    const hls = new Hls({ capLevelToPlayerSize: false, startLevel: 0, debug: false });
    const ranges = (b) => Array.from({ length: b.length }, (_, i) =>
      `${b.start(i).toFixed(3)}-${b.end(i).toFixed(3)}`).join(' ');
    hls.on(Hls.Events.ERROR, (_, d) => {
      // hls.js nudges the playhead over a start gap of about a microsecond
      // that Chromium's MSE leaves in front of the first sample (seen with
      // both tracks starting at the same non-zero time); nothing is skipped
      // that a viewer could see. Recorded apart, and only that exact case.
      const m = /seeking from ([0-9.]+) to ([0-9.]+)/.exec(d.reason || '');
      if (d.details === 'bufferSeekOverHole' && !d.fatal && m && Number(m[1]) === 0 &&
          Number(m[2]) - 0.1 < 0.001) {
        out.startNudge = d.reason;
        return;
      }
      // Where it happened, so a hole or a stall can be traced to a segment.
      out.errors.push(`${d.type}/${d.details}${d.fatal ? ' (fatal)' : ''} at ` +
                      `${video.currentTime.toFixed(3)} level ${hls.currentLevel} ` +
                      `buffered [${ranges(video.buffered)}]${d.reason ? ' ' + d.reason : ''}`);
      if (d.fatal) out.fatal = d.details;
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => out.switched.push(d.level));
    hls.on(Hls.Events.FRAG_CHANGED, (_, d) => {
      out.played[d.frag.level] = (out.played[d.frag.level] || 0) + 1;
    });
    const manifest = new Promise((resolve) => hls.on(Hls.Events.MANIFEST_PARSED, resolve));
    hls.loadSource(url);
    hls.attachMedia(video);
    await manifest;
    out.levels = hls.levels.map((l) => `${l.width}x${l.height}@${l.bitrate}`);
    video.playbackRate = 2;
    await video.play();
    // Walk up the ladder and back down, one level per ~2 s of media.
    const order = [...hls.levels.keys(), ...[...hls.levels.keys()].reverse().slice(1)];
    const deadline = performance.now() + timeoutS * 1000;
    for (const level of order) {
      hls.nextLevel = level;
      const from = video.currentTime;
      while (performance.now() < deadline && !out.fatal && !video.ended &&
             !(out.switched.at(-1) === level && video.currentTime > from + 2)) {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    while (performance.now() < deadline && !out.fatal && !video.ended)
      await new Promise((r) => setTimeout(r, 100));
    out.ended = video.ended;
    out.currentTime = video.currentTime;
    out.duration = video.duration;
    const q = video.getVideoPlaybackQuality();
    out.frames = q.totalVideoFrames;
    out.mediaError = video.error ? video.error.code : null;
    return out;
  }, { url, timeoutS });
  result.consoleErrors = consoleErrors;
} finally {
  await browser.close();
}

const problems = [];
if (result.fatal) problems.push(`fatal hls.js error ${result.fatal}`);
if (result.mediaError) problems.push(`media error ${result.mediaError}`);
for (let i = 0; i < result.levels.length; i++)
  if (!result.switched.includes(i) || !result.played[i]) problems.push(`level ${i} never played`);
// An aborted load is hls.js cancelling an in-flight fragment because this
// script forced a level switch; it says nothing about the stream.
const bad = result.errors.filter((e) => !e.startsWith('networkError/aborted '));
if (bad.length) problems.push(`hls.js errors: ${bad.join(', ')}`);
if (!result.ended) problems.push(`did not play to the end (at ${result.currentTime} of ${result.duration})`);
result.problems = problems;
console.log(JSON.stringify(result));
process.exit(problems.length ? 1 : 0);
