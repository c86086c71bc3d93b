"""What docs/deploy.md tells an operator to run, run for real: the certbot
deploy hook that installs a renewed RTMPS certificate and reloads sluice."""

import os
import shutil
import stat
import subprocess
import tempfile
import unittest

from harness import ROOT, Sluice, free_port, wait_for
from test_ingest import make_cert, server_cert

HOOK = os.path.join(ROOT, "deploy", "letsencrypt", "sluice-reload-certs")


def der_of(pem_path):
    out = subprocess.run(["openssl", "x509", "-in", pem_path, "-outform", "DER"],
                         capture_output=True, check=True, timeout=30)
    return out.stdout


class CertbotHookTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-certbot-")
        self.lineage = os.path.join(self.dir, "live", "live.example.com")
        self.tls = os.path.join(self.dir, "sluice-tls")
        os.makedirs(self.lineage)

    def tearDown(self):
        shutil.rmtree(self.dir)

    def renew(self, cn):
        """A new certificate in the lineage, named as certbot names them."""
        cert, key = make_cert(self.dir, cn)
        os.replace(cert, os.path.join(self.lineage, "fullchain.pem"))
        os.replace(key, os.path.join(self.lineage, "privkey.pem"))

    def hook(self, reload_cmd):
        env = dict(os.environ, RENEWED_LINEAGE=self.lineage, SLUICE_HOOK_TLS_DIR=self.tls,
                   SLUICE_HOOK_GROUP=str(os.getgid()), SLUICE_HOOK_RELOAD=reload_cmd)
        return subprocess.run([HOOK], env=env, capture_output=True, text=True, timeout=30)

    def test_issue_then_renew_reloads_sluice(self):
        # First issuance: sluice is not running yet, nothing to reload.
        self.renew("first.example.com")
        out = self.hook("true")
        self.assertEqual(out.returncode, 0, out.stderr)
        for name in ("fullchain.pem", "privkey.pem"):
            mode = stat.S_IMODE(os.stat(os.path.join(self.tls, name)).st_mode)
            self.assertEqual(mode, 0o640, f"{name} is readable by its group only")
        self.assertEqual(stat.S_IMODE(os.stat(self.tls).st_mode), 0o750)

        tls_port = free_port()
        sl = Sluice("--rtmps-listen", f"127.0.0.1:{tls_port}",
                    "--tls-cert", os.path.join(self.tls, "fullchain.pem"),
                    "--tls-key", os.path.join(self.tls, "privkey.pem"))
        try:
            self.assertEqual(server_cert(tls_port)[0],
                             der_of(os.path.join(self.lineage, "fullchain.pem")))
            # Renewal: the hook copies the new pair and reloads the running
            # process, whose new connections get the new certificate.
            self.renew("second.example.com")
            out = self.hook(f"kill -HUP {sl.proc.pid}")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("reloaded sluice", out.stdout)
            wait_for(lambda: "certificate reloaded" in sl.log(), 10, "the reload")
            self.assertEqual(server_cert(tls_port)[0],
                             der_of(os.path.join(self.lineage, "fullchain.pem")))
            self.assertEqual(os.listdir(self.tls).count(".fullchain.pem.new"), 0)

            # A reload that fails is reported, with where the files are.
            out = self.hook("false")
            self.assertEqual(out.returncode, 1)
            self.assertIn("used after the next reload or restart", out.stderr)
        finally:
            sl.close()

    def test_missing_files_and_missing_lineage_are_clear_errors(self):
        out = self.hook("true")
        self.assertEqual(out.returncode, 1)
        self.assertIn("fullchain.pem is missing or unreadable", out.stderr)
        self.assertFalse(os.path.exists(self.tls), "nothing is installed from an empty lineage")
        env = {k: v for k, v in os.environ.items() if k != "RENEWED_LINEAGE"}
        out = subprocess.run([HOOK], env=env, capture_output=True, text=True, timeout=30)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("run this as certbot's --deploy-hook", out.stderr)


if __name__ == "__main__":
    unittest.main()
