// N viewers of /video/{id}: one websocket each, reading everything as fast as
// it comes, counting init segments, fragments and bytes. Prints one JSON line
// a second: {"viewers","with_init","fragments","bytes","skips","closed","at"}.
//   node bench/video_viewers.mjs URL TOKEN ID...
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../tests/node/package.json'));
const WebSocket = require('ws');

const [base, token, ...ids] = process.argv.slice(2);
const st = { viewers: ids.length, with_init: 0, fragments: 0, bytes: 0, skips: 0, closed: 0 };
// one after another, each once it is open: a hundred handshakes at once from
// one address are more than the daemon lets one client have pending (64)
for (const id of ids) {
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/video/${encodeURIComponent(id)}?access_token=${encodeURIComponent(token)}`);
  let init = false;
  ws.on('message', (data, binary) => {
    if (!binary) {
      const m = JSON.parse(data.toString());
      if (m.type === 'skip') st.skips += m.dropped || 1;
      return;
    }
    if (!init) { init = true; st.with_init++; return; }
    st.fragments++;
    st.bytes += data.length;
  });
  ws.on('close', () => { st.closed++; });
  await new Promise((resolve) => { ws.once('open', resolve); ws.once('error', resolve); });
}
setInterval(() => process.stdout.write(JSON.stringify({ ...st, at: Date.now() }) + '\n'), 1000);
