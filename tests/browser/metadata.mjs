// Timed metadata (docs/metadata.md) in Debian's chromium: what players and
// people see of the items posted to a live stream.
//
//   node metadata.mjs e2e ORIGIN_BASE ADMIN_BASE STREAM_ID SHOT_DIR
//     hls.js and Shaka Player (each in a page of its own, low latency) and
//     sluice's player page play the stream, and the admin dashboard is open
//     on it. The script posts items through the admin API (two product
//     cards, one with fields the page must refuse, and a plain text), then
//     one through the dashboard's "Send test product card" button. Each
//     player must receive every payload in both forms (emsg/ID3 and
//     EXT-X-DATERANGE), and the player page must show each card, with the
//     right title, on the first frame at or after the stamped time.
//
//     With --local-web DIR (after the arguments) the player page's and the
//     dashboard's own files, and their Content-Security-Policy (as
//     web/web_reply.c writes it), come from DIR instead of the server: for
//     a binary built from another branch, whose embedded pages are older.
//
//   node metadata.mjs e2e-fake ORIGIN_BASE ADMIN_BASE STREAM_ID SHOT_DIR
//     The same on a sluice without the metadata endpoint: this script plays
//     the server's part (FakeServer below) in the browser's network layer.
//     A "post" is stamped on the start of the newest part any page
//     fetches; the emsg/ID3 box (docs/metadata.md) then goes before the
//     moof of every part (any page, any rendition) that starts within the
//     second up to that time, and the EXT-X-DATERANGE into every media
//     playlist. The dashboard's POST is
//     answered the same way. What it cannot check is the server's own
//     stamping (the live edge) and formatting: the e2e mode does.
//
//   node metadata.mjs stub ORIGIN_BASE STREAM_ID SHOT_DIR
//     The player page alone, on any sluice (no metadata support needed):
//     the test itself puts a DATERANGE into the media playlists the page
//     loads (page.route) and cues like hls.js's into its metadata track,
//     and checks the page's side: one item per payload from the two forms,
//     hex payloads, untrusted fields, the timing, items in the past.
//
// Offsets, each in seconds, per player and item ("cue time" = the time of
// the item on the video's timeline, from its emsg):
//   lead      cue time minus currentTime when the player first told of it
//             (> 0: known before it plays)
//   enter     currentTime at the player's own "now" notification (hls.js:
//             the metadata track cue's enter event; Shaka: its metadata
//             event) minus the cue time
//   frame     the player page: media time of the frame the card was shown
//             on, minus the cue time (the frame before it must be earlier
//             than the cue)
//   pdt       the program date-time of the cue time as the player maps it,
//             minus the program_date_time the API answered
//   daterange the DATERANGE form's time minus the emsg form's
// Prints one JSON line: {mode, players: {...}, problems}; exits 0 only if
// problems is empty.
import { launch, libraries, playerPage, stat } from './chromium.mjs';
import fs from 'node:fs';
import path from 'node:path';

const mode = process.argv[2];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const problems = [];
const check = (ok, what) => { if (!ok) problems.push(what); return ok; };
const EMSG_ID3 = 'https://aomedia.org/emsg/ID3';
const EPS = 0.002;          // media-time rounding, as the page allows
// Bounds, honest for each mechanism (measured numbers: docs/benchmarks.md):
const ENTER_MAX_S = 1.0;    // timeupdate / Shaka's 4 Hz poll, on a busy machine
const PDT_MAX_S = 0.1;      // the date mapping: 3 frames at 30 fps
const DATERANGE_MAX_S = 0.1;

// Progress on stderr, so that a run that hangs says where.
const t0 = Date.now();
const progress = (what) => process.stderr.write(`metadata.mjs +${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}\n`);

async function until(what, fn, limitS) {
  progress(`waiting for ${what}`);
  const end = Date.now() + limitS * 1000;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await sleep(200);
  }
  throw new Error(`timed out after ${limitS} s waiting for ${what}`);
}

// ---- the in-page half for hls.js and Shaka (a page of its own each) ------

// Runs in the page: starts the player on url and records every
// notification of an item (window.meta.events) and every frame presented
// ([mediaTime, currentTime, playhead date ms, presentedFrames]).
function inPage([kind, url]) {
  const video = document.getElementById('v');
  const M = { events: [], frames: [], errors: [], kind };
  window.meta = M;
  const rec = (what, o) => {
    if (M.events.length < 3000) M.events.push(Object.assign({ what, currentTime: video.currentTime, wall: Date.now() }, o));
  };
  // The TXXX frames of an ID3 tag, as {version, encoding, info, payload}.
  function txxx(bytes) {
    const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    const out = [];
    if (b.length < 10 || b[0] !== 0x49 || b[1] !== 0x44 || b[2] !== 0x33) return out;
    const ss = (i) => ((b[i] & 0x7f) << 21) | ((b[i + 1] & 0x7f) << 14) | ((b[i + 2] & 0x7f) << 7) | (b[i + 3] & 0x7f);
    const end = Math.min(b.length, 10 + ss(6));
    let p = 10 + (b[5] & 0x40 ? ss(10) : 0);
    const dec = new TextDecoder('utf-8');
    while (p + 10 <= end) {
      const id = String.fromCharCode(b[p], b[p + 1], b[p + 2], b[p + 3]);
      const size = b[3] === 4 ? ss(p + 4) : ((b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]);
      if (!/^[A-Z0-9]{4}$/.test(id) || size <= 0) break;
      const f = b.subarray(p + 10, p + 10 + size);
      if (id === 'TXXX') {
        const z = f.indexOf(0, 1);
        out.push({ version: b[3], encoding: f[0], info: dec.decode(f.subarray(1, z)),
                   payload: dec.decode(f.subarray(z + 1)).replace(/\0+$/, '') });
      }
      p += 10 + size;
    }
    return out;
  }
  let playheadDate = () => null;
  const frame = (now, meta) => {
    M.frames.push([meta.mediaTime, video.currentTime, playheadDate(), meta.presentedFrames]);
    if (M.frames.length > 6000) M.frames.splice(0, 2000);
    video.requestVideoFrameCallback(frame);
  };
  video.requestVideoFrameCallback(frame);

  if (kind === 'hlsjs') {
    const hls = new Hls({ lowLatencyMode: true });
    M.player = hls;
    playheadDate = () => (hls.playingDate ? hls.playingDate.getTime() : null);
    hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) M.errors.push(`${d.type} ${d.details}`); });
    hls.on(Hls.Events.FRAG_PARSING_METADATA, (_, d) => {
      for (const s of d.samples) {
        if (s.type !== 'https://aomedia.org/emsg/ID3') continue;
        for (const f of txxx(s.data)) rec('parsed', Object.assign({ time: s.pts, frag: d.frag.type, level: d.frag.level }, f));
      }
    });
    // The DATERANGEs as hls.js parsed them (its API), once each.
    const ranges = new Set();
    hls.on(Hls.Events.LEVEL_UPDATED, (_, d) => {
      const all = (d.details && d.details.dateRanges) || {};
      for (const id of Object.keys(all)) {
        const r = all[id];
        if (ranges.has(id) || !/^sluice-/.test(id) || !Number.isFinite(r.startTime)) continue;
        ranges.add(id);
        rec('daterange', { id, payload: r.attr['X-PAYLOAD'], time: r.startTime });
      }
    });
    // The cues hls.js makes on its metadata track: the emsg's and the
    // DATERANGE's, each with its enter event. (The ones it adds in the task
    // that creates the track can vanish: see docs/metadata.md; the first
    // item's, then.)
    const seen = new WeakSet();
    setInterval(() => {
      for (const t of video.textTracks) {
        if (t.kind !== 'metadata') continue;
        for (const cue of t.cues || []) {
          if (seen.has(cue)) continue;
          seen.add(cue);
          const v = cue.value || {};
          const o = cue.type === 'https://aomedia.org/emsg/ID3'
            ? { form: 'emsg', info: v.info, payload: v.data, time: cue.startTime }
            : { form: 'daterange', id: cue.id, key: v.key, payload: v.data, time: cue.startTime };
          rec('cue', o);
          cue.addEventListener('enter', () => rec('enter', o));
        }
      }
    }, 50);
    hls.loadSource(url);
    hls.attachMedia(video);
    video.play().catch(() => {});
    return;
  }

  if (kind === 'videojs') {
    // video.js 8 / VHS 3.17 (src/media-segment-request.js: probeEmsgID3 ->
    // mux.js getEmsgID3; src/util/text-tracks.js: addMetadata for the
    // emsg's ID3 frames, addDateRangeMetadata for EXT-X-DATERANGE) puts
    // both forms as cues on its metadata text track ("Timed Metadata"):
    // the emsg's with cue.value = the ID3 frame ({key: 'TXXX', description,
    // data}), the DATERANGE's with cue.id = its ID and cue.value.data = the
    // X-PAYLOAD. It keeps the <video> element, which the page records.
    // Options as player_matrix_page.js has them.
    const player = videojs(video, { muted: true, autoplay: false, preload: 'auto',
                                     html5: { vhs: { llhls: true, overrideNative: true,
                                                     useNetworkInformationApi: false } } });
    M.player = player;
    // The playhead's date from the playing playlist's segments (VHS's
    // segment.start on the video's timeline and its programDateTime).
    playheadDate = () => {
      try {
        const media = player.tech(true).vhs.playlists.media();
        const t = video.currentTime;
        const seg = media.segments.filter((x) => Number.isFinite(x.start) && x.start <= t &&
                                                  Number.isFinite(x.programDateTime)).pop();
        return seg ? seg.programDateTime + (t - seg.start) * 1000 : null;
      } catch (e) {
        return null;
      }
    };
    player.on('error', () => { const e = player.error(); M.errors.push(`video.js ${e && e.code} ${e && e.message}`); });
    const seen = new WeakSet();
    const tracks = new WeakSet();
    setInterval(() => {
      const list = player.textTracks();
      for (let i = 0; i < list.length; i++) {
        const t = list[i];
        if (t.kind !== 'metadata') continue;
        if (!tracks.has(t)) {
          tracks.add(t);
          M.tracks = (M.tracks || []).concat([{ label: t.label, native: t instanceof window.TextTrack, mode: t.mode }]);
          t.addEventListener('cuechange', () => {
            for (const c of Array.from(t.activeCues || [])) if (c.sluice) rec('active', c.sluice);
          });
        }
        for (const cue of Array.from(t.cues || [])) {
          if (seen.has(cue)) continue;
          seen.add(cue);
          const v = cue.value || {};
          let o;
          // (A DATERANGE gives a second cue, {key: undefined, data: 0}:
          // VHS's own classListIndex, src/util/date-ranges.js.)
          if (v.key === 'TXXX') o = { form: 'emsg', info: v.description, payload: v.data, time: cue.startTime };
          else if (/^sluice-/.test(cue.id) && typeof v.data === 'string') {
            o = { form: 'daterange', id: cue.id, key: v.key, payload: v.data, time: cue.startTime };
          } else continue;
          cue.sluice = o;
          rec('cue', Object.assign({ end: cue.endTime }, o));
          if (o.form === 'daterange') rec('daterange', o);
          cue.addEventListener('enter', () => rec('enter', o));
        }
      }
    }, 50);
    player.src({ src: url, type: 'application/x-mpegURL' });
    player.play().catch(() => {});
    return;
  }

  (async () => {
    shaka.polyfill.installAll();
    const player = new shaka.Player();
    M.player = player;
    await player.attach(video);
    // As docs/interop.md and docs/metadata.md say: sequence mode for Shaka
    // <= 5.2.12, and emsg boxes parsed though HLS declares no schemes.
    player.configure({ streaming: { lowLatencyMode: true }, manifest: { hls: { sequenceMode: true } },
                       mediaSource: { dispatchAllEmsgBoxes: true } });
    playheadDate = () => { const d = player.getPlayheadTimeAsDate(); return d ? d.getTime() : null; };
    player.addEventListener('error', (e) => M.errors.push(`shaka ${e.detail && e.detail.code}`));
    const meta = (what) => (e) => rec(what, { type: e.metadataType, key: e.payload && e.payload.key,
                                              info: e.payload && e.payload.description,
                                              payload: e.payload && e.payload.data, time: e.startTime });
    player.addEventListener('metadataadded', meta('metadataadded'));
    player.addEventListener('metadata', meta('metadata'));
    player.addEventListener('emsg', (e) => {
      const d = e.detail;
      for (const f of txxx(d.messageData)) rec('emsg', Object.assign({ id: d.id, scheme: d.schemeIdUri, time: d.startTime }, f));
    });
    const region = (what) => (e) => {
      const d = e.detail;
      if (d.schemeIdUri !== 'com.sluice.metadata') return;
      const v = (d.values || []).find((x) => x.key === 'X-PAYLOAD');
      rec(what, { id: d.id, payload: v ? v.data : null, time: d.startTime });
    };
    player.addEventListener('timelineregionadded', region('region'));
    player.addEventListener('timelineregionenter', region('region-enter'));
    try {
      await player.load(url);
      video.play().catch(() => {});
    } catch (e) {
      M.errors.push(`shaka load failed: ${e && (e.code || e.message)}`);
    }
  })();
}

// X-PAYLOAD as players hand it over: quoted (quotes gone) or 0x<hex>.
function daterangeText(v) {
  if (typeof v !== 'string' || !/^0x([0-9a-f]{2})+$/i.test(v)) return v;
  return Buffer.from(v.slice(2), 'hex').toString('utf8');
}

// The offsets of one item in a player's record (see the top).
function offsetsOf(M, item) {
  const ev = M.events.filter((e) => e.payload !== undefined);
  const isEmsg = (e) => (e.what === 'parsed' || e.what === 'metadataadded' || e.what === 'emsg' ||
                         (e.what === 'cue' && e.form === 'emsg')) && e.payload === item.payload &&
                         (e.info === undefined || e.info === 'sluice');
  const first = ev.filter(isEmsg).sort((a, b) => a.wall - b.wall)[0];
  const dr = ev.filter((e) => (e.what === 'region' || e.what === 'daterange') && e.id === `sluice-${item.id}`)[0];
  const o = { emsg: !!first, hasDaterange: !!dr };
  if (M.kind === 'hlsjs') {
    // Whether hls.js's metadata track kept a cue of each form (printed).
    o.trackCues = ['emsg', 'daterange'].filter((form) => ev.some((e) => e.what === 'cue' && e.form === form &&
      (form === 'emsg' ? e.payload === item.payload : e.id === `sluice-${item.id}`)));
  }
  if (dr) o.daterangePayloadOk = daterangeText(dr.payload) === item.payload;
  if (!first) return o;
  const t = first.time;
  o.cueTime = +t.toFixed(4);
  o.lead = +(t - first.currentTime).toFixed(3);
  const parsed = ev.find((e) => e.what === 'parsed' && e.payload === item.payload);
  if (parsed) o.id3 = { version: parsed.version, encoding: parsed.encoding, info: parsed.info };
  const enter = ev.filter((e) => (e.what === 'enter' && e.form === 'emsg') ||
                                 (e.what === 'metadata' && e.type === 'org.id3'))
    .find((e) => e.payload === item.payload);
  if (enter) o.enter = +(enter.currentTime - t).toFixed(3);
  // video.js: when its track first listed the emsg cue as active (printed:
  // VHS gives a live cue no length until the next one comes, see
  // docs/metadata.md).
  const active = ev.find((e) => e.what === 'active' && e.form === 'emsg' && e.payload === item.payload);
  if (active) o.cuechange = +(active.currentTime - t).toFixed(3);
  if (dr) o.daterange = +(dr.time - t).toFixed(3);
  const i = M.frames.findIndex((f) => f[0] >= t - EPS);
  if (i > 0) {
    const [mediaTime, currentTime, date] = M.frames[i];
    o.frame = +(mediaTime - t).toFixed(4);
    o.frameBefore = +(M.frames[i - 1][0] - t).toFixed(4);
    if (date !== null) o.pdt = +((date - (currentTime - t) * 1000 - Date.parse(item.pdt)) / 1000).toFixed(3);
  }
  return o;
}


// ---- the server's part, played in the browser's network layer ----------

// Top-level MP4 boxes of buf as [type, start, end], and the first box of a
// path (['moof', 'traf', 'tfdt']) as [start of its payload, end].
function boxes(buf, start = 0, end = buf.length) {
  const out = [];
  for (let p = start; p + 8 <= end;) {
    let size = buf.readUInt32BE(p);
    let head = 8;
    if (size === 1) { size = Number(buf.readBigUInt64BE(p + 8)); head = 16; }
    if (size < head || p + size > end) break;
    out.push([buf.toString('latin1', p + 4, p + 8), p + head, p + size]);
    p += size;
  }
  return out;
}
function findBox(buf, pathTypes, start = 0, end = buf.length) {
  for (const [type, s, e] of boxes(buf, start, end)) {
    if (type !== pathTypes[0]) continue;
    if (pathTypes.length === 1) return [s, e];
    // moov/trak/mdia and moof/traf hold boxes right away.
    const r = findBox(buf, pathTypes.slice(1), s, e);
    if (r) return r;
  }
  return null;
}
const mdhdTimescale = (init) => {
  const b = findBox(init, ['moov', 'trak', 'mdia', 'mdhd']);
  if (!b) return null;
  return init[b[0]] === 1 ? init.readUInt32BE(b[0] + 20) : init.readUInt32BE(b[0] + 12);
};
const tfdtOf = (part) => {
  const b = findBox(part, ['moof', 'traf', 'tfdt']);
  if (!b) return null;
  return part[b[0]] === 1 ? Number(part.readBigUInt64BE(b[0] + 4)) : part.readUInt32BE(b[0] + 4);
};
const syncsafe = (n) => Buffer.from([(n >> 21) & 0x7f, (n >> 14) & 0x7f, (n >> 7) & 0x7f, n & 0x7f]);

// The box docs/metadata.md specifies: emsg v1, ID3v2.4, one TXXX "sluice".
function emsgBox(id, timeMs, payload) {
  const frame = Buffer.concat([Buffer.from([3]), Buffer.from('sluice\0', 'latin1'), Buffer.from(payload, 'utf8')]);
  const id3 = Buffer.concat([Buffer.from('ID3', 'latin1'), Buffer.from([4, 0, 0]), syncsafe(10 + frame.length),
                             Buffer.from('TXXX', 'latin1'), syncsafe(frame.length), Buffer.from([0, 0]), frame]);
  const fixed = Buffer.alloc(4 + 4 + 8 + 4 + 4);
  fixed.writeUInt32BE(0x01000000, 0);              // version 1, flags 0
  fixed.writeUInt32BE(1000, 4);                    // timescale
  fixed.writeBigUInt64BE(BigInt(timeMs), 8);       // presentation_time
  fixed.writeUInt32BE(0xffffffff, 16);             // event_duration: unknown
  fixed.writeUInt32BE(id, 20);
  const body = Buffer.concat([fixed, Buffer.from('https://aomedia.org/emsg/ID3\0\0', 'latin1'), id3]);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length, 0);
  head.write('emsg', 4, 'latin1');
  return Buffer.concat([head, body]);
}

// The program date-time of the start of a part (its URI's name) in a media
// playlist, or null.
function partDate(text, name) {
  let segStart = null, segDur = 0, acc = 0;
  for (const l of text.split('\n')) {
    if (l.startsWith('#EXT-X-PROGRAM-DATE-TIME:')) { segStart = Date.parse(l.slice(25).trim()); acc = 0; }
    else if (l.startsWith('#EXT-X-PART:')) {
      const d = /DURATION=([0-9.]+)/.exec(l);
      const u = /URI="([^"]+)"/.exec(l);
      if (u && u[1].split('?')[0].split('/').pop() === name && segStart !== null) return segStart + acc * 1000;
      if (d) acc += parseFloat(d[1]);
    } else if (l.startsWith('#EXT-X-PRELOAD-HINT:')) {
      // LL-HLS players fetch the hinted part before a playlist lists it.
      const u = /URI="([^"]+)"/.exec(l);
      if (u && u[1].split('?')[0].split('/').pop() === name && segStart !== null) return segStart + acc * 1000;
    } else if (l.startsWith('#EXTINF:')) segDur = parseFloat(l.slice(8));
    else if (l && !l.startsWith('#')) {
      if (l.split('?')[0].split('/').pop() === name && segStart !== null) return segStart;
      if (segStart !== null) segStart += segDur * 1000;
      acc = 0;
    }
  }
  return null;
}

// page.route with a handler whose failures (the page or browser closing
// while a request is held) end that request, not the script.
const routeSafely = (page, re, fn) => page.route(re, async (r) => {
  try {
    await fn(r);
  } catch (e) {
    await r.abort().catch(() => {});
  }
});

const stripHeaders = (h) => Object.fromEntries(Object.entries(h)
  .filter(([k]) => !['content-length', 'content-encoding'].includes(k.toLowerCase())));

// What the server does with a POST, done in each page's network layer.
class FakeServer {
  constructor() {
    this.items = [];          // {id, timeMs, pdt, payload, line}
    this.pending = [];        // posts waiting for the next part: {payload, resolve}
    this.timescales = new Map();   // init URL -> timescale
    this.playlists = new Map();    // rendition -> the newest playlist text
    this.sent = new Map();    // `${page}|${rendition}` -> ids put into a part fetched after the stamp
    this.nextId = 1;
    this.newest = [-1, -1];   // the newest part fetched by any page: [segment, part]
  }

  post(payload) {
    return new Promise((resolve) => this.pending.push({ payload, resolve }));
  }

  async attach(page, name) {
    await routeSafely(page, /\/hls\/[^/]+\/[^/]+\/init[^/]*\.mp4/, async (route) => {
      const resp = await route.fetch();
      const body = await resp.body();
      const ts = mdhdTimescale(body);
      if (ts) this.timescales.set(route.request().url().split('?')[0], ts);
      await route.fulfill({ status: resp.status(), headers: stripHeaders(resp.headers()), body });
    });
    await routeSafely(page, /\/hls\/[^/]+\/[^/]+\/index\.m3u8/, async (route) => {
      const resp = await route.fetch();
      let text = await resp.text();
      const rendition = new URL(route.request().url()).pathname.split('/').slice(-2)[0];
      if (resp.status() === 200) this.playlists.set(rendition, text);
      // Each tag before the segment that holds its date (the first one
      // listed if that one has left the playlist).
      for (const it of this.items) {
        const pdts = [...text.matchAll(/^#EXT-X-PROGRAM-DATE-TIME:(.*)$/gm)];
        const before = pdts.filter((m) => Date.parse(m[1]) <= Date.parse(it.pdt)).pop() || pdts[0];
        if (before) text = text.slice(0, before.index) + it.line + '\n' + text.slice(before.index);
      }
      await route.fulfill({ status: resp.status(), headers: stripHeaders(resp.headers()), body: text });
    });
    await routeSafely(page, /\/hls\/[^/]+\/[^/]+\/\d+(\.\d+)?\.m4s/, async (route) => {
      const resp = await route.fetch();
      let body = await resp.body();
      const url = new URL(route.request().url());
      const [rendition, file] = url.pathname.split('/').slice(-2);
      if (resp.status() === 200) {
        this.stamp(rendition, file, body, url);
        // As the server does, the media carries the item in the part that
        // holds its time, in every rendition, however often it is fetched
        // (a player switching rungs loads that time again): here, every
        // part starting within the second up to the item's time.
        const init = [...this.timescales.keys()].find((u) => u.includes(`/${rendition}/init`));
        const tfdt = tfdtOf(body);
        const start = init && tfdt !== null ? (tfdt / this.timescales.get(init)) * 1000 : null;
        // And the next part each page fetches of each rendition, which a
        // player that fetched the part holding the time before it was
        // stamped would otherwise never get.
        const key = `${name}|${rendition}`;
        const sent = this.sent.get(key) || new Set();
        this.sent.set(key, sent);
        const add = this.items.filter((it) => !sent.has(it.id) ||
          (start !== null && start > it.timeMs - 1000 && start <= it.timeMs + 1));
        const moof = boxes(body).find(([t]) => t === 'moof');
        if (add.length && moof) {
          for (const it of add) sent.add(it.id);
          const at = moof[1] - 8;
          body = Buffer.concat([body.subarray(0, at), ...add.map((it) => emsgBox(it.id, it.timeMs, it.payload)),
                                body.subarray(at)]);
        }
      }
      await route.fulfill({ status: resp.status(), headers: stripHeaders(resp.headers()), body });
    });
  }

  // Posts waiting are stamped on the start of this part if it is the
  // newest any page fetched (the server stamps the live edge: the part
  // being made, a part later); a page fetching older media (a switch, a
  // start) must not date them in the past of a player further ahead.
  stamp(rendition, file, body, url) {
    const m = /^(\d+)\.(\d+)\.m4s$/.exec(file);
    if (!m) return;
    const np = [Number(m[1]), Number(m[2])];
    if (np[0] < this.newest[0] || (np[0] === this.newest[0] && np[1] < this.newest[1])) return;
    this.newest = np;
    if (!this.pending.length) return;
    const init = [...this.timescales.keys()].find((u) => u.includes(`/${rendition}/init`));
    const tfdt = tfdtOf(body);
    const text = this.playlists.get(rendition);
    const date = text ? partDate(text, file) : null;
    if (!init || tfdt === null || date === null) return;
    const timeMs = Math.round((tfdt / this.timescales.get(init)) * 1000);
    for (const p of this.pending.splice(0)) {
      const id = this.nextId++;
      const iso = new Date(date).toISOString();
      const simple = !/["\r\n]/.test(p.payload);
      const attr = simple ? `"${p.payload}"` : '0x' + Buffer.from(p.payload, 'utf8').toString('hex').toUpperCase();
      const line = `#EXT-X-DATERANGE:ID="sluice-${id}",CLASS="com.sluice.metadata",START-DATE="${iso}",X-PAYLOAD=${attr}`;
      this.items.push({ id, timeMs, pdt: iso, payload: p.payload, line });
      p.resolve({ id, media_time_ms: timeMs, program_date_time: iso });
    }
  }
}

// ---- e2e ---------------------------------------------------------------

// The pages' own files from a directory (--local-web), with the policy
// web/web_reply.c gives them; everything else of the answer is the
// server's.
const PLAYER_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; " +
  "media-src 'self' blob: data: http: https:; connect-src 'self' http: https:; worker-src 'self' blob:; " +
  'frame-ancestors *';
const DASHBOARD_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "media-src 'self' blob: http: https:; connect-src 'self' http: https:; worker-src 'self' blob:; " +
  "frame-ancestors 'none'";
async function serveLocalWeb(page, dir) {
  const files = [[/\/player\/[^/?]+(\?.*)?$/, 'player.html', PLAYER_CSP],
                 [/\/assets\/player\.(js|css)(\?.*)?$/, null, null],
                 [/\/dashboard(\?.*)?$/, 'dashboard.html', DASHBOARD_CSP],
                 [/\/dashboard\/assets\/dashboard\.(js|css)(\?.*)?$/, null, null]];
  for (const [re, file, csp] of files) {
    await routeSafely(page, re, async (r) => {
      const resp = await r.fetch();
      const name = file || new URL(r.request().url()).pathname.split('/').pop();
      const headers = stripHeaders(resp.headers());
      delete headers.etag;
      if (csp) headers['content-security-policy'] = csp;
      await r.fulfill({ status: resp.status(), headers, body: fs.readFileSync(path.join(dir, name)) });
    });
  }
}

async function e2e(base, adminBase, streamId, shotDir, fake, localWeb) {
  const master = `${base}/hls/${streamId}/master.m3u8`;
  const browser = await launch();
  const out = { mode: fake ? 'e2e-fake' : 'e2e', items: [], players: {}, page: {}, dashboard: {} };
  try {
    const players = {};
    for (const [name, lib] of [['hlsjs', 'hls.js'], ['shaka', 'shaka-player'], ['videojs', 'video.js']]) {
      const p = await playerPage(browser, [libraries[lib]]);
      if (fake) await fake.attach(p.page, name);
      await p.page.evaluate(inPage, [name, master]);
      players[name] = p;
    }
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    ctx.setDefaultTimeout(15000);
    const page = await ctx.newPage();
    if (fake) await fake.attach(page, 'page');
    if (localWeb) await serveLocalWeb(page, localWeb);
    const pageErrors = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 404/.test(m.text())) pageErrors.push(m.text());
    });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(`${base}/player/${streamId}`);
    // The dashboard is opened only to press its button (its preview would
    // be a fourth player on two cores).
    const openDashboard = async () => {
      const dash = await ctx.newPage();
      if (localWeb) await serveLocalWeb(dash, localWeb);
      if (fake) {
        await dash.route(/\/api\/v1\/streams\/[^/]+\/metadata$/, async (route) => {
          const { payload } = JSON.parse(route.request().postData());
          const a = await fake.post(payload);
          await route.fulfill({ status: 202, contentType: 'application/json', body: JSON.stringify(a) });
        });
      }
      await dash.goto(`${adminBase}/dashboard#stream=${encodeURIComponent(streamId)}`);
      return dash;
    };

    // Everyone playing for a while first.
    // (video.js gives the id to its own box; the <video> is the same.)
    const time = (pg, sel = 'v') => pg.evaluate((id) => (document.querySelector(`video#${id}`) ||
                                                         document.querySelector('video')).currentTime, sel);
    for (const [name, p] of Object.entries(players)) {
      await until(`${name} playing`, async () => (await time(p.page)) > 2, 40);
    }
    await until('the player page playing', async () => (await time(page, 'video')) > 2, 40);

    // The items: a card, a text (the quoted DATERANGE form), a card whose
    // link and picture the page must refuse; then the dashboard's.
    // The player page, all along: which cards it shows (each shows until
    // the next one).
    const seenCards = new Map();
    const watchCard = async () => {
      const c = await page.evaluate(() => {
        const card = document.getElementById('card');
        if (card.hidden) return null;
        const link = document.getElementById('card-link');
        const img = document.getElementById('card-image');
        return { title: document.getElementById('card-title').textContent,
                 titleElements: document.getElementById('card-title').children.length,
                 price: document.getElementById('card-price').hidden ? null : document.getElementById('card-price').textContent,
                 link: link.hidden ? null : { href: link.href, rel: link.rel, target: link.target },
                 image: img.hidden ? null : img.src };
      }).catch(() => null);
      if (c && !seenCards.has(c.title)) {
        seenCards.set(c.title, c);
        await page.screenshot({ path: path.join(shotDir, `player-card-${seenCards.size}.png`) }).catch(() => {});
      }
    };
    let watching = true;
    const watcher = (async () => { while (watching) { await watchCard(); await sleep(100); } })();

    const img = `${base}/hls/${streamId}/thumbnail.jpg`;
    const payloads = [
      JSON.stringify({ title: 'Blue kettle <b>1.7 l</b> “steel”', price: '29.90 EUR', image: img,
                       url: 'https://shop.example/p/881?a=1&b=2' }),
      'plain text: not a card, no quotes',
      JSON.stringify({ title: 'Second card', price: 5, url: 'javascript:alert(1)',
                       image: 'http://elsewhere.example/x.png' }),
    ];
    // Every rung: hls.js is pinned to its levels in turn, one per item, a
    // second and a half before the post (the item is then in a part of that
    // level); the audio rendition it loads all along.
    const pin = async (i) => {
      const level = await players.hlsjs.page.evaluate((i) => {
        const h = window.meta.player;
        const n = i % h.levels.length;
        h.nextLevel = n;
        return { level: n, height: h.levels[n].height, levels: h.levels.length,
                 audio: h.audioTracks.length };
      }, i);
      progress(`hls.js pinned to level ${level.level} (${level.height}p)`);
      return level;
    };
    let pinned = await pin(0);
    await sleep(1500);
    for (const payload of payloads) {
      progress(`posting ${payload.slice(0, 40)}`);
      let a;
      if (fake) {
        a = await fake.post(payload);
      } else {
        const r = await fetch(`${adminBase}/api/v1/streams/${encodeURIComponent(streamId)}/metadata`, {
          method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ payload }),
        });
        const text = await r.text();
        if (!check(r.status === 202, `POST metadata: ${r.status} ${text}`)) throw new Error('the API refused');
        a = JSON.parse(text);
      }
      out.items.push({ id: a.id, payload, mediaTimeMs: a.media_time_ms, pdt: a.program_date_time,
                       postedAt: Date.now(), hlsjsLevel: pinned });
      await sleep(1500);
      pinned = await pin(out.items.length);
      await sleep(1500);
    }
    const dash = await openDashboard();
    await until('the dashboard button enabled', () => dash.isEnabled('#send-card', { timeout: 1000 }).catch(() => false), 20);
    await dash.click('#send-card');
    await until('the dashboard to say sent', async () =>
      ['sent', 'error'].includes(await dash.getAttribute('#metadata-result', 'data-status')), 10);
    out.dashboard = { status: await dash.getAttribute('#metadata-result', 'data-status'),
                      text: await dash.textContent('#metadata-result') };
    if (check(out.dashboard.status === 'sent', `dashboard: ${out.dashboard.text}`)) {
      const id = Number(await dash.getAttribute('#metadata-result', 'data-id'));
      // Its program date-time from the answer shown in the page.
      const m = /(\d{4}-\d\d-\d\dT[0-9:.]+Z)/.exec(out.dashboard.text);
      out.items.push({ id, payload: JSON.stringify({ title: 'Test product', price: '9.99' }),
                       pdt: m ? m[1] : null, postedAt: Date.now(), fromDashboard: true, hlsjsLevel: pinned });
    }
    await dash.close();

    const lastPdt = Math.max(...out.items.map((it) => Date.parse(it.pdt) || 0));
    await until('every player past the last item, the page through every item', async () => {
      for (const p of Object.values(players)) {
        const d = await p.page.evaluate((last) => {
          const f = window.meta.frames[window.meta.frames.length - 1];
          if (!f) return null;
          if (f[2] !== null) return f[2];
          // No date (video.js between segments): the last item's emsg cue.
          const cue = window.meta.events.find((e) => e.what === 'cue' && e.form === 'emsg' && e.payload === last);
          return cue && f[0] > cue.time + 1.5 ? Infinity : null;
        }, out.items[out.items.length - 1].payload);
        if (d === null || d < lastPdt + 1500) return false;
      }
      const cards = await page.evaluate(() => window.sluicePlayer.cards);
      return out.items.every((it) => cards.some((c) => c.payload === it.payload && (c.shown || c.skipped))) &&
             await sleep(1000).then(() => true);
    }, 60).catch((e) => problems.push(e.message));
    watching = false;
    await watcher;

    // hls.js and Shaka: every payload, both forms, the offsets.
    for (const [name, p] of Object.entries(players)) {
      const M = await p.page.evaluate(() => ({ events: window.meta.events, frames: window.meta.frames,
                                                 errors: window.meta.errors, kind: window.meta.kind,
                                                 tracks: window.meta.tracks }));
      const r = { items: [], errors: M.errors };
      if (M.tracks) r.tracks = M.tracks;
      if (process.env.METADATA_DUMP) fs.writeFileSync(`${process.env.METADATA_DUMP}-${name}.json`, JSON.stringify(M.events));
      for (const it of out.items) {
        const o = offsetsOf(M, it);
        r.items.push(o);
        check(o.emsg, `${name}: item ${it.id}: no emsg/ID3 with its payload`);
        check(o.hasDaterange && o.daterangePayloadOk, `${name}: item ${it.id}: DATERANGE sluice-${it.id} missing or its payload differs`);
        if (name === 'hlsjs' && it.hlsjsLevel) {
          // The rung it was pinned to, and the audio, each carried it.
          const from = M.events.filter((e) => e.what === 'parsed' && e.payload === it.payload);
          o.rungs = [...new Set(from.map((e) => `${e.frag}:${e.level}`))];
          check(from.some((e) => e.frag === 'main' && e.level === it.hlsjsLevel.level),
                `hlsjs: item ${it.id}: no emsg from level ${it.hlsjsLevel.level} (${it.hlsjsLevel.height}p), ` +
                `the one it was pinned to (got ${o.rungs})`);
          if (it.hlsjsLevel.audio) check(from.some((e) => e.frag === 'audio'), `hlsjs: item ${it.id}: no emsg from the audio rendition`);
        }
        if (!o.emsg) continue;
        if (o.id3) check(o.id3.version === 4 && o.id3.encoding === 3 && o.id3.info === 'sluice',
                         `${name}: item ${it.id}: ID3 ${JSON.stringify(o.id3)}, expected v2.4, UTF-8, TXXX "sluice"`);
        check(o.lead > 0, `${name}: item ${it.id}: known only ${o.lead} s before its time`);
        // hls.js's cue events need its track to keep the cue, which it
        // may not for the first item (docs/metadata.md): judged when kept.
        // video.js fires no enter event (its tracks are its own; it sets
        // activeCues on timeupdate, cuechange, printed as o.cuechange).
        if (name !== 'videojs' && (!o.trackCues || o.trackCues.includes('emsg'))) {
          check(o.enter !== undefined && o.enter >= -EPS && o.enter <= ENTER_MAX_S,
                `${name}: item ${it.id}: its enter notification ${o.enter} s from its time`);
        }
        // hls.js dates the playhead from the fragment's own
        // EXT-X-PROGRAM-DATE-TIME; Shaka (sequence mode) from its
        // presentation start, which came out 0-0.25 s off, constant in a
        // session, while its DATERANGE time (from the same dates) agreed
        // with the emsg to the millisecond: printed for Shaka, judged for
        // hls.js (docs/benchmarks.md). video.js has no playhead date of its
        // own; the page's (VHS's segment programDateTime and start) came
        // out 0.67 s off once, at a part boundary: printed. Its DATERANGE
        // time, which VHS maps from the dates, is judged against the emsg
        // below.
        if (name === 'hlsjs') {
          check(o.pdt !== undefined && Math.abs(o.pdt) <= PDT_MAX_S,
                `${name}: item ${it.id}: its time is ${o.pdt} s from the stamped program date-time`);
        }
        if (o.daterange !== undefined) {
          check(Math.abs(o.daterange) <= DATERANGE_MAX_S,
                `${name}: item ${it.id}: the DATERANGE is ${o.daterange} s from the emsg`);
        }
      }
      for (const k of ['lead', 'enter', 'cuechange', 'pdt', 'daterange']) {
        r[k] = stat(r.items.map((o) => o[k]).filter((x) => typeof x === 'number'));
      }
      check(!M.errors.length, `${name}: errors ${M.errors.join(', ')}`);
      out.players[name] = r;
    }

    // The player page: each item reached once, the cards shown on the
    // first frame at or after their time, with the right fields.
    const cards = await page.evaluate(() => window.sluicePlayer.cards);
    out.page.cards = cards;
    const frames = [];
    for (const it of out.items) {
      const mine = cards.filter((c) => c.payload === it.payload);
      check(mine.length === 1, `page: item ${it.id} is ${mine.length} items`);
      const c = mine[0];
      if (!c) continue;
      check(c.id === it.id, `page: item ${it.id} has id ${c.id}`);
      check(c.shown && !c.skipped, `page: item ${it.id} not shown (skipped ${c.skipped})`);
      check(c.source === 'emsg', `page: item ${it.id} timed by ${c.source}, not the emsg`);
      if (c.shown) {
        const off = c.shownAtMediaTime - c.cueTime;
        frames.push(off);
        // Within a frame or two of its time, unless the video itself
        // presented no frame in between (a stall or skipped frames under
        // load: the card still comes with the first frame shown).
        const gap = c.prevFrameMediaTime === null ? 0 : c.shownAtMediaTime - c.prevFrameMediaTime;
        check(off >= -EPS && (off < 0.1 || gap > off), `page: item ${it.id} shown ${off.toFixed(4)} s from its time ` +
              `(the frame before ${gap.toFixed(4)} s earlier)`);
        check(c.prevFrameMediaTime === null || c.prevFrameMediaTime < c.cueTime - EPS,
              `page: item ${it.id}: the frame before (${c.prevFrameMediaTime}) was at or after ${c.cueTime}`);
      }
    }
    out.page.frame = stat(frames);
    out.page.seen = [...seenCards.values()];
    const k = seenCards.get('Blue kettle <b>1.7 l</b> “steel”');
    if (check(k, `page: the first card never showed (saw ${[...seenCards.keys()]})`)) {
      check(k.titleElements === 0 && k.price === '29.90 EUR', `page: first card ${JSON.stringify(k)}`);
      check(k.link && k.link.href === 'https://shop.example/p/881?a=1&b=2' &&
            k.link.rel === 'noopener noreferrer' && k.link.target === '_blank', `page: first card link ${JSON.stringify(k.link)}`);
      check(k.image === img, `page: first card image ${k.image}`);
    }
    const s2 = seenCards.get('Second card');
    if (check(s2, 'page: the second card never showed')) {
      check(s2.price === '5' && s2.link === null && s2.image === null, `page: second card ${JSON.stringify(s2)}`);
    }
    check(out.dashboard.status !== 'sent' || seenCards.has('Test product'), 'page: the dashboard\'s card never showed');
    check([...seenCards.keys()].every((t) => ['Blue kettle <b>1.7 l</b> “steel”', 'Second card', 'Test product'].includes(t)),
          `page: cards seen ${[...seenCards.keys()]}`);
    check(!pageErrors.length, `page: console errors ${pageErrors.join(' | ')}`);
  } finally {
    await browser.close();
  }
  return out;
}

// ---- stub: the page's side, with no server support ---------------------

// The live edge's date in a media playlist: the newest
// EXT-X-PROGRAM-DATE-TIME plus what follows it.
function liveEdgeDate(text) {
  const lines = text.split('\n');
  let date = null, add = 0, partsSinceSegment = 0;
  for (const l of lines) {
    if (l.startsWith('#EXT-X-PROGRAM-DATE-TIME:')) {
      date = Date.parse(l.slice(25).trim());
      add = 0;
      partsSinceSegment = 0;
    } else if (l.startsWith('#EXTINF:')) {
      add += parseFloat(l.slice(8));
      partsSinceSegment = 0;
    } else if (l.startsWith('#EXT-X-PART:')) {
      const m = /DURATION=([0-9.]+)/.exec(l);
      if (m) partsSinceSegment += parseFloat(m[1]);
    }
  }
  return date === null ? null : date + (add + partsSinceSegment) * 1000;
}

async function stub(base, streamId, shotDir) {
  const browser = await launch();
  const out = { mode: 'stub', cards: [] };
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    const pageErrors = [];
    page.on('console', (m) => { if (m.type() === 'error' && !/status of 404/.test(m.text())) pageErrors.push(m.text()); });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    // A DATERANGE stamped at the live edge, put into every media playlist
    // from the moment it is armed, as the server would.
    const A = JSON.stringify({ title: 'Stub card A', price: '1.00' });
    let daterange = null;
    await routeSafely(page, /\/hls\/[^/]+\/[^/]+\/index\.m3u8/, async (route) => {
      const resp = await route.fetch();
      let text = await resp.text();
      if (daterange && !daterange.line) {
        const edge = liveEdgeDate(text);
        if (edge) daterange.line = `#EXT-X-DATERANGE:ID="sluice-901",CLASS="com.sluice.metadata",` +
          `START-DATE="${new Date(edge).toISOString()}",X-PAYLOAD=0x${Buffer.from(A, 'utf8').toString('hex').toUpperCase()}`;
      }
      if (daterange && daterange.line) text = text.replace(/(#EXT-X-PROGRAM-DATE-TIME:)/, `${daterange.line}\n$1`);
      // The body is new (and no longer compressed): its length and
      // encoding headers go.
      const headers = Object.fromEntries(Object.entries(resp.headers())
        .filter(([k]) => !['content-length', 'content-encoding'].includes(k.toLowerCase())));
      await route.fulfill({ status: resp.status(), headers, body: text });
    });
    await page.goto(`${base}/player/${streamId}`);
    await until('the player page playing', async () => page.evaluate(() =>
      window.sluicePlayer.state === 'playing' && document.getElementById('video').currentTime > 2), 40);
    const cards = () => page.evaluate(() => window.sluicePlayer.cards);
    const cardTitle = () => page.evaluate(() => (document.getElementById('card').hidden ? null
      : document.getElementById('card-title').textContent));

    // 1. The DATERANGE form alone, hex: a card, timed by the DATERANGE.
    daterange = {};
    const a = await until('the DATERANGE item', async () => (await cards()).find((c) => c.payload === A), 20);
    check(a.id === 901 && a.source === 'daterange', `A: ${JSON.stringify(a)}`);
    await until('card A shown', async () => (await cardTitle()) === 'Stub card A', 30);
    await page.screenshot({ path: path.join(shotDir, 'player-card-stub.png') });
    daterange = null;

    // 2. Cues like hls.js's, on a metadata track: the emsg form twice (the
    // audio's and the video's fragments) and the DATERANGE form 12 ms
    // later, hex; one item, timed by the emsg. Then a text payload, a card
    // with fields to refuse, and one from 5 s in the past.
    const B = JSON.stringify({ title: 'Stub card B', price: 12.5, url: 'https://shop.example/b',
                               image: `${base}/hls/${streamId}/thumbnail.jpg` });
    const E = JSON.stringify({ title: '<img src=x onerror="window.pwned=1">Evil', url: 'javascript:window.pwned=2',
                               image: 'http://evil.example/x.png', price: { no: 1 } });
    const t0 = await page.evaluate(([B, E, emsg]) => {
      const video = document.getElementById('video');
      const track = [...video.textTracks].find((t) => t.kind === 'metadata') || video.addTextTrack('metadata', 'stub');
      track.mode = 'hidden';
      const hex = (s) => '0x' + Array.from(new TextEncoder().encode(s), (x) => x.toString(16).padStart(2, '0')).join('');
      const add = (start, value, type, id) => {
        const cue = new VTTCue(start, start + 0.25, '');
        cue.value = value;
        cue.type = type;
        if (id) cue.id = id;
        track.addCue(cue);
      };
      const t = video.currentTime + 3;
      add(t, { key: 'TXXX', info: 'sluice', data: B }, emsg);
      add(t, { key: 'TXXX', info: 'sluice', data: B }, emsg);
      add(t + 0.012, { key: 'X-PAYLOAD', data: hex(B) }, 'com.apple.quicktime.HLS', 'sluice-902');
      add(t + 1.5, { key: 'TXXX', info: 'sluice', data: 'just text' }, emsg);
      add(t + 3, { key: 'TXXX', info: 'sluice', data: E }, emsg);
      add(video.currentTime - 5, { key: 'TXXX', info: 'sluice', data: '{"title":"Too late"}' }, emsg);
      add(t + 4, { key: 'TXXX', info: 'other', data: '{"title":"Not ours"}' }, emsg);
      return t;
    }, [B, E, EMSG_ID3]);
    await until('card B shown', async () => (await cardTitle()) === 'Stub card B', 15);
    const b = await page.evaluate(() => ({
      price: document.getElementById('card-price').textContent,
      link: document.getElementById('card-link').href,
      rel: document.getElementById('card-link').rel,
      image: document.getElementById('card-image').hidden ? null : document.getElementById('card-image').src }));
    check(b.price === '12.5' && b.link === 'https://shop.example/b' && b.rel === 'noopener noreferrer' &&
          b.image === `${base}/hls/${streamId}/thumbnail.jpg`, `B fields ${JSON.stringify(b)}`);
    await until('the text reached', async () => (await cards()).some((c) => c.payload === 'just text' && c.shown), 10);
    check((await cardTitle()) === 'Stub card B', 'a text payload changed the card');
    await until('the evil card shown', async () => /Evil/.test((await cardTitle()) || ''), 10);
    const e = await page.evaluate(() => ({
      title: document.getElementById('card-title').textContent,
      children: document.getElementById('card-title').children.length,
      imgs: document.querySelectorAll('#card img:not(#card-image)').length,
      link: document.getElementById('card-link').hidden,
      image: document.getElementById('card-image').hidden,
      price: document.getElementById('card-price').hidden,
      pwned: window.pwned || null }));
    check(e.children === 0 && e.imgs === 0 && e.link && e.image && e.price && e.pwned === null &&
          e.title.startsWith('<img'), `evil card ${JSON.stringify(e)}`);
    await sleep(1500);

    const all = await cards();
    out.cards = all;
    const bs = all.filter((c) => c.payload === B);
    check(bs.length === 1, `B is ${bs.length} items`);
    if (bs[0]) {
      const c = bs[0];
      check(c.id === 902 && c.source === 'emsg' && Math.abs(c.cueTime - t0) < 1e-6 &&
            Math.abs(c.daterangeTime - t0 - 0.012) < 1e-3, `B ${JSON.stringify(c)}`);
      const off = c.shownAtMediaTime - c.cueTime;
      out.frame = off;
      const gap = c.prevFrameMediaTime === null ? 0 : c.shownAtMediaTime - c.prevFrameMediaTime;
      check(c.shown && off >= -EPS && (off < 0.1 || gap > off) &&
            (c.prevFrameMediaTime === null || c.prevFrameMediaTime < c.cueTime - EPS),
            `B shown at ${c.shownAtMediaTime} (frame before ${c.prevFrameMediaTime}) for ${c.cueTime}`);
    }
    const late = all.find((c) => c.payload === '{"title":"Too late"}');
    check(late && late.skipped && !late.shown, `the past item: ${JSON.stringify(late)}`);
    check(!all.some((c) => c.payload === '{"title":"Not ours"}'), 'a TXXX of another description became an item');
    check(!pageErrors.length, `console errors ${pageErrors.join(' | ')}`);
    // The close button hides the card.
    await page.click('#card-close');
    check(await page.isHidden('#card'), 'the close button left the card');
  } finally {
    await browser.close();
  }
  return out;
}

// ---- replay: a recording's VOD in hls.js -------------------------------

// hls.js plays /vod/RID/master.m3u8 (the player page plays live streams
// only: docs/player.md); for the first and the last item it seeks to 3 s
// before the item's time (its DATERANGE's, as hls.js maps it) and plays
// past it; each must come in both forms, ahead of its time, with its cue's
// enter event and the frame at its time, as live.
async function replay(base, rid, itemsFile, shotDir) {
  const items = JSON.parse(fs.readFileSync(itemsFile, 'utf8'));
  const url = `${base}/vod/${encodeURIComponent(rid)}/master.m3u8`;
  const browser = await launch();
  const out = { mode: 'replay', url, items: [] };
  try {
    const p = await playerPage(browser, [libraries['hls.js']]);
    await p.page.evaluate(inPage, ['hlsjs', url]);
    const meta = () => p.page.evaluate(() => ({ events: window.meta.events, frames: window.meta.frames,
                                                 errors: window.meta.errors, kind: window.meta.kind }));
    await until('hls.js playing the recording', () => p.page.evaluate(() => document.getElementById('v').currentTime > 0.5), 30);
    const picked = [items[0], items[items.length - 1]];
    const times = [];
    for (const it of picked) {
      const dr = await until(`the DATERANGE sluice-${it.id} in the recording`, async () =>
        (await meta()).events.find((e) => e.what === 'daterange' && e.id === `sluice-${it.id}`), 15);
      times.push([dr.time, it]);
    }
    times.sort((a, b) => a[0] - b[0]);
    for (const [t, it] of times) {
      progress(`seeking to ${(t - 3).toFixed(3)} s, 3 s before item ${it.id}`);
      await p.page.evaluate((x) => { document.getElementById('v').currentTime = x; }, t - 3);
      await until(`playing past item ${it.id}`, () => p.page.evaluate((x) => document.getElementById('v').currentTime > x, t + 1), 25);
    }
    const M = await meta();
    for (const [, it] of times) {
      const o = offsetsOf(M, it);
      out.items.push(Object.assign({ id: it.id }, o));
      check(o.emsg, `replay: item ${it.id}: no emsg/ID3 with its payload`);
      check(o.hasDaterange && o.daterangePayloadOk, `replay: item ${it.id}: DATERANGE sluice-${it.id} missing or its payload differs`);
      if (!o.emsg) continue;
      check(o.lead > 0, `replay: item ${it.id}: known only ${o.lead} s before its time`);
      if (o.trackCues.includes('emsg')) {
        check(o.enter !== undefined && o.enter >= -EPS && o.enter <= ENTER_MAX_S,
              `replay: item ${it.id}: its enter notification ${o.enter} s from its time`);
      }
      check(o.frame !== undefined && o.frame >= -EPS && o.frameBefore < 0,
            `replay: item ${it.id}: first frame at its time ${o.frame}, the one before ${o.frameBefore}`);
      check(o.pdt !== undefined && Math.abs(o.pdt) <= PDT_MAX_S,
            `replay: item ${it.id}: its time is ${o.pdt} s from the stamped program date-time`);
      check(o.daterange !== undefined && Math.abs(o.daterange) <= DATERANGE_MAX_S,
            `replay: item ${it.id}: the DATERANGE is ${o.daterange} s from the emsg`);
    }
    check(!M.errors.length, `replay: errors ${M.errors.join(', ')}`);
    await p.page.screenshot({ path: path.join(shotDir, 'metadata-replay.png') }).catch(() => {});
  } finally {
    await browser.close();
  }
  return out;
}

let result;
try {
  const lw = process.argv.indexOf('--local-web');
  const localWeb = lw > 0 ? process.argv[lw + 1] : null;
  if (mode === 'e2e') result = await e2e(...process.argv.slice(3, 7), null, localWeb);
  else if (mode === 'e2e-fake') result = await e2e(...process.argv.slice(3, 7), new FakeServer(), localWeb);
  else if (mode === 'stub') result = await stub(...process.argv.slice(3, 6));
  else if (mode === 'replay') result = await replay(...process.argv.slice(3, 7));
  else throw new Error('usage: node metadata.mjs e2e|e2e-fake ORIGIN ADMIN ID SHOTS | stub ORIGIN ID SHOTS | ' +
                       'replay ORIGIN RID ITEMS_JSON SHOTS');
} catch (e) {
  problems.push(String(e && e.stack || e));
  result = result || { mode };
}
result.problems = problems;
console.log(JSON.stringify(result));
process.exitCode = problems.length ? 1 : 0;
