"""The web files embedded in the binary (web/embed.py): who serves which
(the public origin only the player's, the admin listener the dashboard's
behind its auth), their caching (ETag, 304, a build-time gzip copy), and
the Content-Security-Policy of the pages, which the pages' HTML must obey
(no inline script or handler)."""

import base64
import gzip
import re
import unittest

from harness import Sluice, http

TOKEN = "dashboard-token-0123456789"


class WebAssetsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sl = Sluice()

    @classmethod
    def tearDownClass(cls):
        cls.sl.close()

    def test_player_page_and_its_files(self):
        st, h, body = http(self.sl.url("/player/demo"))
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "text/html; charset=utf-8")
        csp = h["content-security-policy"]
        self.assertIn("script-src 'self'", csp)
        self.assertIn("frame-ancestors *", csp)  # embeddable
        # Any stream id gets the same page: nothing of the request in it.
        st2, _, body2 = http(self.sl.url("/player/another_id"))
        self.assertEqual((st2, body2), (200, body))
        self.assertNotIn(b"another_id", body2)
        for name in ("player.js", "player.css", "hls.min.js"):
            st, h, b = http(self.sl.url("/assets/" + name))
            self.assertEqual(st, 200, name)
            self.assertTrue(len(b) > 0)
            self.assertEqual(h["x-content-type-options"], "nosniff")
        self.assertTrue(http(self.sl.url("/assets/hls.min.js"))[2].startswith(b"!function"))
        # the dashboard's files are not public, nor is anything else
        for path in ("/assets/dashboard.js", "/assets/dashboard.html", "/assets/nope.js",
                     "/dashboard", "/player/", "/player/a/b"):
            self.assertEqual(http(self.sl.url(path))[0], 404, path)

    def test_pages_obey_their_csp(self):
        """script-src 'self' blocks inline scripts and handlers: a page that
        had one would break silently in the browser."""
        pages = [http(self.sl.url("/player/demo"))[2],
                 http(self.sl.admin_url("/dashboard"))[2]]
        for html in pages:
            text = html.decode()
            for m in re.finditer(r"<script\b([^>]*)>(.*?)</script>", text, re.S | re.I):
                self.assertIn("src=", m.group(1), "inline <script> in a page")
                self.assertEqual(m.group(2).strip(), "")
            self.assertIsNone(re.search(r"\son[a-z]+\s*=", text, re.I), "inline event handler")
            self.assertNotIn("javascript:", text)
            # every referenced script or style is one the listener serves
            for ref in re.findall(r'(?:src|href)="([^"]+)"', text):
                if ref.startswith(("http:", "https:", "//")):
                    self.fail(f"a page refers to another site: {ref}")

    def test_caching_and_gzip(self):
        st, h, plain = http(self.sl.url("/assets/hls.min.js"))
        etag = h["etag"]
        self.assertRegex(etag, r'^"[0-9a-f]{20}"$')
        self.assertNotIn("content-encoding", h)
        self.assertEqual(h["vary"], "Accept-Encoding")
        self.assertIn("max-age=", h["cache-control"])
        st, h, gz = http(self.sl.url("/assets/hls.min.js"), headers={"Accept-Encoding": "gzip"})
        self.assertEqual(h["content-encoding"], "gzip")
        self.assertEqual(gzip.decompress(gz), plain)
        self.assertLess(len(gz), len(plain) // 2)
        self.assertNotEqual(h["etag"], etag)  # a different representation
        st, h, b = http(self.sl.url("/assets/hls.min.js"), headers={"If-None-Match": etag})
        self.assertEqual((st, b), (304, b""))
        st, h, b = http(self.sl.url("/assets/hls.min.js"),
                        headers={"If-None-Match": '"0000"', "Accept-Encoding": "gzip;q=0"})
        self.assertEqual(st, 200)
        self.assertNotIn("content-encoding", h)

    def test_dashboard_files(self):
        st, h, body = http(self.sl.admin_url("/dashboard"))
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "text/html; charset=utf-8")
        for name in ("dashboard.js", "dashboard.css", "uPlot.iife.min.js", "uPlot.min.css",
                     "hls.min.js"):
            self.assertEqual(http(self.sl.admin_url("/dashboard/assets/" + name))[0], 200, name)
        self.assertEqual(http(self.sl.admin_url("/dashboard/assets/nope.js"))[0], 404)
        self.assertEqual(http(self.sl.admin_url("/dashboard"), method="POST")[0], 405)


class DashboardAuthTest(unittest.TestCase):
    def test_basic_and_bearer(self):
        sl = Sluice("--admin-token", TOKEN)
        try:
            st, h, _ = http(sl.admin_url("/dashboard"))
            self.assertEqual(st, 401)
            # a browser is asked for the token (Basic), an API client told about Bearer
            self.assertTrue(h["www-authenticate"].startswith("Basic "))
            self.assertTrue(http(sl.admin_url("/api/v1/streams"))[1]["www-authenticate"]
                            .startswith("Bearer "))
            basic = "Basic " + base64.b64encode(f"admin:{TOKEN}".encode()).decode()
            wrong = "Basic " + base64.b64encode(b"admin:nope").decode()
            self.assertEqual(http(sl.admin_url("/dashboard"),
                                  headers={"Authorization": basic})[0], 200)
            self.assertEqual(http(sl.admin_url("/dashboard"),
                                  headers={"Authorization": wrong})[0], 401)
            # the page's own API calls carry the same Basic credentials
            self.assertEqual(http(sl.admin_url("/api/v1/streams"),
                                  headers={"Authorization": basic})[0], 200)
            self.assertEqual(http(sl.admin_url("/dashboard/assets/dashboard.js"),
                                  headers={"Authorization": f"Bearer {TOKEN}"})[0], 200)
            self.assertEqual(http(sl.admin_url("/dashboard/assets/dashboard.js"))[0], 401)
        finally:
            sl.close()


if __name__ == "__main__":
    unittest.main()
