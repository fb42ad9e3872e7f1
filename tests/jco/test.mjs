// The scoring component in Node.js through jco: the same WIT contract as every other host.
// Usage: node test.mjs <transpiled dir> <repository root>
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join, resolve } from 'node:path';

const [outDir, root] = process.argv.slice(2).map((p) => resolve(p));
const { scorer, engine } = await import(pathToFileURL(join(outDir, 'edgescore_scoring.js')).href);
const read = (p) => readFileSync(join(root, p));

// Scores of the committed model against the outputs of onnx's reference evaluator, to the same
// 1e-5 the native core and the wasmtime host are held to (core/tests/model.rs).
const onnx = new Uint8Array(read('models/seed-mlp/2/model.onnx'));
const reference = JSON.parse(read('models/seed-mlp/2/reference.json'));
const model = scorer.Model.load(onnx);
const info = model.info();
assert.equal(info.inputWidth, 3);
assert.equal(info.sha256, JSON.parse(read('models/seed-mlp/2/manifest.json')).sha256);
const scores = model.score(new Float32Array(reference.inputs.flat()));
assert.equal(scores.length, reference.outputs.length);
reference.outputs.forEach((expected, i) => {
  const want = Array.isArray(expected) ? expected[0] : expected;
  assert.ok(Math.abs(scores[i] - want) <= 1e-5 * Math.max(1, Math.abs(want)), `row ${i}: ${scores[i]} vs ${want}`);
});

// Typed errors surface as exceptions carrying the WIT variant.
assert.throws(() => model.score(new Float32Array([1, 2])), (e) => e.payload?.tag === 'wrong-width');
assert.throws(() => scorer.Model.load(new Uint8Array([1, 2, 3])), (e) => e.payload?.tag === 'invalid');

// The engine: ingest, the exact median, lateness, stats.
const now = 1_700_000_000;
const rows = [[0.1, 0.2, 0.3], [0.9, 0.1, 0.5], [0.4, 0.4, 0.4]];
const eng = engine.Engine.create({ windowSeconds: 300, maxClockSkewSeconds: 300 }, scorer.Model.load(onnx));
const report = eng.ingest(rows.map((f, i) => ({ userId: 'user-7', timestamp: now - i, features: new Float32Array(f) })), now);
assert.equal(report.accepted, 3);
assert.deepEqual(report.rejections, []);
const own = Array.from(model.score(new Float32Array(rows.flat()))).sort((a, b) => a - b);
const median = eng.median('user-7');
assert.equal(median.count, 3);
assert.equal(median.median, own[1]);
assert.equal(eng.median('nobody').median, undefined);
const late = eng.ingest([{ userId: 'u', timestamp: now - 1000, features: new Float32Array([1, 2, 3]) }], now);
assert.equal(late.accepted, 0);
assert.equal(late.rejections[0].reason, 'late');
const stats = eng.stats();
assert.equal(stats.eventsAccepted, 3n);
assert.equal(stats.usersTracked, 1n);
console.log(`jco: ${scores.length} scores match the reference, engine median ${median.median} over ${median.count} events`);
