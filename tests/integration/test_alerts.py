"""The Prometheus alert rules of deploy/prometheus/ (docs/operations.md):
`promtool check rules` accepts them, `promtool test rules` fires and does
not fire them on synthetic series as sluice-alerts.test.yml expects, and
every metric an alert expression names, with every label it matches on, is
in a real sluice's /metrics scrape (one sluice, a live publish, webhooks on),
so that renaming a metric or a label breaks this test rather than the
operators' alerting."""

import os
import re
import subprocess
import unittest

from harness import ROOT, Sluice, http, publish, wait_for
from test_metrics import parse_metrics
from test_webhook import Hook

RULES_DIR = os.path.join(ROOT, "deploy", "prometheus")
RULES = os.path.join(RULES_DIR, "sluice-alerts.yml")
RULE_TESTS = os.path.join(RULES_DIR, "sluice-alerts.test.yml")
KEY = "alerts-secret-key"

# Series Prometheus itself adds to every scrape: the only names an alert may
# use that sluice does not export.
PROMETHEUS_SERIES = {"up"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "offset", "inf", "nan",
                # aggregations, which may be followed by `by (...)` instead of `(`
                "sum", "min", "max", "avg", "count", "group", "stddev", "stdvar", "topk",
                "bottomk", "quantile", "count_values"}
IDENT = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*')


def load_alerts():
    """[{alert, expr, severity, summary, description}] of the rules file.
    A reader for the layout of that file (no YAML module on a bare Debian
    python3); promtool checks the file itself."""
    rules, cur, block = [], None, None
    with open(RULES) as f:
        for line in f:
            body = line.strip()
            indent = len(line) - len(line.lstrip())
            if block is not None:
                if body and indent > block:
                    cur["expr"] += body + " "
                    continue
                block = None
            m = re.match(r'- alert: (\S+)$', body)
            if m:
                cur = {"alert": m.group(1), "expr": ""}
                rules.append(cur)
                continue
            if cur is None:
                continue
            m = re.match(r'(expr|severity|summary|description): ?(.*)$', body)
            if not m:
                continue
            if m.group(1) == "expr" and m.group(2) == "|":
                cur["expr"], block = "", indent
            else:
                cur[m.group(1)] = m.group(2).strip()
    return rules


def load_rule_test_cases():
    """[(alertname, fires)] of the promtool rule test file."""
    cases = []
    with open(RULE_TESTS) as f:
        for line in f:
            body = line.strip()
            m = re.match(r'alertname: (\S+)$', body)
            if m:
                cases.append([m.group(1), None])
            elif body.startswith("exp_alerts:") and cases:
                cases[-1][1] = body != "exp_alerts: []"
    return [tuple(c) for c in cases]


def selectors(expr):
    """(metric names, {name: set of label names matched}) of a PromQL
    expression: strings, ranges and by/without/on/ignoring lists removed,
    function names (followed by '(') and keywords skipped."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r'\[[^\]]*\]', '', e)
    e = re.sub(r'\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)', r'\1', e)
    names, labels = set(), {}
    pos = 0
    while True:
        m = IDENT.search(e, pos)
        if not m:
            break
        word, pos = m.group(0), m.end()
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue  # the exponent or unit of a number (1e3)
        rest = e[pos:].lstrip()
        if rest.startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
        if rest.startswith("{"):
            close = rest.index("}")
            labels.setdefault(word, set()).update(
                re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)', rest[1:close]))
            pos = len(e) - len(rest) + close + 1
    return names, labels


def missing_from(scrape, exprs):
    """What the expressions use that the scrape lacks: names, and
    (name, label) pairs no sample of that name carries."""
    have = {}
    for name, lbls in scrape:
        have.setdefault(name, set()).update(k for k, _ in lbls)
    missing = []
    for expr in exprs:
        names, labels = selectors(expr)
        for n in sorted(names):
            if n in PROMETHEUS_SERIES:
                continue
            if n not in have:
                missing.append(n)
                continue
            for lb in sorted(labels.get(n, ())):
                if lb not in have[n]:
                    missing.append(f"{n}{{{lb}}}")
    return missing


def promtool(*args):
    r = subprocess.run(["promtool", *args], cwd=RULES_DIR, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    return r.returncode, r.stdout.decode(errors="replace")


class AlertRulesTest(unittest.TestCase):

    def test_rules_pass_promtool_check(self):
        alerts = load_alerts()
        rc, out = promtool("check", "rules", RULES)
        self.assertEqual(rc, 0, out)
        self.assertIn(f"SUCCESS: {len(alerts)} rules found", out)
        self.assertGreaterEqual(len(alerts), 15)
        for r in alerts:
            self.assertIn(r.get("severity"), ("critical", "warning", "info"), r["alert"])
            self.assertTrue(r.get("summary"), r["alert"])
            self.assertTrue(r.get("description"), r["alert"])
            self.assertTrue(r["expr"].strip(), r["alert"])

    def test_rules_fire_as_the_rule_tests_expect(self):
        rc, out = promtool("test", "rules", RULE_TESTS)
        self.assertEqual(rc, 0, out)
        self.assertIn("SUCCESS", out)
        # The unit test covers both sides (firing and quiet) of several alerts.
        cases = load_rule_test_cases()
        self.assertNotIn(None, [f for _, f in cases], cases)
        fired = {a for a, f in cases if f}
        quiet = {a for a, f in cases if not f}
        self.assertGreaterEqual(len(fired & quiet), 5, (fired, quiet))

    def test_selector_parsing(self):
        names, labels = selectors(
            'sum by (job, instance, le) (rate(sluice_a_bucket{kind="segment", code=~"5.."}[5m]))'
            ' / on(instance) sluice_b > 1e3 and up{job="sluice"} == 0')
        self.assertEqual(names, {"sluice_a_bucket", "sluice_b", "up"})
        self.assertEqual(labels, {"sluice_a_bucket": {"kind", "code"}, "up": {"job"}})

    def test_every_metric_and_label_in_the_rules_is_in_a_real_scrape(self):
        alerts = load_alerts()
        exprs = [r["expr"] for r in alerts]
        used = set().union(*(selectors(e)[0] for e in exprs))
        self.assertGreaterEqual(len(used), 20, used)
        self.assertEqual({n for n in used if not n.startswith("sluice_")}, PROMETHEUS_SERIES)

        hook = Hook(lambda req: (200, b"", 0))
        # One small rung, encoded (not copied) so that every transcode series moves.
        s = Sluice("--webhook-url", hook.url, "--segment-duration", "1", "--ladder", "360p",
                   "--passthrough", "never", streams=(("alerts", KEY),))
        pub = None
        try:
            pub = publish(s.rtmp_url(KEY), seconds=30, size="640x360", gop=30)

            def scrape():
                status, _, body = http(s.admin_url("/metrics"))
                self.assertEqual(status, 200)
                return parse_metrics(body.decode())

            def segments_done():
                m = scrape()
                segs = [v for (n, l), v in m.items()
                        if n == "sluice_transcode_segments_total" and ("stream", "alerts") in l]
                return m if segs and segs[0] >= 2 else None

            wait_for(lambda: http(s.url("/hls/alerts/360p/index.m3u8"))[0] == 200, 20,
                     "the media playlist")
            m = wait_for(segments_done, 20, "two committed segments")
            # The scrape really is of a live, webhook-authorised publish.
            self.assertEqual(len(hook.of("publish")), 1)
            self.assertEqual(m[("sluice_live_streams", frozenset())], 1)

            missing = missing_from(m.keys(), exprs)
            self.assertEqual(missing, [], "alert rules use metrics or labels sluice does not export")
            # The check itself can fail: a renamed metric or label is caught.
            self.assertEqual(missing_from(m.keys(), ['rate(sluice_ingest_byte_total[5m]) > 0',
                                                     'sluice_store_connected{store="redis"} == 0']),
                             ["sluice_ingest_byte_total", "sluice_store_connected{store}"])
        finally:
            try:
                s.close(pub)
            finally:
                hook.close()


if __name__ == "__main__":
    unittest.main()
