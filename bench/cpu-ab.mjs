// A/B of the correlator between builds on the same trace, in one process (a loaded or noisy machine skews rates, and
// runs minutes apart see different neighbours):
//   node bench/cpu-ab.mjs TRACE.pb DIST_A [DIST_B ...]   (DIST: a build's dist/ directory; TRACE: revokescope simulate --out)
// From bytes (Correlator.ingestBytes) of every build and protobufjs' decode-only (the first build's) run in interleaved
// rounds, the order of the builds alternating, so a noisy stretch hits all of them; then pre-decoded, one build at a
// time (its own decoded copy of the trace, dropped before the next). CPU time (process.cpuUsage) per round; the
// lowest round and the median of each are printed, and from-bytes ÷ decode-only on the lowest rounds. ROUNDS=n (default 11).
import { readFileSync } from 'node:fs';

const [trace, ...dists] = process.argv.slice(2);
if (!trace || dists.length === 0) throw new Error('usage: node bench/cpu-ab.mjs TRACE.pb DIST [DIST ...]');
const rounds = Number(process.env.ROUNDS ?? 11);
const buf = readFileSync(trace);
const frames = [];
for (let p = 0; p < buf.length;) {
  let len = 0, shift = 0, b;
  do { b = buf[p++]; len += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80);
  frames.push(buf.subarray(p, p + len));
  p += len;
}
const cpuMs = (f) => { const a = process.cpuUsage(); f(); const d = process.cpuUsage(a); return (d.user + d.system) / 1000; };
const stats = (xs) => { const s = [...xs].sort((a, b) => a - b); return { min: s[0], median: s[Math.floor(s.length / 2)] }; };

const builds = [];
for (const dist of dists) {
  const { Correlator } = await import(`${dist}/services/core/correlator/index.js`);
  const { v1 } = await import(`${dist}/services/core/model.js`);
  builds.push({ dist, Correlator, v1, fromBytes: [], preDecoded: [] });
}
const { v1 } = builds[0];
let events = 0;
for (const f of frames) events += v1.EventBatch.decode(f).events.length;

const fromBytes = (B) => () => {
  const c = new B.Correlator();
  for (const f of frames) { c.ingestBytes(f); c.takeEpisodes(); c.takeFindings(); }
  c.finish();
};
const decodeOnly = () => { for (const f of frames) v1.EventBatch.decode(f); };
const decode = [];
for (const B of builds) fromBytes(B)(); // warm up
decodeOnly();
for (let r = 0; r < rounds; r++) {
  decode.push(cpuMs(decodeOnly));
  for (const B of r % 2 ? [...builds].reverse() : builds) B.fromBytes.push(cpuMs(fromBytes(B)));
}
for (const B of builds) {
  const decoded = frames.map((f) => B.v1.EventBatch.decode(f));
  const pre = () => { const c = new B.Correlator(); for (const b of decoded) { c.ingest(b); c.takeEpisodes(); c.takeFindings(); } c.finish(); };
  pre();
  for (let r = 0; r < rounds; r++) B.preDecoded.push(cpuMs(pre));
}
const d = stats(decode);
const rate = (ms) => +(events / ms / 1000).toFixed(2);
console.log(JSON.stringify({ trace, frames: frames.length, events, rounds, decodeOnlyMs: d, decodeOnlyMevS: rate(d.min) }));
for (const B of builds) {
  const fb = stats(B.fromBytes), pd = stats(B.preDecoded);
  console.log(JSON.stringify({ dist: B.dist, fromBytesMs: fb, fromBytesMevS: rate(fb.min), preDecodedMs: pd, preDecodedMevS: rate(pd.min),
    fromBytesOverDecodeOnly: +(d.min / fb.min).toFixed(2) }));
}
