// pino side of bench/log: the same one million lines (a message and three
// fields) to a file through pino.destination: sync (a write per line) or
// async (sonic-boom's buffered writes). Throughput counts until the file is
// closed. Latency is timed with process.hrtime.bigint() around each call.
//
//   node log_pino.js sync|async tput|lat FILE [LINES]
//   prints: lines_per_sec p50_ns p99_ns p999_ns
'use strict';
const path = require('path');
const pino = require(path.resolve(process.env.PEERS_DIR || '.', 'node_modules', 'pino'));

const [mode, kind, file, linesArg] = process.argv.slice(2);
const n = Number(linesArg) || 1000000;
const lat = kind === 'lat';
const dest = pino.destination({ dest: file, sync: mode === 'sync' });
const log = pino({}, dest);
const samples = lat ? new Uint32Array(n) : null;

const t0 = process.hrtime.bigint();
for (let i = 0; i < n; i++) {
  if (lat) {
    const a = process.hrtime.bigint();
    log.info({ path: '/api/users', status: 200 + (i % 5), ms: (i % 1000) * 0.25 }, 'request handled');
    samples[i] = Number(process.hrtime.bigint() - a);
  } else {
    log.info({ path: '/api/users', status: 200 + (i % 5), ms: (i % 1000) * 0.25 }, 'request handled');
  }
}
dest.on('close', () => {
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const rate = (n / secs).toFixed(0);
  if (lat) {
    samples.sort();
    console.log(`${rate} ${samples[n >> 1]} ${samples[Math.floor(n * 0.99)]} ${samples[Math.floor(n * 0.999)]}`);
  } else {
    console.log(`${rate} - - -`);
  }
});
dest.end();
