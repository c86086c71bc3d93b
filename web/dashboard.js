// sluice admin dashboard: polls the admin API of the listener that served
// this page (same origin, so the browser's own credentials go with every
// fetch: nothing here handles the token), lists the streams, keeps a short
// history per stream for the charts, previews the selected stream with
// hls.js, and drives create / rotate-key / disconnect / delete.
//
// Everything the API returns is put into the page with textContent, never
// as HTML. Test hooks: rows carry data-stream-id and data-state; each chart
// element data-points (points plotted) and data-updates (redraws); the
// preview wrapper data-state; #updated data-polls; #metadata-result
// data-status (sending|sent|error) after "Send test product card"; the
// simulcast outputs' rows data-output-id and data-state, #outputs-box
// data-loaded (outputs listings shown) and data-stream-id.
'use strict';

(function () {
  const POLL_MS = 2000;
  const HISTORY_S = 600;           // keep 10 minutes of samples per stream
  const API = '/api/v1';

  const $ = (id) => document.getElementById(id);
  const streams = new Map();       // id -> latest status object
  const hist = new Map();          // id -> {t:[], bitrate:[], viewers:[], requestViewers:[], speed:{name:[]}}
  let selected = null;             // id of the stream in the detail panel
  let polls = 0;
  let pollTimer = null;
  let confirmAction = null;
  let outputsFor = null;           // stream id whose outputs are listed
  let outputsLoads = 0;
  const sid = randomId();          // viewer session of this page's preview

  // ---- helpers ----------------------------------------------------------

  function randomId() {
    const b = new Uint8Array(12);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function fmtKbps(k) {
    if (k === undefined || k === null) return '–';
    if (k >= 10000) return (k / 1000).toFixed(1) + ' Mb/s';
    return Math.round(k) + ' kb/s';
  }

  function fmtBytes(b) {
    if (b === undefined || b === null) return '–';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return (i ? b.toFixed(1) : b) + ' ' + u[i];
  }

  function fmtDuration(s) {
    if (s === undefined || s === null) return '–';
    s = Math.floor(s);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    const two = (n) => String(n).padStart(2, '0');
    return (d ? d + 'd ' : '') + (d || h ? h + ':' + two(m) : m) + ':' + two(sec);
  }

  function fmtNum(n, digits) {
    if (n === undefined || n === null || Number.isNaN(n)) return '–';
    return Number(n).toFixed(digits);
  }

  // ---- errors -----------------------------------------------------------

  let errorSource = null;
  function showError(msg, source) {
    const box = $('error');
    box.textContent = msg;
    box.hidden = false;
    errorSource = source || 'action';
  }
  function clearError(source) {
    if (errorSource && (!source || errorSource === source)) {
      $('error').hidden = true;
      $('error').textContent = '';
      errorSource = null;
    }
  }

  // One API call. Resolves to the parsed body (null for 204); rejects with
  // an Error whose message says what the API (or the network) said.
  async function api(method, path, body) {
    const init = { method, headers: {}, cache: 'no-store', credentials: 'same-origin' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let r;
    try {
      r = await fetch(API + path, init);
    } catch (e) {
      throw new Error(`${method} ${API}${path}: the admin listener cannot be reached (${e.message})`);
    }
    const text = await r.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    if (!r.ok) {
      let why = data && data.error ? data.error : (text || r.statusText);
      if (r.status === 401) why += ' — reload the page and enter the admin token as the password';
      if (r.status === 403) why += ' — without --admin-token only loopback clients are answered';
      const err = new Error(`${method} ${API}${path}: ${r.status} ${why}`);
      err.status = r.status;
      throw err;
    }
    return data;
  }

  // ---- polling ----------------------------------------------------------

  async function poll() {
    clearTimeout(pollTimer);
    try {
      const [list, stats] = await Promise.all([api('GET', '/streams'), api('GET', '/stats')]);
      const now = Date.now() / 1000;
      const seen = new Set();
      for (const s of list.streams || []) {
        seen.add(s.id);
        streams.set(s.id, s);
        record(s, now);
      }
      for (const id of [...streams.keys()]) {
        if (!seen.has(id)) { streams.delete(id); hist.delete(id); }
      }
      if (selected && !streams.has(selected)) select(null);
      renderStats(stats);
      renderStreams();
      renderDetail();
      await loadOutputs();
      polls++;
      const u = $('updated');
      u.textContent = 'updated ' + new Date().toLocaleTimeString();
      u.dataset.polls = String(polls);
      clearError('poll');
    } catch (e) {
      showError(e.message, 'poll');
      $('updated').textContent = 'not updating';
    }
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, POLL_MS);
  }

  function record(s, now) {
    let h = hist.get(s.id);
    if (!h) {
      h = { t: [], bitrate: [], viewers: [], requestViewers: [], speed: {} };
      hist.set(s.id, h);
    }
    const live = s.state === 'live';
    const n = h.t.length;
    h.t.push(now);
    h.bitrate.push(live && s.ingest ? s.ingest.bitrate_kbps : null);
    // The audience (docs/audience.md): the headline count (the players'
    // beacons, or the request-based estimate when none send any) and the
    // request-based estimate on its own, to compare.
    const aud = s.audience || null;
    h.viewers.push(aud && typeof aud.viewers === 'number' ? aud.viewers : (s.viewers ?? 0));
    h.requestViewers.push(aud && typeof aud.request_viewers === 'number' ? aud.request_viewers : null);
    const rends = live && Array.isArray(s.renditions) ? s.renditions : [];
    for (const r of rends) {
      if (!h.speed[r.name]) h.speed[r.name] = new Array(n).fill(null);
    }
    for (const name of Object.keys(h.speed)) {
      const r = rends.find((x) => x.name === name);
      h.speed[name].push(r && typeof r.encoder_speed === 'number' ? r.encoder_speed : null);
    }
    // Drop what fell out of the window.
    let drop = 0;
    while (drop < h.t.length && h.t[drop] < now - HISTORY_S) drop++;
    if (drop) {
      h.t.splice(0, drop);
      h.bitrate.splice(0, drop);
      h.viewers.splice(0, drop);
      h.requestViewers.splice(0, drop);
      for (const name of Object.keys(h.speed)) h.speed[name].splice(0, drop);
    }
  }

  // ---- server panel -----------------------------------------------------

  function renderStats(st) {
    if (!st) return;
    const p = st.process || {};
    const eg = st.egress || {};
    const rps = eg.requests_per_s || {};
    const store = st.store || {};
    const tc = st.transcode || {};
    $('srv-cpu').textContent = p.cpu_percent !== undefined
      ? fmtNum(p.cpu_percent, 1) + ' %' + (tc.cpus ? ` of one core (${tc.cpus} cores)` : '') : '–';
    $('srv-mem').textContent = fmtBytes(p.rss_bytes) + ' resident';
    $('srv-egress').textContent = fmtKbps(eg.bitrate_kbps) +
      (eg.connections_open !== undefined ? ` · ${eg.connections_open} connections` : '');
    $('srv-rps').textContent = rps.total !== undefined
      ? `${fmtNum(rps.total, 1)} (playlist ${fmtNum(rps.playlist, 1)}, part ${fmtNum(rps.part, 1)}, ` +
        `segment ${fmtNum(rps.segment, 1)})` : '–';
    const sEl = $('srv-store');
    sEl.textContent = (store.backend || '?') + ' · ' + (store.connected ? 'connected' : 'NOT connected') +
      (store.errors ? ` · ${store.errors} errors` : '');
    sEl.className = store.connected ? 'ok' : 'bad';
    sEl.dataset.connected = String(!!store.connected);
    $('srv-live').textContent = st.live_streams ?? '–';
    $('srv-viewers').textContent = st.viewers ?? '–';
    $('srv-ingest').textContent = fmtKbps(st.ingest_bitrate_kbps);
    $('srv-load').textContent = tc.load !== undefined
      ? `${fmtNum(tc.load, 2)} · ${tc.workers ?? 0} workers` +
        (tc.slowest_speed ? ` · slowest ${fmtNum(tc.slowest_speed, 2)}×` : '') : '–';
    $('srv-uptime').textContent = fmtDuration(st.uptime_s) + (st.version ? ` · v${st.version}` : '');
  }

  // ---- stream list ------------------------------------------------------

  function renderStreams() {
    const tbody = $('streams');
    const ids = [...streams.keys()].sort((a, b) => {
      const sa = streams.get(a), sb = streams.get(b);
      if ((sa.state === 'live') !== (sb.state === 'live')) return sa.state === 'live' ? -1 : 1;
      return (sa.name || a).localeCompare(sb.name || b);
    });
    const rows = new Map([...tbody.children].map((tr) => [tr.dataset.streamId, tr]));
    for (const [id, tr] of rows) if (!streams.has(id)) tr.remove();
    ids.forEach((id, i) => {
      let tr = rows.get(id);
      if (!tr) tr = makeRow(id);
      fillRow(tr, streams.get(id));
      if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
    });
    $('no-streams').hidden = streams.size > 0;
    const live = [...streams.values()].filter((s) => s.state === 'live').length;
    $('stream-count').textContent = `${streams.size} registered, ${live} live`;
  }

  function makeRow(id) {
    const tr = el('tr', 'stream');
    tr.dataset.streamId = id;
    const name = el('td', 'name');
    name.append(el('span', 'stream-name'), el('span', 'stream-id mono', id));
    tr.append(name);
    for (const c of ['state', 'bitrate', 'fps', 'resolution', 'health', 'viewers', 'uptime'])
      tr.append(el('td', c));
    const actions = el('td', 'actions');
    const mk = (act, label, cls) => {
      const b = el('button', cls || '', label);
      b.type = 'button';
      b.dataset.action = act;
      return b;
    };
    actions.append(mk('rotate', 'Rotate key'), mk('disconnect', 'Disconnect'),
                   mk('delete', 'Delete', 'danger'));
    tr.append(actions);
    return tr;
  }

  function fillRow(tr, s) {
    const live = s.state === 'live';
    const ing = live && s.ingest ? s.ingest : null;
    tr.dataset.state = s.state;
    tr.dataset.health = live ? (s.health || '') : '';
    tr.classList.toggle('selected', s.id === selected);
    tr.querySelector('.stream-name').textContent = s.name || s.id;
    const st = tr.querySelector('td.state');
    st.textContent = '';
    st.append(el('span', 'badge ' + (live ? 'live' : 'idle'), s.state));
    // A dropped publisher the stream waits for (--reconnect-window).
    if (live && s.reconnecting) st.append(el('span', 'badge reconnecting', 'reconnecting'));
    tr.querySelector('td.bitrate').textContent = ing ? fmtKbps(ing.bitrate_kbps) : '–';
    tr.querySelector('td.bitrate').dataset.kbps = ing ? String(ing.bitrate_kbps) : '0';
    tr.querySelector('td.fps').textContent = ing ? fmtNum(ing.fps, ing.fps % 1 ? 1 : 0) : '–';
    tr.querySelector('td.resolution').textContent = ing && ing.width ? `${ing.width}×${ing.height}` : '–';
    const h = tr.querySelector('td.health');
    h.textContent = '';
    if (live && s.health) {
      h.append(el('span', 'health-badge ' + s.health, s.health));
      if (s.health_reason) h.append(el('span', 'reason', s.health_reason));
    } else {
      h.textContent = '–';
    }
    tr.querySelector('td.viewers').textContent = s.viewers ?? 0;
    tr.querySelector('td.uptime').textContent = ing ? fmtDuration(ing.uptime_s) : '–';
    tr.querySelector('button[data-action="disconnect"]').disabled = !live;
  }

  // ---- detail: info, charts, preview -----------------------------------

  const charts = {};               // key -> {plot, sig}

  function select(id) {
    if (selected === id) return;
    selected = id;
    if (id) history.replaceState(null, '', '#stream=' + encodeURIComponent(id));
    else history.replaceState(null, '', location.pathname);
    for (const k of Object.keys(charts)) destroyChart(k);
    stopPreview();
    outputsFor = null;
    renderOutputs([]);
    $('no-outputs').hidden = true;
    renderStreams();
    renderDetail();
    loadOutputs();
  }

  // Clips (docs/clips.md): "clip the last 30 s" of the selected live
  // stream, and its clips with download links, refreshed while one is made.
  let makingClip = false;
  let clipsFor = null;
  let clipsLoadedAt = 0;
  const CLIPS_EVERY_MS = 5000;
  let clipsTimer = null;
  async function loadClips() {
    const id = selected;
    if (!id) return;
    let res;
    try {
      res = await api('GET', '/clips');
    } catch (err) {
      return; // no recordings directory here, or the API is down: the list stays as it was
    }
    if (selected !== id) return;
    const tb = $('clips');
    tb.textContent = '';
    const mine = (res.clips || []).filter((c) => c.stream_id === id);
    for (const c of mine) {
      const tr = el('tr');
      tr.dataset.clipId = c.id;
      tr.dataset.state = c.state;
      const name = el('td', 'mono');
      if (c.state === 'ready' && c.mp4_url) {
        const a = el('a', null, c.id);
        a.href = c.mp4_url;
        a.target = '_blank';
        a.rel = 'noopener';
        name.appendChild(a);
      } else {
        name.textContent = c.id;
      }
      tr.appendChild(name);
      tr.appendChild(el('td', 'mono', c.start_at || ''));
      tr.appendChild(el('td', null, fmtDuration(c.duration_s || c.requested_duration_s || 0)));
      tr.appendChild(el('td', null, c.bytes ? fmtBytes(c.bytes) : ''));
      tr.appendChild(el('td', null, c.state === 'failed' ? `failed: ${c.reason || ''}` : c.state));
      tb.appendChild(tr);
    }
    clearTimeout(clipsTimer);
    if (mine.some((c) => c.state === 'processing')) clipsTimer = setTimeout(loadClips, 1000);
  }

  $('clip-last').addEventListener('click', async () => {
    const id = selected;
    if (!id || makingClip) return;
    const out = $('clip-result');
    makingClip = true;
    $('clip-last').disabled = true;
    out.dataset.status = 'sending';
    out.textContent = 'Asking…';
    try {
      const res = await api('POST', `/streams/${encodeURIComponent(id)}/clips`, { last: 30 });
      out.dataset.status = 'sent';
      out.textContent = `Clip ${res.id} asked for: it appears below, with a download link once ready`;
      clearError('action');
      loadClips();
    } catch (err) {
      out.dataset.status = 'error';
      out.textContent = err.message;
      showError(err.message, 'action');
    } finally {
      makingClip = false;
      const s = streams.get(id);
      $('clip-last').disabled = !(s && s.state === 'live' && selected === id);
    }
  });

  function renderDetail() {
    const box = $('detail');
    const s = selected ? streams.get(selected) : null;
    if (!s) { box.hidden = true; stopPreview(); return; }
    box.hidden = false;
    box.dataset.streamId = s.id;
    const live = s.state === 'live';
    $('detail-name').textContent = s.name || s.id;
    const badge = $('detail-state');
    badge.textContent = live && s.reconnecting ? 'live · reconnecting' : s.state;
    badge.className = 'badge ' + (live ? 'live' : 'idle');
    $('detail-id').textContent = s.id;
    const pb = $('detail-playback');
    pb.textContent = s.playback_url || '';
    pb.href = s.playback_url || '#';
    const pl = $('detail-player');
    pl.textContent = s.player_url || '';
    pl.href = s.player_url || '#';
    const ing = live && s.ingest ? s.ingest : null;
    $('detail-codecs').textContent = ing ? `${ing.video_codec || '?'} / ${ing.audio_codec || 'no audio'}` : '–';
    $('detail-health').textContent = live && s.health
      ? s.health + (s.health_reason ? ' — ' + s.health_reason : '') : '–';
    const tb = $('renditions');
    tb.textContent = '';
    for (const r of live && Array.isArray(s.renditions) ? s.renditions : []) {
      const tr = el('tr');
      tr.append(el('td', '', r.name), el('td', '', r.width ? `${r.width}×${r.height}` : '–'),
                el('td', '', fmtKbps(r.bitrate_kbps)), el('td', '', r.passthrough ? 'copied' : 'encoded'),
                el('td', '', typeof r.encoder_speed === 'number' ? fmtNum(r.encoder_speed, 2) + '×' : '–'));
      tb.append(tr);
    }
    $('send-card').disabled = !live || sendingCard;
    $('clip-last').disabled = !live || makingClip;
    // The selected stream's clips: at once when it is selected, then every
    // CLIPS_EVERY_MS (clips made elsewhere, through the API, show up too).
    if (clipsFor !== s.id || Date.now() - clipsLoadedAt >= CLIPS_EVERY_MS) {
      clipsFor = s.id;
      clipsLoadedAt = Date.now();
      loadClips();
    }
    if ($('metadata-result').dataset.for !== s.id) {
      $('metadata-result').textContent = '';
      $('metadata-result').dataset.status = '';
    }
    renderCharts(s.id);
    renderAudience(s);
    renderRenditionChoices(s);
    if (live) startPreview(s); else stopPreview('Offline: the preview starts when the stream goes live');
  }

  function chartWidth(div) {
    return Math.max(280, Math.floor(div.clientWidth || div.parentElement.clientWidth || 600));
  }

  function destroyChart(key) {
    if (charts[key]) { charts[key].plot.destroy(); delete charts[key]; }
  }

  // (Re)draws one chart; a new series set (renditions changed) means a new plot.
  // Every chart's y axis starts at 0 (a drop shows as a drop); viewers
  // count in whole steps.
  const yFromZero = (u, min, max) => [0, max > 0 ? max * 1.15 : 1];
  const wholeSteps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000];

  function drawChart(key, divId, series, data, integer) {
    const div = $(divId);
    const sig = series.map((x) => x.label).join('|');
    if (charts[key] && charts[key].sig !== sig) destroyChart(key);
    if (typeof uPlot === 'undefined') return;
    if (!charts[key]) {
      div.textContent = '';
      const opts = {
        width: chartWidth(div),
        height: 160,
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, y: { range: yFromZero } },
        axes: [{}, integer ? { size: 60, incrs: wholeSteps } : { size: 60 }],
        series: [{}].concat(series),
      };
      charts[key] = { plot: new uPlot(opts, data, div), sig };
    } else {
      charts[key].plot.setData(data);
    }
    div.dataset.points = String(data[0].length);
    div.dataset.updates = String(Number(div.dataset.updates || 0) + 1);
  }

  const COLORS = ['#2f7ed8', '#d9534f', '#5cb85c', '#f0ad4e', '#8e44ad', '#16a085'];

  function renderCharts(id) {
    const h = hist.get(id);
    if (!h) return;
    drawChart('bitrate', 'chart-bitrate',
              [{ label: 'ingest kb/s', stroke: COLORS[0], width: 2, fill: 'rgba(47,126,216,0.1)' }],
              [h.t, h.bitrate]);
    const names = Object.keys(h.speed).sort();
    const speedSeries = names.map((n, i) => ({ label: n, stroke: COLORS[(i + 1) % COLORS.length], width: 2 }));
    const speedData = [h.t].concat(names.map((n) => h.speed[n]));
    if (!names.length) {
      speedSeries.push({ label: 'no renditions', stroke: '#999', width: 1 });
      speedData.push(h.t.map(() => null));
    }
    drawChart('speed', 'chart-speed', speedSeries, speedData);
    drawChart('viewers', 'chart-viewers',
              [{ label: 'viewers', stroke: COLORS[2], width: 2, fill: 'rgba(92,184,92,0.1)' },
               { label: 'request-based', stroke: '#999', width: 1, dash: [4, 4] }],
              [h.t, h.viewers, h.requestViewers], true);
  }

  // One line of the selected stream's audience figures under its viewers
  // chart; '–' for what is not known (no beacons yet, or an idle stream).
  function fmtMs(ms) {
    if (ms === undefined || ms === null) return '–';
    return ms >= 10000 ? Math.round(ms / 1000) + ' s' : (ms / 1000).toFixed(1) + ' s';
  }

  function renderAudience(s) {
    const box = $('audience');
    const a = s.audience || null;
    const live = s.state === 'live';
    box.dataset.source = a && a.source ? a.source : '';
    box.dataset.viewers = String(a && typeof a.viewers === 'number' ? a.viewers : (s.viewers ?? 0));
    box.dataset.rebuffer = '';
    box.dataset.renditions = '{}';
    if (!a || !live) {
      const last = a && a.last;
      box.textContent = last
        ? `Last broadcast: peak ${last.peak ?? '–'} viewers, ${last.sessions_total ?? '–'} sessions, ` +
          `${fmtDuration(last.watch_time_s)} watched`
        : 'No audience figures: the stream is not live';
      return;
    }
    const parts = [];
    parts.push(a.source === 'beacons' ? `${a.beacon_viewers ?? a.viewers} watching (player beacons)`
                                      : `${a.viewers} watching (request-based: no player sends beacons)`);
    if (typeof a.request_viewers === 'number') parts.push(`request-based ${a.request_viewers}`);
    if (typeof a.peak === 'number') parts.push(`peak ${a.peak}`);
    if (typeof a.rebuffer_ratio === 'number') parts.push(`rebuffering ${(a.rebuffer_ratio * 100).toFixed(1)} %`);
    parts.push(`startup p50 ${fmtMs(a.startup_ms && a.startup_ms.p50)}`);
    parts.push(`latency p50 ${fmtMs(a.latency_ms && a.latency_ms.p50)}`);
    const st = a.states || {};
    if (st.stalled) parts.push(`${st.stalled} stalled`);
    const r = a.renditions || {};
    const names = Object.keys(r).sort((x, y) => (parseInt(y, 10) || 0) - (parseInt(x, 10) || 0) || x.localeCompare(y));
    if (names.length) parts.push(names.map((n) => `${n} ${r[n]}`).join(', '));
    box.textContent = parts.join(' · ');
    box.dataset.rebuffer = typeof a.rebuffer_ratio === 'number' ? String(a.rebuffer_ratio) : '';
    box.dataset.renditions = JSON.stringify(r);
  }

  window.addEventListener('resize', () => {
    for (const [key, c] of Object.entries(charts)) {
      const div = $('chart-' + key);
      c.plot.setSize({ width: chartWidth(div), height: 160 });
    }
  });

  // The preview: hls.js (muted, low latency) on the stream's public
  // playback URL, which is on the public origin (another port: it answers
  // with Access-Control-Allow-Origin *). Every request carries this page's
  // viewer session id, as the reference player does (docs/cdn.md).
  let hls = null;
  let previewUrl = null;
  const refused = new Set();       // playback URLs the origin answered 403

  function withSid(url) {
    try {
      const u = new URL(url, location.href);
      if (!u.searchParams.has('sid')) u.searchParams.set('sid', sid);
      return u.toString();
    } catch (e) {
      return url;
    }
  }

  function setPreviewState(state, msg) {
    const wrap = $('preview-wrap');
    wrap.dataset.state = state;
    $('preview-msg').textContent = msg || '';
    $('preview-msg').hidden = !msg;
  }

  function stopPreview(msg) {
    if (hls) { hls.destroy(); hls = null; }
    const v = $('preview');
    if (previewUrl) {
      v.removeAttribute('src');
      v.load();
    }
    previewUrl = null;
    setPreviewState('idle', msg || 'Select a live stream');
  }

  function startPreview(s) {
    const url = s.playback_url;
    if (!url || previewUrl === url || refused.has(url)) return;
    stopPreview();
    previewUrl = url;
    const v = $('preview');
    v.muted = true;
    setPreviewState('loading', 'Loading…');
    if (typeof Hls !== 'undefined' && Hls.isSupported()) {
      hls = new Hls({
        lowLatencyMode: true,
        capLevelToPlayerSize: true,
        xhrSetup: (xhr, u) => { xhr.open('GET', withSid(u), true); },
      });
      hls.on(Hls.Events.ERROR, (_, d) => {
        if (!d.fatal) return;
        if (d.type === Hls.ErrorTypes.MEDIA_ERROR) {
          hls.recoverMediaError();
          return;
        }
        // The stream ended or the origin is not reachable: start over on
        // the next poll that still sees it live. A 403 is signed playback
        // (--playback-secret): the admin API hands out no token, so the
        // preview stays off for that stream instead of retrying.
        const code = d.response && d.response.code;
        const h = hls;
        hls = null;
        if (code === 403) {
          refused.add(url);
          setPreviewState('error', 'Preview refused (403): playback needs a signed token ' +
                                   '(--playback-secret); open the player with a token instead');
        } else {
          setPreviewState('error', `Preview: ${d.details}${code ? ' (' + code + ')' : ''}, retrying`);
          previewUrl = null;
        }
        setTimeout(() => h.destroy(), 0);
      });
      hls.loadSource(url);
      hls.attachMedia(v);
    } else if (v.canPlayType('application/vnd.apple.mpegurl')) {
      v.src = withSid(url);
    } else {
      setPreviewState('error', 'This browser can play neither hls.js (MSE) nor native HLS');
      return;
    }
    const p = v.play();
    if (p && p.catch) p.catch(() => {});
  }

  const pv = $('preview');
  pv.addEventListener('playing', () => { if (previewUrl) setPreviewState('playing', ''); });
  pv.addEventListener('waiting', () => { if (previewUrl) setPreviewState('buffering', 'Buffering…'); });

  // ---- simulcast outputs -------------------------------------------------

  const BUILTIN_RUNGS = ['1080p', '720p', '480p', '360p'];

  // What an output may send: the source, the renditions of the live
  // broadcast, the stream's own ladder's rungs, the built-in rungs.
  function renderRenditionChoices(s) {
    const names = new Set(['source']);
    for (const r of s.state === 'live' && Array.isArray(s.renditions) ? s.renditions : []) names.add(r.name);
    const own = s.ladder && Array.isArray(s.ladder.rungs) ? s.ladder.rungs : [];
    for (const r of own) names.add(typeof r === 'string' ? r : r.name);
    for (const r of BUILTIN_RUNGS) names.add(r);
    const sel = $('output-rendition');
    const want = [...names].filter((n) => typeof n === 'string' && /^[a-z0-9][a-z0-9_-]{0,30}$/.test(n));
    const have = [...sel.options].map((o) => o.value);
    if (have.join(',') === want.join(',')) return;
    const cur = sel.value;
    sel.textContent = '';
    for (const n of want) sel.append(el('option', '', n));
    sel.value = want.includes(cur) ? cur : 'source';
  }

  // Lists the selected stream's outputs (the API masks every URL).
  async function loadOutputs() {
    const id = selected;
    const box = $('outputs-box');
    if (!id) { outputsFor = null; return; }
    let res;
    try {
      res = await api('GET', `/streams/${encodeURIComponent(id)}/outputs`);
    } catch (err) {
      showError(err.message, 'outputs');
      return;
    }
    clearError('outputs');
    if (selected !== id) return;
    outputsFor = id;
    renderOutputs(res && Array.isArray(res.outputs) ? res.outputs : []);
    box.dataset.streamId = id;
    box.dataset.loaded = String(++outputsLoads);
  }

  function renderOutputs(list) {
    const tb = $('outputs');
    tb.textContent = '';
    for (const o of list) {
      const tr = el('tr');
      tr.dataset.outputId = o.id;
      tr.dataset.state = o.state;
      const badge = el('span', 'badge ' + (o.state === 'live' ? 'live' : o.state), o.state);
      const state = el('td');
      state.append(badge);
      const acts = el('td', 'actions');
      const toggle = el('button', '', o.enabled ? 'Disable' : 'Enable');
      toggle.type = 'button';
      toggle.dataset.outputAction = o.enabled ? 'disable' : 'enable';
      const remove = el('button', 'danger', 'Remove');
      remove.type = 'button';
      remove.dataset.outputAction = 'remove';
      acts.append(toggle, ' ', remove);
      tr.append(el('td', 'url', o.url), el('td', '', o.rendition), state,
                el('td', '', o.state === 'live' ? fmtKbps(o.bitrate_kbps) : '–'),
                el('td', 'last-error', o.last_error || ''), acts);
      tb.append(tr);
    }
    $('outputs-count').textContent = list.length ? `(${list.length} of 8)` : '';
    $('no-outputs').hidden = list.length > 0;
    $('output-add').disabled = list.length >= 8;
  }

  $('output-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const id = selected;
    const url = $('output-url').value.trim();
    if (!id || !url) return;
    const btn = $('output-add');
    btn.disabled = true;
    try {
      await api('POST', `/streams/${encodeURIComponent(id)}/outputs`,
                { url, rendition: $('output-rendition').value });
      // The key has left for the server: the page keeps no copy.
      $('output-url').value = '';
      clearError('action');
    } catch (err) {
      showError(err.message, 'action');
    } finally {
      btn.disabled = false;
    }
    await loadOutputs();
  });

  $('outputs').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-output-action]');
    const tr = e.target.closest('tr[data-output-id]');
    const id = outputsFor;
    if (!b || !tr || !id) return;
    const path = `/streams/${encodeURIComponent(id)}/outputs/${encodeURIComponent(tr.dataset.outputId)}`;
    const act = b.dataset.outputAction;
    if (act === 'remove') {
      const url = tr.querySelector('td.url').textContent;
      askConfirm(`Remove the output to ${url}? A live broadcast stops sending there.`, async () => {
        try {
          await api('DELETE', path);
          clearError('action');
        } catch (err) { showError(err.message, 'action'); }
        await loadOutputs();
      });
      return;
    }
    b.disabled = true;
    api('PATCH', path, { enabled: act === 'enable' })
      .then(() => clearError('action'), (err) => showError(err.message, 'action'))
      .then(loadOutputs);
  });

  // ---- actions ----------------------------------------------------------

  function askConfirm(text, action) {
    $('confirm-text').textContent = text;
    confirmAction = action;
    $('confirm').hidden = false;
    $('confirm-yes').focus();
  }
  $('confirm-no').addEventListener('click', () => { $('confirm').hidden = true; confirmAction = null; });
  $('confirm-yes').addEventListener('click', async () => {
    const act = confirmAction;
    confirmAction = null;
    $('confirm').hidden = true;
    if (act) await act();
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !$('confirm').hidden) $('confirm-no').click();
  });

  function showKey(title, res) {
    $('key-title').textContent = title;
    $('key-server').value = res.rtmp_url || '';
    $('key-value').value = res.stream_key || '';
    $('key-publish').value = res.rtmp_publish_url ||
      (res.rtmp_url && res.stream_key ? res.rtmp_url + '/' + res.stream_key : '');
    $('key-panel').hidden = false;
    $('key-panel').dataset.streamId = res.id || '';
    $('key-value').focus();
    $('key-value').select();
  }

  // The key leaves the page: nothing keeps it once this runs.
  function hideKey() {
    for (const id of ['key-server', 'key-value', 'key-publish']) $(id).value = '';
    $('key-panel').hidden = true;
    $('key-panel').dataset.streamId = '';
  }
  $('key-done').addEventListener('click', hideKey);

  document.querySelectorAll('button.copy').forEach((b) => {
    b.addEventListener('click', async () => {
      const input = $(b.dataset.copy);
      let ok = false;
      try {
        await navigator.clipboard.writeText(input.value);
        ok = true;
      } catch (e) {
        // No clipboard API outside a secure context (a plain-http private
        // address): fall back to selecting and the legacy copy command.
        input.select();
        try { ok = document.execCommand('copy'); } catch (e2) { ok = false; }
      }
      b.textContent = ok ? 'Copied' : 'Select + Ctrl-C';
      b.dataset.copied = String(ok);
      setTimeout(() => { b.textContent = 'Copy'; }, 1500);
    });
  });

  $('create-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = $('create-name').value.trim();
    const btn = $('create-btn');
    btn.disabled = true;
    hideKey();
    try {
      const res = await api('POST', '/streams', name ? { name } : {});
      clearError('action');
      $('create-name').value = '';
      showKey(`New stream “${res.name || res.id}” (${res.id})`, res);
      // The selection (maybe a live stream being watched) stays as it is.
      await poll();
    } catch (err) {
      showError(err.message, 'action');
    } finally {
      btn.disabled = false;
    }
  });

  // A timed-metadata payload (docs/metadata.md) the player page shows as a
  // product card, stamped on the live edge of the selected stream. It must
  // go to the node the stream is live on (this one, if it shows live here).
  const TEST_CARD = { title: 'Test product', price: '9.99' };
  let sendingCard = false;
  $('send-card').addEventListener('click', async () => {
    const id = selected;
    if (!id || sendingCard) return;
    const out = $('metadata-result');
    sendingCard = true;
    $('send-card').disabled = true;
    out.dataset.for = id;
    out.dataset.status = 'sending';
    out.textContent = 'Sending…';
    try {
      const res = await api('POST', `/streams/${encodeURIComponent(id)}/metadata`,
                            { payload: JSON.stringify(TEST_CARD) });
      out.dataset.status = 'sent';
      out.dataset.id = String(res && res.id);
      out.textContent = `Sent: id ${res.id}, media time ${(res.media_time_ms / 1000).toFixed(3)} s, ` +
                        `${res.program_date_time}`;
      clearError('action');
    } catch (err) {
      out.dataset.status = 'error';
      out.textContent = err.message;
      showError(err.message, 'action');
    } finally {
      sendingCard = false;
      const s = streams.get(id);
      $('send-card').disabled = !(s && s.state === 'live' && selected === id);
    }
  });

  $('streams').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-stream-id]');
    if (!tr) return;
    const id = tr.dataset.streamId;
    const s = streams.get(id);
    const b = e.target.closest('button[data-action]');
    if (!b) { select(id); return; }
    const label = `“${s ? s.name || id : id}”`;
    const act = b.dataset.action;
    if (act === 'rotate') {
      askConfirm(`Rotate the key of ${label}? The old key stops working for new publishes; ` +
                 'the encoder needs the new one.', async () => {
        hideKey();
        try {
          const res = await api('POST', `/streams/${encodeURIComponent(id)}/rotate-key`);
          clearError('action');
          showKey(`New key for ${label} (${id})`, Object.assign({ id }, res));
        } catch (err) { showError(err.message, 'action'); }
      });
    } else if (act === 'disconnect') {
      askConfirm(`Disconnect the publisher of ${label}? The key stays valid: the encoder may reconnect.`,
                 async () => {
        try {
          await api('POST', `/streams/${encodeURIComponent(id)}/disconnect`);
          clearError('action');
        } catch (err) { showError(err.message, 'action'); }
        poll();
      });
    } else if (act === 'delete') {
      askConfirm(`Delete ${label}? Its key is revoked at once and a live publisher is cut. ` +
                 'This cannot be undone.', async () => {
        try {
          await api('DELETE', `/streams/${encodeURIComponent(id)}`);
          clearError('action');
          if ($('key-panel').dataset.streamId === id) hideKey();
          if (selected === id) select(null);
        } catch (err) { showError(err.message, 'action'); }
        poll();
      });
    }
  });

  // ---- start ------------------------------------------------------------

  const m = /^#stream=(.+)$/.exec(location.hash);
  if (m) selected = decodeURIComponent(m[1]);
  poll();
})();
