// CPU-time A/B of the correlator between builds on the same trace, in one process with interleaved rounds (a loaded
// or noisy machine skews wall-clock rates, and runs minutes apart see different neighbours):
//   node bench/cpu-ab.mjs TRACE.pb DIST_A [DIST_B ...]   (DIST: a build's dist/ directory; TRACE: revokescope simulate --out)
// Prints, per build, the best round of each measure: pre-decoded, from bytes, protobufjs decode-only (M events/s of
// CPU time) and from-bytes ÷ decode-only.
import { readFileSync } from 'node:fs';
const [trace, ...dists] = process.argv.slice(2);
const rounds = Number(process.env.ROUNDS ?? 9);
const buf = readFileSync(trace);
const frames = [];
for (let p = 0; p < buf.length;) { let len = 0, shift = 0, b; do { b = buf[p++]; len += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80); frames.push(buf.subarray(p, p + len)); p += len; }
const cpu = (f) => { const a = process.cpuUsage(); f(); const d = process.cpuUsage(a); return (d.user + d.system) / 1000; };
const builds = [];
for (const dist of dists) {
  const { Correlator } = await import(`${dist}/services/core/correlator/index.js`);
  const { v1 } = await import(`${dist}/services/core/model.js`);
  builds.push({ dist, Correlator, v1, fb: Infinity, dd: Infinity, pd: Infinity });
}
let events = 0; for (const f of frames) events += builds[0].v1.EventBatch.decode(f).events.length;
const fromBytes = (B) => () => { const c = new B.Correlator(); for (const f of frames) { c.ingestBytes(f); c.takeEpisodes(); c.takeFindings(); } c.finish(); };
const decodeOnly = (B) => () => { for (const f of frames) B.v1.EventBatch.decode(f); };
for (const B of builds) { fromBytes(B)(); decodeOnly(B)(); }
for (let r = 0; r < rounds; r++) for (const B of builds) { B.dd = Math.min(B.dd, cpu(decodeOnly(B))); B.fb = Math.min(B.fb, cpu(fromBytes(B))); }
for (const B of builds) B.decoded = frames.map((f) => B.v1.EventBatch.decode(f));
const pre = (B) => () => { const c = new B.Correlator(); for (const b of B.decoded) { c.ingest(b); c.takeEpisodes(); c.takeFindings(); } c.finish(); };
for (const B of builds) pre(B)();
for (let r = 0; r < rounds; r++) for (const B of builds) B.pd = Math.min(B.pd, cpu(pre(B)));
for (const B of builds) {
  console.log(JSON.stringify({ dist: B.dist, frames: frames.length, events, preMevS: +(events / B.pd / 1000).toFixed(2),
    fromBytesMevS: +(events / B.fb / 1000).toFixed(2), decodeMevS: +(events / B.dd / 1000).toFixed(2), ratio: +(B.dd / B.fb).toFixed(2) }));
}
