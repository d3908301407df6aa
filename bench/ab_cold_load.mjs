// Two builds of the page against each other on cold loads (not a figure:
// bench_dashboard.mjs measures; this says whether a change to the page
// helped, the machine's state being the same for both). One daemon per
// build (serve --web DIR), the builds' pages loaded alternately from new
// profiles; the page's own mark of its complete map is printed per build.
// The first round warms the daemons' tile caches and is not counted.
//   node bench/ab_cold_load.mjs ROUNDS DIST_A DIST_B [...]
// e.g. build the old page with `node web/build.mjs`, copy web/dist to
// /tmp/a, build the new one, copy it to /tmp/b. Run from the repository
// root after scripts/setup.sh.
import { browser, Daemon, until } from '../web/tests/harness.mjs';
const N = +(process.argv[2] || 6);
const dirs = process.argv.slice(3);
const ds = [];
for (const dir of dirs) ds.push(await Daemon.start([['bench', 'operator']], ['--web', dir]));
const b = await browser();
const marks = dirs.map(() => []);
try {
  for (let run = 0; run <= N; run++) {
    for (let i = 0; i < ds.length; i++) {
      const d = ds[i];
      const ctx = await b.newContext({ viewport: { width: 1920, height: 1080 } });
      await ctx.addInitScript((t) => localStorage.setItem('gridcc.token', t), d.tokens.bench);
      const page = await ctx.newPage();
      await page.goto(d.url + '/');
      await until(page, () => performance.getEntriesByName('gridcc:map-complete').length > 0, null, { timeout: 60000 });
      const m = await page.evaluate(() => performance.getEntriesByName('gridcc:map-complete')[0].startTime);
      if (run) marks[i].push(Math.round(m));
      await ctx.close();
    }
  }
  for (let i = 0; i < ds.length; i++) {
    const s = [...marks[i]].sort((a, b) => a - b);
    console.log(`${dirs[i]}: median ${s[s.length >> 1]} ms  [${marks[i].join(' ')}]`);
  }
} finally { await b.close(); for (const d of ds) await d.stop(); }
