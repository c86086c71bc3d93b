// sluice's player page: /player/ID on the public origin, one static page for
// every stream (the id comes from location.pathname). Plays
// /hls/ID/master.m3u8 with hls.js (lowLatencyMode: LL-HLS when the playlists
// offer parts), or with the browser's own HLS where there is no
// MediaSource (Safari on iOS). While the stream is not live it says so and
// waits, then starts without a reload. Query parameters: embed=1 (no page chrome,
// just the video and its controls), token=... (signed playback; added to
// every request).
//
// Audience beacons (docs/audience.md): from the moment it starts loading a
// live stream until the page goes away, the page POSTs a small JSON beacon
// to /beacon/ID (same origin, so through the same CDN as the media): one at
// the start, one every 10 s, one on every change of its playback state, and
// `ended` at unload (navigator.sendBeacon). That, not the media requests, is
// how sluice counts this page as one viewer behind any CDN; the URLs carry
// no per-viewer id, so every viewer shares the CDN's cache.
//
// Timed metadata (docs/metadata.md): the payloads the platform posts reach
// the page as cues on the video's metadata text tracks (hls.js makes them
// from the media's emsg/ID3 boxes and from the playlists' EXT-X-DATERANGE;
// Safari's own HLS makes the same). A payload that is JSON with a "title" is
// a product card, shown on the first video frame at or after the time it
// was stamped on; every payload reached is also posted to an embedding page.
//
// For tests and embedders, read-only: document.body.dataset.state
// (loading|playing|paused|buffering|reconnecting|offline|error) and
// window.sluicePlayer {state, levels, currentLevel, currentLevelName,
// latency, lowLatency, mode, streamId, errors, cards, audience}. See
// docs/player.md.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const body = document.body;
  const player = $('player');
  const video = $('video');
  const message = $('message');
  const playBtn = $('play');
  const muteBtn = $('mute');
  const volume = $('volume');
  const latencyText = $('latency');
  const liveBadge = $('live');
  const llMark = $('ll');
  const goLiveBtn = $('golive');
  const quality = $('quality');
  const fullscreenBtn = $('fullscreen');
  const unmuteBtn = $('unmute');
  const card = $('card');
  // A script for player.html only (it may be served elsewhere, e.g. beside
  // the dashboard): without its elements it does nothing.
  if (!player || !video) return;

  const params = new URLSearchParams(location.search);
  const pathMatch = /^\/player\/([^/]+)\/?$/.exec(location.pathname);
  const streamId = pathMatch ? decodeURIComponent(pathMatch[1]) : '';
  const token = params.get('token');
  const embed = params.get('embed') === '1';
  const masterUrl = '/hls/' + encodeURIComponent(streamId) + '/master.m3u8';

  const OFFLINE_POLL_MS = 2000;  // waiting for a stream to go live
  const RETRY_POLL_MS = 1000;    // lost mid-play: is it still there?
  // How far past the target latency the playhead may fall before "Go live"
  // is offered (a pause, a long stall).
  const BEHIND_SLACK_S = 3;

  let hls = null;
  let mode = 'none';         // 'hls.js' | 'native' | 'none'
  let state = 'loading';
  let levels = [];           // rung names, in hls.levels order
  let chosenRung = null;     // the viewer's pick in the quality menu; null: Auto
  let lowLatency = false;
  let latency = null;        // seconds behind the live edge, null when unknown
  let pollTimer = 0;
  let hasPlayed = false;
  let mediaRecoveries = 0;
  const errors = [];          // hls.js errors seen, 'type/details' (+ ' fatal')

  // The page's token added to a URL that lacks one; the origin already
  // puts the token into the URIs of the playlists it serves, so it is not
  // doubled. Nothing else: a per-viewer parameter would split the CDN's
  // cache (viewers are counted by the beacons instead).
  function withParams(url) {
    if (!token || /[?&]token=/.test(url)) return url;
    return url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
  }

  // ---- state shown to the viewer --------------------------------------

  const FORBIDDEN = 'Playback was refused (403): the link is missing a valid token or it has ' +
                    'expired.';
  const ENDED = 'The broadcast has ended. The next one starts playing here as soon as it goes live.';
  const MESSAGES = {
    loading: 'Loading…',
    buffering: '',
    reconnecting: 'Reconnecting…',
    offline: 'The stream is offline. It starts playing here as soon as it goes live.',
  };

  function setState(next, text) {
    state = next;
    body.dataset.state = next;
    message.textContent = text !== undefined ? text : (MESSAGES[next] || '');
    playBtn.setAttribute('aria-label', video.paused ? 'Play' : 'Pause');
    player.classList.toggle('is-paused', video.paused);
    beaconStateChanged();
  }

  // ---- audience beacons (docs/audience.md) -------------------------------

  // One playback session: from the first start() of a broadcast (the page
  // found it live) until it ends, the page goes away, or playback failed.
  // The fields and their rules are the origin's (docs/audience.md "The
  // beacon"); the page sends what it knows and leaves out what it does not.
  const BEACON_URL = '/beacon/' + encodeURIComponent(streamId);
  const BEACON_EVERY_MS = 10000;
  // The origin takes 1 beacon/s per session (burst 5): state changes closer
  // together than this are sent as one, the latest state winning.
  const BEACON_GAP_MS = 1000;
  let beaconsOn = true;         // off for good after the origin says there are none
  let session = null;           // {id, state, since, startAt, startupMs, ...}
  let beaconTimer = 0;          // the next periodic or coalesced send
  let lastBeaconAt = -Infinity; // performance.now() of the last send
  let beaconsSent = 0;
  let lastBeaconStatus = null;  // the origin's answer to the last fetch()ed one

  // 18 random bytes as base64url: 24 characters of A-Za-z0-9_-.
  function sessionId() {
    const b = crypto.getRandomValues(new Uint8Array(18));
    return btoa(String.fromCharCode.apply(null, b)).replace(/\+/g, '-').replace(/\//g, '_');
  }

  // The page's state as a beacon's: stalled is waiting after the first
  // frame; before it the session is still starting.
  function beaconStateOf(s) {
    if (s === 'playing' || s === 'paused' || s === 'error') return s;
    // Waiting for a seek the viewer asked for ("Go live") is not a stall.
    if (s === 'buffering' && video.seeking && session) return session.state;
    if (s === 'buffering' || s === 'reconnecting') return session && session.firstFrame ? 'stalled' : 'starting';
    if (s === 'offline') return 'ended';
    return 'starting';
  }

  function beaconBegin() {
    if (session || !beaconsOn) return;
    const now = performance.now();
    session = { id: sessionId(), state: 'starting', since: now, startAt: now, firstFrame: false,
                startupMs: null, stalls: 0, stallMs: 0, watchMs: 0, errors: 0,
                droppedBase: 0, droppedLast: 0 };
    beaconSend();
  }

  // Time in the current state is added to its total up to now.
  function beaconSettle(now) {
    if (session.state === 'playing') session.watchMs += now - session.since;
    else if (session.state === 'stalled') session.stallMs += now - session.since;
    session.since = now;
  }

  function beaconStateChanged() {
    if (!session) return;
    const next = beaconStateOf(state);
    if (next === session.state) return;
    const now = performance.now();
    beaconSettle(now);
    if (next === 'playing' && !session.firstFrame) {
      session.firstFrame = true;
      session.startupMs = Math.round(now - session.startAt);
    }
    if (next === 'stalled') session.stalls++;
    session.state = next;
    if (next === 'ended') {
      // The broadcast is over (or gone): this session ends; the next
      // broadcast played in this page is a new one.
      beaconSend(true);
      session = null;
      clearTimeout(beaconTimer);
      return;
    }
    if (performance.now() - lastBeaconAt >= BEACON_GAP_MS) beaconSend();
    else beaconSchedule(lastBeaconAt + BEACON_GAP_MS - performance.now());
  }

  function beaconSchedule(ms) {
    clearTimeout(beaconTimer);
    beaconTimer = setTimeout(() => beaconSend(), Math.max(0, ms));
  }

  // The rung playing, by its name in the stream's URLs (.../720p/index.m3u8
  // -> 720p), or null while not known (the browser's own HLS never says).
  function beaconRendition() {
    if (!hls || hls.currentLevel < 0 || !hls.levels[hls.currentLevel]) return null;
    const m = /\/([a-z0-9_-]{1,15})\/index\.m3u8(?:[?#]|$)/.exec(hls.levels[hls.currentLevel].url || '');
    return m ? m[1] : null;
  }

  // Milliseconds from the frame on screen to now, by its program date-time
  // (the origin stamps every segment); else the page's measured latency.
  function beaconLatency() {
    let ms = null;
    const date = hls && hls.playingDate;
    if (date && state !== 'loading') ms = Date.now() - date.getTime();
    else if (latency !== null) ms = latency * 1000;
    return ms === null || !Number.isFinite(ms) ? undefined : Math.min(3600000, Math.max(0, Math.round(ms)));
  }

  // Cumulative over the session: the element's count starts again with
  // every new source (a reconnect).
  function beaconDropped() {
    const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    const n = q ? q.droppedVideoFrames : 0;
    if (n < session.droppedLast) session.droppedBase += session.droppedLast;
    session.droppedLast = n;
    return session.droppedBase + n;
  }

  function beaconBody() {
    beaconSettle(performance.now());
    const b = {
      session: session.id,
      state: session.state,
      rendition: beaconRendition(),
      latency_ms: session.state === 'starting' || session.state === 'ended' ? undefined : beaconLatency(),
      startup_ms: session.startupMs === null ? undefined : Math.min(600000, session.startupMs),
      stalls: session.stalls,
      stall_ms: Math.round(session.stallMs),
      watch_ms: Math.round(session.watchMs),
      dropped_frames: beaconDropped(),
      errors: session.errors,
      player: mode === 'hls.js' ? 'hls.js ' + Hls.version : 'native',
    };
    if (token) b.token = token;
    return JSON.stringify(b);
  }

  // A text/plain POST (CORS-safelisted: no preflight through the CDN).
  // The last one of a page goes with sendBeacon, which outlives the page;
  // the others with fetch(keepalive), whose answer says whether to go on.
  function beaconSend(last) {
    if (!session || !beaconsOn) return;
    const text = beaconBody();
    lastBeaconAt = performance.now();
    beaconsSent++;
    beaconSchedule(BEACON_EVERY_MS);
    if (last && navigator.sendBeacon && navigator.sendBeacon(BEACON_URL, text)) return;
    fetch(BEACON_URL, { method: 'POST', body: text, keepalive: true, cache: 'no-store',
                        credentials: 'omit' })
      .then(async (r) => {
        lastBeaconStatus = r.status;
        if (r.status === 429) {
          // Over the origin's rate: the next periodic one after its pause.
          const wait = Number(r.headers.get('Retry-After')) || 1;
          if (session) beaconSchedule(Math.max(wait * 1000, BEACON_GAP_MS));
        } else if (r.status === 404) {
          // "stream is not live" is a moment of this broadcast (the page
          // notices by itself); any other 404 is an origin taking no
          // beacons (--beacons off) or no such stream: stop asking.
          const why = await r.json().then((j) => j && j.error, () => null);
          if (why !== 'stream is not live') beaconsOn = false;
        } else if (r.status === 400 || r.status === 403 || r.status === 405 || r.status === 413) {
          beaconsOn = false;   // would be refused every time
        }
        if (!beaconsOn) clearTimeout(beaconTimer);
      }, () => { lastBeaconStatus = 0; });
  }

  // The page goes away (closed, reloaded, navigated): the session ends now
  // instead of after --audience-timeout. From the back/forward cache it
  // comes back as a new one.
  window.addEventListener('pagehide', () => {
    if (!session) return;
    beaconSettle(performance.now());
    session.state = 'ended';
    beaconSend(true);
    session = null;
    clearTimeout(beaconTimer);
  });
  window.addEventListener('pageshow', (e) => {
    if (e.persisted && mode !== 'none' && (hls || mode === 'native') && state !== 'offline') {
      beaconBegin();
      beaconStateChanged();
    }
  });

  function levelName(level, index) {
    if (level.name) return String(level.name);
    // sluice names each variant's directory by its rung: 720p/index.m3u8.
    const m = /\/([^/?]+)\/index\.m3u8/.exec(level.url || '');
    if (m) return decodeURIComponent(m[1]);
    return level.height ? level.height + 'p' : 'level ' + index;
  }

  function fillQuality() {
    quality.textContent = '';
    const auto = document.createElement('option');
    auto.value = '-1';
    auto.textContent = 'Auto';
    quality.appendChild(auto);
    // Highest first; the values are hls.js's level indexes.
    levels.map((name, i) => [name, i]).reverse().forEach(([name, i]) => {
      const o = document.createElement('option');
      o.value = String(i);
      o.textContent = name;
      quality.appendChild(o);
    });
    // A rung the viewer picked stays picked when the player starts again
    // (a reconnect, a recovered error) and the stream still has it.
    const kept = chosenRung === null ? -1 : levels.indexOf(chosenRung);
    quality.value = String(kept);
    quality.disabled = levels.length === 0;
    return kept;
  }

  function showAutoLevel(index) {
    const auto = quality.options[0];
    if (!auto) return;
    auto.textContent = hls && hls.autoLevelEnabled && levels[index] ? 'Auto (' + levels[index] + ')'
                                                                   : 'Auto';
  }

  // ---- starting, stopping, waiting for the stream ----------------------

  // hls.js where there is MediaSource, else the browser's own HLS, else
  // nothing: false with the reason shown.
  function pickMode() {
    if (window.Hls && Hls.isSupported()) mode = 'hls.js';
    else if (video.canPlayType('application/vnd.apple.mpegurl')) mode = 'native';
    else {
      mode = 'none';
      setState('error', 'This browser cannot play this stream: it has neither Media Source ' +
               'Extensions nor built-in HLS. Try a current Chrome, Edge, Firefox or Safari.');
      player.classList.add('unsupported');
      return false;
    }
    return true;
  }

  function start() {
    clearTimeout(pollTimer);
    beaconBegin();
    if (mode === 'hls.js') startHls();
    else startNative();
  }

  function startHls() {
    setState(hasPlayed ? 'reconnecting' : 'loading');
    hls = new Hls({
      lowLatencyMode: true,
      maxLiveSyncPlaybackRate: 1.5,
      backBufferLength: 30,
      // Every request of hls.js goes out with the token.
      xhrSetup: (xhr, url) => { xhr.open('GET', withParams(url), true); },
      fetchSetup: (context, init) => new Request(withParams(context.url), init),
    });
    hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => {
      levels = data.levels.map(levelName);
      const kept = fillQuality();
      if (kept >= 0) hls.currentLevel = kept;
      mediaRecoveries = 0;
      tryPlay();
    });
    hls.on(Hls.Events.LEVEL_LOADED, (_, data) => {
      const d = data.details;
      if (d && !d.live && !hasPlayed) {
        // It ended between the check and this load: not a broadcast to play.
        stop();
        setState('offline');
        poll(OFFLINE_POLL_MS);
        return;
      }
      lowLatency = !!(d && ((d.partList && d.partList.length > 0) || d.partTarget > 0));
      llMark.hidden = !lowLatency;
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) => showAutoLevel(data.level));
    // Timed metadata straight from hls.js's events: the emsg/ID3 samples
    // and the playlists' DATERANGEs (see "timed metadata" below).
    hls.on(Hls.Events.FRAG_PARSING_METADATA, onFragMetadata);
    hls.on(Hls.Events.LEVEL_UPDATED, onLevelUpdated);
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (errors.length < 50) errors.push(data.type + '/' + data.details + (data.fatal ? ' fatal' : ''));
      if (!data.fatal) return;
      if (session) session.errors++;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && mediaRecoveries < 2) {
        mediaRecoveries++;
        if (mediaRecoveries === 2) hls.swapAudioCodec();
        hls.recoverMediaError();
        return;
      }
      const manifest = data.details === Hls.ErrorDetails.MANIFEST_LOAD_ERROR ||
                       data.details === Hls.ErrorDetails.MANIFEST_LOAD_TIMEOUT ||
                       data.details === Hls.ErrorDetails.MANIFEST_PARSING_ERROR;
      const status = data.response && data.response.code;
      stop();
      if (status === 403) {
        setState('error', FORBIDDEN);
        return;
      }
      if (manifest && !hasPlayed) {
        setState('offline');
        poll(OFFLINE_POLL_MS);
      } else if (data.type === Hls.ErrorTypes.NETWORK_ERROR || manifest) {
        setState('reconnecting');
        poll(RETRY_POLL_MS);
      } else {
        setState('error', 'Playback failed (' + data.details + '). Retrying…');
        poll(OFFLINE_POLL_MS * 2);
      }
    });
    hls.loadSource(withParams(masterUrl));
    hls.attachMedia(video);
  }

  function startNative() {
    // Safari fetches the media playlists and segments itself: the token
    // reaches them through the origin's rewritten playlists.
    setState(hasPlayed ? 'reconnecting' : 'loading');
    levels = [];
    fillQuality();
    video.src = withParams(masterUrl);
    tryPlay();
  }

  function stop() {
    if (hls) {
      hls.destroy();
      hls = null;
    }
    if (mode === 'native') {
      video.removeAttribute('src');
      video.load();
    }
    latency = null;
    resetMetadata();
  }

  // Is the stream live? Its master playlist answers, and the first
  // variant's media playlist has no EXT-X-ENDLIST (after a broadcast the
  // origin keeps its last playlists, ended, until the next one starts).
  // 'live', 'offline', 'forbidden' (403) or 'unknown' (no answer).
  async function checkLive() {
    try {
      const r = await fetch(withParams(masterUrl), { cache: 'no-store' });
      if (r.status === 403) return 'forbidden';
      if (!r.ok) return 'offline';
      const uri = (await r.text()).split('\n').map((l) => l.trim())
        .find((l) => l && !l.startsWith('#'));
      if (!uri) return 'offline';
      const m = await fetch(withParams(new URL(uri, r.url).href), { cache: 'no-store' });
      if (m.status === 403) return 'forbidden';
      if (!m.ok) return 'offline';
      return /#EXT-X-ENDLIST/.test(await m.text()) ? 'offline' : 'live';
    } catch (e) {
      return 'unknown';
    }
  }

  // Wait for the stream to be live, then start, without a reload.
  function poll(delay, offlineText) {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(async () => {
      const live = await checkLive();
      if (live === 'live') {
        start();
      } else if (live === 'forbidden') {
        setState('error', FORBIDDEN);
      } else {
        if (live === 'offline' && state !== 'offline') setState('offline', offlineText);
        poll(OFFLINE_POLL_MS);
      }
    }, delay);
  }

  async function tryPlay() {
    try {
      await video.play();
    } catch (e) {
      if (e && e.name === 'NotAllowedError' && !video.muted) {
        // Autoplay with sound is refused without a gesture: play muted and
        // offer to unmute.
        video.muted = true;
        unmuteBtn.hidden = false;
        try { await video.play(); } catch (e2) { setState('paused'); }
      }
    }
  }

  // ---- the video element's own events ---------------------------------

  video.addEventListener('playing', () => {
    hasPlayed = true;
    setState('playing');
  });
  video.addEventListener('waiting', () => {
    if (state !== 'offline' && state !== 'reconnecting' && state !== 'error') setState('buffering');
  });
  video.addEventListener('pause', () => {
    if (state === 'playing' || state === 'buffering') setState('paused');
    else setState(state, message.textContent);
  });
  video.addEventListener('play', () => setState(state, message.textContent));
  video.addEventListener('ended', () => {
    // The broadcast ended (EXT-X-ENDLIST): wait for the next one.
    stop();
    hasPlayed = false;
    setState('offline', ENDED);
    poll(OFFLINE_POLL_MS);
  });
  video.addEventListener('error', () => {
    if (mode !== 'native') return;
    if (session) session.errors++;
    stop();
    setState(hasPlayed ? 'reconnecting' : 'offline');
    poll(OFFLINE_POLL_MS);
  });
  video.addEventListener('volumechange', () => {
    player.classList.toggle('is-muted', video.muted || video.volume === 0);
    muteBtn.setAttribute('aria-label', video.muted ? 'Unmute' : 'Mute');
    volume.value = String(video.muted ? 0 : video.volume);
    if (!video.muted) unmuteBtn.hidden = true;
  });

  // ---- latency badge and "go live" -------------------------------------

  function measureLatency() {
    if (mode === 'hls.js' && hls) {
      const l = hls.latency;
      if (Number.isFinite(l) && l > 0) return l;
      const date = hls.playingDate;  // EXT-X-PROGRAM-DATE-TIME of the frame on screen
      if (date) return Math.max(0, (Date.now() - date.getTime()) / 1000);
      return null;
    }
    if (mode === 'native' && video.seekable.length > 0) {
      return Math.max(0, video.seekable.end(video.seekable.length - 1) - video.currentTime);
    }
    return null;
  }

  function targetLatency() {
    if (hls && Number.isFinite(hls.targetLatency)) return hls.targetLatency;
    return 6;
  }

  function updateLatency() {
    const active = state === 'playing' || state === 'paused' || state === 'buffering';
    latency = active ? measureLatency() : null;
    if (latency === null) {
      latencyText.textContent = 'LIVE';
      liveBadge.classList.remove('behind');
      goLiveBtn.hidden = true;
      return;
    }
    latencyText.textContent = '~' + latency.toFixed(1) + ' s behind live';
    const behind = latency > targetLatency() + BEHIND_SLACK_S;
    liveBadge.classList.toggle('behind', behind);
    goLiveBtn.hidden = !behind;
  }
  setInterval(updateLatency, 500);

  goLiveBtn.addEventListener('click', () => {
    if (hls && Number.isFinite(hls.liveSyncPosition)) {
      video.currentTime = hls.liveSyncPosition;
    } else if (video.seekable.length > 0) {
      video.currentTime = Math.max(0, video.seekable.end(video.seekable.length - 1) - 3);
    }
    tryPlay();
    updateLatency();
  });

  // ---- controls ---------------------------------------------------------

  function togglePlay() {
    if (video.paused) tryPlay();
    else video.pause();
  }
  playBtn.addEventListener('click', togglePlay);
  video.addEventListener('click', togglePlay);

  muteBtn.addEventListener('click', () => {
    video.muted = !video.muted;
    if (!video.muted && video.volume === 0) video.volume = 0.5;
  });
  unmuteBtn.addEventListener('click', () => {
    video.muted = false;
    unmuteBtn.hidden = true;
  });
  volume.addEventListener('input', () => {
    video.volume = Number(volume.value);
    video.muted = video.volume === 0;
  });

  quality.addEventListener('change', () => {
    const index = Number(quality.value);
    chosenRung = index >= 0 && levels[index] !== undefined ? levels[index] : null;
    if (hls) {
      // -1: back to automatic; a rung: switch now (flushes what is buffered).
      hls.currentLevel = index;
      showAutoLevel(hls.currentLevel);
    }
  });

  function toggleFullscreen() {
    const fsElement = document.fullscreenElement || document.webkitFullscreenElement;
    if (fsElement) {
      (document.exitFullscreen || document.webkitExitFullscreen).call(document);
    } else if (player.requestFullscreen) {
      player.requestFullscreen().catch(() => {});
    } else if (player.webkitRequestFullscreen) {
      player.webkitRequestFullscreen();
    } else if (video.webkitEnterFullscreen) {
      video.webkitEnterFullscreen();  // iPhone: the video element only
    }
  }
  fullscreenBtn.addEventListener('click', toggleFullscreen);
  video.addEventListener('dblclick', toggleFullscreen);
  const onFullscreen = () => player.classList.toggle('is-fullscreen',
    !!(document.fullscreenElement || document.webkitFullscreenElement));
  document.addEventListener('fullscreenchange', onFullscreen);
  document.addEventListener('webkitfullscreenchange', onFullscreen);

  document.addEventListener('keydown', (e) => {
    const tag = e.target && e.target.tagName;
    if (tag === 'SELECT' || tag === 'INPUT' || tag === 'TEXTAREA') return;
    // A focused button already acts on space and enter by itself.
    if (tag === 'BUTTON' && (e.key === ' ' || e.key === 'Enter')) return;
    if (e.key === ' ' || e.key === 'k') { e.preventDefault(); togglePlay(); }
    else if (e.key === 'm') video.muted = !video.muted;
    else if (e.key === 'f') toggleFullscreen();
  });

  // Controls fade out while playing and the pointer is still.
  let idleTimer = 0;
  function wake() {
    player.classList.add('is-active');
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => player.classList.remove('is-active'), 3000);
  }
  player.addEventListener('pointermove', wake);
  player.addEventListener('focusin', wake);
  wake();

  // ---- timed metadata: product cards --------------------------------------

  // Each item comes in two forms (docs/metadata.md): the emsg/ID3 box in
  // the media (one per fragment that carries it, so audio and video each
  // give one) and the playlists' EXT-X-DATERANGE (id 'sluice-N', X-PAYLOAD
  // the payload or 0x<hex>). With hls.js the page reads them from its
  // events (FRAG_PARSING_METADATA samples, LEVEL_UPDATED's dateRanges):
  // hls.js 1.7.4 also makes cues of them on a metadata text track, but the
  // cues it adds in the task that creates that track were seen to vanish
  // (the track's data: source loads after them and empties it). With the
  // browser's own HLS (Safari) they come as cues on its metadata tracks
  // (value {key: 'TXXX', info: 'sluice', data} and {key: 'X-PAYLOAD',
  // data}), which the page scans too. Both forms become one item; its time
  // is the emsg's when there is one (the media's own clock, exact), else
  // the DATERANGE's (mapped through the program date-time). An item is shown on the first video frame at or after its
  // time, found with requestVideoFrameCallback (every frame presented; a
  // cue's own events come 0-25 ms late in Chromium, and only on a text
  // track the page keeps enabled).
  const CARD_SHOW_MS = 15000;   // a card stays this long, or until the next one
  const MATCH_S = 0.5;          // the two forms of one item are this close in time
  const LATE_S = 1.0;           // an item found up to this far behind the playhead still shows
  const EPS_S = 0.002;          // media-time rounding (ms in the box, 90 kHz in the video)
  const MAX_ITEMS = 100;
  const EMSG_ID3 = 'https://aomedia.org/emsg/ID3';

  let items = [];               // {id, payload, cueTime, emsgTime, daterangeTime, ...}
  let seenCues = new WeakSet();
  let lastFrameTime = null;     // media time of the previous frame checked
  let scanTimer = 0;
  let hideTimer = 0;

  function resetMetadata() {
    items = [];
    seenCues = new WeakSet();
    lastFrameTime = null;
    hideCard();
  }

  // X-PAYLOAD is a quoted string, or 0x<hex of the UTF-8 bytes> when the
  // payload has a quote or a line break; players hand both over without
  // the quotes.
  function daterangePayload(data) {
    const text = String(data);
    if (!/^0x([0-9a-f]{2})+$/i.test(text)) return text;
    const bytes = new Uint8Array((text.length - 2) / 2);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(text.substr(2 + 2 * i, 2), 16);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch (e) {
      return text;
    }
  }

  // A cue of ours, as {source, id, payload, time}, or null.
  function readCue(cue) {
    const v = cue.value;
    if (!v || typeof v !== 'object') return null;
    if (v.key === 'TXXX' && (v.info === 'sluice' || v.description === 'sluice') &&
        (cue.type === undefined || cue.type === EMSG_ID3 || cue.type === 'org.id3')) {
      return { source: 'emsg', id: null, payload: String(v.data), time: cue.startTime };
    }
    const m = /^sluice-(\d+)$/.exec(cue.id || '');
    if (m && v.key === 'X-PAYLOAD') {
      return { source: 'daterange', id: Number(m[1]), payload: daterangePayload(v.data),
               time: cue.startTime };
    }
    return null;
  }

  // The TXXX frames of an ID3v2 tag (bytes), as [{info, payload}].
  function id3Txxx(bytes) {
    const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    const out = [];
    if (b.length < 10 || b[0] !== 0x49 || b[1] !== 0x44 || b[2] !== 0x33) return out;
    const syncsafe = (i) => ((b[i] & 0x7f) << 21) | ((b[i + 1] & 0x7f) << 14) |
                            ((b[i + 2] & 0x7f) << 7) | (b[i + 3] & 0x7f);
    const end = Math.min(b.length, 10 + syncsafe(6));
    let p = 10 + (b[5] & 0x40 ? syncsafe(10) : 0);
    const utf8 = new TextDecoder('utf-8');
    while (p + 10 <= end) {
      const id = String.fromCharCode(b[p], b[p + 1], b[p + 2], b[p + 3]);
      const size = b[3] === 4 ? syncsafe(p + 4)
                              : ((b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]);
      if (!/^[A-Z0-9]{4}$/.test(id) || size <= 0 || p + 10 + size > end) break;
      const f = b.subarray(p + 10, p + 10 + size);
      const z = f.indexOf(0, 1);
      if (id === 'TXXX' && z > 0) {
        out.push({ info: utf8.decode(f.subarray(1, z)),
                   payload: utf8.decode(f.subarray(z + 1)).replace(/\0+$/, '') });
      }
      p += 10 + size;
    }
    return out;
  }

  function onFragMetadata(_, data) {
    for (const s of data.samples || []) {
      if (s.type !== EMSG_ID3 || !Number.isFinite(s.pts)) continue;
      for (const f of id3Txxx(s.data)) {
        if (f.info === 'sluice') addItem({ source: 'emsg', id: null, payload: f.payload, time: s.pts });
      }
    }
  }

  function onLevelUpdated(_, data) {
    const ranges = (data.details && data.details.dateRanges) || {};
    for (const key of Object.keys(ranges)) {
      const m = /^sluice-(\d+)$/.exec(key);
      const r = ranges[key];
      const value = r && r.attr ? r.attr['X-PAYLOAD'] : undefined;
      if (!m || value === undefined) continue;
      const time = r.startTime;  // NaN until hls.js can place it
      if (Number.isFinite(time)) {
        addItem({ source: 'daterange', id: Number(m[1]), payload: daterangePayload(value), time });
      }
    }
  }

  function queueScan() {
    if (!scanTimer) scanTimer = setTimeout(scanCues, 0);
  }

  function scanCues() {
    scanTimer = 0;
    for (const track of video.textTracks) {
      if (track.kind !== 'metadata') continue;
      // Safari's own HLS fills a metadata track only while it is not disabled.
      if (track.mode === 'disabled') track.mode = 'hidden';
      for (const cue of track.cues || []) {
        if (seenCues.has(cue)) continue;
        seenCues.add(cue);
        const c = readCue(cue);
        if (c) addItem(c);
      }
    }
  }

  function addItem(c) {
    let item = items.find((it) => (c.id !== null && it.id === c.id) ||
      (it.payload === c.payload && Math.abs(it.cueTime - c.time) < MATCH_S &&
       (c.id === null || it.id === null)));
    if (!item) {
      item = { id: null, payload: c.payload, cueTime: c.time, source: c.source, emsgTime: null,
               daterangeTime: null, card: productCard(c.payload), arrivedAtCurrentTime: video.currentTime,
               arrivedWallClock: Date.now(), shown: false, skipped: false, shownAtMediaTime: null,
               shownAtCurrentTime: null, prevFrameMediaTime: null, wallClock: null };
      items.push(item);
      if (items.length > MAX_ITEMS) items.shift();
      // The picture is fetched now, so that it is there when the card shows.
      if (item.card && item.card.image) new Image().src = item.card.image;
    }
    if (c.source === 'emsg') {
      if (item.emsgTime === null) item.emsgTime = c.time;
      item.cueTime = item.emsgTime;
      item.source = 'emsg';
    } else {
      item.id = c.id;
      if (item.daterangeTime === null) item.daterangeTime = c.time;
      if (item.emsgTime === null) item.cueTime = c.time;
    }
    // Found behind the playhead: shown now if only just, else it is past.
    if (!item.shown && item.cueTime < video.currentTime - LATE_S) item.skipped = true;
  }

  // An http(s) URL, or null; an image from elsewhere must be https (the
  // page's CSP: img-src 'self' data: https:).
  function safeUrl(value, image) {
    if (typeof value !== 'string') return null;
    let u;
    try { u = new URL(value); } catch (e) { return null; }
    if (u.protocol === 'https:') return u.href;
    if (u.protocol === 'http:' && (!image || u.origin === location.origin)) return u.href;
    return null;
  }

  // {title, price, image, url} from a payload that is a JSON object with a
  // non-empty string title, else null. The payload is untrusted: nothing
  // of it becomes markup.
  function productCard(payload) {
    let o;
    try { o = JSON.parse(payload); } catch (e) { return null; }
    if (!o || typeof o !== 'object' || Array.isArray(o)) return null;
    if (typeof o.title !== 'string' || !o.title.trim()) return null;
    const price = typeof o.price === 'string' || typeof o.price === 'number' ? String(o.price) : '';
    return { title: o.title, price, image: safeUrl(o.image, true), url: safeUrl(o.url, false) };
  }

  function showCard(c) {
    if (!card) return;
    const title = $('card-title');
    const link = $('card-link');
    const img = $('card-image');
    title.textContent = c.title;
    $('card-price').textContent = c.price;
    $('card-price').hidden = !c.price;
    if (c.url) link.href = c.url;
    else link.removeAttribute('href');
    link.hidden = !c.url;
    if (c.image) {
      img.src = c.image;
      img.hidden = false;
    } else {
      img.removeAttribute('src');
      img.hidden = true;
    }
    card.hidden = false;
    clearTimeout(hideTimer);
    hideTimer = setTimeout(hideCard, CARD_SHOW_MS);
  }

  function hideCard() {
    clearTimeout(hideTimer);
    if (card) card.hidden = true;
  }

  // One video frame on screen (its media time t): every item not reached
  // yet whose time is at or before t is reached now, the last product card
  // among them shown (an item more than LATE_S before t is past instead).
  function onFrame(t) {
    if (lastFrameTime !== null && t < lastFrameTime) lastFrameTime = null;
    for (const item of items) {
      if (item.shown || item.skipped || item.cueTime > t + EPS_S) continue;
      // Far behind this frame: joined or seeked past, not shown.
      if (item.cueTime < t - LATE_S) {
        item.skipped = true;
        continue;
      }
      item.shown = true;
      item.shownAtMediaTime = t;
      item.shownAtCurrentTime = video.currentTime;
      item.prevFrameMediaTime = lastFrameTime;
      item.wallClock = Date.now();
      if (item.card) showCard(item.card);
      // An embedding page gets every payload (the playlists are public, so
      // nothing here is secret); it must check event.origin itself.
      if (window.parent !== window) {
        window.parent.postMessage({ type: 'sluice:metadata', id: item.id, payload: item.payload,
                                    time: item.cueTime }, '*');
      }
    }
    lastFrameTime = t;
  }

  if ('requestVideoFrameCallback' in HTMLVideoElement.prototype) {
    let frameHandle = 0;
    const frame = (now, meta) => {
      onFrame(meta.mediaTime);
      frameHandle = video.requestVideoFrameCallback(frame);
    };
    // Armed again at each start of playback: a new source (a reconnect)
    // must not leave the loop waiting on the old one, nor run it twice.
    const arm = () => {
      if (frameHandle) video.cancelVideoFrameCallback(frameHandle);
      frameHandle = video.requestVideoFrameCallback(frame);
    };
    video.addEventListener('playing', arm);
    arm();
  } else {
    setInterval(() => { if (!video.paused) onFrame(video.currentTime); }, 50);
  }
  // A seek: what lies ahead shows again (DVR), nothing jumped over does.
  video.addEventListener('seeking', () => {
    lastFrameTime = null;
    for (const item of items) {
      if (item.cueTime > video.currentTime) item.shown = item.skipped = false;
    }
  });
  video.textTracks.addEventListener('addtrack', queueScan);
  setInterval(scanCues, 1000);  // the native player, and cues added without an event
  if (card) $('card-close').addEventListener('click', hideCard);

  const itemView = (it) => ({
    id: it.id, payload: it.payload, cueTime: it.cueTime, source: it.source, emsgTime: it.emsgTime,
    daterangeTime: it.daterangeTime, card: it.card ? Object.assign({}, it.card) : null,
    arrivedAtCurrentTime: it.arrivedAtCurrentTime, arrivedWallClock: it.arrivedWallClock,
    shown: it.shown, skipped: it.skipped, shownAtMediaTime: it.shownAtMediaTime,
    shownAtCurrentTime: it.shownAtCurrentTime, prevFrameMediaTime: it.prevFrameMediaTime,
    wallClock: it.wallClock,
  });

  // ---- read-only state for tests and embedders --------------------------

  window.sluicePlayer = Object.freeze({
    get state() { return state; },
    get streamId() { return streamId; },
    get mode() { return mode; },
    get levels() { return levels.slice(); },
    get currentLevel() { return hls ? hls.currentLevel : -1; },
    get currentLevelName() { return hls && hls.currentLevel >= 0 ? levels[hls.currentLevel] : null; },
    get autoLevel() { return hls ? hls.autoLevelEnabled : false; },
    get latency() { return latency; },
    get lowLatency() { return lowLatency; },
    get errors() { return errors.slice(); },
    get cards() { return items.map(itemView); },
    // The beacons: the session id, its state as last sent, how many were
    // sent and the origin's status for the last fetch()ed one.
    get audience() {
      return { session: session ? session.id : null, state: session ? session.state : null,
               rendition: beaconRendition(), sent: beaconsSent, lastStatus: lastBeaconStatus,
               on: beaconsOn };
    },
  });

  // ---- go -----------------------------------------------------------------

  if (embed) body.classList.add('embed');
  $('title').textContent = streamId || 'Live';
  document.title = (streamId || 'Live') + ' · sluice';
  if (!streamId) {
    setState('error', 'No stream id in this address (expected /player/ID).');
    return;
  }
  if (pickMode()) poll(0);
})();
