'use strict';
// The Node.js reference for benchmarks/bench_node.py: the same scenarios, timed the same way.
//   node benchmarks/node/node_api.js SCENARIO N   ->   {"metrics": {"us/callback": ...}}
// A tenth-size warm-up runs first, then the measured run; both inside one process.
const { performance } = require('perf_hooks');

const scenarios = {
  // n timers of 1 ms scheduled in one go; until the last one fired.
  set_timeout_batch(n, done) {
    let count = 0;
    const start = performance.now();
    const callback = () => {
      if (++count === n) done(performance.now() - start);
    };
    for (let i = 0; i < n; i++) setTimeout(callback, 1);
  },
  // n immediates scheduled in one go: one check phase.
  set_immediate_batch(n, done) {
    let count = 0;
    const start = performance.now();
    const callback = () => {
      if (++count === n) done(performance.now() - start);
    };
    for (let i = 0; i < n; i++) setImmediate(callback);
  },
  // Each immediate schedules the next: one loop iteration per callback.
  set_immediate_chain(n, done) {
    let count = 0;
    const start = performance.now();
    const callback = () => {
      if (++count === n) done(performance.now() - start);
      else setImmediate(callback);
    };
    setImmediate(callback);
  },
  // Each tick schedules the next: one drain of the nextTick queue.
  next_tick_chain(n, done) {
    let count = 0;
    const start = performance.now();
    const callback = () => {
      if (++count === n) done(performance.now() - start);
      else process.nextTick(callback);
    };
    process.nextTick(callback);
  },
  // Each microtask queues the next: one drain of the microtask queue.
  queue_microtask_chain(n, done) {
    let count = 0;
    const start = performance.now();
    const callback = () => {
      if (++count === n) done(performance.now() - start);
      else queueMicrotask(callback);
    };
    queueMicrotask(callback);
  },
};

const [name, sizeArg] = process.argv.slice(2);
const scenario = scenarios[name];
const n = Number(sizeArg);
if (!scenario || !(n > 0)) {
  console.error(`usage: node node_api.js {${Object.keys(scenarios).join('|')}} N`);
  process.exit(2);
}
// Start from a macrotask, as the Python side starts from phaseloop.node.run's main script.
scenario(Math.max(1, Math.floor(n / 10)), () => {
  setImmediate(() => {
    scenario(n, (ms) => {
      console.log(JSON.stringify({ metrics: { 'us/callback': (ms * 1000) / n } }));
    });
  });
});
