// A TCP relay that stands for a slow access link between one browser page
// and the origin: what the origin sends goes through one queue and one
// token bucket shared by all of that page's connections (a bottleneck
// link, first come first served), at a rate that can change while it runs
// (0: no limit). What the page sends goes through unchanged. It exists to
// check DevTools' throttling (Network.emulateNetworkConditions), which
// shapes each response inside Chromium, against a link that delays bytes
// on the wire, as a phone's or a congested wifi's does.
import net from 'node:net';

const BURST = 16 * 1024;       // bytes the bucket holds: a few packets
const SLICE = 4 * 1024;        // the most written at once at a capped rate
const HIGH_WATER = 256 * 1024; // queued bytes per connection before its upstream is paused

export async function startRelay(host, port) {
  const relay = { bytesPerS: 0, port: 0, close: null };
  const queue = []; // { conn, chunk } in arrival order
  let tokens = BURST;
  let last = Date.now();
  let timer = null;
  const conns = new Set();

  const pump = () => {
    timer = null;
    const now = Date.now();
    if (relay.bytesPerS) tokens = Math.min(BURST, tokens + ((now - last) / 1000) * relay.bytesPerS);
    last = now;
    while (queue.length) {
      const q = queue[0];
      if (q.conn.down.destroyed) {
        queue.shift();
        continue;
      }
      let n = q.chunk.length;
      if (relay.bytesPerS) {
        if (tokens < 1) break;
        n = Math.min(n, SLICE, Math.floor(tokens));
        tokens -= n;
      }
      q.conn.down.write(q.chunk.subarray(0, n));
      q.conn.queued -= n;
      if (n === q.chunk.length) queue.shift();
      else q.chunk = q.chunk.subarray(n);
      if (q.conn.queued < HIGH_WATER / 2 && q.conn.up.isPaused()) q.conn.up.resume();
      if (q.conn.queued === 0 && q.conn.upEnded) q.conn.down.end();
    }
    if (queue.length) timer = setTimeout(pump, Math.max(1, Math.ceil((SLICE / relay.bytesPerS) * 1000)));
  };
  const kick = () => { if (!timer) timer = setTimeout(pump, 0); };

  const server = net.createServer((down) => {
    const up = net.connect(port, host);
    const conn = { down, up, queued: 0, upEnded: false };
    conns.add(conn);
    down.pipe(up);
    up.on('data', (chunk) => {
      queue.push({ conn, chunk });
      conn.queued += chunk.length;
      if (conn.queued > HIGH_WATER) up.pause();
      kick();
    });
    up.on('end', () => {
      conn.upEnded = true;
      if (conn.queued === 0) down.end();
    });
    const drop = () => {
      conns.delete(conn);
      up.destroy();
      down.destroy();
    };
    up.on('error', drop);
    down.on('error', drop);
    down.on('close', drop);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  relay.port = server.address().port;
  relay.setKbps = (kbps) => {
    relay.bytesPerS = kbps ? (kbps * 1000) / 8 : 0;
    tokens = Math.min(tokens, BURST);
    last = Date.now();
    kick();
  };
  relay.close = () => new Promise((resolve) => {
    for (const c of conns) { c.up.destroy(); c.down.destroy(); }
    if (timer) clearTimeout(timer);
    server.close(() => resolve());
  });
  return relay;
}
