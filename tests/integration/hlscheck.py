"""A checker of HLS playlists against the rules of RFC 8216bis
(draft-pantos-hls-rfc8216bis, "HTTP Live Streaming 2nd Edition") that a
program can check, for the tests to run over what sluice serves:

    check_media(text, ll=True, reports=None) -> list of violation strings
    check_master(text) -> list of violation strings
    check_delta(full, delta) -> list of violation strings
    check_renditions({name: text}) -> list of violation strings

An empty list means no rule is broken. Each string names the line (1-based)
and the section of the spec, e.g.
    "line 14: EXT-X-PART DURATION 0.400 > PART-TARGET 0.333 (4.4.4.9)".

check_media(ll=True) also wants what makes a playlist LL-HLS (EXT-X-PART-INF,
EXT-X-SERVER-CONTROL with CAN-BLOCK-RELOAD=YES, EXT-X-PART, and a preload
hint while live: Appendix B.1); ll=False wants none of the LL-HLS tags (a
server started without parts); ll=None checks whatever is there. `reports`,
if given, is the set of EXT-X-RENDITION-REPORT URIs the playlist must carry
(every other rendition of the stream, Appendix B.1).

Besides the spec's MUSTs it checks a few SHOULDs that sluice keeps
(PART-HOLD-BACK >= 3 x PART-TARGET, parts removed three Target Durations from
the end, CODECS on every variant, every segment with an
EXT-X-PROGRAM-DATE-TIME as Appendix B.1 asks) and, marked [sluice], the
naming and layout sluice uses: segment "N.m4s" has Media Sequence Number N,
part "N.P.m4s" is part P of segment N, the preload hint names the part right
after the last one, and the hint and the rendition reports come after every
segment and part. URIs may carry a query string (signed playback); it is
ignored when names are compared.

Durations in sluice's playlists have three decimals, so comparisons that
involve sums or multiples of rendered values allow for that rounding and
nothing more.
"""

import posixpath
import re
from decimal import Decimal, ROUND_HALF_UP
from datetime import datetime

__all__ = ["check_media", "check_master", "check_delta", "check_renditions", "parse_attr_list"]


class Quoted(str):
    """An AttributeValue that was a quoted-string."""


# --- attribute lists (4.2) ---------------------------------------------------

_NAME = re.compile(r"[A-Z0-9-]+")
_INT = re.compile(r"[0-9]{1,20}")
_FLOAT = re.compile(r"[0-9]+(\.[0-9]+)?")
_RESOLUTION = re.compile(r"[0-9]{1,20}x[0-9]{1,20}")
# 4.4.6.1: CEA-608 channels CC1-CC4, CEA-708 services SERVICE1-SERVICE63.
_INSTREAM_ID = re.compile(r"CC[1-4]|SERVICE([1-9]|[1-5][0-9]|6[0-3])")


def parse_attr_list(s):
    """Parses an attribute-list strictly. Returns (dict name -> value, errors);
    quoted values are Quoted (without their quotes)."""
    attrs, errors, i = {}, [], 0
    if s == "":
        return attrs, ["empty attribute-list"]
    while i < len(s):
        m = _NAME.match(s, i)
        if not m or m.end() >= len(s) or s[m.end()] != "=":
            errors.append(f"bad AttributeName at {s[i:i + 20]!r}")
            return attrs, errors
        name = m.group(0)
        i = m.end() + 1
        if i < len(s) and s[i] == '"':
            j = s.find('"', i + 1)
            if j < 0:
                errors.append(f"{name}: unterminated quoted-string")
                return attrs, errors
            value = Quoted(s[i + 1:j])
            i = j + 1
        else:
            j = s.find(",", i)
            j = len(s) if j < 0 else j
            value = s[i:j]
            if value == "":
                errors.append(f"{name}: empty value")
            elif re.search(r'[\s"]', value):
                errors.append(f"{name}: unquoted value {value!r} with whitespace or quotes")
            i = j
        if name in attrs:
            errors.append(f"{name} appears twice")
        attrs[name] = value
        if i < len(s):
            if s[i] != ",":
                errors.append(f"{name}: junk after value at {s[i:i + 20]!r}")
                return attrs, errors
            i += 1
            if i == len(s):
                errors.append("trailing comma")
    return attrs, errors


def _type_error(kind, value, enum=None, empty_ok=False):
    """None if value is a `kind` AttributeValue, else what is wrong."""
    quoted = isinstance(value, Quoted)
    if kind == "quoted":
        if not quoted:
            return "must be a quoted-string"
        if value == "" and not empty_ok:
            return "quoted-string must not be empty"
        return None
    if quoted:
        return f"must not be quoted ({kind})"
    if kind == "int":
        if not _INT.fullmatch(value) or int(value) > 2**64 - 1:
            return f"{value!r} is no decimal-integer"
    elif kind == "float":
        if not _FLOAT.fullmatch(value):
            return f"{value!r} is no decimal-floating-point"
    elif kind == "enum":
        if value not in enum:
            return f"{value!r} is not one of {'/'.join(sorted(enum))}"
    elif kind == "resolution":
        if not _RESOLUTION.fullmatch(value):
            return f"{value!r} is no decimal-resolution"
    return None


# Per tag: attribute -> (type, enum, required, empty quoted-string allowed).
_YES = {"YES"}
_YESNO = {"YES", "NO"}
_MEDIA_ATTRS = {
    "EXT-X-SERVER-CONTROL": {
        "CAN-SKIP-UNTIL": ("float", None, False, False),
        "CAN-SKIP-DATERANGES": ("enum", _YES, False, False),
        "HOLD-BACK": ("float", None, False, False),
        "PART-HOLD-BACK": ("float", None, False, False),
        "CAN-BLOCK-RELOAD": ("enum", _YES, False, False),
    },
    "EXT-X-PART-INF": {"PART-TARGET": ("float", None, True, False)},
    "EXT-X-PART": {
        "URI": ("quoted", None, True, False),
        "DURATION": ("float", None, True, False),
        "INDEPENDENT": ("enum", _YES, False, False),
        "BYTERANGE": ("quoted", None, False, False),
        "GAP": ("enum", _YES, False, False),
    },
    "EXT-X-SKIP": {
        "SKIPPED-SEGMENTS": ("int", None, True, False),
        "RECENTLY-REMOVED-DATERANGES": ("quoted", None, False, True),
    },
    "EXT-X-PRELOAD-HINT": {
        "TYPE": ("enum", {"PART", "MAP"}, True, False),
        "URI": ("quoted", None, True, False),
        "BYTERANGE-START": ("int", None, False, False),
        "BYTERANGE-LENGTH": ("int", None, False, False),
    },
    "EXT-X-RENDITION-REPORT": {
        "URI": ("quoted", None, True, False),
        "LAST-MSN": ("int", None, True, False),
        "LAST-PART": ("int", None, False, False),
    },
    "EXT-X-MAP": {
        "URI": ("quoted", None, True, False),
        "BYTERANGE": ("quoted", None, False, False),
    },
    "EXT-X-START": {
        "TIME-OFFSET": ("signed", None, True, False),
        "PRECISE": ("enum", _YESNO, False, False),
    },
}
_MASTER_ATTRS = {
    "EXT-X-MEDIA": {
        "TYPE": ("enum", {"AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS"}, True, False),
        "URI": ("quoted", None, False, False),
        "GROUP-ID": ("quoted", None, True, False),
        "LANGUAGE": ("quoted", None, False, False),
        "ASSOC-LANGUAGE": ("quoted", None, False, False),
        "NAME": ("quoted", None, True, False),
        "STABLE-RENDITION-ID": ("quoted", None, False, False),
        "DEFAULT": ("enum", _YESNO, False, False),
        "AUTOSELECT": ("enum", _YESNO, False, False),
        "FORCED": ("enum", _YESNO, False, False),
        "INSTREAM-ID": ("quoted", None, False, False),
        "BIT-DEPTH": ("int", None, False, False),
        "SAMPLE-RATE": ("int", None, False, False),
        "CHARACTERISTICS": ("quoted", None, False, False),
        "CHANNELS": ("quoted", None, False, False),
    },
    "EXT-X-STREAM-INF": {
        "BANDWIDTH": ("int", None, True, False),
        "AVERAGE-BANDWIDTH": ("int", None, False, False),
        "SCORE": ("float", None, False, False),
        "CODECS": ("quoted", None, False, False),
        "SUPPLEMENTAL-CODECS": ("quoted", None, False, False),
        "RESOLUTION": ("resolution", None, False, False),
        "FRAME-RATE": ("float", None, False, False),
        "HDCP-LEVEL": ("enum", {"TYPE-0", "TYPE-1", "NONE"}, False, False),
        "ALLOWED-CPC": ("quoted", None, False, False),
        "VIDEO-RANGE": ("enum", {"SDR", "HLG", "PQ"}, False, False),
        "STABLE-VARIANT-ID": ("quoted", None, False, False),
        "AUDIO": ("quoted", None, False, False),
        "VIDEO": ("quoted", None, False, False),
        "SUBTITLES": ("quoted", None, False, False),
        "CLOSED-CAPTIONS": ("cc", None, False, False),
        "PATHWAY-ID": ("quoted", None, False, False),
    },
    "EXT-X-START": _MEDIA_ATTRS["EXT-X-START"],
}

# Tags without a value, tags with a plain value, and where each may be.
_MEDIA_ONLY = {"EXT-X-TARGETDURATION", "EXT-X-MEDIA-SEQUENCE", "EXT-X-DISCONTINUITY-SEQUENCE",
               "EXT-X-ENDLIST", "EXT-X-PLAYLIST-TYPE", "EXT-X-I-FRAMES-ONLY", "EXT-X-PART-INF",
               "EXT-X-SERVER-CONTROL", "EXTINF", "EXT-X-BYTERANGE", "EXT-X-DISCONTINUITY",
               "EXT-X-KEY", "EXT-X-MAP", "EXT-X-PROGRAM-DATE-TIME", "EXT-X-GAP", "EXT-X-BITRATE",
               "EXT-X-PART", "EXT-X-DATERANGE", "EXT-X-SKIP", "EXT-X-PRELOAD-HINT",
               "EXT-X-RENDITION-REPORT"}
_MASTER_ONLY = {"EXT-X-MEDIA", "EXT-X-STREAM-INF", "EXT-X-I-FRAME-STREAM-INF",
                "EXT-X-SESSION-DATA", "EXT-X-SESSION-KEY", "EXT-X-CONTENT-STEERING"}
_BOTH = {"EXTM3U", "EXT-X-VERSION", "EXT-X-INDEPENDENT-SEGMENTS", "EXT-X-START", "EXT-X-DEFINE"}
# 4.4.2, 4.4.3 and 4.4.5.2: at most once per playlist.
_ONCE = {"EXTM3U", "EXT-X-VERSION", "EXT-X-INDEPENDENT-SEGMENTS", "EXT-X-START",
         "EXT-X-TARGETDURATION", "EXT-X-MEDIA-SEQUENCE", "EXT-X-DISCONTINUITY-SEQUENCE",
         "EXT-X-ENDLIST", "EXT-X-PLAYLIST-TYPE", "EXT-X-I-FRAMES-ONLY", "EXT-X-PART-INF",
         "EXT-X-SERVER-CONTROL", "EXT-X-SKIP"}
_LL_TAGS = {"EXT-X-SERVER-CONTROL", "EXT-X-PART-INF", "EXT-X-PART", "EXT-X-SKIP",
            "EXT-X-PRELOAD-HINT", "EXT-X-RENDITION-REPORT"}

_PDT = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d{3,})(Z|[+-]\d{2}:?\d{2})")
_SEG_NAME = re.compile(r"(\d+)\.m4s")
_PART_NAME = re.compile(r"(\d+)\.(\d+)\.m4s")
_EPS = 1e-9


def _lines(text, errors):
    """(line number, line) of every non-blank line; checks 4.1's encoding
    rules on the way."""
    if text.startswith("\ufeff"):
        errors.append("line 1: byte order mark (4.1)")
        text = text[1:]
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]
        bad = [c for c in line if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F]
        if bad:
            errors.append(f"line {n}: control character {ord(bad[0]):#04x} (4.1)")
        if line.strip() == "":
            continue
        if line != line.strip():
            errors.append(f"line {n}: leading or trailing whitespace")
        out.append((n, line.strip()))
    return out


def _tag(line):
    """("EXT-X-FOO", value or None) for a tag line; None for a URI or comment."""
    if not line.startswith("#EXT"):
        return None
    name, sep, value = line[1:].partition(":")
    return name, (value if sep else None)


def _attr_list(n, name, value, errors):
    """Parses the attribute-list of a tag (errors noted); {} when it has none."""
    if value is None:
        errors.append(f"line {n}: {name} without its attribute-list")
        return {}
    attrs, errs = parse_attr_list(value)
    for e in errs:
        errors.append(f"line {n}: {name}: {e} (4.2)")
    return attrs


def _attrs(n, name, value, table, errors):
    """Parses and type-checks the attribute-list of a tag; returns the dict."""
    attrs = _attr_list(n, name, value, errors)
    spec = table.get(name, {})
    for attr, v in attrs.items():
        if attr not in spec:
            errors.append(f"line {n}: {name}: unknown attribute {attr}")
            continue
        kind, enum, _, empty_ok = spec[attr]
        if kind == "signed":
            err = None if (not isinstance(v, Quoted) and re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", v)) \
                else f"{v!r} is no signed-decimal-floating-point"
        elif kind == "cc":
            err = None if (isinstance(v, Quoted) and v) or v == "NONE" \
                else "must be a quoted-string or NONE"
        else:
            err = _type_error(kind, v, enum, empty_ok)
        if err:
            errors.append(f"line {n}: {name}: {attr} {err} (4.2)")
    for attr, (_, _, required, _) in spec.items():
        if required and attr not in attrs:
            errors.append(f"line {n}: {name}: required attribute {attr} missing")
    return attrs


def _num(v):
    """Decimal of a checked decimal-integer/-floating-point, else None."""
    if v is None or isinstance(v, Quoted) or not _FLOAT.fullmatch(v):
        return None
    return Decimal(v)


def _path(uri):
    return uri.split("?", 1)[0].split("#", 1)[0]


def _round_half_up(d):
    return int(d.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _check_version(n_version, version, need, errors):
    """need: list of (version, why)."""
    if not need:
        return
    v_need, why = max(need, key=lambda x: x[0])
    if version is None:
        if v_need > 1:
            errors.append(f"no EXT-X-VERSION although {why} needs version {v_need} (4.4.1.2, 8)")
    elif version < v_need:
        errors.append(f"line {n_version}: EXT-X-VERSION:{version} but {why} needs {v_need} (8)")


# --- media playlists ---------------------------------------------------------

class _Media:
    """What check_media learned from one pass over the lines."""

    def __init__(self):
        self.tags = {}        # name -> [(line, value)]
        self.segments = []    # dicts: n, uri, duration, pdt, disc, parts
        self.pending = []     # parts after the last segment
        self.hints = []       # (line, attrs)
        self.reports = []     # (line, attrs)
        self.skip = None      # (line, attrs)
        self.dateranges = []  # (line, attrs)
        self.version_need = []


def _parse_media(lines, errors):
    pl = _Media()
    cur = {"parts": [], "extinf": None, "pdt": None, "disc": False, "segtags": []}
    first_segment_line = None
    tail_line = None  # first preload hint or rendition report
    for n, line in lines[1:]:
        tag = _tag(line)
        if tag is None:
            if line.startswith("#"):
                continue  # a comment
            # A URI line: ends a Media Segment.
            if cur["extinf"] is None:
                errors.append(f"line {n}: URI line {line!r} without EXTINF (4.4.4.1)")
            if tail_line is not None:
                errors.append(f"line {n}: segment after the preload hint / rendition reports "
                              f"(line {tail_line}) [sluice]")
            first_segment_line = first_segment_line or n
            pl.segments.append({"n": n, "uri": line, "duration": cur["extinf"], "pdt": cur["pdt"],
                                "disc": cur["disc"], "parts": cur["parts"]})
            cur = {"parts": [], "extinf": None, "pdt": None, "disc": False, "segtags": []}
            continue
        name, value = tag
        pl.tags.setdefault(name, []).append((n, value))
        if name in _MASTER_ONLY:
            errors.append(f"line {n}: {name} is a Multivariant Playlist tag (4.4.6)")
            continue
        if name not in _MEDIA_ONLY and name not in _BOTH:
            errors.append(f"line {n}: unknown tag {name}")
            continue
        if name in ("EXT-X-MEDIA-SEQUENCE", "EXT-X-DISCONTINUITY-SEQUENCE", "EXT-X-TARGETDURATION",
                    "EXT-X-PART-INF", "EXT-X-SERVER-CONTROL", "EXT-X-VERSION"):
            if first_segment_line is not None or cur["parts"] or cur["extinf"] is not None:
                errors.append(f"line {n}: {name} after the first Media Segment (4.4.3)")
        if name in ("EXT-X-DISCONTINUITY", "EXT-X-PROGRAM-DATE-TIME", "EXT-X-MAP", "EXT-X-KEY"):
            if cur["parts"]:
                errors.append(f"line {n}: {name} after the first EXT-X-PART of its Parent "
                              f"Segment (4.4.4.9)")
            if cur["extinf"] is not None:
                errors.append(f"line {n}: {name} between EXTINF and its URI")
        if name == "EXTINF":
            if cur["extinf"] is not None:
                errors.append(f"line {n}: second EXTINF for one segment (4.4.4.1)")
            m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?),(.*)", value or "")
            if not m:
                errors.append(f"line {n}: EXTINF {value!r}: not <duration>,[<title>] (4.4.4.1)")
                cur["extinf"] = Decimal(0)
            else:
                cur["extinf"] = Decimal(m.group(1))
                if "." in m.group(1):
                    pl.version_need.append((3, "a floating-point EXTINF"))
        elif name == "EXT-X-PROGRAM-DATE-TIME":
            if cur["pdt"] is not None:
                errors.append(f"line {n}: second EXT-X-PROGRAM-DATE-TIME for one segment")
            cur["pdt"] = _date(value)
            if not _PDT.fullmatch(value or ""):
                errors.append(f"line {n}: EXT-X-PROGRAM-DATE-TIME {value!r} is not "
                              f"YYYY-MM-DDThh:mm:ss.SSS with a time zone (4.4.4.6)")
            elif cur["pdt"] is None:
                errors.append(f"line {n}: EXT-X-PROGRAM-DATE-TIME {value!r} is no date")
        elif name == "EXT-X-DISCONTINUITY":
            if value is not None:
                errors.append(f"line {n}: EXT-X-DISCONTINUITY takes no value")
            cur["disc"] = True
        elif name == "EXT-X-MAP":
            attrs = _attrs(n, name, value, _MEDIA_ATTRS, errors)
            pl.version_need.append((6, "EXT-X-MAP"))
            if "BYTERANGE" in attrs:
                pl.version_need.append((4, "EXT-X-MAP BYTERANGE"))
        elif name == "EXT-X-BYTERANGE":
            pl.version_need.append((4, "EXT-X-BYTERANGE"))
        elif name == "EXT-X-I-FRAMES-ONLY":
            pl.version_need.append((4, "EXT-X-I-FRAMES-ONLY"))
        elif name == "EXT-X-DEFINE":
            pl.version_need.append((8, "EXT-X-DEFINE"))
            if "QUERYPARAM" in (value or ""):
                pl.version_need.append((11, "EXT-X-DEFINE QUERYPARAM"))
        elif name == "EXT-X-PART":
            attrs = _attrs(n, name, value, _MEDIA_ATTRS, errors)
            if cur["extinf"] is not None:
                errors.append(f"line {n}: EXT-X-PART between EXTINF and its URI")
            if tail_line is not None:
                errors.append(f"line {n}: EXT-X-PART after the preload hint / rendition reports "
                              f"(line {tail_line}) [sluice]")
            cur["parts"].append({"n": n, "attrs": attrs, "uri": attrs.get("URI", ""),
                                 "duration": _num(attrs.get("DURATION")) or Decimal(0)})
        elif name == "EXT-X-SKIP":
            attrs = _attrs(n, name, value, _MEDIA_ATTRS, errors)
            pl.skip = (n, attrs)
            if first_segment_line is not None or cur["parts"] or cur["extinf"] is not None \
                    or cur["pdt"] is not None or cur["disc"]:
                errors.append(f"line {n}: EXT-X-SKIP after Media Segment lines; it stands in "
                              f"place of the first segments (4.4.5.2)")
            pl.version_need.append((9, "EXT-X-SKIP"))
            if "RECENTLY-REMOVED-DATERANGES" in attrs:
                pl.version_need.append((10, "an EXT-X-SKIP that skips date ranges"))
        elif name == "EXT-X-DATERANGE":
            pl.dateranges.append((n, _daterange_attrs(n, value, errors)))
        elif name == "EXT-X-PRELOAD-HINT":
            pl.hints.append((n, _attrs(n, name, value, _MEDIA_ATTRS, errors)))
            tail_line = tail_line or n
        elif name == "EXT-X-RENDITION-REPORT":
            pl.reports.append((n, _attrs(n, name, value, _MEDIA_ATTRS, errors)))
            tail_line = tail_line or n
        elif name in ("EXT-X-SERVER-CONTROL", "EXT-X-PART-INF", "EXT-X-START"):
            attrs = _attrs(n, name, value, _MEDIA_ATTRS, errors)
            pl.tags[name][-1] = (n, attrs)
        elif name in ("EXT-X-ENDLIST", "EXT-X-INDEPENDENT-SEGMENTS", "EXT-X-GAP",
                      "EXT-X-I-FRAMES-ONLY", "EXTM3U") and value is not None:
            errors.append(f"line {n}: {name} takes no value")
        if value and re.search(r"(^|[:,])REQ-[A-Z0-9-]*=", value):
            pl.version_need.append((12, "a REQ- attribute"))
    if cur["extinf"] is not None:
        errors.append(f"line {lines[-1][0]}: EXTINF without its URI line at the end (4.4.4.1)")
    elif (cur["pdt"] is not None or cur["disc"]) and not cur["parts"]:
        errors.append(f"line {lines[-1][0]}: Media Segment tags at the end apply to no segment")
    pl.pending = cur["parts"]
    return pl


# EXT-X-DATERANGE (4.4.5.1): the attributes the spec defines; any other
# must be a client attribute: "X-" and [A-Z0-9-], its value a
# quoted-string, a hexadecimal-sequence or a decimal-floating-point.
_DATERANGE_ATTRS = {
    "ID": "quoted", "CLASS": "quoted", "START-DATE": "quoted", "CUE": "quoted",
    "END-DATE": "quoted", "DURATION": "float", "PLANNED-DURATION": "float",
    "SCTE35-CMD": "hex", "SCTE35-OUT": "hex", "SCTE35-IN": "hex", "END-ON-NEXT": "yes",
}
_HEX = re.compile(r"0[xX][0-9A-Fa-f]+")


def _date(value):
    """Seconds since the epoch of an ISO 8601 date with a time zone, or None."""
    m = _PDT.fullmatch(value or "")
    if not m:
        return None
    zone = m.group(3).replace("Z", "+0000").replace(":", "")
    try:
        return datetime.strptime(f"{m.group(1)}.{m.group(2)[:6]}{zone}",
                                 "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    except ValueError:
        return None


def _daterange_attrs(n, value, errors):
    """Parses and type-checks one EXT-X-DATERANGE; returns its attributes."""
    attrs = _attr_list(n, "EXT-X-DATERANGE", value, errors)
    for attr, v in attrs.items():
        kind = _DATERANGE_ATTRS.get(attr)
        quoted = isinstance(v, Quoted)
        if kind is None:
            if not attr.startswith("X-"):
                errors.append(f"line {n}: EXT-X-DATERANGE: {attr} is neither a defined "
                              f"attribute nor a client attribute (X-...) (4.4.5.1)")
            elif not (quoted or _HEX.fullmatch(v) or _FLOAT.fullmatch(v)):
                errors.append(f"line {n}: EXT-X-DATERANGE: client attribute {attr} {v!r} is "
                              f"no quoted-string, hexadecimal-sequence or "
                              f"decimal-floating-point (4.4.5.1)")
        elif kind == "quoted" and not quoted:
            errors.append(f"line {n}: EXT-X-DATERANGE: {attr} must be a quoted-string (4.4.5.1)")
        elif kind == "float" and (quoted or not _FLOAT.fullmatch(v)):
            errors.append(f"line {n}: EXT-X-DATERANGE: {attr} {v!r} is no "
                          f"decimal-floating-point (4.4.5.1)")
        elif kind == "hex" and (quoted or not _HEX.fullmatch(v)):
            errors.append(f"line {n}: EXT-X-DATERANGE: {attr} is no hexadecimal-sequence")
        elif kind == "yes" and v != "YES":
            errors.append(f"line {n}: EXT-X-DATERANGE: END-ON-NEXT must be YES (4.4.5.1)")
    if "ID" not in attrs:
        errors.append(f"line {n}: EXT-X-DATERANGE: required attribute ID missing (4.4.5.1)")
    if "START-DATE" not in attrs:
        errors.append(f"line {n}: EXT-X-DATERANGE: required attribute START-DATE missing "
                      f"(4.4.5.1)")
    for attr in ("START-DATE", "END-DATE"):
        if isinstance(attrs.get(attr), Quoted) and _date(attrs[attr]) is None:
            errors.append(f"line {n}: EXT-X-DATERANGE: {attr} {attrs[attr]!r} is no ISO 8601 "
                          f"date with a time zone (4.4.5.1)")
    start, end = _date(attrs.get("START-DATE")), _date(attrs.get("END-DATE"))
    if start is not None and end is not None and end < start:
        errors.append(f"line {n}: EXT-X-DATERANGE: END-DATE before START-DATE (4.4.5.1)")
    if start is not None and end is not None and _num(attrs.get("DURATION")) is not None and \
            abs(end - start - float(attrs["DURATION"])) > 0.001:
        errors.append(f"line {n}: EXT-X-DATERANGE: END-DATE is not START-DATE + DURATION "
                      f"(4.4.5.1)")
    if "END-ON-NEXT" in attrs:
        if "CLASS" not in attrs:
            errors.append(f"line {n}: EXT-X-DATERANGE: END-ON-NEXT without CLASS (4.4.5.1)")
        if "DURATION" in attrs or "END-DATE" in attrs:
            errors.append(f"line {n}: EXT-X-DATERANGE: END-ON-NEXT with DURATION or END-DATE "
                          f"(4.4.5.1)")
    return attrs


def _check_dateranges(pl, errors):
    """4.4.5.1 across the playlist: a DATERANGE needs an EXT-X-PROGRAM-DATE-TIME
    somewhere; two with the same ID carry the same values for the attributes
    they share (CLASS included); sluice writes each ID once."""
    if not pl.dateranges:
        return
    if "EXT-X-PROGRAM-DATE-TIME" not in pl.tags:
        errors.append(f"line {pl.dateranges[0][0]}: EXT-X-DATERANGE in a playlist without "
                      f"EXT-X-PROGRAM-DATE-TIME (4.4.5.1)")
    seen = {}
    for n, attrs in pl.dateranges:
        rid = attrs.get("ID")
        if rid is None:
            continue
        if rid in seen:
            first_n, first = seen[rid]
            for attr in set(attrs) & set(first):
                if attrs[attr] != first[attr]:
                    errors.append(f"line {n}: EXT-X-DATERANGE ID {rid!r}: {attr} differs from "
                                  f"line {first_n} (4.4.5.1)")
            errors.append(f"line {n}: EXT-X-DATERANGE ID {rid!r} twice (line {first_n}) "
                          f"[sluice]")
        else:
            seen[rid] = (n, attrs)


def _single(pl, name):
    """(line, value) of a tag that must appear at most once, or (None, None)."""
    found = pl.tags.get(name, [])
    return found[0] if found else (None, None)


def check_media(text, ll=True, reports=None):
    """Violations of the spec's checkable rules in a Media Playlist."""
    errors = []
    lines = _lines(text, errors)
    if not lines or lines[0][1] != "#EXTM3U" or lines[0][0] != 1:
        errors.append("line 1: the first line is not #EXTM3U (4.4.1.1)")
        if not lines:
            return errors
    pl = _parse_media(lines, errors)
    for name in _ONCE:
        if len(pl.tags.get(name, [])) > 1:
            errors.append(f"line {pl.tags[name][1][0]}: {name} appears more than once (4.4.2, "
                          f"4.4.3, 4.4.5.2)")

    # Version (4.4.1.2, 8).
    n_version, version = _single(pl, "EXT-X-VERSION")
    if version is not None:
        if not _INT.fullmatch(version):
            errors.append(f"line {n_version}: EXT-X-VERSION {version!r} is no integer")
            version = None
        else:
            version = int(version)
    _check_version(n_version, version, pl.version_need, errors)

    # Target duration (4.4.3.1): every EXTINF rounded to the nearest integer.
    n_td, td = _single(pl, "EXT-X-TARGETDURATION")
    if td is None:
        errors.append("no EXT-X-TARGETDURATION (4.4.3.1: REQUIRED)")
        td = None
    elif not _INT.fullmatch(td) or int(td) < 1:
        errors.append(f"line {n_td}: EXT-X-TARGETDURATION {td!r} is no integer >= 1 (4.4.3.1)")
        td = None
    else:
        td = int(td)
    if td is not None:
        for s in pl.segments:
            if s["duration"] is not None and _round_half_up(s["duration"]) > td:
                errors.append(f"line {s['n']}: EXTINF {s['duration']} rounds above "
                              f"EXT-X-TARGETDURATION {td} (4.4.3.1)")

    n_ms, ms = _single(pl, "EXT-X-MEDIA-SEQUENCE")
    if ms is not None and not _INT.fullmatch(ms):
        errors.append(f"line {n_ms}: EXT-X-MEDIA-SEQUENCE {ms!r} is no decimal-integer")
        ms = None
    media_sequence = int(ms) if ms is not None else 0
    n_ds, ds = _single(pl, "EXT-X-DISCONTINUITY-SEQUENCE")
    if ds is not None:
        if not _INT.fullmatch(ds):
            errors.append(f"line {n_ds}: EXT-X-DISCONTINUITY-SEQUENCE {ds!r} is no "
                          f"decimal-integer")
        first_disc = min((n for n, _ in pl.tags.get("EXT-X-DISCONTINUITY", [])), default=None)
        if first_disc is not None and first_disc < n_ds:
            errors.append(f"line {n_ds}: EXT-X-DISCONTINUITY-SEQUENCE after an "
                          f"EXT-X-DISCONTINUITY (4.4.3.3)")
    ended = "EXT-X-ENDLIST" in pl.tags

    # Program date time on every segment (Appendix B.1, and what sluice
    # writes); no overlap of a second or more (6.2.1).
    prev = None
    for s in pl.segments:
        if s["pdt"] is None:
            errors.append(f"line {s['n']}: segment {s['uri']!r} without "
                          f"EXT-X-PROGRAM-DATE-TIME (Appendix B.1)")
        elif prev is not None and prev["pdt"] is not None and prev["duration"] is not None:
            expected = prev["pdt"] + float(prev["duration"])
            if s["pdt"] <= prev["pdt"] or s["pdt"] <= expected - 1.0:
                errors.append(f"line {s['n']}: EXT-X-PROGRAM-DATE-TIME goes back "
                              f"{expected - s['pdt']:.3f} s into the previous segment (6.2.1)")
        prev = s

    _check_dateranges(pl, errors)

    # Delta update (4.4.5.2, 6.2.5.1).
    n_sc, sc = _single(pl, "EXT-X-SERVER-CONTROL")
    sc = sc if isinstance(sc, dict) else {}
    skipped = 0
    if pl.skip is not None:
        n_skip, attrs = pl.skip
        count = attrs.get("SKIPPED-SEGMENTS")
        skipped = int(count) if count is not None and _INT.fullmatch(count) else 0
        if "CAN-SKIP-UNTIL" not in sc:
            errors.append(f"line {n_skip}: EXT-X-SKIP without CAN-SKIP-UNTIL (6.2.5.1)")
        if ended:
            errors.append(f"line {n_skip}: EXT-X-SKIP in a playlist with EXT-X-ENDLIST: the "
                          f"server must ignore _HLS_skip then (6.2.5.1)")
        if "RECENTLY-REMOVED-DATERANGES" in attrs and sc.get("CAN-SKIP-DATERANGES") != "YES":
            errors.append(f"line {n_skip}: RECENTLY-REMOVED-DATERANGES without "
                          f"CAN-SKIP-DATERANGES=YES (6.3.7)")
        removed = [i for i in attrs.get("RECENTLY-REMOVED-DATERANGES", "").split("\t") if i]
        present = {a.get("ID") for _, a in pl.dateranges}
        for rid in removed:
            if rid in present:
                errors.append(f"line {n_skip}: RECENTLY-REMOVED-DATERANGES names {rid!r}, "
                              f"which is in the playlist (4.4.5.2)")
        csu = _num(sc.get("CAN-SKIP-UNTIL"))
        if csu is not None and pl.segments and skipped > 0:
            # Skipped: the segments that end further than the Skip Boundary
            # from the end of the last segment; kept: all the others.
            remaining = sum((s["duration"] or 0) for s in pl.segments)
            eps = Decimal("0.0005") * (len(pl.segments) + 1)
            first_end = remaining - (pl.segments[0]["duration"] or 0)
            # Exactly at the boundary is not "further" than it: kept.
            if remaining <= csu:
                errors.append(f"line {n_skip}: the last skipped segment ends {remaining} s from "
                              f"the end, within the Skip Boundary {csu} (6.2.5.1)")
            if first_end > csu + eps:
                errors.append(f"line {pl.segments[0]['n']}: segment ends {first_end} s from the "
                              f"end, beyond the Skip Boundary {csu}, but was not skipped (6.2.5.1)")

    # Sluice's names: "N.m4s" is segment N, "N.P.m4s" part P of segment N.
    seen = {}
    for i, s in enumerate(pl.segments):
        msn = media_sequence + skipped + i
        s["msn"] = msn
        m = _SEG_NAME.fullmatch(_path(s["uri"]))
        if m and int(m.group(1)) != msn:
            errors.append(f"line {s['n']}: segment {s['uri']!r} has Media Sequence Number {msn} "
                          f"[sluice]")
    next_msn = media_sequence + skipped + len(pl.segments)
    groups = [(s["msn"], s["parts"], s) for s in pl.segments] + [(next_msn, pl.pending, None)]
    first_parted = next((i for i, g in enumerate(groups) if g[1]), None)
    for gi, (msn, parts, seg) in enumerate(groups):
        for j, p in enumerate(parts):
            m = _PART_NAME.fullmatch(_path(p["uri"]))
            if not m:
                continue
            if int(m.group(1)) != msn:
                errors.append(f"line {p['n']}: part {p['uri']!r} belongs to segment {msn} "
                              f"[sluice]")
            # Parts leave the playlist in order (6.2.2): only the oldest
            # segment with parts may have lost its first ones.
            first = int(_PART_NAME.fullmatch(_path(parts[0]["uri"])).group(2)) \
                if _PART_NAME.fullmatch(_path(parts[0]["uri"])) else 0
            if gi != first_parted and first != 0:
                errors.append(f"line {parts[0]['n']}: first part of segment {msn} is "
                              f"{parts[0]['uri']!r}, not part 0 [sluice]")
            if int(m.group(2)) != first + j:
                errors.append(f"line {p['n']}: part {p['uri']!r} where part {first + j} of "
                              f"segment {msn} belongs [sluice]")
    for s in pl.segments:
        for p in s["parts"] + [s]:
            key = _path(p["uri"])
            if key in seen:
                errors.append(f"line {p['n']}: URI {p['uri']!r} already on line {seen[key]}")
            seen.setdefault(key, p["n"])
    for p in pl.pending:
        key = _path(p["uri"])
        if key in seen:
            errors.append(f"line {p['n']}: URI {p['uri']!r} already on line {seen[key]}")
        seen.setdefault(key, p["n"])

    # LL-HLS.
    present = {t for t in _LL_TAGS if t in pl.tags}
    all_parts = [p for s in pl.segments for p in s["parts"]] + pl.pending
    if ll is False and present:
        errors.append(f"LL-HLS tags in a playlist without LL-HLS: {', '.join(sorted(present))}")
    if ll:
        if "EXT-X-PART-INF" not in pl.tags:
            errors.append("no EXT-X-PART-INF in an LL-HLS playlist")
        if "EXT-X-SERVER-CONTROL" not in pl.tags:
            errors.append("no EXT-X-SERVER-CONTROL in an LL-HLS playlist")
        elif sc.get("CAN-BLOCK-RELOAD") != "YES":
            errors.append(f"line {n_sc}: no CAN-BLOCK-RELOAD=YES in an LL-HLS playlist")
        if not all_parts:
            errors.append("no EXT-X-PART in an LL-HLS playlist")
    n_pi, pi = _single(pl, "EXT-X-PART-INF")
    pi = pi if isinstance(pi, dict) else {}
    part_target = _num(pi.get("PART-TARGET"))
    if all_parts and n_pi is None:
        errors.append(f"line {all_parts[0]['n']}: EXT-X-PART without EXT-X-PART-INF (4.4.3.7)")
    if part_target is not None and part_target <= 0:
        errors.append(f"line {n_pi}: PART-TARGET {part_target} is not positive")
        part_target = None

    # Server control (4.4.3.8).
    if n_sc is not None:
        csu, hb, phb = (_num(sc.get(k)) for k in ("CAN-SKIP-UNTIL", "HOLD-BACK", "PART-HOLD-BACK"))
        if "CAN-SKIP-DATERANGES" in sc and "CAN-SKIP-UNTIL" not in sc:
            errors.append(f"line {n_sc}: CAN-SKIP-DATERANGES without CAN-SKIP-UNTIL (4.4.3.8)")
        if csu is not None and td is not None and csu < 6 * td:
            errors.append(f"line {n_sc}: CAN-SKIP-UNTIL {csu} < 6 x EXT-X-TARGETDURATION {td} "
                          f"(4.4.3.8)")
        if hb is not None and td is not None and hb < 3 * td:
            errors.append(f"line {n_sc}: HOLD-BACK {hb} < 3 x EXT-X-TARGETDURATION {td} "
                          f"(4.4.3.8)")
        if n_pi is not None and phb is None:
            errors.append(f"line {n_sc}: no PART-HOLD-BACK although the playlist has "
                          f"EXT-X-PART-INF (4.4.3.8)")
        if phb is not None and part_target is not None:
            if phb < 2 * part_target:
                errors.append(f"line {n_sc}: PART-HOLD-BACK {phb} < 2 x PART-TARGET "
                              f"{part_target} (4.4.3.8: MUST)")
            elif phb + Decimal("0.0015") < 3 * part_target:
                errors.append(f"line {n_sc}: PART-HOLD-BACK {phb} < 3 x PART-TARGET "
                              f"{part_target} (4.4.3.8: SHOULD)")
    elif n_pi is not None:
        errors.append(f"line {n_pi}: EXT-X-PART-INF without EXT-X-SERVER-CONTROL PART-HOLD-BACK "
                      f"(4.4.3.8)")

    # Parts (4.4.4.9): at most PART-TARGET; at least 85 % of it unless
    # INDEPENDENT, GAP, followed by a GAP part, or the last of their parent
    # segment (the last part of the segment in progress may become that).
    if part_target is not None:
        for gi, (msn, parts, seg) in enumerate(groups):
            for j, p in enumerate(parts):
                d = p["duration"]
                if d > part_target + Decimal(_EPS):
                    errors.append(f"line {p['n']}: EXT-X-PART DURATION {d} > PART-TARGET "
                                  f"{part_target} (4.4.4.9)")
                exempt = (p["attrs"].get("INDEPENDENT") == "YES" or p["attrs"].get("GAP") == "YES"
                          or j == len(parts) - 1
                          or (j + 1 < len(parts) and parts[j + 1]["attrs"].get("GAP") == "YES"))
                if not exempt and d < Decimal("0.85") * part_target:
                    errors.append(f"line {p['n']}: EXT-X-PART DURATION {d} < 85 % of "
                                  f"PART-TARGET {part_target} (4.4.4.9)")
    # A segment's parts hold the same media as the segment (3.2).
    for gi, (msn, parts, seg) in enumerate(groups):
        if seg is None or not parts or seg["duration"] is None:
            continue
        m = _PART_NAME.fullmatch(_path(parts[0]["uri"]))
        complete = int(m.group(2)) == 0 if m else gi != first_parted
        total = sum(p["duration"] for p in parts)
        if complete and abs(total - seg["duration"]) > Decimal("0.001") * (len(parts) + 1):
            errors.append(f"line {seg['n']}: EXTINF {seg['duration']} but its parts add up to "
                          f"{total} (3.2)")
    # Parts only at the live edge: once a segment has parts, every later one
    # has (6.2.2: removed in order); none more than three Target Durations
    # from the end (6.2.2: SHOULD be removed).
    if first_parted is not None:
        for msn, parts, seg in groups[first_parted:-1]:
            if not parts:
                errors.append(f"line {seg['n']}: segment without EXT-X-PART after segments with "
                              f"them (6.2.2)")
        if td is not None:
            # Where each part ends, counted back from the end of its
            # segment (the oldest segment may have lost its first parts) or
            # forward from the last segment for the segment in progress.
            end = sum((s["duration"] or 0) for s in pl.segments) + sum(p["duration"]
                                                                       for p in pl.pending)
            limit = 3 * td + Decimal("0.0005") * (len(all_parts) + len(pl.segments) + 1)
            t = Decimal(0)
            for msn, parts, seg in groups:
                if seg is not None:
                    t += seg["duration"] or 0
                    ends, acc = [], t
                    for p in reversed(parts):
                        ends.append(acc)
                        acc -= p["duration"]
                    ends.reverse()
                else:
                    ends, acc = [], t
                    for p in parts:
                        acc += p["duration"]
                        ends.append(acc)
                for p, pend in zip(parts, ends):
                    if end - pend > limit:
                        errors.append(f"line {p['n']}: EXT-X-PART ends {end - pend} s before the "
                                      f"end, more than 3 Target Durations (6.2.2: SHOULD be "
                                      f"removed)")

    # Preload hints (4.4.5.3, 6.2.6, Appendix B.1).
    types = {}
    for n, attrs in pl.hints:
        kind = attrs.get("TYPE")
        if kind in types:
            errors.append(f"line {n}: a second EXT-X-PRELOAD-HINT TYPE={kind} (6.2.6)")
        types.setdefault(kind, n)
        if ended:
            errors.append(f"line {n}: EXT-X-PRELOAD-HINT in a playlist with EXT-X-ENDLIST "
                          f"(4.4.5.3)")
        uri = attrs.get("URI")
        if kind == "PART" and uri:
            if _path(uri) in seen:
                errors.append(f"line {n}: preload hint {uri!r} names a part already listed")
            want = f"{next_msn}.{len(pl.pending)}.m4s"
            if _PART_NAME.fullmatch(_path(uri)) and _path(uri) != want:
                errors.append(f"line {n}: preload hint {uri!r}, but the part after the last one "
                              f"is {want!r} [sluice]")
    if all_parts and not ended and "PART" not in types:
        errors.append("no EXT-X-PRELOAD-HINT TYPE=PART in a live playlist with parts "
                      "(Appendix B.1)")

    # Rendition reports (4.4.5.4, Appendix B.1).
    uris = {}
    for n, attrs in pl.reports:
        uri = attrs.get("URI")
        if uri is None:
            continue
        if "://" in uri:
            errors.append(f"line {n}: EXT-X-RENDITION-REPORT URI {uri!r} is not relative "
                          f"(4.4.5.4)")
        if uri in uris:
            errors.append(f"line {n}: a second EXT-X-RENDITION-REPORT for {uri!r}")
        uris.setdefault(uri, n)
        if all_parts and "LAST-PART" not in attrs:
            errors.append(f"line {n}: EXT-X-RENDITION-REPORT without LAST-PART for a rendition "
                          f"with parts (4.4.5.4)")
    # An ended playlist names whole segments only (sluice drops the parts),
    # so reports of the others' last parts are not expected there.
    if reports is not None and not ended:
        missing = set(reports) - set(uris)
        extra = set(uris) - set(reports)
        if missing:
            errors.append(f"no EXT-X-RENDITION-REPORT for {sorted(missing)} (Appendix B.1)")
        if extra:
            errors.append(f"EXT-X-RENDITION-REPORT for unexpected {sorted(extra)}")
    if pl.reports and pl.hints and min(n for n, _ in pl.reports) < max(n for n, _ in pl.hints):
        errors.append(f"line {min(n for n, _ in pl.reports)}: EXT-X-RENDITION-REPORT before the "
                      f"preload hint [sluice]")
    return errors


# --- delta updates -----------------------------------------------------------

_SEGMENT_LINE = ("#EXT-X-PROGRAM-DATE-TIME:", "#EXTINF:", "#EXT-X-PART:", "#EXT-X-SKIP:",
                 "#EXT-X-PRELOAD-HINT:", "#EXT-X-RENDITION-REPORT:", "#EXT-X-ENDLIST",
                 "#EXT-X-KEY:", "#EXT-X-BYTERANGE:", "#EXT-X-GAP", "#EXT-X-BITRATE:")


def _split_head(lines):
    """(header lines, body lines): the body starts at the first line that
    belongs to a segment, a part or what follows them."""
    for i, line in enumerate(lines):
        if line == "#EXT-X-DISCONTINUITY" or line.startswith(_SEGMENT_LINE) or \
                not line.startswith("#"):
            return lines[:i], lines[i:]
    return lines, []


def check_delta(full, delta):
    """Violations in a Playlist Delta Update `delta` of the full playlist
    `full` (same moment): check_media's, plus: EXT-X-SKIP replaces exactly the
    first SKIPPED-SEGMENTS segments of the full playlist with every tag that
    applies only to them, and every other line is kept (6.2.5.1), with the
    EXT-X-VERSION the tag needs."""
    errors = [f"delta: {e}" for e in check_media(delta, ll=None)]
    fl = [l.strip() for l in full.split("\n") if l.strip()]
    dl = [l.strip() for l in delta.split("\n") if l.strip()]
    # Date ranges: an update that does not skip them (no
    # RECENTLY-REMOVED-DATERANGES: _HLS_skip=YES) keeps every one; one that
    # does (v2) keeps a subset and lists what was removed (4.4.5.2, 6.2.5.1).
    fdr = [l for l in fl if l.startswith("#EXT-X-DATERANGE:")]
    ddr = [l for l in dl if l.startswith("#EXT-X-DATERANGE:")]
    fl = [l for l in fl if not l.startswith("#EXT-X-DATERANGE:")]
    dl = [l for l in dl if not l.startswith("#EXT-X-DATERANGE:")]
    skips_dr = any(l.startswith("#EXT-X-SKIP:") and "RECENTLY-REMOVED-DATERANGES=" in l
                   for l in dl)
    for l in ddr:
        if l not in fdr:
            errors.append(f"delta: {l!r} is not in the full playlist (6.2.5.1)")
    if not skips_dr and sorted(ddr) != sorted(fdr):
        errors.append("delta: EXT-X-DATERANGE tags left out by an update that does not skip "
                      "them (no RECENTLY-REMOVED-DATERANGES) (6.2.5.1)")
    skip_lines = [i for i, l in enumerate(dl) if l.startswith("#EXT-X-SKIP:")]
    if len(skip_lines) != 1:
        return errors + ["delta: not exactly one EXT-X-SKIP"]
    attrs, _ = parse_attr_list(dl[skip_lines[0]].split(":", 1)[1])
    try:
        n = int(attrs.get("SKIPPED-SEGMENTS", ""))
    except ValueError:
        return errors + ["delta: SKIPPED-SEGMENTS is no integer"]
    fhead, fbody = _split_head(fl)
    dhead, dbody = _split_head(dl)
    strip_version = [l for l in fhead if not l.startswith("#EXT-X-VERSION:")]
    if [l for l in dhead if not l.startswith("#EXT-X-VERSION:")] != strip_version:
        errors.append(f"delta: header {dhead} differs from the full playlist's {fhead} beyond "
                      f"EXT-X-VERSION (6.2.5.1: all tags not skipped MUST remain)")
    uris = [i for i, l in enumerate(fbody) if not l.startswith("#")]
    if n > len(uris):
        return errors + [f"delta: SKIPPED-SEGMENTS={n} but the full playlist has {len(uris)} "
                         f"segments"]
    kept = fbody[uris[n - 1] + 1:] if n > 0 else fbody
    if not dbody or not dbody[0].startswith("#EXT-X-SKIP:"):
        errors.append("delta: EXT-X-SKIP is not the first line after the header")
    elif dbody[1:] != kept:
        for i, (a, b) in enumerate(zip(dbody[1:], kept + [None] * len(dbody))):
            if a != b:
                errors.append(f"delta: after EXT-X-SKIP, line {i + 1} is {a!r} where the full "
                              f"playlist has {b!r} (6.2.5.1)")
                break
        else:
            errors.append("delta: lines of the full playlist missing after EXT-X-SKIP (6.2.5.1)")
    return errors


# --- multivariant playlists --------------------------------------------------

def check_master(text):
    """Violations of the spec's checkable rules in a Multivariant Playlist."""
    errors = []
    lines = _lines(text, errors)
    if not lines or lines[0][1] != "#EXTM3U" or lines[0][0] != 1:
        errors.append("line 1: the first line is not #EXTM3U (4.4.1.1)")
        if not lines:
            return errors
    counts, need, groups, variants = {}, [], {}, []
    n_version, version = None, None
    expect_uri = None
    for n, line in lines[1:]:
        tag = _tag(line)
        if tag is None:
            if line.startswith("#"):
                continue
            if expect_uri is None:
                errors.append(f"line {n}: URI line {line!r} not after EXT-X-STREAM-INF (4.4.6.2)")
            else:
                variants[-1]["uri"] = line
            expect_uri = None
            continue
        if expect_uri is not None:
            errors.append(f"line {expect_uri}: EXT-X-STREAM-INF without its URI line (4.4.6.2)")
            expect_uri = None
        name, value = tag
        counts.setdefault(name, []).append(n)
        if name in _MEDIA_ONLY:
            errors.append(f"line {n}: {name} is a Media Playlist tag (4.4.6)")
            continue
        if name not in _MASTER_ONLY and name not in _BOTH:
            errors.append(f"line {n}: unknown tag {name}")
            continue
        if name == "EXT-X-VERSION":
            n_version = n
            if value is None or not _INT.fullmatch(value):
                errors.append(f"line {n}: EXT-X-VERSION {value!r} is no integer")
            else:
                version = int(value)
        elif name == "EXT-X-DEFINE":
            need.append((8, "EXT-X-DEFINE"))
        elif name == "EXT-X-MEDIA":
            a = _attrs(n, name, value, _MASTER_ATTRS, errors)
            kind = a.get("TYPE")
            if a.get("DEFAULT") == "YES" and a.get("AUTOSELECT", "YES") != "YES":
                errors.append(f"line {n}: DEFAULT=YES with AUTOSELECT=NO (4.4.6.1)")
            if "CHANNELS" in a and kind != "AUDIO":
                errors.append(f"line {n}: CHANNELS on TYPE={kind} (4.4.6.1)")
            if "CHANNELS" in a and not re.fullmatch(r"[0-9]+(/.*)?", a["CHANNELS"]):
                errors.append(f"line {n}: CHANNELS {a['CHANNELS']!r} does not start with a "
                              f"count (4.4.6.1)")
            if kind == "CLOSED-CAPTIONS" and "URI" in a:
                errors.append(f"line {n}: URI on TYPE=CLOSED-CAPTIONS (4.4.6.1)")
            if kind == "CLOSED-CAPTIONS" and "INSTREAM-ID" not in a:
                errors.append(f"line {n}: TYPE=CLOSED-CAPTIONS without INSTREAM-ID (4.4.6.1)")
            if kind == "CLOSED-CAPTIONS" and "INSTREAM-ID" in a and \
                    not _INSTREAM_ID.fullmatch(a["INSTREAM-ID"]):
                errors.append(f"line {n}: INSTREAM-ID {a['INSTREAM-ID']!r} is none of CC1-CC4, "
                              f"SERVICE1-SERVICE63 (4.4.6.1)")
            if "FORCED" in a and kind != "SUBTITLES":
                errors.append(f"line {n}: FORCED on TYPE={kind} (4.4.6.1)")
            iid = a.get("INSTREAM-ID")
            if iid is not None:
                need.append((7, "INSTREAM-ID") if iid.startswith("SERVICE")
                            else (1, "INSTREAM-ID"))
                if kind != "CLOSED-CAPTIONS":
                    need.append((13, "INSTREAM-ID on a TYPE other than CLOSED-CAPTIONS"))
            g = groups.setdefault((kind, a.get("GROUP-ID")), {"names": {}, "default": None})
            nm = a.get("NAME")
            if nm in g["names"]:
                errors.append(f"line {n}: NAME {nm!r} twice in group {a.get('GROUP-ID')!r} "
                              f"(4.4.6.1.1)")
            g["names"].setdefault(nm, n)
            if a.get("DEFAULT") == "YES":
                if g["default"] is not None:
                    errors.append(f"line {n}: a second DEFAULT=YES in group "
                                  f"{a.get('GROUP-ID')!r} (4.4.6.1.1)")
                g["default"] = n
        elif name == "EXT-X-STREAM-INF":
            a = _attrs(n, name, value, _MASTER_ATTRS, errors)
            variants.append({"n": n, "attrs": a, "uri": None})
            expect_uri = n
            if "CODECS" not in a:
                errors.append(f"line {n}: EXT-X-STREAM-INF without CODECS (4.4.6.2: SHOULD)")
            fr = a.get("FRAME-RATE")
            if fr and _FLOAT.fullmatch(fr) and "." in fr and len(fr.split(".")[1]) > 3:
                errors.append(f"line {n}: FRAME-RATE {fr} has more than three decimals "
                              f"(4.4.6.2)")
            if "AVERAGE-BANDWIDTH" in a and "BANDWIDTH" in a and _INT.fullmatch(
                    a["AVERAGE-BANDWIDTH"]) and _INT.fullmatch(a["BANDWIDTH"]) and \
                    int(a["AVERAGE-BANDWIDTH"]) > int(a["BANDWIDTH"]):
                errors.append(f"line {n}: AVERAGE-BANDWIDTH above BANDWIDTH (peak)")
        elif name in ("EXT-X-INDEPENDENT-SEGMENTS", "EXTM3U") and value is not None:
            errors.append(f"line {n}: {name} takes no value")
        elif name == "EXT-X-START":
            _attrs(n, name, value, _MASTER_ATTRS, errors)
        if value and re.search(r"(^|[:,])REQ-[A-Z0-9-]*=", value):
            need.append((12, "a REQ- attribute"))
    if expect_uri is not None:
        errors.append(f"line {expect_uri}: EXT-X-STREAM-INF without its URI line (4.4.6.2)")
    for name in ("EXTM3U", "EXT-X-VERSION", "EXT-X-INDEPENDENT-SEGMENTS", "EXT-X-START"):
        if len(counts.get(name, [])) > 1:
            errors.append(f"line {counts[name][1]}: {name} appears more than once (4.4.2)")
    _check_version(n_version, version, need, errors)
    if not variants:
        errors.append("no EXT-X-STREAM-INF (4.1: an empty Multivariant Playlist)")
    for v in variants:
        for attr, kind in (("AUDIO", "AUDIO"), ("VIDEO", "VIDEO"), ("SUBTITLES", "SUBTITLES"),
                           ("CLOSED-CAPTIONS", "CLOSED-CAPTIONS")):
            gid = v["attrs"].get(attr)
            if gid is not None and (kind, gid) not in groups and \
                    (kind != "CLOSED-CAPTIONS" or isinstance(gid, Quoted)):
                errors.append(f"line {v['n']}: {attr}={gid!r} names no EXT-X-MEDIA "
                              f"TYPE={kind} group (4.4.6.2)")
    # CLOSED-CAPTIONS=NONE says no variant has captions: all or none say it.
    cc_none = [v["n"] for v in variants if v["attrs"].get("CLOSED-CAPTIONS") == "NONE"
               and not isinstance(v["attrs"].get("CLOSED-CAPTIONS"), Quoted)]
    if cc_none and len(cc_none) != len(variants):
        errors.append(f"line {cc_none[0]}: CLOSED-CAPTIONS=NONE but not on every "
                      f"EXT-X-STREAM-INF (4.4.6.2)")
    return errors


# --- the renditions of one stream -----------------------------------------------

def _last_position(text):
    """(msn, part index or None) of the last segment or part of a playlist,
    as LAST-MSN / LAST-PART would report it (4.4.5.4)."""
    errors = []
    lines = _lines(text, errors)
    pl = _parse_media(lines, errors)
    n_ms, ms = _single(pl, "EXT-X-MEDIA-SEQUENCE")
    skipped = 0
    if pl.skip is not None and _INT.fullmatch(pl.skip[1].get("SKIPPED-SEGMENTS", "") or ""):
        skipped = int(pl.skip[1]["SKIPPED-SEGMENTS"])
    first = int(ms) if ms is not None and _INT.fullmatch(ms) else 0
    last_msn = first + skipped + len(pl.segments) - 1
    if pl.pending:
        return last_msn + 1, len(pl.pending) - 1
    if pl.segments and pl.segments[-1]["parts"]:
        return last_msn, len(pl.segments[-1]["parts"]) - 1
    return last_msn, None


def check_renditions(playlists):
    """Violations across the Media Playlists of one stream, fetched at about
    the same moment: `playlists` maps each playlist's path relative to the
    Multivariant Playlist ("720p/index.m3u8") to its text. Checks 6.2.4 (one
    Target Duration; the same EXT-X-SERVER-CONTROL everywhere), 4.4.3.8
    (PART-HOLD-BACK at least 3 x the largest PART-TARGET) and Appendix B.1
    (each playlist reports every other one, and LAST-MSN is within one
    segment of where that rendition is)."""
    errors = []
    info = {}
    for name, text in playlists.items():
        lines = _lines(text, [])
        pl = _parse_media(lines, [])
        td = _single(pl, "EXT-X-TARGETDURATION")[1]
        sc = _single(pl, "EXT-X-SERVER-CONTROL")[1]
        pi = _single(pl, "EXT-X-PART-INF")[1]
        info[name] = {"td": td, "sc": sc if isinstance(sc, dict) else None,
                      "pt": _num(pi.get("PART-TARGET")) if isinstance(pi, dict) else None,
                      "reports": pl.reports, "pos": _last_position(text)}
    names = sorted(info)
    tds = {info[n]["td"] for n in names}
    if len(tds) > 1:
        errors.append(f"EXT-X-TARGETDURATION differs between renditions: "
                      f"{ {n: info[n]['td'] for n in names} } (6.2.4)")
    scs = {repr(sorted(info[n]["sc"].items())) if info[n]["sc"] is not None else None
           for n in names}
    if len(scs) > 1:
        errors.append(f"EXT-X-SERVER-CONTROL differs between renditions: "
                      f"{ {n: info[n]['sc'] for n in names} } (6.2.4)")
    pts = [info[n]["pt"] for n in names if info[n]["pt"] is not None]
    for n in names:
        sc = info[n]["sc"] or {}
        phb = _num(sc.get("PART-HOLD-BACK"))
        if pts and phb is not None and phb + Decimal("0.0015") < 3 * max(pts):
            errors.append(f"{n}: PART-HOLD-BACK {phb} < 3 x the largest PART-TARGET {max(pts)} "
                          f"(4.4.3.8)")
    for n in names:
        if not info[n]["reports"] and not pts:
            continue  # no LL-HLS: no reports wanted
        if not info[n]["reports"] and "#EXT-X-ENDLIST" in playlists[n]:
            continue  # an ended list names whole segments only: nothing to report
        reported = {}
        for line, attrs in info[n]["reports"]:
            uri = attrs.get("URI")
            if uri is None:
                continue
            target = posixpath.normpath(posixpath.join(posixpath.dirname(n), _path(uri)))
            reported[target] = (line, attrs)
        others = set(names) - {n}
        if set(reported) != others:
            errors.append(f"{n}: rendition reports name {sorted(reported)}, the other renditions "
                          f"are {sorted(others)} (Appendix B.1)")
        for target, (line, attrs) in reported.items():
            if target not in info or not _INT.fullmatch(attrs.get("LAST-MSN", "") or ""):
                continue
            msn = int(attrs["LAST-MSN"])
            actual = info[target]["pos"][0]
            if abs(msn - actual) > 1:
                errors.append(f"{n} line {line}: report says {target} is at segment {msn}, it is "
                              f"at {actual} (Appendix B.1: renditions in sync)")
    return errors
