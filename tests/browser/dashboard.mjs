// Drives sluice's admin dashboard (/dashboard on the admin listener) in
// Debian's chromium the way an admin would, and checks every step against
// the admin API itself. Expects the predefined stream "demo" to be
// publishing already. Prints one JSON line; exits 0 only if every check held.
//
//   node dashboard.mjs ADMIN_URL SCREENSHOT_DIR [TOKEN]
//
// With TOKEN (sluice runs with --admin-token) the browser gets it as HTTP
// Basic credentials (any user, the token as the password), and a browser
// without them must get a 401.
import { launch } from './chromium.mjs';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

const admin = process.argv[2].replace(/\/$/, '');
const shots = process.argv[3];
const token = process.argv[4] || '';
mkdirSync(shots, { recursive: true });

const result = { checks: [], problems: [] };
const ok = (what) => result.checks.push(what);
const fail = (what) => result.problems.push(what);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const auth = token ? { Authorization: `Bearer ${token}` } : {};

async function apiGet(p) {
  const r = await fetch(admin + p, { headers: auth });
  const text = await r.text();
  return { status: r.status, text, json: text ? JSON.parse(text) : null };
}

const browser = await launch();
let publisher = null;
try {
  if (token) {
    // No credentials, and wrong ones: refused. Headless Chromium either
    // shows the 401 or, once it gives up on the Basic challenge, fails the
    // navigation with ERR_INVALID_AUTH_CREDENTIALS; both mean "not in".
    const refused = async (creds, what) => {
      const ctx = await browser.newContext(creds ? { httpCredentials: creds } : {});
      const r = await (await ctx.newPage()).goto(admin + '/dashboard').catch((e) => e);
      await ctx.close();
      if (r instanceof Error) {
        if (/ERR_INVALID_AUTH_CREDENTIALS/.test(r.message)) return ok(`${what}: refused`);
        return fail(`${what}: ${r.message.split('\n')[0]}`);
      }
      if (r.status() !== 401) return fail(`${what}: /dashboard answered ${r.status()}`);
      ok(`${what}: 401`);
    };
    await refused(null, 'no credentials');
    await refused({ username: 'admin', password: 'not-the-token-at-all' }, 'wrong password');
    const challenge = await fetch(admin + '/dashboard');
    if (challenge.status !== 401 || !/^Basic /.test(challenge.headers.get('www-authenticate') || ''))
      fail(`without credentials: ${challenge.status} ${challenge.headers.get('www-authenticate')}`);
  }

  const context = await browser.newContext(token
    ? { httpCredentials: { username: 'admin', password: token }, viewport: { width: 1400, height: 1000 } }
    : { viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push('pageerror: ' + e.message));
  const apiStatuses = [];
  const failedLoads = [];
  page.on('response', (r) => {
    // Only the admin listener's answers: the preview's requests to the
    // public origin are hls.js's business (a fresh stream's master playlist
    // may 404 for a moment after it goes live; the page retries).
    if (r.status() >= 400 && r.url().startsWith(admin + '/'))
      failedLoads.push(`${new URL(r.url()).pathname} ${r.status()}`);
    if (r.url().includes('/api/v1/')) apiStatuses.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`);
  });

  const resp = await page.goto(admin + '/dashboard');
  if (resp.status() !== 200) throw new Error(`/dashboard answered ${resp.status()}`);
  ok('page loads' + (token ? ' with Basic credentials' : ''));

  // 1. The live stream in the list, with a measured bit rate.
  const row = page.locator('tr[data-stream-id="demo"]');
  await page.waitForSelector('tr[data-stream-id="demo"][data-state="live"]', { timeout: 20000 });
  await page.waitForFunction(() => {
    const td = document.querySelector('tr[data-stream-id="demo"] td.bitrate');
    return td && Number(td.dataset.kbps) > 0;
  }, null, { timeout: 20000 });
  result.demoRow = {
    bitrate: await row.locator('td.bitrate').textContent(),
    fps: await row.locator('td.fps').textContent(),
    resolution: await row.locator('td.resolution').textContent(),
    health: await row.locator('td.health').textContent(),
    uptime: await row.locator('td.uptime').textContent(),
  };
  if (result.demoRow.resolution !== '854×480') fail(`resolution shown ${result.demoRow.resolution}`);
  if (!/^(good|fair|poor)/.test(result.demoRow.health)) fail(`health shown "${result.demoRow.health}"`);
  ok('demo listed live with a non-zero bit rate');

  // 2. Select it: the charts grow with each poll, the preview plays.
  await row.locator('td.name').click();
  await page.waitForSelector('#detail:not([hidden])');
  const points = () => page.evaluate(() => ['bitrate', 'speed', 'viewers'].map(
    (k) => Number(document.getElementById('chart-' + k).dataset.points)));
  await page.waitForFunction(() => Number(document.getElementById('chart-bitrate').dataset.points) >= 2);
  const p1 = await points();
  await page.waitForFunction((n) => Number(document.getElementById('chart-bitrate').dataset.points) > n + 1,
                             p1[0], { timeout: 10000 });
  const p2 = await points();
  result.chartPoints = [p1, p2];
  if (!p2.every((n, i) => n > p1[i])) fail(`not every chart grew: ${p1} -> ${p2}`);
  const drawn = await page.evaluate(() => document.querySelectorAll('#chart-bitrate canvas').length);
  if (!drawn) fail('no uPlot canvas in the bit rate chart');
  ok('charts grow with the polls');

  await page.waitForFunction(() => document.getElementById('preview').currentTime > 0.5, null, { timeout: 25000 });
  const t1 = await page.evaluate(() => document.getElementById('preview').currentTime);
  await sleep(2500);
  const pv = await page.evaluate(() => {
    const v = document.getElementById('preview');
    return { t: v.currentTime, muted: v.muted, w: v.videoWidth, state: document.getElementById('preview-wrap').dataset.state };
  });
  result.preview = { t1, ...pv };
  if (!(pv.t > t1 + 1)) fail(`preview not advancing: ${t1} -> ${pv.t}`);
  if (!pv.muted) fail('preview not muted');
  if (pv.state !== 'playing') fail(`preview state ${pv.state}`);
  ok('preview plays');

  // Server panel.
  result.server = await page.evaluate(() => Object.fromEntries(
    ['cpu', 'mem', 'egress', 'rps', 'store', 'live', 'viewers', 'uptime'].map(
      (k) => [k, document.getElementById('srv-' + k).textContent])));
  if (!/memory/.test(result.server.store) || !/connected/.test(result.server.store)) fail(`store shown ${result.server.store}`);
  if (result.server.live !== '1') fail(`live streams shown ${result.server.live}`);
  if (!/%/.test(result.server.cpu) || !/iB/.test(result.server.mem)) fail(`cpu/memory shown ${result.server.cpu} ${result.server.mem}`);
  ok('server panel filled');

  await page.waitForFunction(() => Number(document.getElementById('chart-bitrate').dataset.points) >= 6, null, { timeout: 15000 });
  await page.screenshot({ path: path.join(shots, 'dashboard.png'), fullPage: true });

  // 2b. A simulcast output added through the stream's panel is listed with
  // its key masked, the key is nowhere in the page or the API afterwards,
  // and Remove (confirmed) takes it away.
  const outKey = 'DASH-SECRET-KEY-0123';
  const outStart = Date.now();
  await page.fill('#output-url', `rtmp://127.0.0.1:9/app/${outKey}`);
  await page.selectOption('#output-rendition', 'source');
  await page.click('#output-add');
  await page.waitForSelector('#outputs tr[data-output-id]', { timeout: 5000 });
  const outRow = page.locator('#outputs tr[data-output-id]');
  result.output = {
    url: await outRow.locator('td.url').textContent(),
    state: await outRow.getAttribute('data-state'),
  };
  if (result.output.url !== 'rtmp://127.0.0.1:9/app/****') fail(`output listed as ${result.output.url}`);
  const outApi = await apiGet('/api/v1/streams/demo/outputs');
  if (outApi.json.outputs.length !== 1 || outApi.text.includes(outKey)) fail(`outputs API: ${outApi.text}`);
  if (await page.evaluate((k) => document.documentElement.outerHTML.includes(k) ||
      [...document.querySelectorAll('input')].some((i) => i.value.includes(k)), outKey))
    fail('the output key is still in the page');
  await page.locator('#outputs-box').screenshot({ path: path.join(shots, 'dashboard-outputs.png') });
  await outRow.locator('button[data-output-action="remove"]').click();
  await page.waitForSelector('#confirm:not([hidden])');
  await page.click('#confirm-yes');
  await page.waitForSelector('#outputs tr[data-output-id]', { state: 'detached', timeout: 5000 });
  if ((await apiGet('/api/v1/streams/demo/outputs')).json.outputs.length !== 0) fail('Remove left the output');
  ok('simulcast output added (masked) and removed through the UI');
  result.outputStepMs = Date.now() - outStart;

  // 2c. Clips: "Clip last 30 s" asks the server and shows its answer (this
  // broadcast is younger than 30 s and the store's live window shorter, so
  // the answer is the API's 422 naming what is held); a clip made through
  // the API is listed for the selected stream, and its download link
  // (as the page wrote it) fetches the MP4.
  const clipStart = Date.now();
  await page.click('#clip-last');
  await page.waitForFunction(() => ['sent', 'error'].includes(document.getElementById('clip-result').dataset.status),
                             null, { timeout: 10000 });
  const clipAnswer = await page.evaluate(() => ({ status: document.getElementById('clip-result').dataset.status,
                                                  text: document.getElementById('clip-result').textContent }));
  result.clipButton = clipAnswer;
  const asked = await apiGet('/api/v1/clips');
  const heldNote = clipAnswer.status === 'error' && /held/.test(clipAnswer.text) && asked.json.clips.length === 0;
  const made = clipAnswer.status === 'sent' && asked.json.clips.length === 1;
  if (!heldNote && !made) fail(`Clip last 30 s: ${JSON.stringify(clipAnswer)}, clips ${asked.text}`);
  const posted = await fetch(admin + '/api/v1/streams/demo/clips', {
    method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ last: 2 }) });
  const madeClip = await posted.json();
  if (posted.status !== 201) fail(`POST a 2 s clip: ${posted.status} ${JSON.stringify(madeClip)}`);
  // The list refreshes itself while a clip is being made.
  await page.waitForSelector(`#clips tr[data-clip-id="${madeClip.id}"][data-state="ready"] a`, { timeout: 15000 })
    .catch((e) => fail(`the clip is not listed ready with a link: ${e.message.split('\n')[0]}`));
  const href = await page.evaluate((id) => {
    const a = document.querySelector(`#clips tr[data-clip-id="${id}"] a`);
    return a ? a.href : null;
  }, madeClip.id);
  result.clipLink = href;
  if (href) {
    const got = await page.evaluate(async (u) => {
      const r = await fetch(u);
      const b = new Uint8Array(await r.arrayBuffer());
      return { status: r.status, type: r.headers.get('content-type'), size: b.length,
               ftyp: String.fromCharCode(...b.slice(4, 8)) };
    }, href);
    result.clipDownload = got;
    if (got.status !== 200 || got.ftyp !== 'ftyp' || got.size < 1000) fail(`the clip's link fetched ${JSON.stringify(got)}`);
  }
  ok('clip last 30 s answered, a clip listed with a working download link');
  result.clipStepMs = Date.now() - clipStart;

  // 3. An API error is shown in the page: a name over 255 bytes.
  await page.fill('#create-name', 'x'.repeat(300));
  await page.click('#create-btn');
  // (The box may still show the clip button's 422 from step 2c: wait for
  // this create's answer to replace it.)
  await page.waitForFunction(() => { const e = document.getElementById('error');
                                     return !e.hidden && /POST \/api\/v1\/streams:/.test(e.textContent); },
                             null, { timeout: 5000 }).catch(() => {});
  const errText = await page.textContent('#error');
  if (!/400/.test(errText)) fail(`error shown: ${errText}`);
  if (await page.isVisible('#key-panel')) fail('key panel shown after a refused create');
  ok('API error shown');

  // 4. Create through the UI; the key is shown once, matches the format
  // and is not in anything the API returns afterwards.
  const name = 'Anna\'s <b>shop</b> & co';
  await page.fill('#create-name', name);
  await page.click('#create-btn');
  await page.waitForSelector('#key-panel:not([hidden])', { timeout: 5000 });
  if (await page.isVisible('#error')) fail('error still shown after a good create');
  const created = await page.evaluate(() => ({
    id: document.getElementById('key-panel').dataset.streamId,
    key: document.getElementById('key-value').value,
    server: document.getElementById('key-server').value,
    publish: document.getElementById('key-publish').value,
  }));
  result.created = { id: created.id, server: created.server, keyLength: created.key.length };
  result.createdKey = created.key;
  if (!/^[A-Za-z0-9_-]{43}$/.test(created.key)) fail(`key shown is not 43 base64url characters: ${created.key.length}`);
  if (created.publish !== `${created.server}/${created.key}`) fail('publish URL is not server/key');
  const list = await apiGet('/api/v1/streams');
  const mine = list.json.streams.find((s) => s.id === created.id);
  if (!mine || mine.name !== name) fail(`API does not list the new stream with its name: ${JSON.stringify(mine)}`);
  const one = await apiGet('/api/v1/streams/' + created.id);
  if (list.text.includes(created.key) || one.text.includes(created.key)) fail('the key is in a later GET');
  await page.waitForSelector(`tr[data-stream-id="${created.id}"]`);
  const shownName = await page.textContent(`tr[data-stream-id="${created.id}"] .stream-name`);
  if (shownName !== name) fail(`name shown as "${shownName}" (escaping?)`);
  if (await page.locator('#streams b').count()) fail('the name was rendered as HTML');
  ok('create through the UI');
  await page.screenshot({ path: path.join(shots, 'dashboard-created.png'), fullPage: true });

  // Copy button: the clipboard gets the key (loopback is a secure context).
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: admin });
  await page.click('button[data-copy="key-value"]');
  const clip = await page.evaluate(() => navigator.clipboard.readText());
  if (clip !== created.key) fail('copy button did not put the key on the clipboard');
  ok('copy button copies the key');

  // The shown key publishes: ffmpeg with the page's server URL and key,
  // until the dashboard shows the stream live; then Disconnect cuts it.
  publisher = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=660:sample_rate=48000',
    '-t', '40', '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '50', '-pix_fmt', 'yuv420p',
    '-b:v', '600k', '-c:a', 'aac', '-b:a', '64k', '-f', 'flv', created.publish], { stdio: 'ignore' });
  const exited = new Promise((r) => publisher.on('exit', (code) => r(code)));
  await page.waitForSelector(`tr[data-stream-id="${created.id}"][data-state="live"]`, { timeout: 20000 });
  ok('the key shown in the page publishes');

  // Done hides the key and nothing in the page keeps it.
  await page.click('#key-done');
  const leftover = await page.evaluate((k) => document.documentElement.outerHTML.includes(k) ||
    [...document.querySelectorAll('input')].some((i) => i.value.includes(k)), created.key);
  if (leftover || await page.isVisible('#key-panel')) fail('the key is still in the page after Done');
  ok('key hidden after Done');

  // 5. Disconnect through the UI (with the in-page confirm).
  const newRow = page.locator(`tr[data-stream-id="${created.id}"]`);
  await newRow.locator('button[data-action="disconnect"]').click();
  await page.waitForSelector('#confirm:not([hidden])');
  await page.click('#confirm-yes');
  const code = await Promise.race([exited, sleep(10000).then(() => 'running')]);
  if (code === 'running') fail('publisher still running 10 s after Disconnect');
  await page.waitForSelector(`tr[data-stream-id="${created.id}"][data-state="idle"]`, { timeout: 10000 });
  ok('disconnect through the UI');

  // 6. Rotate through the UI: a new key, shown once, not the old one.
  await newRow.locator('button[data-action="rotate"]').click();
  await page.waitForSelector('#confirm:not([hidden])');
  await page.click('#confirm-yes');
  await page.waitForSelector('#key-panel:not([hidden])', { timeout: 5000 });
  const rotated = await page.inputValue('#key-value');
  result.rotatedKey = rotated;
  if (!/^[A-Za-z0-9_-]{43}$/.test(rotated) || rotated === created.key) fail('rotate did not show a new key');
  const after = await apiGet('/api/v1/streams/' + created.id);
  if (after.text.includes(rotated)) fail('the rotated key is in a later GET');
  ok('rotate through the UI');

  // 7. Delete through the UI: Cancel keeps it, Confirm removes it.
  await newRow.locator('button[data-action="delete"]').click();
  await page.waitForSelector('#confirm:not([hidden])');
  await page.click('#confirm-no');
  await sleep(300);
  if ((await apiGet('/api/v1/streams/' + created.id)).status !== 200) fail('Cancel deleted the stream');
  await newRow.locator('button[data-action="delete"]').click();
  await page.waitForSelector('#confirm:not([hidden])');
  await page.click('#confirm-yes');
  await page.waitForSelector(`tr[data-stream-id="${created.id}"]`, { state: 'detached', timeout: 10000 });
  const gone = await apiGet('/api/v1/streams/' + created.id);
  if (gone.status !== 404) fail(`after delete the API answers ${gone.status}`);
  if (await page.isVisible('#key-panel')) fail('the deleted stream\'s key is still shown');
  ok('delete through the UI');

  // The live stream is still listed and selected after all that.
  if (!(await page.isVisible('#detail')) || (await page.getAttribute('#detail', 'data-stream-id')) !== 'demo')
    fail('the detail panel lost the selected stream');

  // CSP: the page must run with no violation and no script error. The
  // refused create (400) is the one API error this script causes on purpose.
  // Failed loads are listed with their URLs apart: the browser's own
  // /favicon.ico request (404) is not the page's.
  const unexpected = consoleErrors.filter((e) => !/^Failed to load resource: /.test(e));
  if (unexpected.length) fail(`console errors: ${unexpected.join(' | ')}`);
  // (Expected: the API error step's 400, and "Clip last 30 s" on a
  // broadcast younger than that: 422.)
  const badLoads = failedLoads.filter((l) => l !== '/favicon.ico 404' && l !== '/api/v1/streams 400' &&
                                      l !== '/api/v1/streams/demo/clips 422');
  if (badLoads.length) fail(`failed loads: ${badLoads.join(', ')}`);
  result.apiStatuses = [...new Set(apiStatuses)];
  if (apiStatuses.some((s) => / 401$/.test(s))) fail('an API call of the page got a 401');
} catch (e) {
  fail('exception: ' + (e && e.stack ? e.stack.split('\n').slice(0, 3).join(' ') : e));
} finally {
  if (publisher && publisher.exitCode === null) publisher.kill('SIGKILL');
  await browser.close();
}

console.log(JSON.stringify(result));
process.exit(result.problems.length ? 1 : 0);
