#!/usr/bin/env node
// The benchmark harness: starts each server itself, runs every scenario against it, and prints
// one table with each figure and the ratio to the reference (@livestore/sync-cf 0.4.0 on local
// workerd). Usage (from the repo root):
//   node bench/run.mjs [--runs 3] [--skip-reference] [--smoke] [--json FILE] [--modes shared,split]
//                      [--old-bin PATH] [--skip-storage] [--skip-postgres] [--storage-only]
// --smoke: tiny sizes, native server only (debug build is fine); part of the test command.
// --modes: `shared` runs the server and the bench clients on all cores (as a single machine
// serving its own clients would); `split` pins the server to the last core and the clients to
// the others (`taskset`), showing the server's own capacity. Both by default where the machine
// has two cores or more and `taskset` works.
// The storage table compares layouts on fresh servers: push, cold pull, fan-out, contention, and
// the cost of creating stores (at 1k, 10k and 100k) while another store keeps pushing.
// --old-bin: a livestore-sync 0.1 binary (table-per-store layout) for its column. Postgres (one
// node, and two nodes with the fan-out's pullers and half the contention pushers on the second)
// runs on a private cluster (bench/postgres.mjs) unless --skip-postgres; so does the main
// table's Postgres column (one node, the same scenarios as the SQLite column).
import { spawn, spawnSync, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startPostgres } from './postgres.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..')
const argv = process.argv.slice(2)
const flag = (name) => argv.includes(`--${name}`)
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? argv[i + 1] : dflt
}
const smoke = flag('smoke')
const runs = Number(opt('runs', smoke ? 1 : 3))
const skipReference = smoke || flag('skip-reference')
const TOKEN = 'insecure-token-change-me'
const sizes = smoke
  ? { events: 300, fanout: 5, fanoutBig: 20, rounds: 10, seconds: 1, stores: 20, pushes: 3, idle: 200, refIdle: 200, created: 300, createdWindow: 100, createdAt: [100, 300], createSeconds: 60 }
  : { events: 10000, fanout: 20, fanoutBig: 1000, rounds: 100, seconds: 10, stores: 1000, pushes: 10, idle: 10000, refIdle: Number(opt('ref-idle', 2000)), created: 100000, createdWindow: 1000, createdAt: [1000, 10000, 100000], createSeconds: Number(opt('create-seconds', 600)) }
const profile = opt('profile', smoke ? 'debug' : 'release')
const log = (...a) => console.error('#', ...a)

// Core pinning for the split mode: the server on the last core, the clients on the rest.
const cpuCount = os.cpus().length
const canSplit = cpuCount >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0
const modes = opt('modes', canSplit ? 'shared,split' : 'shared').split(',')
for (const m of modes) {
  if (m !== 'shared' && m !== 'split') throw new Error(`unknown mode ${m} (shared or split)`)
  if (m === 'split' && !canSplit) throw new Error('split mode needs two cores and taskset (util-linux)')
}
const serverCpus = String(cpuCount - 1)
const clientCpus = cpuCount > 2 ? `0-${cpuCount - 2}` : '0'
/// Set while a split-mode measurement runs: the clients' cores.
let pinClients
const pinned = (cpus, cmd, args) => (cpus ? ['taskset', ['-c', cpus, cmd, ...args]] : [cmd, args])

// Many sockets: the idle-connection scenario needs file descriptors.
try {
  execFileSync('bash', ['-c', 'ulimit -n 65536'])
} catch {}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
async function waitHttp(url, timeoutMs, ok = (s) => s === 200) {
  const started = performance.now()
  for (;;) {
    try {
      const res = await fetch(url)
      await res.text()
      if (ok(res.status)) return performance.now() - started
    } catch {}
    if (performance.now() - started > timeoutMs) throw new Error(`${url} not ready within ${timeoutMs} ms`)
    await sleep(5)
  }
}
const node = (script, args, { timeoutMs = 20 * 60_000 } = {}) => {
  const [cmd, cmdArgs] = pinned(pinClients, process.execPath, [path.join(here, script), ...args])
  const r = spawnSync(cmd, cmdArgs, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 1 << 26 })
  if (r.status !== 0) throw new Error(`${script} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}
const lastJson = (out) => JSON.parse(out.trim().split('\n').at(-1))
const benchJson = (url, pid, extra) => {
  const file = path.join(os.tmpdir(), `bench-${process.pid}-${Math.random().toString(36).slice(2)}.json`)
  node('bench.mjs', [url, '--runs', String(runs), '--json', file, ...(pid ? ['--pid', String(pid)] : []), ...extra])
  const j = JSON.parse(fs.readFileSync(file, 'utf8'))
  fs.rmSync(file)
  return j
}

// bench.mjs and scenarios.mjs need `ws`: install the pinned lockfile on first use.
if (!fs.existsSync(path.join(here, 'node_modules', 'ws'))) {
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: here, stdio: ['ignore', 'inherit', 'inherit'] })
  if (r.status !== 0) throw new Error('npm ci in bench/ failed')
}

// ------------------------------------------------------------------ servers
function buildNative() {
  const args = ['build', '-p', 'livestore-sync', '-p', 'livestore-sync-bench', ...(profile === 'release' ? ['--release'] : [])]
  log(`cargo ${args.join(' ')}`)
  const r = spawnSync('cargo', args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] })
  if (r.status !== 0) throw new Error('cargo build failed')
  return path.join(root, 'target', profile, 'livestore-sync')
}

async function startNative(bin, port, dataDir, cpus, env = {}) {
  // taskset execs the server, so the child's pid is the server's.
  const [cmd, args] = pinned(cpus, bin, ['serve', '--port', String(port), '--data-dir', dataDir, '--auth-token', TOKEN, '--log-level', 'warn'])
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...env } })
  const readyMs = await waitHttp(`http://127.0.0.1:${port}/health`, 60_000)
  return { child, pid: child.pid, readyMs, url: `http://127.0.0.1:${port}` }
}

async function stop(server) {
  if (!server) return
  const exited = new Promise((r) => server.child.once('exit', r))
  server.child.kill('SIGTERM')
  await Promise.race([exited, sleep(15_000)])
  if (server.child.exitCode === null) server.child.kill('SIGKILL')
}

function prepareReference() {
  const dir = path.join(os.tmpdir(), 'livestore-sync-bench-reference')
  const source = path.join(root, 'bench', 'sync-cf')
  if (!fs.existsSync(path.join(dir, 'node_modules', 'wrangler'))) {
    fs.rmSync(dir, { recursive: true, force: true })
    fs.cpSync(source, dir, { recursive: true, filter: (f) => !/node_modules|\.wrangler/.test(path.relative(source, f)) })
    log('npm ci in a copy of bench/sync-cf (wrangler + @livestore/sync-cf 0.4.0)')
    const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] })
    if (r.status !== 0) throw new Error('npm ci for the reference failed')
  }
  fs.rmSync(path.join(dir, '.wrangler'), { recursive: true, force: true })
  return dir
}

async function startReference(dir, port) {
  const started = performance.now()
  const child = spawn('npx', ['wrangler', 'dev', '--local', '--ip', '127.0.0.1', '--port', String(port)], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'ignore'],
    detached: true,
  })
  await waitHttp(`http://127.0.0.1:${port}/`, 120_000)
  const readyMs = performance.now() - started
  // RSS is measured on workerd, the process that serves (bench.mjs --pid auto finds it).
  return { child: { ...child, kill: (sig) => process.kill(-child.pid, sig), once: child.once.bind(child), exitCode: null }, pid: 'auto', readyMs, url: `http://127.0.0.1:${port}` }
}

// ------------------------------------------------------------------ scenarios
async function measure(name, server) {
  const r = { readyMs: server.readyMs }
  log(`${name}: push, cold pull, fan-out (${sizes.fanout}), contention`)
  const main = benchJson(server.url, server.pid, ['--events', String(sizes.events), '--fanout-clients', String(sizes.fanout), '--rounds', String(sizes.rounds), '--seconds', String(sizes.seconds)])
  Object.assign(r, main.summary, { pushBatchP50: median(main.runs.map((x) => x.push?.batchP50)) })
  log(`${name}: fan-out (${sizes.fanoutBig})`)
  const big = benchJson(server.url, undefined, ['--only', 'fanout', '--fanout-clients', String(sizes.fanoutBig), '--rounds', String(Math.min(sizes.rounds, 30))])
  r.fanoutBigP50 = big.summary.fanoutP50
  r.fanoutBigP99 = big.summary.fanoutP99
  if (server.pid !== 'auto') {
    // The same fan-out with a native client (one Rust thread), so the figure is the server's
    // and not a single Node process parsing a thousand messages per round.
    log(`${name}: fan-out with the native client (${sizes.fanout}, ${sizes.fanoutBig})`)
    // A native client (`bench/src/bin/NAME`) with `URL counts…`; its last JSON line.
    const nativeClient = (name, ...counts) => {
      const [cmd, args] = pinned(pinClients, path.join(root, 'target', profile, name), [server.url, ...counts.map(String)])
      return lastJson(execFileSync(cmd, args, { encoding: 'utf8', timeout: 10 * 60_000 }))
    }
    const fanoutNative = (pullers, rounds) => nativeClient('fanout_native', pullers, rounds, runs)
    const small = fanoutNative(sizes.fanout, sizes.rounds)
    const large = fanoutNative(sizes.fanoutBig, Math.min(sizes.rounds, 30))
    Object.assign(r, { fanoutNativeP50: small.p50Ms, fanoutNativeP99: small.p99Ms, fanoutNativeBigP50: large.p50Ms, fanoutNativeBigP99: large.p99Ms })
    // Many stores likewise: the Node client spends more CPU per push than the server does.
    log(`${name}: many stores with the native client (${sizes.stores} × ${sizes.pushes})`)
    r.manyStoresNativePushesPerSec = nativeClient('many_stores_native', sizes.stores, sizes.pushes, runs).pushesPerSec
  }
  log(`${name}: many stores (${sizes.stores} × ${sizes.pushes})`)
  const many = []
  for (let i = 0; i < runs; i++) many.push(lastJson(node('scenarios.mjs', ['many-stores', server.url, '--stores', String(sizes.stores), '--pushes', String(sizes.pushes)])).pushesPerSec)
  r.manyStoresPushesPerSec = median(many)
  return r
}

/// Memory with idle connections, on a freshly started server (nothing else loaded).
async function measureIdle(name, server) {
  const r = {}
  if (server.pid !== 'auto') {
    log(`${name}: ${sizes.idle} idle connections`)
    const idle = lastJson(node('scenarios.mjs', ['idle', server.url, '--connections', String(sizes.idle), '--pid', String(server.pid)]))
    r.idleRssMiB = idle.rssMiB
    r.idleConnections = idle.connections
  } else {
    // workerd accepts connections slowly (~10/s past a few thousand): measure fewer and say so.
    log(`${name}: ${sizes.refIdle} idle connections`)
    const pids = workerdPids(server.url)
    lastJson(node('scenarios.mjs', ['idle', server.url, '--connections', String(sizes.refIdle), '--pid', String(pids[0] ?? 0)]))
    r.idleRssMiB = pids.reduce((a, p) => a + rss(p), 0)
    r.idleConnections = sizes.refIdle
  }
  r.idleRssPerConnKiB = (r.idleRssMiB * 1024) / r.idleConnections
  return r
}

function workerdPids(url) {
  const port = new URL(url).port
  try {
    const out = execFileSync('bash', ['-c', `pgrep -af workerd | grep -- "entry=[^ ]*:${port}" | cut -d' ' -f1`], { encoding: 'utf8' })
    return out.split('\n').filter(Boolean).map(Number)
  } catch {
    return []
  }
}
const rss = (pid) => {
  try {
    return Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) / 1024
  } catch {
    return 0
  }
}
function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && !Number.isNaN(x)).sort((a, b) => a - b)
  return v.length ? v[Math.floor((v.length - 1) / 2)] : undefined
}

/// `/metrics`, retried: a keep-alive connection left idle through a long scenario can be closed
/// by the server just as it is reused ("other side closed").
async function metricsText(url) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await (await fetch(`${url}/metrics`)).text()
    } catch (e) {
      if (attempt === 3) throw e
      await sleep(100)
    }
  }
}

/// Sum and count of each histogram the per-push budget reads, from /metrics.
async function histograms(url) {
  const text = await metricsText(url)
  const out = {}
  for (const name of ['frame_wait', 'frame_handle', 'storage_append', 'storage_group_commit', 'push_duration']) {
    const sum = Number(text.match(new RegExp(`^livestore_sync_${name}_seconds_sum (\\S+)`, 'm'))?.[1] ?? 0)
    const count = Number(text.match(new RegExp(`^livestore_sync_${name}_seconds_count (\\S+)`, 'm'))?.[1] ?? 0)
    out[name] = { sum, count }
  }
  return out
}

/// Where one push's time goes (10k events in batches of 100, acks awaited): the client's
/// shares measured in bench.mjs, the server's from the /metrics histograms over exactly that
/// run (means per push), and what is left: sockets, wake-ups and scheduling.
async function pushBudget(server) {
  const before = await histograms(server.url)
  const j = benchJson(server.url, undefined, ['--only', 'push', '--events', String(sizes.events)])
  const after = await histograms(server.url)
  const meanMs = (name) => {
    const n = after[name].count - before[name].count
    return n > 0 ? ((after[name].sum - before[name].sum) / n) * 1000 : NaN
  }
  // The append runs inside the frame's component call; the commit after it (one per group of
  // queued frames): both per frame.
  const perFrameMs = (name) => ((after[name].sum - before[name].sum) / (after.frame_handle.count - before.frame_handle.count)) * 1000
  const s = j.summary
  const cycleMs = (1000 * 100) / s.pushEventsPerSec
  const b = {
    cycleMs,
    buildMs: cycleMs - s.pushBatchMean,
    encodeMs: s.pushEncodeMean,
    waitMs: meanMs('frame_wait'),
    componentMs: meanMs('frame_handle') - perFrameMs('storage_append'),
    storageMs: perFrameMs('storage_append') + perFrameMs('storage_group_commit'),
    ackParseMs: s.pushAckParseMean,
    frameBytes: s.pushFrameBytes,
  }
  b.restMs = s.pushBatchMean - b.encodeMs - b.waitMs - b.componentMs - b.storageMs - b.ackParseMs
  return b
}

/// Time spent inside the component per push (validate, commit, publish), from /metrics.
async function componentShare(url, pushBatchP50) {
  const { sum, count } = (await histograms(url)).push_duration
  const insideMs = (sum / count) * 1000
  return { insideMs, share: pushBatchP50 ? insideMs / pushBatchP50 : undefined }
}

/// One storage configuration on fresh servers: the main scenarios, then store creation.
/// `start(run)` gives a fresh server (and, for several nodes, `peers`: more nodes of its database).
async function measureStorage(name, start) {
  const r = {}
  server = await start('a')
  const peer = server.peers?.[0]
  log(`storage ${name}: push, cold pull, fan-out (${sizes.fanout}), contention${peer ? ' (pullers and half the pushers on a second node)' : ''}`)
  const main = benchJson(server.url, undefined, ['--events', String(sizes.events), '--fanout-clients', String(sizes.fanout), '--rounds', String(sizes.rounds), '--seconds', String(sizes.seconds), ...(peer ? ['--peer-url', peer.url] : [])])
  Object.assign(r, main.summary)
  for (const p of server.peers ?? []) await stop(p)
  await stop(server)
  server = await start('b')
  log(`storage ${name}: creating ${sizes.created} stores while one store keeps pushing`)
  const created = lastJson(node('scenarios.mjs', ['store-creation', server.url, '--stores', String(sizes.created), '--window', String(sizes.createdWindow), '--max-seconds', String(sizes.createSeconds)], { timeoutMs: (sizes.createSeconds + 120) * 1000 }))
  r.created = created.created
  r.creation = created.windows
  for (const p of server.peers ?? []) await stop(p)
  await stop(server)
  server = undefined
  return r
}

// ------------------------------------------------------------------ main
const results = { date: new Date().toISOString(), host: `${os.cpus().length} CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.cpus()[0]?.model}`, runs, sizes, modes, native: {}, nativeSplit: undefined, reference: undefined, baselines: {}, storage: {} }
const bin = buildNative()
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'livestore-sync-bench-'))
let server

/// Everything on all cores: start-up, the scenarios, the budget, idle memory.
async function measureShared() {
  // Start-up: without and with the compiled-component cache.
  const dataDir = path.join(tmp, 'data')
  server = await startNative(bin, 18787, dataDir)
  results.native.readyUncachedMs = server.readyMs
  await stop(server)
  const readies = []
  for (let i = 0; i < Math.max(runs, 3); i++) {
    server = await startNative(bin, 18787, dataDir)
    readies.push(server.readyMs)
    if (i < Math.max(runs, 3) - 1) await stop(server)
  }
  results.native.readyCachedMs = median(readies)
  // The budget first, on a server that holds one store, not the thousands the scenarios make.
  log('native: per-push budget')
  results.native.budget = await pushBudget(server)
  Object.assign(results.native, await measure('native', server))
  Object.assign(results.native, await componentShare(server.url, results.native.pushBatchP50))
  await stop(server)
  server = await startNative(bin, 18787, path.join(tmp, 'idle-data'))
  Object.assign(results.native, await measureIdle('native', server))
  await stop(server)
  server = undefined
}

/// The server alone on its core, the clients on the others: the scenarios and the budget.
async function measureSplit() {
  server = await startNative(bin, 18787, path.join(tmp, 'split-data'), serverCpus)
  pinClients = clientCpus
  log(`split mode: server on core ${serverCpus}, clients on ${clientCpus}`)
  try {
    log('native, split cores: per-push budget')
    const budget = await pushBudget(server)
    results.nativeSplit = await measure('native, split cores', server)
    Object.assign(results.nativeSplit, await componentShare(server.url, results.nativeSplit.pushBatchP50), { budget })
  } finally {
    pinClients = undefined
  }
  await stop(server)
  server = undefined
}

/// The same scenarios with the event logs in Postgres (one node, a private local cluster, all
/// cores shared): the engine as a column of the main table.
async function measurePostgres() {
  const pg = await startPostgres()
  try {
    server = await startNative(bin, 18787, path.join(tmp, 'pg-main'), undefined, { DATABASE_URL: pg.newDatabase() })
    results.postgres = { readyUncachedMs: server.readyMs, ...(await measure('native on Postgres', server)) }
    await stop(server)
    server = undefined
  } finally {
    pg.stop()
  }
}

const storageOnly = flag('storage-only')
try {
  if (modes.includes('shared') && !storageOnly) await measureShared()
  if (modes.includes('split') && !storageOnly) await measureSplit()
  if (!storageOnly && !flag('skip-postgres')) await measurePostgres()
  fs.writeFileSync(path.join(os.tmpdir(), 'livestore-sync-bench-partial.json'), JSON.stringify(results, null, 2))

  const targetDir = path.join(root, 'target', profile)
  if (!storageOnly) results.baselines.sqlite = lastJson(execFileSync(path.join(targetDir, 'sqlite_baseline'), [String(sizes.events), '100', String(runs)], { encoding: 'utf8' }))
  if (!storageOnly) results.baselines.wsEcho = lastJson(execFileSync(path.join(targetDir, 'ws_echo'), [String(smoke ? 500 : 10000), '300'], { encoding: 'utf8' }))

  if (!skipReference && !storageOnly) {
    const refDir = prepareReference()
    server = await startReference(refDir, 18788)
    results.reference = { readyUncachedMs: server.readyMs, ...(await measure('reference', server)) }
    await stop(server)
    fs.rmSync(path.join(refDir, '.wrangler'), { recursive: true, force: true })
    server = await startReference(refDir, 18788)
    Object.assign(results.reference, await measureIdle('reference', server))
    await stop(server)
    server = undefined
  }

  if (!flag('skip-storage')) {
    const layouts = [['SQLite, one events table', bin]]
    const oldBin = opt('old-bin')
    if (oldBin) layouts.unshift(['SQLite, table per store (0.1)', oldBin])
    for (const [name, b] of layouts) {
      results.storage[name] = await measureStorage(name, (run) => startNative(b, 18787, path.join(tmp, `storage-${Object.keys(results.storage).length}-${run}`)))
    }
    if (!flag('skip-postgres')) {
      const pg = await startPostgres()
      try {
        for (const nodes of [1, 2]) {
          const name = nodes === 1 ? 'Postgres, one node' : 'Postgres, two nodes'
          results.storage[name] = await measureStorage(name, async (run) => {
            const env = { DATABASE_URL: pg.newDatabase() }
            const dir = (i) => path.join(tmp, `pg-${nodes}-${run}-${i}`)
            const first = await startNative(bin, 18787, dir(0), undefined, env)
            first.peers = []
            for (let i = 1; i < nodes; i++) first.peers.push(await startNative(bin, 18787 + i, dir(i), undefined, env))
            return first
          })
        }
      } finally {
        pg.stop()
      }
    }
  }
} finally {
  await stop(server)
  fs.rmSync(tmp, { recursive: true, force: true })
}

// ------------------------------------------------------------------ table
const rows = [
  ['push throughput (events/s, 10k, batches of 100)', 'pushEventsPerSec', 'higher'],
  ['cold pull of all events (ms)', 'coldPullMs', 'lower'],
  [`fan-out p50, ${sizes.fanout} live pullers (ms)`, 'fanoutP50', 'lower'],
  [`fan-out p99, ${sizes.fanout} live pullers (ms)`, 'fanoutP99', 'lower'],
  [`fan-out p50, ${sizes.fanoutBig} live pullers (ms)`, 'fanoutBigP50', 'lower'],
  [`fan-out p99, ${sizes.fanoutBig} live pullers (ms)`, 'fanoutBigP99', 'lower'],
  [`fan-out p50 / p99, ${sizes.fanout} live pullers, native client (ms)`, ['fanoutNativeP50', 'fanoutNativeP99'], 'none'],
  [`fan-out p50 / p99, ${sizes.fanoutBig} live pullers, native client (ms)`, ['fanoutNativeBigP50', 'fanoutNativeBigP99'], 'none'],
  ['contention, 4 pushers (accepted events/s)', 'contention_pull_eventsPerSec', 'higher'],
  [`many stores ${sizes.stores} × ${sizes.pushes} pushes (pushes/s)`, 'manyStoresPushesPerSec', 'higher'],
  [`many stores ${sizes.stores} × ${sizes.pushes} pushes, native client (pushes/s)`, 'manyStoresNativePushesPerSec', 'none'],
  [`server RSS with idle connections (MiB; ${sizes.idle} here, ${sizes.refIdle} on the reference)`, 'idleRssMiB', 'none'],
  ['RSS per idle connection, measured as above (KiB)', 'idleRssPerConnKiB', 'lower'],
  ['ready after start, no cache (ms)', 'readyUncachedMs', 'lower'],
  ['ready after start, cached component (ms)', 'readyCachedMs', 'lower'],
  ['time inside the component per push (ms)', 'insideMs', 'lower'],
]
const fmt = (x) => (x === undefined || Number.isNaN(x) ? '–' : x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(2))
// The reference ratio compares the shared-cores column: both servers share the cores with
// their clients there.
const split = results.nativeSplit
const pgRun = results.postgres
const lines = [
  `| scenario | livestore-sync |${split ? ` livestore-sync, split cores (server on ${serverCpus}, clients on ${clientCpus}) |` : ''}${pgRun ? ' livestore-sync on Postgres (one node) |' : ''} reference | ratio |`,
  `|---|---:|${split ? '---:|' : ''}${pgRun ? '---:|' : ''}---:|---:|`,
]
const splitCell = (v) => (split ? ` ${fmt(v)} |` : '')
const pgCell = (v) => (pgRun ? ` ${fmt(v)} |` : '')
for (const [label, key, better] of rows) {
  if (Array.isArray(key)) {
    const pair = (r) => (r && r[key[0]] !== undefined ? `${fmt(r[key[0]])} / ${fmt(r[key[1]])}` : '–')
    lines.push(`| ${label} | ${pair(results.native)} |${split ? ` ${pair(split)} |` : ''}${pgRun ? ` ${pair(pgRun)} |` : ''} ${pair(results.reference)} | – |`)
    continue
  }
  const a = results.native[key]
  const b = results.reference?.[key]
  const ratio = a !== undefined && b !== undefined && better !== 'none' ? (better === 'higher' ? a / b : b / a) : undefined
  lines.push(`| ${label} | ${fmt(a)} |${splitCell(split?.[key])}${pgCell(pgRun?.[key])} ${fmt(b)} | ${ratio === undefined ? '–' : `${ratio.toFixed(1)}×`} |`)
}
lines.push(`| baseline: raw SQLite inserts (events/s) | ${fmt(results.baselines.sqlite?.eventsPerSec)} |${splitCell()}${pgCell()} | |`)
lines.push(`| baseline: bare WebSocket echo round trip p50 / p99 (ms) | ${fmt(results.baselines.wsEcho?.p50Ms)} / ${fmt(results.baselines.wsEcho?.p99Ms)} |${splitCell()}${pgCell()} | |`)
console.log(`# ${results.date} · ${results.host} · medians of ${runs} run(s)${smoke ? ' · SMOKE (tiny sizes)' : ''}`)
console.log(lines.join('\n'))

// Where one push's time goes, per mode (means over one push run).
const budgets = [['shared cores', results.native.budget], ['split cores', split?.budget]].filter(([, b]) => b)
if (budgets.length) {
  const us = (ms) => (ms === undefined || Number.isNaN(ms) ? '–' : `${Math.round(ms * 1000).toLocaleString('en-US')}`)
  const budgetRows = [
    ['whole cycle, one push of 100 events to the next', 'cycleMs'],
    ['client: build the next batch', 'buildMs'],
    ['client: encode the request and hand it to the socket', 'encodeMs'],
    ['server: the frame waits for its store\'s shard', 'waitMs'],
    ['server: component call (decode, validate, publish, ack), storage excluded', 'componentMs'],
    ['server: storage (the rows, then the commit)', 'storageMs'],
    ['client: parse the ack', 'ackParseMs'],
    ['the rest: socket reads and writes, wake-ups, scheduling, both ends', 'restMs'],
  ]
  console.log(`\nPer-push budget (µs, means; push frame ${budgets[0][1].frameBytes} bytes)\n`)
  console.log(`| share | ${budgets.map(([m]) => m).join(' | ')} |`)
  console.log(`|---|${budgets.map(() => '---:').join('|')}|`)
  for (const [label, key] of budgetRows) console.log(`| ${label} | ${budgets.map(([, b]) => us(b[key])).join(' | ')} |`)
}
// Storage layouts and engines, side by side (fresh servers, shared cores).
const storageNames = Object.keys(results.storage)
if (storageNames.length) {
  const at = (r, n) => r.creation?.find((w) => w.stores === n)
  const storageRows = [
    ['push throughput (events/s, batches of 100)', (r) => fmt(r.pushEventsPerSec)],
    ['cold pull of all events (ms)', (r) => fmt(r.coldPullMs)],
    [`fan-out p50 / p99, ${sizes.fanout} live pullers (ms)`, (r) => `${fmt(r.fanoutP50)} / ${fmt(r.fanoutP99)}`],
    ['contention, 4 pushers (accepted events/s)', (r) => fmt(r.contention_pull_eventsPerSec)],
    ...sizes.createdAt.flatMap((n) => [
      [`creating stores: rate over the ${sizes.createdWindow.toLocaleString('en-US')} up to store ${n.toLocaleString('en-US')} (stores/s)`, (r) => fmt(at(r, n)?.storesPerSec)],
      [`  meanwhile, another store's push p50 / p99 (ms)`, (r) => (at(r, n) ? `${fmt(at(r, n).witnessP50Ms)} / ${fmt(at(r, n).witnessP99Ms)}` : '–')],
    ]),
    [`stores created within ${sizes.createSeconds} s`, (r) => fmt(r.created)],
  ]
  console.log(`\nStorage (fresh server per column; ${sizes.events} events for push and pull)\n`)
  console.log(`| scenario | ${storageNames.join(' | ')} |`)
  console.log(`|---|${storageNames.map(() => '---:').join('|')}|`)
  for (const [label, cell] of storageRows) console.log(`| ${label} | ${storageNames.map((n) => cell(results.storage[n])).join(' | ')} |`)
}
if (results.native.share !== undefined) console.log(`\ncomponent share of the push ack p50: ${(results.native.share * 100).toFixed(0)}%`)
const json = opt('json')
if (json) fs.writeFileSync(json, JSON.stringify(results, null, 2))
if (smoke) {
  const budgetKeys = ['cycleMs', 'encodeMs', 'waitMs', 'componentMs', 'storageMs', 'ackParseMs', 'restMs']
  const missing = [
    ...rows.flatMap(([, k]) => k).filter((k) => results.native[k] === undefined || Number.isNaN(results.native[k])),
    ...budgetKeys.filter((k) => !Number.isFinite(results.native.budget?.[k])).map((k) => `budget.${k}`),
    ...(modes.includes('split') ? ['pushEventsPerSec', 'fanoutP99'].filter((k) => !Number.isFinite(results.nativeSplit?.[k])).map((k) => `split.${k}`) : []),
    ...(flag('skip-postgres') ? [] : ['pushEventsPerSec', 'fanoutBigP99', 'manyStoresNativePushesPerSec'].filter((k) => !Number.isFinite(results.postgres?.[k])).map((k) => `postgres.${k}`)),
    ...Object.entries(results.storage).flatMap(([name, r]) => [
      ...['pushEventsPerSec', 'coldPullMs', 'fanoutP99'].filter((k) => !Number.isFinite(r[k])).map((k) => `storage ${name}: ${k}`),
      ...sizes.createdAt.filter((n) => !Number.isFinite(r.creation?.find((w) => w.stores === n)?.witnessP99Ms)).map((n) => `storage ${name}: creation at ${n}`),
    ]),
  ]
  if (missing.length) {
    console.error(`smoke: no figure for ${missing.join(', ')}`)
    process.exit(1)
  }
  console.log('bench smoke: every scenario produced a figure')
}
process.exit(0)
