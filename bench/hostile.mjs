// Hostile clients against a running release binary, for the numbers the limits are meant to
// keep: what a real client sees while an attacker holds sockets, server memory with paused live
// pullers, and another store's Ping delay during a pull flood on one connection.
//
//   cargo build --release -p livestore-sync
//   node bench/hostile.mjs [--bin target/release/livestore-sync] [--silent 5000] [--paused 150]
//                          [--flood 20000] [--total BYTES] [--only silent|paused|flood]
//
// It starts its own server (no token, one shard, a temporary data directory) per scenario.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'

const here = path.dirname(fileURLToPath(import.meta.url))
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : fallback
}
const BIN = arg('bin', path.join(here, '..', 'target', 'release', 'livestore-sync'))
const SILENT = Number(arg('silent', 5000))
const PAUSED = Number(arg('paused', 150))
const FLOOD = Number(arg('flood', 20000))
const TOTAL = arg('total', null)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function start(extra = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hostile-'))
  const child = spawn(BIN, ['serve', '--port', '0', '--data-dir', dir, '--shards', '1', '--log-level', 'warn,livestore_sync=info', ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const port = await new Promise((resolve, reject) => {
    let buf = ''
    child.stdout.on('data', (d) => {
      buf += d
      const m = /listening on ws:\/\/[^:]+:(\d+)/.exec(buf)
      if (m) resolve(Number(m[1]))
    })
    child.on('exit', (code) => reject(new Error(`server exited ${code}`)))
  })
  child.stdout.resume()
  return { child, port, dir, stop: () => { child.kill('SIGKILL'); fs.rmSync(dir, { recursive: true, force: true }) } }
}

const rssMiB = (pid) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}

const open = (url) =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })

const fds = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length

async function counter(port, name) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  return text.split('\n').filter((l) => l.startsWith(name)).reduce((sum, l) => sum + Number(l.split(' ').pop()), 0)
}

const nextMessage = (ws) => new Promise((resolve) => ws.once('message', (d) => resolve(JSON.parse(d.toString()))))

async function pingMs(ws) {
  const t = performance.now()
  ws.send('{"_tag":"Ping"}')
  await nextMessage(ws)
  return performance.now() - t
}

async function healthMs(port) {
  const t = performance.now()
  const res = await fetch(`http://127.0.0.1:${port}/health`)
  await res.text()
  return { ms: performance.now() - t, status: res.status }
}

async function silentSockets() {
  const s = await start(['--header-timeout-secs', '10'])
  const sockets = []
  let closedByServer = 0
  for (let i = 0; i < SILENT; i++) {
    const sock = net.connect(s.port, '127.0.0.1')
    sock.on('error', () => {})
    sock.on('close', () => closedByServer++)
    sockets.push(sock)
    if (i % 500 === 499) await sleep(10)
  }
  await sleep(500)
  const heldEarly = fds(s.child.pid)
  const t = performance.now()
  const ws = await open(`ws://127.0.0.1:${s.port}/?storeId=real&transport=ws`)
  const connectMs = performance.now() - t
  const ping = await pingMs(ws)
  const health = await healthMs(s.port)
  let heldMax = heldEarly
  for (let i = 0; i < 24; i++) {
    await sleep(1000)
    heldMax = Math.max(heldMax, fds(s.child.pid))
  }
  const heldLate = fds(s.child.pid)
  console.log(
    `silent sockets: ${SILENT} opened by the attacker; server file descriptors ${heldEarly} after 0.5 s, at most ` +
      `${heldMax} over 25 s (pending cap 1024, oldest closed first), ${heldLate} after 25 s (10 s header timeout; ` +
      `late sockets are SYN retries from the full listen backlog); a real client connected in ${connectMs.toFixed(1)} ms ` +
      `(Pong ${ping.toFixed(2)} ms), /health ${health.status} in ${health.ms.toFixed(1)} ms`,
  )
  ws.close()
  sockets.forEach((x) => x.destroy())
  s.stop()
}

async function pausedPullers() {
  const s = await start(TOTAL ? ['--max-total-queue-bytes', TOTAL] : [])
  const url = `ws://127.0.0.1:${s.port}/?storeId=paused&transport=ws`
  const pullers = []
  const cutBefore = await counter(s.port, 'livestore_sync_slow_consumers_closed_total')
  for (let i = 0; i < PAUSED; i++) {
    const ws = await open(url)
    ws.send(JSON.stringify({ _tag: 'Request', id: `live${i}`, tag: 'SyncWsRpc.Pull', payload: { storeId: 'paused', cursor: { _tag: 'None' }, live: true }, headers: [] }))
    await nextMessage(ws)
    ws._socket.pause()
    pullers.push(ws)
  }
  const idle = rssMiB(s.child.pid)
  const pusher = await open(url)
  const args = 'x'.repeat(8000)
  let head = 0
  let peak = idle
  for (let p = 0; p < 40; p++) {
    const batch = Array.from({ length: 100 }, (_, i) => ({ name: 'e', args, seqNum: head + i + 1, parentSeqNum: head + i, clientId: 'c', sessionId: 's' }))
    head += 100
    pusher.send(JSON.stringify({ _tag: 'Request', id: `p${p}`, tag: 'SyncWsRpc.Push', payload: { storeId: 'paused', batch, backendId: { _tag: 'None' } }, headers: [] }))
    await nextMessage(pusher)
    peak = Math.max(peak, rssMiB(s.child.pid))
  }
  await sleep(1000)
  peak = Math.max(peak, rssMiB(s.child.pid))
  const cut = (await counter(s.port, 'livestore_sync_slow_consumers_closed_total')) - cutBefore
  console.log(
    `paused live pullers: ${PAUSED} readers stopped, 32 MB pushed to each (${(PAUSED * 32 / 1024).toFixed(1)} GB in all): ` +
      `server RSS ${idle.toFixed(0)} MiB before, peak ${peak.toFixed(0)} MiB (budget ${TOTAL ? `${(TOTAL / 1048576).toFixed(0)} MiB` : '512 MiB'} of queued frames, 16 MiB per connection); ${cut} cut off (1013)`,
  )
  pullers.forEach((w) => w.terminate())
  pusher.close()
  s.stop()
}

async function pullFlood() {
  const s = await start()
  const flood = await open(`ws://127.0.0.1:${s.port}/?storeId=flood&transport=ws`)
  const other = await open(`ws://127.0.0.1:${s.port}/?storeId=bystander&transport=ws`)
  let replies = 0
  flood.on('message', () => replies++)
  for (let i = 0; i < FLOOD; i++) {
    flood.send(JSON.stringify({ _tag: 'Request', id: `p${i}`, tag: 'SyncWsRpc.Pull', payload: { storeId: 'flood', cursor: { _tag: 'None' }, live: true }, headers: [] }))
  }
  let worst = 0
  const pings = []
  while (replies < FLOOD) {
    const ms = await pingMs(other)
    pings.push(ms)
    worst = Math.max(worst, ms)
    await sleep(5)
  }
  pings.sort((a, b) => a - b)
  console.log(
    `pull flood: ${FLOOD} live pulls on one connection; another store's Pong on the same shard: ` +
      `${pings.length} pings, p50 ${pings[pings.length >> 1].toFixed(2)} ms, worst ${worst.toFixed(2)} ms`,
  )
  flood.close()
  other.close()
  s.stop()
}

const only = arg('only', null)
if (!only || only === 'silent') await silentSockets()
if (!only || only === 'paused') await pausedPullers()
if (!only || only === 'flood') await pullFlood()
process.exit(0)
