// graphile-worker through its public API (makeWorkerUtils().addJob / addJobs, run()):
// run by node with NODE_PATH at the throwaway node_modules. The calling convention is
// the Python drivers' (see peer_common.py):
//   node graphile_peer.cjs --phase enqueue|run --dsn URL --params JSON
// and one JSON object on stdout: {"version": ..., "metrics": {...}}.
"use strict";

const { spawn } = require("node:child_process");
const { parseArgs } = require("node:util");
const pg = require("pg");
const { Logger, makeWorkerUtils, run, runMigrations } = require("graphile-worker");
const VERSION = require("graphile-worker/package.json").version;

const STATS_SETTLE_MS = 1500;
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms, CLOCK_MONOTONIC
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// Errors only: the default logger prints a line per job, which is not what we measure.
const logger = new Logger(() => (level, message) => {
  if (level === "error") process.stderr.write(`${message}\n`);
});

function poolFor(dsn, max) {
  // postgresql://USER[:]@/DATABASE?host=SOCKET_DIR (the embedded server's form)
  const m = /^postgres(?:ql)?:\/\/([^:@/]*)[^@/]*@\/([^?]+)\?host=(.+)$/.exec(dsn);
  if (!m) throw new Error(`unexpected DSN ${dsn}`);
  const pool = new pg.Pool({
    user: m[1],
    database: decodeURIComponent(m[2]),
    host: decodeURIComponent(m[3]),
    max,
  });
  pool.on("error", (error) => process.stderr.write(`pool: ${error}\n`));
  return pool;
}

function percentile(values, p) {
  const ordered = [...values].sort((a, b) => a - b);
  const i = Math.min(ordered.length - 1, Math.max(0, Math.round((p / 100) * (ordered.length - 1))));
  return ordered[i];
}

async function timedLoop(call, seconds, inFlight) {
  let done = 0;
  const deadline = now() + seconds * 1e3;
  const started = now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (now() < deadline) {
        await call();
        done += 1;
      }
    }),
  );
  return done / ((now() - started) / 1e3);
}

async function timedBatches(call, size, batches) {
  await call(); // warm-up
  const started = now();
  for (let i = 0; i < batches; i += 1) await call();
  return (size * batches) / ((now() - started) / 1e3);
}

function spawnTrue() {
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/true", [], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.resume();
    child.stderr.resume();
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
  });
}

function spawnSignal() {
  // `sh -c 'printf x'`: the time its first byte arrives, i.e. the process is running.
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/sh", ["-c", "printf x"], { stdio: ["ignore", "pipe", "ignore"] });
    let seen = null;
    child.stdout.once("data", () => {
      seen = now();
    });
    child.stdout.resume();
    child.on("error", reject);
    child.on("close", () => (seen === null ? reject(new Error("no output")) : resolve(seen)));
  });
}

async function until(check, timeoutMs) {
  const deadline = now() + timeoutMs;
  while (!(await check())) {
    if (now() > deadline) throw new Error("the peer did not finish in time");
    await sleep(10);
  }
}

async function enqueuePhase(dsn, p) {
  const pgPool = poolFor(dsn, p.pool);
  try {
    await runMigrations({ pgPool, logger });
    const utils = await makeWorkerUtils({ pgPool, logger });
    // Nobody runs "bench": the jobs only pile up, as Batchyard's go to a queue no
    // worker serves.
    const one = () => utils.addJob("bench", {});
    const specs = Array.from({ length: p.batch }, () => ({ identifier: "bench", payload: {} }));
    const many = () => utils.addJobs(specs);
    await timedLoop(one, 1, p.in_flight); // warm-up
    const metrics = {
      single_50: await timedLoop(one, p.seconds, p.in_flight),
      single_1: await timedLoop(one, p.seconds, 1),
      batch: await timedBatches(many, p.batch, p.batches),
    };
    await utils.release();
    return metrics;
  } finally {
    await pgPool.end();
  }
}

async function runPhase(dsn, p) {
  const pgPool = poolFor(dsn, p.pool);
  try {
    await runMigrations({ pgPool, logger });
    const utils = await makeWorkerUtils({ pgPool, logger });
    const counter = { count: 0, target: 0, reached: null, resolve: null };
    const expect = (target) => {
      counter.count = 0;
      counter.target = target;
      counter.reached = new Promise((resolve) => {
        counter.resolve = resolve;
      });
    };
    const add = () => {
      counter.count += 1;
      if (counter.count >= counter.target) counter.resolve();
    };
    let probed = null;
    const taskList = {
      noop: async () => add(),
      spawn: async () => {
        await spawnTrue();
        add();
      },
      probe: async () => {
        const entered = now();
        const seen = await spawnSignal();
        probed([entered, seen]);
      },
    };
    const count = async (sql) => Number((await pgPool.query(sql)).rows[0].n);
    const settled = async () =>
      (await count("SELECT count(*) AS n FROM graphile_worker._private_jobs")) === 0;
    const commits = async () => {
      await sleep(STATS_SETTLE_MS);
      return count(
        "SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()",
      );
    };
    const e2e = async (identifier, total) => {
      expect(total);
      const started = now();
      for (let first = 0; first < total; first += 1000) {
        const n = Math.min(1000, total - first);
        await utils.addJobs(Array.from({ length: n }, () => ({ identifier, payload: {} })));
      }
      await counter.reached;
      await until(settled, 60000);
      return total / ((now() - started) / 1e3);
    };

    const runner = await run({
      pgPool,
      logger,
      concurrency: p.concurrency,
      noHandleSignals: true,
      taskList,
    });
    await sleep(500);
    const handlerMs = [];
    const processMs = [];
    for (let i = 0; i < p.latency_warmup + p.latency_runs; i += 1) {
      const got = new Promise((resolve) => {
        probed = resolve;
      });
      const started = now();
      await utils.addJob("probe", {});
      const [entered, seen] = await got;
      if (i >= p.latency_warmup) {
        handlerMs.push(entered - started);
        processMs.push(seen - started);
      }
      await sleep(20); // idle between jobs
    }
    await until(settled, 60000);
    const metrics = {
      lat_handler_p50: percentile(handlerMs, 50),
      lat_handler_p99: percentile(handlerMs, 99),
      lat_process_p50: percentile(processMs, 50),
      lat_process_p99: percentile(processMs, 99),
      e2e_noop: await e2e("noop", p.e2e_jobs),
    };
    const before = await commits();
    metrics.e2e_spawn = await e2e("spawn", p.e2e_jobs);
    metrics.commits_spawn = ((await commits()) - before) / p.e2e_jobs;
    await runner.stop();
    await utils.release();
    return metrics;
  } finally {
    await pgPool.end();
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      phase: { type: "string" },
      dsn: { type: "string" },
      params: { type: "string" },
    },
  });
  const p = JSON.parse(values.params);
  const measure = values.phase === "enqueue" ? enqueuePhase : runPhase;
  const metrics = await measure(values.dsn, p);
  process.stdout.write(`${JSON.stringify({ version: `graphile-worker ${VERSION}`, metrics })}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
