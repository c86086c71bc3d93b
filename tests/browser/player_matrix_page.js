// The in-page half of player_matrix.mjs (a classic script, loaded into each
// player's page after the player library): starts one player on a master
// playlist and records, from the player's own events and the <video>
// element, what a viewer would have seen. player_matrix.mjs calls
// startPlayer() once, then collect() at the end; everything is kept in
// window.matrix.out.
//
// Definitions shared by every player, so that their numbers compare:
// - a stall is a `waiting` event with readyState < HAVE_FUTURE_DATA after the
//   first `playing`, lasting until the next `playing` (or the end of the run);
// - latency is the wall clock minus the EXT-X-PROGRAM-DATE-TIME of the
//   playhead, as the player itself maps its playhead to PDT, sampled every
//   500 ms after the first frame while playing;
// - "played" renditions and switches come from video.videoHeight, sampled
//   every 250 ms: what was decoded and shown, whatever the player says.
(function () {
  'use strict';
  const video = document.getElementById('v');
  const out = {
    errors: [],        // every error event, fatal or not: {t, source, text, fatal}
    gapJumps: [],      // gaps jumped / nudges / stall recoveries the player reports: {t, text}
    stalls: [],        // {t, dur} (seconds since the start, seconds)
    stalledS: 0,
    firstFrameS: null, // seconds from startPlayer() to the first `playing`
    listed: [],        // heights of the video renditions the player lists
    heights: [],       // [t, height] at each change of video.videoHeight
    latency: [],       // seconds, one sample per 500 ms
    playerSwitches: 0, // rendition changes the player itself reports
    notes: [],         // what the player reported that is not an error (for the log)
    estimates: [],     // [seconds, the player's bandwidth estimate in kbit/s], once a second
  };
  const m = { out, t0: 0, firstPlaying: 0, stallStart: null, player: null, pdt: () => null };
  window.matrix = m;
  const now = () => performance.now();
  const t = () => +((now() - m.t0) / 1000).toFixed(3);

  function error(source, text, fatal) {
    if (out.errors.length < 200) out.errors.push({ t: t(), source, text: String(text).slice(0, 400), fatal: !!fatal });
  }
  // Buffered ranges around the playhead, to say where a gap or stall was.
  const ranges = (r) => {
    const o = [];
    for (let i = 0; i < r.length; i++) if (r.end(i) > video.currentTime - 4) o.push([+r.start(i).toFixed(3), +r.end(i).toFixed(3)]);
    return o;
  };
  // Each SourceBuffer the player makes, so that a stall can say which track
  // ran dry, and every range a player removes from one (players evict
  // behind the playhead, and some clear ahead of it on a switch).
  const sbs = [];
  out.sbOps = [];
  const addSB = MediaSource.prototype.addSourceBuffer;
  MediaSource.prototype.addSourceBuffer = function (mime) {
    const sb = addSB.call(this, mime);
    sbs.push({ kind: /^audio/.test(mime) ? 'audio' : 'video', sb });
    return sb;
  };
  const sbOp = (sb, op) => {
    const e = sbs.find((x) => x.sb === sb);
    if (out.sbOps.length < 200) out.sbOps.push({ t: t(), track: e ? e.kind : '?', at: +video.currentTime.toFixed(3), ...op });
  };
  const removeSB = SourceBuffer.prototype.remove;
  SourceBuffer.prototype.remove = function (start, end) {
    if (end > video.currentTime - 1) sbOp(this, { op: 'remove', start: +start.toFixed(3), end: end === Infinity ? 'inf' : +end.toFixed(3) });
    return removeSB.call(this, start, end);
  };
  // abort() and a new timestampOffset make the next media need a keyframe
  // (MSE's "need random access point"): what follows up to it is dropped.
  const abortSB = SourceBuffer.prototype.abort;
  SourceBuffer.prototype.abort = function () {
    sbOp(this, { op: 'abort' });
    return abortSB.call(this);
  };
  for (const prop of ['timestampOffset', 'appendWindowStart', 'appendWindowEnd', 'mode']) {
    const d = Object.getOwnPropertyDescriptor(SourceBuffer.prototype, prop);
    Object.defineProperty(SourceBuffer.prototype, prop, {
      get() { return d.get.call(this); },
      set(v) {
        if (d.get.call(this) !== v) sbOp(this, { op: prop, value: typeof v === 'number' && isFinite(v) ? +v.toFixed(6) : String(v) });
        d.set.call(this, v);
      },
      configurable: true,
    });
  }
  const perTrack = () => {
    const o = {};
    for (const x of sbs) {
      try { o[x.kind] = ranges(x.sb.buffered); } catch (e) { o[x.kind] = 'detached'; }
    }
    return o;
  };
  function gap(text) {
    if (out.gapJumps.length < 200) out.gapJumps.push({ t: t(), text: String(text).slice(0, 300) });
  }

  video.addEventListener('playing', () => {
    if (!m.firstPlaying) {
      m.firstPlaying = now();
      out.firstFrameS = t();
    }
    if (m.stallStart !== null) {
      out.stalls.push({ t: +((m.stallStart - m.t0) / 1000).toFixed(3), dur: +((now() - m.stallStart) / 1000).toFixed(3),
                        at: +video.currentTime.toFixed(3), buffered: m.stallBuffered, tracks: m.stallTracks,
                        epoch: m.stallEpoch });
      m.stallStart = null;
    }
  });
  video.addEventListener('waiting', () => {
    if (m.firstPlaying && video.readyState < 3 && m.stallStart === null) {
      m.stallStart = now();
      m.stallEpoch = Date.now() / 1000;
      m.stallBuffered = ranges(video.buffered);
      m.stallTracks = perTrack();
    }
  });
  video.addEventListener('error', () => {
    const e = video.error;
    error('video', e ? `MediaError ${e.code} ${e.message || ''}` : 'MediaError', true);
  });

  let lastHeight = 0;
  setInterval(() => {
    const h = video.videoHeight;
    if (h && h !== lastHeight) {
      out.heights.push([t(), h]);
      lastHeight = h;
    }
  }, 250);
  setInterval(() => {
    if (!m.firstPlaying || video.paused || video.readyState < 3) return;
    let d = null;
    try { d = m.pdt(); } catch (e) { /* no mapping yet */ }
    if (d instanceof Date && !isNaN(d.getTime())) out.latency.push(+((Date.now() - d.getTime()) / 1000).toFixed(3));
  }, 500);

  // ---- hls.js -------------------------------------------------------------
  function startHlsjs(url, ll) {
    if (!Hls.isSupported()) throw new Error('hls.js: MSE not supported');
    const hls = new Hls({ lowLatencyMode: ll, debug: false });
    m.player = hls;
    hls.on(Hls.Events.ERROR, (_, d) => {
      // hls.js reports its gap jumps and nudges as (non-fatal) errors; they
      // are both: a viewer-visible skip the server's media caused.
      if (d.details === 'bufferSeekOverHole' || d.details === 'bufferNudgeOnStall') gap(`${d.details} ${d.reason || ''}`);
      // The exception behind a buffer error (its name says whether MSE
      // refused the bytes or only the moment), and which buffer and part.
      const cause = d.error ? `${d.error.name || ''}: ${d.error.message || ''}` : null;
      const where = d.sourceBufferName ? `${d.sourceBufferName}${d.part ? ` part ${d.part.index}` : ''}` : null;
      const what = [d.type, d.details, d.reason, d.response && d.response.code, d.frag && d.frag.url,
                    d.context && d.context.url, where, cause]
        .filter((x) => x !== undefined && x !== null && x !== '');
      error('hls.js', what.join(' '), d.fatal);
    });
    hls.on(Hls.Events.MANIFEST_PARSED, (_, d) => {
      out.listed = d.levels.map((l) => l.height);
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, () => { out.playerSwitches++; });
    m.pdt = () => hls.playingDate;
    hls.loadSource(url);
    hls.attachMedia(video);
  }

  // ---- Shaka Player ---------------------------------------------------------
  async function startShaka(url, ll) {
    shaka.polyfill.installAll();
    if (!shaka.Player.isBrowserSupported()) throw new Error('Shaka: browser not supported');
    const player = new shaka.Player();
    m.player = player;
    await player.attach(video);
    // Shaka 5's default is lowLatencyMode: true; set both ways explicitly.
    // sequenceMode: Shaka up to 5.2.12 (the newest release) re-reads the
    // SourceBuffer's timestampOffset after adding 1 ms to a negative one
    // (an old Edge workaround), so for any live stream whose media time is
    // ahead of its PDT timeline about half of its appends compare as 1 ms
    // apart and call abort(): MSE then drops everything up to the next
    // keyframe, and every LL-HLS part not cut on one is lost (a hole of the
    // rest of the segment, then a gap jump). Fixed upstream
    // (shaka-project/shaka-player#10559, #10589) after 5.2.12; sequence
    // mode skips the recalculation. docs/interop.md has the evidence.
    player.configure({ streaming: { lowLatencyMode: ll }, manifest: { hls: { sequenceMode: true } } });
    player.addEventListener('error', (e) => {
      const d = e.detail;
      if (d && d.code !== undefined) {
        error('shaka', `code ${d.code} category ${d.category} severity ${d.severity} ` +
              JSON.stringify(d.data || []).slice(0, 300), d.severity === 2);
      } else {
        // Shaka wraps an exception of its own in an error event: its stack
        // says where (a player bug, or the input that triggered it).
        error('shaka', `error event without a shaka.util.Error: ${String(d)} ${d && d.stack ? d.stack.slice(0, 300) : ''}`, false);
      }
    });
    player.addEventListener('gapjumped', () => {
      const b = player.getBufferedInfo();
      const r = (xs) => xs.filter((x) => x.end > video.currentTime - 4).map((x) => [+x.start.toFixed(3), +x.end.toFixed(3)]);
      gap(`gapjumped to ${video.currentTime.toFixed(3)}: video buffered ${JSON.stringify(r(b.video))} ` +
          `audio buffered ${JSON.stringify(r(b.audio))}`);
    });
    player.addEventListener('stalldetected', () => gap('stalldetected'));
    player.addEventListener('adaptation', () => { out.playerSwitches++; });
    m.pdt = () => player.getPlayheadTimeAsDate();
    try {
      await player.load(url);
    } catch (e) {
      error('shaka', e && e.code !== undefined ? `load failed: code ${e.code} ${JSON.stringify(e.data || []).slice(0, 300)}`
                                              : `load failed: ${e && (e.stack || e.message) || e}`, true);
      return;
    }
    out.listed = player.getVideoTracks().map((v) => v.height);
    video.play().catch(() => {});
  }

  // ---- video.js (VHS) -------------------------------------------------------
  function startVideojs(url, ll) {
    video.classList.add('video-js');
    // VHS options of @videojs/http-streaming 3.x: `llhls` (default true) turns
    // on parts, preload hints and blocking reloads; overrideNative keeps VHS
    // on MSE in a Chromium that also plays HLS natively.
    const player = videojs(video, { muted: true, autoplay: false, preload: 'auto',
                                     // useNetworkInformationApi: VHS (3.x) takes the browser's
                                     // navigator.connection.downlink as its bandwidth whenever
                                     // either estimate is under 10 Mbit/s; Chromium on a box
                                     // with loopback traffic only reports 1.45-1.55 Mbit/s, so
                                     // video.js never left the lowest rung. Off, it goes by what
                                     // it measures, as it would behind a real downlink estimate.
                                     html5: { vhs: { llhls: ll, overrideNative: true,
                                                     useNetworkInformationApi: false } } });
    m.player = player;
    player.on('error', () => {
      const e = player.error();
      error('video.js', e ? `code ${e.code} ${e.message}` : 'error', true);
    });
    player.ready(() => {
      const tech = player.tech(true);
      tech.on('usage', (e) => {
        if (['vhs-gap-skip', 'vhs-unknown-waiting', 'vhs-live-resync', 'vhs-video-underflow'].includes(e.name)) gap(e.name);
        if (e.name === 'vhs-rendition-excluded' || e.name === 'vhs-error-reload') error('vhs', e.name, false);
      });
      tech.on('retryplaylist', () => error('vhs', 'retryplaylist', false));
      tech.on('excludeplaylist', () => error('vhs', 'excludeplaylist', false));
    });
    player.src({ src: url, type: 'application/x-mpegURL' });
    player.ready(() => {
      const vhs = player.tech(true).vhs;
      const mainOf = () => vhs.playlists.main || vhs.playlists.master;
      vhs.playlists.on('loadedmetadata', () => {
        out.listed = mainOf().playlists.map((p) => (p.attributes.RESOLUTION || {}).height).filter(Boolean);
      });
      vhs.playlists.on('mediachange', () => { out.playerSwitches++; });
      // The playhead's PDT: VHS's own mapping (convertToProgramTime: the
      // media playlist segment holding currentTime, its dateTimeObject plus
      // the offset into it); if VHS cannot map it, the segment's start as
      // VHS placed it on the timeline plus its dateTimeObject.
      m.pdt = () => {
        let d = null;
        vhs.convertToProgramTime(video.currentTime, (err, pt) => {
          if (!err && pt && pt.programDateTime) d = new Date(pt.programDateTime);
        });
        if (d) return d;
        const media = vhs.playlists.media();
        for (const s of (media && media.segments) || []) {
          if (s.dateTimeObject && typeof s.start === 'number' && typeof s.end === 'number' &&
              video.currentTime >= s.start && video.currentTime < s.end) {
            return new Date(s.dateTimeObject.getTime() + (video.currentTime - s.start) * 1000);
          }
        }
        return null;
      };
      player.play().catch(() => {});
    });
  }

  // The player's own bandwidth estimate (kbit/s), once a second: what its
  // adaptation decides on, set beside a throttle's times.
  const estimate = () => {
    try {
      if (out.kind === 'hlsjs') return m.player.bandwidthEstimate;
      if (out.kind === 'shaka') return m.player.getStats().estimatedBandwidth;
      if (out.kind === 'videojs') return m.player.tech(true).vhs.systemBandwidth;
    } catch (e) { /* not started yet */ }
    return null;
  };
  setInterval(() => {
    const e = estimate();
    if (m.player && Number.isFinite(e) && out.estimates.length < 600) out.estimates.push([t(), Math.round(e / 1000)]);
  }, 1000);

  window.startPlayer = async function (kind, url, ll) {
    m.t0 = now();
    out.kind = kind;
    try {
      if (kind === 'hlsjs') {
        startHlsjs(url, ll);
        video.play().catch(() => {});
      } else if (kind === 'shaka') {
        await startShaka(url, ll);
      } else if (kind === 'videojs') {
        startVideojs(url, ll);
      } else {
        throw new Error('unknown player ' + kind);
      }
    } catch (e) {
      error(kind, 'start failed: ' + (e && e.stack || e), true);
    }
  };

  // End of the run: closes an open stall, adds the player's own counters.
  window.collect = function () {
    if (m.stallStart !== null) {
      out.stalls.push({ t: +((m.stallStart - m.t0) / 1000).toFixed(3), dur: +((now() - m.stallStart) / 1000).toFixed(3),
                        at: +video.currentTime.toFixed(3), open: true, epoch: m.stallEpoch });
      m.stallStart = null;
    }
    out.stalledS = +out.stalls.reduce((a, s) => a + s.dur, 0).toFixed(3);
    const q = video.getVideoPlaybackQuality();
    out.frames = q.totalVideoFrames;
    out.droppedFrames = q.droppedVideoFrames;
    out.currentTime = +video.currentTime.toFixed(3);
    out.paused = video.paused;
    try {
      if (out.kind === 'shaka' && m.player) {
        const s = m.player.getStats();
        out.notes.push(`shaka stats: stallsDetected ${s.stallsDetected} gapsJumped ${s.gapsJumped} ` +
                       `liveLatency ${s.liveLatency}`);
      }
      if (out.kind === 'shaka' && m.player) out.notes.push(`shaka estimatedBandwidth ${Math.round(m.player.getStats().estimatedBandwidth)}`);
      if (out.kind === 'hlsjs' && m.player) {
        out.notes.push(`hls.js latency ${m.player.latency} targetLatency ${m.player.targetLatency} ` +
                       `bandwidthEstimate ${Math.round(m.player.bandwidthEstimate)}`);
      }
      if (out.kind === 'videojs' && m.player) {
        const c = navigator.connection;
        if (c) out.notes.push(`navigator.connection downlink ${c.downlink} Mbit/s effectiveType ${c.effectiveType}`);
        const vhs = m.player.tech(true).vhs;
        const el = m.player.tech(true).el();
        const cs = getComputedStyle(el);
        let sel = null;
        try { sel = vhs.selectPlaylist(); } catch (e) { sel = String(e); }
        out.notes.push(`vhs bandwidth ${Math.round(vhs.bandwidth)} systemBandwidth ${Math.round(vhs.systemBandwidth)} ` +
                       `throughput ${Math.round(vhs.throughput)} player ${m.player.currentWidth()}x${m.player.currentHeight()} ` +
                       `tech element ${cs.width} x ${cs.height}, would select ${sel && sel.attributes ? sel.attributes.BANDWIDTH + ' ' + JSON.stringify(sel.attributes.RESOLUTION) : sel}`);
      }
    } catch (e) { /* stats are a bonus */ }
    return out;
  };
})();
