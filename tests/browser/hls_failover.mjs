// Plays one live sluice stream through several origins at once (one
// chromium page each, hls.js in lowLatencyMode as the player page sets it)
// while tests/interop/redis_sentinel.py kills the Redis master under them,
// and records what a viewer would notice: every stall (the <video>'s
// 'waiting' event after playback began, until 'playing' again) with its wall
// clock start and length, hls.js's errors (fatal or not) with their wall
// clock time, and how far playback got. Prints one JSON line per URL, in the
// order given; the caller judges (it knows when the kill was). Exits 0 when
// no page had a fatal error.
//
//   node hls_failover.mjs URL[,URL...] PLAY_S
import { launch, playerPage, libraries } from './chromium.mjs';

const urls = process.argv[2].split(',');
const playS = Number(process.argv[3] || 30);

const browser = await launch();
let results;
try {
  results = await Promise.all(urls.map(async (url) => {
    const { context, page, console: cons } = await playerPage(browser, [libraries['hls.js']]);
    // Playlist requests that were slow (> 1 s), failed or not answered 200:
    // what the player met during the failover, with wall clock times.
    const slow = [];
    const began = new Map();
    page.on('request', (r) => { if (r.url().includes('.m3u8')) began.set(r, Date.now()); });
    const note = (r, status) => {
      const t0 = began.get(r);
      if (t0 === undefined) return;
      began.delete(r);
      const s = (Date.now() - t0) / 1000;
      if (status !== 200 || s > 1) {
        const u = new URL(r.url());
        slow.push({ t: t0, s: +s.toFixed(3), status, url: u.pathname.split('/').slice(-2).join('/') + u.search });
      }
    };
    page.on('requestfinished', async (r) => { const resp = await r.response(); note(r, resp ? resp.status() : 0); });
    page.on('requestfailed', (r) => note(r, r.failure() ? r.failure().errorText : 'failed'));
    const out = await page.evaluate(async ({ url, playS }) => {
      const video = document.getElementById('v');
      const out = { url, fatal: null, errors: [], stalls: [], stalledErrors: 0,
                    startedAt: null, levelSwitches: 0 };
      if (!Hls.isSupported()) { out.fatal = 'hls.js not supported'; return out; }
      const hls = new Hls({ lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5,
                            capLevelToPlayerSize: false, debug: false });
      let waitingSince = null;
      video.addEventListener('playing', () => {
        if (out.startedAt === null) out.startedAt = Date.now();
        if (waitingSince !== null) {
          out.stalls.push({ start: waitingSince, s: (Date.now() - waitingSince) / 1000 });
          waitingSince = null;
        }
      });
      video.addEventListener('waiting', () => {
        if (out.startedAt !== null && waitingSince === null) waitingSince = Date.now();
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, () => out.levelSwitches++);
      hls.on(Hls.Events.ERROR, (_, d) => {
        if (d.details === 'bufferStalledError') out.stalledErrors++;
        const code = d.response && d.response.code ? ` HTTP ${d.response.code}` : '';
        out.errors.push({ t: Date.now(), fatal: !!d.fatal, what: `${d.type}/${d.details}${code}` });
        if (d.fatal) out.fatal = `${d.details}${code}`;
      });
      const manifest = new Promise((resolve) => hls.on(Hls.Events.MANIFEST_PARSED, resolve));
      hls.loadSource(url);
      hls.attachMedia(video);
      await manifest;
      await video.play().catch((e) => { out.errors.push({ t: Date.now(), fatal: false, what: 'play(): ' + e }); });
      const end = performance.now() + playS * 1000;
      while (performance.now() < end && !out.fatal)
        await new Promise((r) => setTimeout(r, 250));
      if (waitingSince !== null)
        out.stalls.push({ start: waitingSince, s: (Date.now() - waitingSince) / 1000, open: true });
      out.currentTime = video.currentTime;
      out.frames = video.getVideoPlaybackQuality().totalVideoFrames;
      out.dropped = video.getVideoPlaybackQuality().droppedVideoFrames;
      out.latency = hls.latency;
      hls.destroy();
      return out;
    }, { url, playS });
    out.consoleErrors = cons.filter((m) => m.type === 'error').map((m) => m.text);
    out.playlistTrouble = slow;
    await context.close();
    return out;
  }));
} finally {
  await browser.close();
}
for (const r of results) console.log(JSON.stringify(r));
process.exit(results.some((r) => r.fatal) ? 1 : 0);
