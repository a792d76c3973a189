'use strict';
// The Node.js reference for benchmarks/bench_latency.py: lateness of setTimeout(cb, 1).
//   node benchmarks/node/latency.js idle|load N   ->   {"metrics": {"p50 ms": ..., "p99 ms": ...}}
// N timers one after another (each set when the previous fired); lateness is the time past
// set time + 1 ms. "load": 100 setImmediate chains spin meanwhile (Node's analogue of
// 100 tasks looping on asyncio.sleep(0)).
const { performance } = require('perf_hooks');

const [mode, sizeArg] = process.argv.slice(2);
const n = Number(sizeArg);
if ((mode !== 'idle' && mode !== 'load') || !(n > 0)) {
  console.error('usage: node latency.js idle|load N');
  process.exit(2);
}

let spinning = mode === 'load';
if (spinning) {
  const spin = () => {
    if (spinning) setImmediate(spin);
  };
  for (let i = 0; i < 100; i++) setImmediate(spin);
}

const lateness = [];
const percentile = (sorted, fraction) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(fraction * sorted.length + 0.5) - 1))];

function sample() {
  const start = performance.now();
  setTimeout(() => {
    lateness.push(performance.now() - start - 1);
    if (lateness.length < n) {
      sample();
      return;
    }
    spinning = false;
    lateness.sort((a, b) => a - b);
    console.log(
      JSON.stringify({ metrics: { 'p50 ms': percentile(lateness, 0.5), 'p99 ms': percentile(lateness, 0.99) } }),
    );
  }, 1);
}
setTimeout(sample, 10); // let the spinners start
