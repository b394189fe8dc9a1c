#!/usr/bin/env node
// The benchmark client: raw `@livestore/sync-cf` 0.4 frames over `ws`, so it runs against any compatible server (this one, `@livestore/sync-cf`, the Cloudflare home).
// Benchmark for a LiveStore-CF-compatible sync server, speaking the wire protocol with raw `ws` frames
// (Effect RPC JSON over WebSocket, transport=ws). Independent of the LiveStore client.
//
// Usage:
//   node bench.mjs [URL] [options]
//     URL                      server base URL (http://, https://, ws:// or wss://; path kept), default http://127.0.0.1:8787
//     --runs N                 repetitions of every scenario, medians reported (default 3)
//     --events N               events for push/cold-pull scenarios (default 10000)
//     --batch N                events per push request (default 100)
//     --fanout-clients N       live pullers in the fan-out scenario (default 20)
//     --rounds N               fan-out rounds (default 100)
//     --pushers N              concurrent pushers in the contention scenario (default 4)
//     --contention-batch N     events per push in the contention scenario (default 1)
//     --seconds N              contention duration per run in seconds (default 10)
//     --rebase MODE[,MODE]     contention rebase strategy: pull (non-live pull after each rejection, default),
//                              live (each pusher keeps a live pull and rebases from it), or both
//     --token T                authToken put in the payload (default insecure-token-change-me)
//     --peer-url URL           another node of the same store (several nodes on one database): the fan-out's
//                              pullers and every other contention pusher connect there, the pushers to URL
//     --pid PID|auto           sample RSS of this server process (auto: all local `workerd` processes)
//     --only a,b               subset of scenarios: push,pull,fanout,contention
//     --json FILE              also write raw results as JSON
//
// Scenarios (each run uses fresh storeIds, i.e. fresh Durable Objects / rooms):
//   push       one client pushes --events events in batches of --batch, awaiting each Exit  -> events/s
//   pull       a fresh client pulls all events of that store (cursor None, live=false), Acking every Chunk -> ms
//   fanout     --fanout-clients live pulls; one pusher pushes 1 event per round for --rounds rounds;
//              per round: time from sending the push until every puller received the event -> p50/p99
//   contention --pushers clients push concurrently to one store for --seconds; on ServerAheadError they rebase
//              (pull-then-rebase) and retry -> accepted events/s, rejected ratio (rejections / push attempts)
import fs from 'node:fs'
import { performance } from 'node:perf_hooks'
import WS from 'ws'

// ------------------------------------------------------------------ args
const argv = process.argv.slice(2)
const opts = {
  url: 'http://127.0.0.1:8787',
  runs: 3,
  events: 10000,
  batch: 100,
  fanoutClients: 20,
  rounds: 100,
  pushers: 4,
  contentionBatch: 1,
  seconds: 10,
  rebase: 'pull',
  token: 'insecure-token-change-me',
  pid: undefined,
  only: 'push,pull,fanout,contention',
  json: undefined,
  peerUrl: undefined,
}
const camel = (s) => s.replace(/-([a-z])/g, (_, c) => c.toUpperCase())
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]
  if (a.startsWith('--')) {
    const key = camel(a.slice(2))
    if (!(key in opts)) throw new Error(`unknown option ${a}`)
    const v = argv[++i]
    opts[key] = typeof opts[key] === 'number' ? Number(v) : v
  } else opts.url = a
}
const wsBase = opts.url.replace(/^http(s?):/, 'ws$1:')
const peerBase = (opts.peerUrl ?? opts.url).replace(/^http(s?):/, 'ws$1:')
const RUN_TAG = `bench-${Date.now().toString(36)}`

// ------------------------------------------------------------------ helpers
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const n = s.length
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
}
const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN)
const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const idx = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))
  return s[idx]
}
const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : String(x))

// payload query param exactly as the LiveStore client encodes it (encodeURIComponent twice)
const syncUrl = (storeId, base = wsBase) => {
  const payload = encodeURIComponent(encodeURIComponent(JSON.stringify({ authToken: opts.token })))
  const sep = base.includes('?') ? '&' : '?'
  return `${base}${sep}storeId=${encodeURIComponent(storeId)}&payload=${payload}&transport=ws`
}

const makeEvent = (seqNum, parentSeqNum, clientId) => ({
  name: 'todoCreated-v1',
  args: { id: `todo-${clientId}-${seqNum}`, text: `benchmark event ${seqNum} from ${clientId}`, completed: false },
  seqNum,
  parentSeqNum,
  clientId,
  sessionId: `${clientId}-session`,
})

// ------------------------------------------------------------------ RSS sampling
// --pid auto: the workerd process serving the URL's port (`--socket-addr=entry=HOST:PORT`) plus its sibling
// workerd processes (wrangler dev runs a proxy workerd and a user-worker workerd under the same parent).
const findWorkerdPids = () => {
  const port = new URL(opts.url.replace(/^ws/, 'http')).port || '80'
  const procs = []
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0')
      if (!cmd[0] || !/(^|\/)workerd$/.test(cmd[0])) continue
      const ppid = Number(/PPid:\s+(\d+)/.exec(fs.readFileSync(`/proc/${d}/status`, 'utf8'))[1])
      procs.push({ pid: Number(d), ppid, cmd: cmd.join(' ') })
    } catch {}
  }
  const entry = procs.find((p) => p.cmd.includes(`--socket-addr=entry=`) && new RegExp(`entry=[^ ]*:${port}( |$)`).test(p.cmd))
  if (!entry) return []
  return procs.filter((p) => p.ppid === entry.ppid).map((p) => p.pid)
}
const pidsToSample = opts.pid === undefined ? [] : opts.pid === 'auto' ? findWorkerdPids() : String(opts.pid).split(',').map(Number)
const rssPerPid = () =>
  Object.fromEntries(
    pidsToSample.map((pid) => {
      try {
        return [pid, Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024]
      } catch {
        return [pid, NaN]
      }
    }),
  )
const rssKiB = () => {
  let total = 0
  for (const pid of pidsToSample) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
      if (m) total += Number(m[1])
    } catch {}
  }
  return pidsToSample.length ? total : undefined
}
let peakRss = 0
const rssTimer = pidsToSample.length
  ? setInterval(() => {
      const r = rssKiB()
      if (r !== undefined && r > peakRss) peakRss = r
    }, 100)
  : undefined

// ------------------------------------------------------------------ raw Effect-RPC-over-WS connection
class RpcConn {
  static open(storeId, label = 'c', base = wsBase) {
    return new Promise((resolve, reject) => {
      const ws = new WS(syncUrl(storeId, base), { perMessageDeflate: false })
      ws.once('open', () => resolve(new RpcConn(ws, storeId, label)))
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)))
      ws.once('error', reject)
    })
  }
  constructor(ws, storeId, label) {
    this.ws = ws
    this.storeId = storeId
    this.label = label
    this.nextId = 0
    this.pending = new Map() // requestId -> { onChunk?, resolve }
    this.closed = false
    ws.on('message', (data) => this.onMessage(data))
    ws.on('close', () => {
      this.closed = true
      for (const p of this.pending.values()) p.resolve({ _tag: 'Failure', cause: { _tag: 'Die', defect: 'socket closed' } })
      this.pending.clear()
    })
  }
  onMessage(data) {
    const tp = performance.now()
    const msg = JSON.parse(data.toString())
    this.lastParseMs = performance.now() - tp
    switch (msg._tag) {
      case 'Chunk': {
        const p = this.pending.get(msg.requestId)
        // The real client Acks every Chunk; the server's RPC layer waits for the Ack before sending the next one.
        this.ws.send(`{"_tag":"Ack","requestId":"${msg.requestId}"}`)
        if (p?.onChunk) for (const v of msg.values) p.onChunk(v)
        break
      }
      case 'Exit': {
        const p = this.pending.get(msg.requestId)
        if (p) {
          this.pending.delete(msg.requestId)
          p.resolve(msg.exit)
        }
        break
      }
      case 'Pong':
        break
      case 'Defect':
        console.error(`[${this.label}] Defect`, JSON.stringify(msg.defect).slice(0, 300))
        break
      default:
        break
    }
  }
  request(tag, payload, onChunk) {
    const id = String(this.nextId++)
    const te = performance.now()
    const frame = JSON.stringify({ _tag: 'Request', id, tag, payload, headers: [] })
    const done = new Promise((resolve) => this.pending.set(id, { onChunk, resolve }))
    this.ws.send(frame)
    // The per-push budget's client side: encoding the request and handing it to the socket.
    this.lastEncodeMs = performance.now() - te
    this.lastFrameBytes = frame.length
    return { id, done }
  }
  /** resolves to { ok: true } or { ok: false, error } */
  async push(batch, backendId) {
    const { done } = this.request('SyncWsRpc.Push', {
      storeId: this.storeId,
      payload: { authToken: opts.token },
      batch,
      backendId: backendId === undefined ? { _tag: 'None' } : { _tag: 'Some', value: backendId },
    })
    const exit = await done
    if (exit._tag === 'Success') return { ok: true }
    return { ok: false, error: exit.cause?._tag === 'Fail' ? exit.cause.error : exit.cause }
  }
  pull({ after, backendId, live, onResponse }) {
    return this.request(
      'SyncWsRpc.Pull',
      {
        storeId: this.storeId,
        payload: { authToken: opts.token },
        cursor: after === undefined ? { _tag: 'None' } : { _tag: 'Some', value: { backendId, eventSequenceNumber: after } },
        live,
      },
      onResponse,
    )
  }
  interrupt(id) {
    this.ws.send(JSON.stringify({ _tag: 'Interrupt', requestId: id }))
  }
  close() {
    return new Promise((resolve) => {
      if (this.closed) return resolve()
      this.ws.once('close', resolve)
      this.ws.close()
      setTimeout(() => {
        this.ws.terminate()
        resolve()
      }, 2000)
    })
  }
}

const learnBackendId = async (conn) => {
  let backendId
  const { done } = conn.pull({ live: false, onResponse: (r) => (backendId = r.backendId) })
  const exit = await done
  if (exit._tag !== 'Success') throw new Error(`pull failed: ${JSON.stringify(exit)}`)
  return backendId
}

// ------------------------------------------------------------------ scenarios
async function scenarioPush(storeId) {
  const conn = await RpcConn.open(storeId, 'pusher')
  const clientId = 'bench-pusher'
  let seq = 0
  const t0 = performance.now()
  const batchLatencies = []
  const encode = []
  const parse = []
  while (seq < opts.events) {
    const n = Math.min(opts.batch, opts.events - seq)
    const batch = Array.from({ length: n }, (_, i) => makeEvent(seq + i + 1, seq + i, clientId))
    const tb = performance.now()
    const res = await conn.push(batch)
    batchLatencies.push(performance.now() - tb)
    encode.push(conn.lastEncodeMs)
    parse.push(conn.lastParseMs)
    if (!res.ok) throw new Error(`push failed at seq ${seq}: ${JSON.stringify(res.error).slice(0, 300)}`)
    seq += n
  }
  const ms = performance.now() - t0
  await conn.close()
  return {
    events: seq,
    ms,
    eventsPerSec: (seq / ms) * 1000,
    batchP50: percentile(batchLatencies, 50),
    batchP99: percentile(batchLatencies, 99),
    // The client's shares of one push's round trip, for the harness's per-push budget.
    batchMean: mean(batchLatencies),
    encodeMean: mean(encode),
    ackParseMean: mean(parse),
    frameBytes: conn.lastFrameBytes,
  }
}

async function scenarioColdPull(storeId, expected) {
  const t0 = performance.now()
  const conn = await RpcConn.open(storeId, 'cold-puller')
  const tOpen = performance.now()
  let count = 0
  let last = 0
  let ordered = true
  let chunks = 0
  const { done } = conn.pull({
    live: false,
    onResponse: (r) => {
      chunks++
      for (const item of r.batch) {
        const s = item.eventEncoded.seqNum
        if (s <= last) ordered = false
        last = s
        count++
      }
    },
  })
  const exit = await done
  const ms = performance.now() - t0
  await conn.close()
  if (exit._tag !== 'Success') throw new Error(`cold pull failed: ${JSON.stringify(exit).slice(0, 300)}`)
  if (count !== expected || !ordered) throw new Error(`cold pull got ${count}/${expected} events, ordered=${ordered}`)
  return { events: count, chunks, ms, connectMs: tOpen - t0 }
}

async function scenarioFanout(storeId) {
  const pullers = await Promise.all(Array.from({ length: opts.fanoutClients }, (_, i) => RpcConn.open(storeId, `live-${i}`, peerBase)))
  const pusher = await RpcConn.open(storeId, 'fanout-pusher')
  let round = null // { seq, remaining, resolve }
  let initial = 0
  let initialResolve
  const initialDone = new Promise((r) => (initialResolve = r))
  for (const p of pullers) {
    let gotInitial = false
    p.pull({
      live: true,
      onResponse: (r) => {
        if (!gotInitial) {
          gotInitial = true
          if (++initial === pullers.length) initialResolve()
        }
        if (round) for (const item of r.batch) if (item.eventEncoded.seqNum === round.seq && --round.remaining === 0) round.resolve(performance.now())
      },
    })
  }
  await initialDone
  await sleep(200)
  const lat = []
  const pushAck = []
  for (let i = 1; i <= opts.rounds; i++) {
    const allReceived = new Promise((resolve) => (round = { seq: i, remaining: pullers.length, resolve }))
    const t0 = performance.now()
    const res = await pusher.push([makeEvent(i, i - 1, 'fanout-pusher')])
    pushAck.push(performance.now() - t0)
    if (!res.ok) throw new Error(`fanout push ${i} failed: ${JSON.stringify(res.error).slice(0, 300)}`)
    const tAll = await Promise.race([allReceived, sleep(10000).then(() => NaN)])
    if (!Number.isFinite(tAll)) throw new Error(`fanout round ${i}: only ${pullers.length - round.remaining}/${pullers.length} received within 10s`)
    lat.push(tAll - t0)
  }
  round = null
  await Promise.all([...pullers, pusher].map((c) => c.close()))
  return { rounds: lat.length, p50: percentile(lat, 50), p99: percentile(lat, 99), max: Math.max(...lat), pushAckP50: percentile(pushAck, 50) }
}

async function scenarioContention(storeId, mode) {
  const conns = await Promise.all(Array.from({ length: opts.pushers }, (_, i) => RpcConn.open(storeId, `contender-${i}`, i % 2 ? peerBase : wsBase)))
  // backendId: learn it once per pusher via an initial pull (the real client learns it from its first pull)
  const backendIds = await Promise.all(conns.map(learnBackendId))
  const stats = conns.map(() => ({ attempts: 0, accepted: 0, rejected: 0, acceptedEvents: 0, rebasePulls: 0 }))
  const lat = { pushOk: [], pushRejected: [], rebase: [] }
  const deadline = performance.now() + opts.seconds * 1000
  const t0 = performance.now()

  const runPusher = async (idx) => {
    const conn = conns[idx]
    const backendId = backendIds[idx]
    const st = stats[idx]
    const clientId = `contender-${idx}`
    let head = 0
    // live mode: keep one live pull open and track the head it reports
    let liveHead = 0
    const waiters = []
    if (mode === 'live') {
      conn.pull({
        live: true,
        onResponse: (r) => {
          const last = r.batch.at(-1)
          if (last && last.eventEncoded.seqNum > liveHead) liveHead = last.eventEncoded.seqNum
          for (const w of [...waiters]) if (liveHead >= w.target) { waiters.splice(waiters.indexOf(w), 1); w.resolve() }
        },
      })
    }
    while (performance.now() < deadline) {
      const batch = Array.from({ length: opts.contentionBatch }, (_, i) => makeEvent(head + i + 1, head + i, clientId))
      st.attempts++
      const tp = performance.now()
      const res = await conn.push(batch, backendId)
      ;(res.ok ? lat.pushOk : lat.pushRejected).push(performance.now() - tp)
      if (res.ok) {
        st.accepted++
        st.acceptedEvents += batch.length
        head += batch.length
        continue
      }
      if (res.error?._tag !== 'ServerAheadError') throw new Error(`contention push error: ${JSON.stringify(res.error).slice(0, 300)}`)
      st.rejected++
      const minimum = res.error.minimumExpectedNum
      const tr = performance.now()
      if (mode === 'live') {
        if (liveHead < minimum) await new Promise((resolve) => waiters.push({ target: minimum, resolve }))
        head = liveHead
      } else {
        // pull-then-rebase: fetch everything after our head, move head to the last pulled event
        st.rebasePulls++
        let last = head
        const { done } = conn.pull({
          after: head,
          backendId,
          live: false,
          onResponse: (r) => {
            const e = r.batch.at(-1)
            if (e) last = e.eventEncoded.seqNum
          },
        })
        const exit = await done
        if (exit._tag !== 'Success') throw new Error(`rebase pull failed: ${JSON.stringify(exit).slice(0, 300)}`)
        head = last
      }
      lat.rebase.push(performance.now() - tr)
    }
  }
  await Promise.all(conns.map((_, i) => runPusher(i)))
  const ms = performance.now() - t0
  await Promise.all(conns.map((c) => c.close()))
  const sum = (k) => stats.reduce((a, s) => a + s[k], 0)
  const attempts = sum('attempts')
  return {
    mode,
    ms,
    attempts,
    acceptedPushes: sum('accepted'),
    rejected: sum('rejected'),
    acceptedEvents: sum('acceptedEvents'),
    acceptedEventsPerSec: (sum('acceptedEvents') / ms) * 1000,
    rejectedRatio: attempts ? sum('rejected') / attempts : NaN,
    perPusherAccepted: stats.map((s) => s.acceptedEvents),
    pushOkP50: percentile(lat.pushOk, 50),
    pushRejectedP50: percentile(lat.pushRejected, 50),
    rebaseP50: percentile(lat.rebase, 50),
  }
}

// ------------------------------------------------------------------ main
const only = new Set(opts.only.split(','))
const rebaseModes = opts.rebase === 'both' ? ['pull', 'live'] : opts.rebase.split(',')
console.log(`# bench against ${opts.url} (ws base ${wsBase}); runs=${opts.runs}; ${new Date().toISOString()}`)
console.log(`# params: events=${opts.events} batch=${opts.batch} fanoutClients=${opts.fanoutClients} rounds=${opts.rounds} pushers=${opts.pushers} contentionBatch=${opts.contentionBatch} seconds=${opts.seconds} rebase=${rebaseModes.join(',')}`)
if (pidsToSample.length) console.log(`# sampling RSS of pid(s) ${pidsToSample.join(',')}: start ${fmt(rssKiB() / 1024)} MiB ${JSON.stringify(rssPerPid())}`)
try {
  console.log(`# host: ${(await import('node:os')).cpus().length} CPUs, loadavg ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')}`)
} catch {}

const results = { opts, runs: [], rss: {} }
for (let run = 1; run <= opts.runs; run++) {
  const r = { run }
  const storeBase = `${RUN_TAG}-r${run}`
  if (only.has('push') || only.has('pull')) {
    r.push = await scenarioPush(`${storeBase}-log`)
    console.log(`run ${run} push:       ${r.push.events} events in ${fmt(r.push.ms, 0)} ms -> ${fmt(r.push.eventsPerSec, 0)} events/s (per-batch ack p50 ${fmt(r.push.batchP50)} ms, p99 ${fmt(r.push.batchP99)} ms)`)
    if (rssTimer) results.rss[`afterPush${run}`] = rssKiB()
  }
  if (only.has('pull')) {
    r.pull = await scenarioColdPull(`${storeBase}-log`, r.push.events)
    console.log(`run ${run} cold pull:  ${r.pull.events} events in ${r.pull.chunks} chunks, ${fmt(r.pull.ms, 0)} ms (incl. ${fmt(r.pull.connectMs, 1)} ms WS connect)`)
  }
  if (only.has('fanout')) {
    r.fanout = await scenarioFanout(`${storeBase}-fanout`)
    console.log(`run ${run} fan-out:    ${opts.fanoutClients} live pullers, ${r.fanout.rounds} rounds: p50 ${fmt(r.fanout.p50, 2)} ms, p99 ${fmt(r.fanout.p99, 2)} ms, max ${fmt(r.fanout.max, 2)} ms (push ack p50 ${fmt(r.fanout.pushAckP50, 2)} ms)`)
    if (rssTimer) results.rss[`afterFanout${run}`] = rssKiB()
  }
  if (only.has('contention')) {
    r.contention = {}
    for (const mode of rebaseModes) {
      const c = await scenarioContention(`${storeBase}-contention-${mode}`, mode)
      r.contention[mode] = c
      console.log(`run ${run} contention[${mode}]: ${opts.pushers} pushers ${fmt(c.ms / 1000, 1)} s: accepted ${c.acceptedEvents} events (${fmt(c.acceptedEventsPerSec, 0)} events/s), ${c.attempts} attempts, rejected ratio ${fmt(c.rejectedRatio * 100, 1)}% per-pusher ${JSON.stringify(c.perPusherAccepted)}; p50 latency: accepted push ${fmt(c.pushOkP50)} ms, rejected push ${fmt(c.pushRejectedP50)} ms, rebase ${fmt(c.rebaseP50)} ms`)
    }
    if (rssTimer) results.rss[`afterContention${run}`] = rssKiB()
  }
  results.runs.push(r)
}

const med = (f) => median(results.runs.map(f).filter((x) => x !== undefined))
console.log(`\n## medians over ${opts.runs} run(s)`)
const summary = {}
if (only.has('push') || only.has('pull')) {
  summary.pushEventsPerSec = med((r) => r.push?.eventsPerSec)
  summary.pushBatchP50 = med((r) => r.push?.batchP50)
  summary.pushBatchMean = med((r) => r.push?.batchMean)
  summary.pushEncodeMean = med((r) => r.push?.encodeMean)
  summary.pushAckParseMean = med((r) => r.push?.ackParseMean)
  summary.pushFrameBytes = med((r) => r.push?.frameBytes)
  console.log(`push throughput:   ${fmt(summary.pushEventsPerSec, 0)} events/s (${opts.events} events, batch ${opts.batch}, sequential acks)`)
}
if (only.has('pull')) {
  summary.coldPullMs = med((r) => r.pull?.ms)
  console.log(`cold pull:         ${fmt(summary.coldPullMs, 0)} ms for ${opts.events} events`)
}
if (only.has('fanout')) {
  summary.fanoutP50 = med((r) => r.fanout?.p50)
  summary.fanoutP99 = med((r) => r.fanout?.p99)
  console.log(`fan-out latency:   p50 ${fmt(summary.fanoutP50, 2)} ms, p99 ${fmt(summary.fanoutP99, 2)} ms (${opts.fanoutClients} clients, ${opts.rounds} rounds)`)
}
if (only.has('contention')) {
  for (const mode of rebaseModes) {
    summary[`contention_${mode}_eventsPerSec`] = med((r) => r.contention?.[mode]?.acceptedEventsPerSec)
    summary[`contention_${mode}_rejectedRatio`] = med((r) => r.contention?.[mode]?.rejectedRatio)
    console.log(`contention[${mode}]: ${fmt(summary[`contention_${mode}_eventsPerSec`], 0)} accepted events/s, rejected ratio ${fmt(summary[`contention_${mode}_rejectedRatio`] * 100, 1)}% (${opts.pushers} pushers, ${opts.seconds}s)`)
  }
}
if (rssTimer) {
  clearInterval(rssTimer)
  summary.rssEndMiB = rssKiB() / 1024
  summary.rssPeakMiB = peakRss / 1024
  summary.rssEndPerPidMiB = rssPerPid()
  console.log(`server RSS:        end ${fmt(summary.rssEndMiB)} MiB, peak ${fmt(summary.rssPeakMiB)} MiB (sum over pid ${pidsToSample.join(',')}; end per pid ${JSON.stringify(Object.fromEntries(Object.entries(summary.rssEndPerPidMiB).map(([k, v]) => [k, Math.round(v)])))} MiB)`)
}
results.summary = summary
if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(results, null, 2))
process.exit(0)
