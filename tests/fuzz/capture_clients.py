#!/usr/bin/env python3
"""Seeds the handshake and chunk corpora with what real publishers send.

Starts a sluice (SLUICE_BIN, default build/sluice), puts a recording TCP
proxy in front of it, lets ffmpeg, GStreamer rtmp2sink and rtmpsink
(librtmp) publish a short clip through the proxy, and writes each client's
first bytes as corpus entries:
  corpus/rtmp_handshake/capture_CLIENT  C0+C1+C2 (after the split-seed byte)
  corpus/rtmp_chunk/capture_CLIENT      the chunk stream after the handshake
                                        (after the split-seed and chunk-size bytes)
Re-run by hand when a client changes; the files are kept in the tree."""
import os
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from harness import Sluice, free_port  # noqa: E402

CHUNK_BYTES = 12000  # the commands, metadata, configs and the first frames


def proxy(listen_port, target_port, record):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen_port))
    srv.listen(1)
    c, _ = srv.accept()
    s = socket.create_connection(("127.0.0.1", target_port))

    def pump(a, b, rec):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                if rec is not None:
                    rec.extend(d)
                b.sendall(d)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    t1 = threading.Thread(target=pump, args=(c, s, record))
    t2 = threading.Thread(target=pump, args=(s, c, None))
    t1.start()
    t2.start()
    t1.join()
    t2.join()
    srv.close()


CLIENTS = {
    "ffmpeg": lambda url: ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
                           "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
                           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                           "-t", "1", "-c:v", "libx264", "-preset", "ultrafast",
                           "-c:a", "aac", "-f", "flv", url],
    "gst_rtmp2sink": lambda url: ["gst-launch-1.0", "-q", "-e", "videotestsrc",
                                  "num-buffers=25", "!", "x264enc", "speed-preset=ultrafast",
                                  "!", "h264parse", "!", "flvmux", "streamable=true", "!",
                                  "rtmp2sink", f"location={url}"],
    "gst_rtmpsink": lambda url: ["gst-launch-1.0", "-q", "-e", "videotestsrc",
                                 "num-buffers=25", "!", "x264enc", "speed-preset=ultrafast",
                                 "!", "h264parse", "!", "flvmux", "streamable=true", "!",
                                 "rtmpsink", f'location="{url} live=1"'],
}


def main():
    sl = Sluice()
    try:
        for name, cmd in CLIENTS.items():
            port = free_port()
            rec = bytearray()
            t = threading.Thread(target=proxy, args=(port, sl.rtmp_port, rec))
            t.start()
            time.sleep(0.2)
            subprocess.run(cmd(f"rtmp://127.0.0.1:{port}/live/demo-secret-key"),
                           capture_output=True, timeout=60)
            t.join(10)
            hs, rest = bytes(rec[:3073]), bytes(rec[3073:3073 + CHUNK_BYTES])
            with open(os.path.join(HERE, "corpus", "rtmp_handshake", "capture_" + name),
                      "wb") as f:
                f.write(b"\x07" + hs)
            with open(os.path.join(HERE, "corpus", "rtmp_chunk", "capture_" + name), "wb") as f:
                f.write(b"\x05\x00" + rest)
            print(f"{name}: {len(rec)} bytes sent, kept {len(hs)} + {len(rest)}", file=sys.stderr)
    finally:
        sl.stop()


if __name__ == "__main__":
    main()
