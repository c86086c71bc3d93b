"""The admin dashboard (/dashboard on the admin listener) in a real browser:
Debian's chromium, driven by playwright-core (tests/browser/dashboard.mjs),
with a stream publishing through a transcoded 360p rung. The script checks
the page against the API at every step (live row with a bit rate, charts
growing, the preview playing, create / copy / publish with the shown key /
disconnect / rotate / delete through the page's buttons, an API error shown);
this test runs it with --admin-token (HTTP Basic in the browser, 401
without) and checks what the server saw afterwards."""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import ROOT, SLUICE_BIN, Sluice, http, publish, wait_for

KEY = "demo-secret-key"
TOKEN = "dashboard-test-token-0123456789"
SCRIPT = os.path.join(ROOT, "tests", "browser", "dashboard.mjs")
SHOTS = os.path.join(os.path.dirname(os.path.abspath(SLUICE_BIN)), "screenshots")


class DashboardTest(unittest.TestCase):

    def test_dashboard_manages_and_watches_streams(self):
        # Clips go to a recordings directory of the test's own.
        recordings = tempfile.mkdtemp(prefix="sluice-dash-rec-")
        self.addCleanup(shutil.rmtree, recordings, True)
        sluice = Sluice("--ladder", "360p", "--preset", "ultrafast", "--admin-token", TOKEN,
                        "--recordings-dir", recordings)
        pub = None
        try:
            pub = publish(sluice.rtmp_url(KEY), seconds=90, size="854x480", rate=25, gop=50)
            bearer = {"Authorization": f"Bearer {TOKEN}"}

            def live():
                s, _, b = http(sluice.admin_url("/api/v1/streams/demo"), headers=bearer)
                return s == 200 and json.loads(b).get("state") == "live"
            wait_for(live, 20, "demo live")

            out = subprocess.run(["node", SCRIPT, sluice.admin_url(""), SHOTS, TOKEN],
                                 capture_output=True, timeout=150)
            lines = out.stdout.decode().strip().splitlines()
            self.assertTrue(lines, out.stderr.decode()[-3000:])
            result = json.loads(lines[-1])
            print(f"\n  dashboard: demo {result.get('demoRow')}, chart points "
                  f"{result.get('chartPoints')}, preview {result.get('preview')}, outputs step "
                  f"{result.get('outputStepMs')} ms, clips step {result.get('clipStepMs')} ms", end="")
            self.assertEqual(result["problems"], [], result)
            self.assertEqual(out.returncode, 0)
            self.assertTrue(os.path.getsize(os.path.join(SHOTS, "dashboard.png")) > 10000)

            # The server agrees with what the page did: the stream made in
            # the page is gone, and neither of its keys publishes any more.
            sid = result["created"]["id"]
            s, _, _ = http(sluice.admin_url(f"/api/v1/streams/{sid}"), headers=bearer)
            self.assertEqual(s, 404)
            s, _, b = http(sluice.admin_url("/api/v1/streams"), headers=bearer)
            self.assertEqual([x["id"] for x in json.loads(b)["streams"]], ["demo"])
            # Basic with the token as the password is what the browser used;
            # the same from urllib, and a 401 for another password.
            basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
            s, _, _ = http(sluice.admin_url("/api/v1/stats"), headers={"Authorization": "Basic " + basic})
            self.assertEqual(s, 200)
            bad = base64.b64encode(b"anyone:wrong-token-wrong-token").decode()
            s, _, _ = http(sluice.admin_url("/api/v1/stats"), headers={"Authorization": "Basic " + bad})
            self.assertEqual(s, 401)
            pub.kill()
            pub.communicate()
            log = sluice.log()
            self.assertNotIn(result["createdKey"], log)
            self.assertNotIn(result["rotatedKey"], log)
            # The simulcast output added in the page: listed masked, its key
            # in no log line (it was removed in the page again).
            self.assertEqual(result["output"]["url"], "rtmp://127.0.0.1:9/app/****")
            self.assertNotIn("DASH-SECRET-KEY-0123", log)
            self.assertIn("rtmp://127.0.0.1:9/app/****", log)
            self.assertNotIn(TOKEN, log)
        finally:
            sluice.close(pub)

    def test_dashboard_without_token_on_loopback(self):
        # The default: no token, loopback only; the page lists the idle
        # predefined stream and shows the server panel with no prompt.
        sluice = Sluice()
        try:
            out = subprocess.run(["node", "--input-type=module", "-e", IDLE_SCRIPT,
                                  sluice.admin_url("/dashboard")],
                                 capture_output=True, timeout=60, cwd=os.path.dirname(SCRIPT))
            lines = out.stdout.decode().strip().splitlines()
            self.assertTrue(lines, out.stderr.decode()[-3000:])
            result = json.loads(lines[-1])
            self.assertEqual(result["status"], 200, result)
            self.assertEqual(result["state"], "idle", result)
            self.assertIn("memory", result["store"])
            self.assertEqual(result["errors"], [], result)
        finally:
            sluice.close()


# Loads the page once without credentials and reports what it shows.
IDLE_SCRIPT = r"""
import { launch } from './chromium.mjs';
const browser = await launch();
const out = { errors: [] };
try {
  const page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource: ')) out.errors.push(m.text());
  });
  page.on('pageerror', (e) => out.errors.push(e.message));
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) out.errors.push(`${r.url()} ${r.status()}`);
  });
  out.status = (await page.goto(process.argv[1])).status();
  await page.waitForSelector('tr[data-stream-id="demo"]', { timeout: 10000 });
  await page.waitForFunction(() => document.getElementById('srv-store').textContent !== '–');
  out.state = await page.getAttribute('tr[data-stream-id="demo"]', 'data-state');
  out.store = await page.textContent('#srv-store');
} catch (e) {
  out.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
"""


if __name__ == "__main__":
    unittest.main()
