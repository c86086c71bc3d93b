// A clip's MP4 (docs/clips.md) played to its end by Debian's chromium in a
// plain <video>, as a shop page or a social-media preview would:
//   node clip_play.mjs MP4_URL EXPECTED_FRAMES
// Prints one JSON line {ended, error, frames, dropped, corrupted, duration,
// problems}; exits 0 only if problems is empty: the clip plays to 'ended'
// with no media error, Chromium decodes about the clip's frames (the
// re-encoded ends and the copied middle, across both joins), none corrupt.
import { launch } from './chromium.mjs';

const [url, expectedArg] = process.argv.slice(2, 4);
const expected = Number(expectedArg);
const browser = await launch();
const out = { problems: [] };
try {
  const page = await browser.newPage();
  await page.setContent('<!doctype html><video id="v" muted playsinline></video>');
  const r = await page.evaluate(async ([src, limitMs]) => {
    const v = document.getElementById('v');
    const done = new Promise((resolve) => {
      const t = setTimeout(() => resolve('timeout'), limitMs);
      v.addEventListener('ended', () => { clearTimeout(t); resolve('ended'); });
      v.addEventListener('error', () => { clearTimeout(t); resolve('error'); });
    });
    v.src = src;
    v.play().catch(() => {});
    const how = await done;
    const q = v.getVideoPlaybackQuality();
    return { how, error: v.error ? `${v.error.code} ${v.error.message}` : null,
             frames: q.totalVideoFrames, dropped: q.droppedVideoFrames,
             corrupted: q.corruptedVideoFrames, duration: v.duration };
  }, [url, 30000]);
  Object.assign(out, r);
  if (r.how !== 'ended') out.problems.push(`did not play to its end: ${r.how} ${r.error || ''}`);
  if (r.error) out.problems.push(`media error ${r.error}`);
  if (r.corrupted) out.problems.push(`${r.corrupted} corrupted frames`);
  // Frames Chromium presented or dropped: all of the clip's, give or take
  // the last one (its 'ended' may come before the last frame is counted).
  if (!(r.frames >= expected - 2 && r.frames <= expected + 1)) {
    out.problems.push(`${r.frames} frames decoded, the clip has ${expected}`);
  }
} catch (e) {
  out.problems.push(String(e && e.stack || e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
process.exit(out.problems.length ? 1 : 0);
