// CPU-time A/B of the correlator between two builds on the same trace (a loaded machine skews wall-clock rates):
//   node bench/cpu-ab.mjs DIST TRACE.pb   (DIST: a build's dist/ directory; TRACE: revokescope simulate --out)
import { readFileSync } from 'node:fs';
const [dist, trace] = process.argv.slice(2);
const { Correlator } = await import(`${dist}/services/core/correlator/index.js`);
const { v1 } = await import(`${dist}/services/core/model.js`);
const buf = readFileSync(trace);
const frames = [];
for (let p = 0; p < buf.length;) { let len = 0, shift = 0, b; do { b = buf[p++]; len += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80); frames.push(buf.subarray(p, p + len)); p += len; }
const cpu = (f) => { const a = process.cpuUsage(); f(); const d = process.cpuUsage(a); return (d.user + d.system) / 1000; };
const fromBytes = () => { const c = new Correlator(); for (const f of frames) { c.ingestBytes(f); c.takeEpisodes(); c.takeFindings(); } c.finish(); };
let events = 0; for (const f of frames) events += v1.EventBatch.decode(f).events.length;
const dec = () => { for (const f of frames) v1.EventBatch.decode(f); };
fromBytes(); dec();
let fb = Infinity, dd = Infinity;
for (let r = 0; r < 7; r++) { dd = Math.min(dd, cpu(dec)); fb = Math.min(fb, cpu(fromBytes)); }
const decoded = frames.map((f) => v1.EventBatch.decode(f));
const pre = () => { const c = new Correlator(); for (const b of decoded) { c.ingest(b); c.takeEpisodes(); c.takeFindings(); } c.finish(); };
pre(); let pd = Infinity; for (let r = 0; r < 7; r++) pd = Math.min(pd, cpu(pre));
console.log(JSON.stringify({ dist, frames: frames.length, events, preMevS: +(events / pd / 1000).toFixed(2), fromBytesMevS: +(events / fb / 1000).toFixed(2), decodeMevS: +(events / dd / 1000).toFixed(2), ratio: +(dd / fb).toFixed(2) }));
