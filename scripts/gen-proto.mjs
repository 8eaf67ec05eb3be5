#!/usr/bin/env node
// Generates the protobufjs static code for proto/ into gen/ (and dist/gen/ for the compiled build).
// Deterministic: same .proto files in, same bytes out. Run by `npm run build` (and so by `npm ci`).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, copyFileSync, writeFileSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const protoDir = join(root, 'proto');
const files = readdirSync(join(protoDir, 'revokescope/v1')).filter((f) => f.endsWith('.proto')).sort()
  .map((f) => join(protoDir, 'revokescope/v1', f));
const out = join(root, 'gen');
mkdirSync(out, { recursive: true });
const bin = join(root, 'node_modules/protobufjs-cli/bin');
const js = join(out, 'proto.js');
// --force-number: 64-bit fields decode to JS numbers (exact below 2^53 ns ≈ 104 days of uptime).
execFileSync(process.execPath, [join(bin, 'pbjs'), '-t', 'static-module', '-w', 'es6', '--force-number',
  '-p', protoDir, '-o', js, ...files], { cwd: protoDir, stdio: 'inherit' });
// protobufjs/minimal is CommonJS: import its module.exports by explicit file name. Without util.Long the reader
// yields plain numbers for 64-bit fields (--force-number alone does not change the decoder when the optional
// 'long' package is installed). protobufjs 7 rather than 8: 8's decoders set the oneof `body` through a setter
// that deletes the sibling fields, which decodes our batches 2.5-3x slower (bench in BENCHMARKS.md).
const src = readFileSync(js, 'utf8').replace(/^import (\* as )?\$protobuf from "protobufjs\/minimal(\.js)?";$/m,
  'import $protobuf from "protobufjs/minimal.js";\n$protobuf.util.Long = undefined;\n$protobuf.configure();');
writeFileSync(js, src);
execFileSync(process.execPath, [join(bin, 'pbts'), '--no-comments', '-o', join(out, 'proto.d.ts'), js], { stdio: 'inherit' });
const dist = join(root, 'dist/gen');
mkdirSync(dist, { recursive: true });
for (const f of ['proto.js', 'proto.d.ts']) copyFileSync(join(out, f), join(dist, f));
console.log(`generated gen/proto.js from ${files.length} .proto files`);
