// Where a cold load of the wall spends its time, from a Chrome trace (not a
// figure: bench_dashboard.mjs measures; this says why). A new profile opens
// the wall with a token, as bench_dashboard does; the trace runs until the
// page has marked its complete map and a second more. Printed:
//  - the page's mark (gridcc:map-complete) and when the wall was ready;
//  - each task over 50 ms on the page's thread, from the navigation, with
//    what it did most (a WebGL read-back waiting for the GPU process shows as
//    GLES2::ReadPixels and CommandBufferHelper::Finish);
//  - the GPU process's time executing the page's WebGL (software GL here:
//    SwiftShader, on the same 2 cores), and the page's worker threads' time.
// The first load finds the daemon's tile cache cold; the second is printed.
//   node bench/trace_cold_load.mjs
// Run from the repository root after scripts/setup.sh.
import { browser, Daemon, until } from '../web/tests/harness.mjs';

const d = await Daemon.start([['bench', 'operator']]);
const b = await browser();
const ms = (us) => Math.round(us / 1000);
try {
  for (let run = 0; run < 2; run++) {
    const ctx = await b.newContext({ viewport: { width: 1920, height: 1080 } });
    await ctx.addInitScript((t) => localStorage.setItem('gridcc.token', t), d.tokens.bench);
    const page = await ctx.newPage();
    const cdp = await ctx.newCDPSession(page);
    const events = [];
    cdp.on('Tracing.dataCollected', (e) => events.push(...e.value));
    const complete = new Promise((resolve) => cdp.once('Tracing.tracingComplete', resolve));
    await cdp.send('Tracing.start', {
      categories: 'devtools.timeline,disabled-by-default-devtools.timeline,blink.user_timing,gpu',
      transferMode: 'ReportEvents',
    });
    await page.goto(d.url + '/');
    await until(page, () => performance.getEntriesByName('gridcc:map-complete').length > 0, null, { timeout: 60000 });
    await page.waitForTimeout(1000);
    const markAt = await page.evaluate(() => performance.getEntriesByName('gridcc:map-complete')[0].startTime);
    const marks = `gridcc:map-complete ${Math.round(markAt)} ms`;
    await cdp.send('Tracing.end');
    await complete;
    await ctx.close();
    if (run === 0) continue;

    const thread = (name) => events.filter((e) => e.name === 'thread_name' && e.args?.name === name);
    const [main] = thread('CrRendererMain');
    const on = (t) => (e) => e.pid === t.pid && e.tid === t.tid && e.ph === 'X';
    // the page's time origin, from its mark's place in the trace
    const mark = events.find((e) => e.name === 'gridcc:map-complete' && e.pid === main.pid);
    const t0 = mark.ts - markAt * 1000;
    console.log(`marks: ${marks}`);
    const mine = events.filter(on(main)).filter((e) => e.ts >= t0);
    for (const t of mine.filter((e) => e.name === 'RunTask' && e.dur > 50000)) {
      const by = new Map();
      for (const k of mine) {
        if (k === t || k.ts < t.ts || k.ts + (k.dur || 0) > t.ts + t.dur) continue;
        by.set(k.name, (by.get(k.name) || 0) + (k.dur || 0));
      }
      const top = [...by.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([n, v]) => `${n} ${ms(v)}`);
      console.log(`  task at ${ms(t.ts - t0)} ms, ${ms(t.dur)} ms: ${top.join(', ')}`);
    }
    const sum = (ths, name) => ths.reduce((a, t) => a + events.filter(on(t))
      .filter((e) => e.ts >= t0 && (!name || e.name === name) && (name || e.name === 'RunTask'))
      .reduce((x, e) => x + (e.dur || 0), 0), 0);
    console.log(`GPU process executing WebGL: ${ms(sum(thread('CrGpuMain'), 'WebGL'))} ms; ` +
      `the page's workers (tiles): ${ms(sum(thread('DedicatedWorker thread')))} ms of tasks`);
  }
} finally {
  await b.close();
  await d.stop();
}
