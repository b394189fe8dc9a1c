#!/usr/bin/env node
// Scenarios beyond bench.mjs, speaking raw LiveStore frames:
//   many-stores URL --stores N --pushes K   N stores pushed concurrently, K sequential 1-event pushes each -> pushes/s
//   idle URL --connections N --pid PID      N idle WebSocket connections (each with a live pull) -> server RSS
//   store-creation URL --stores N [--window W] [--concurrency C] [--max-seconds S]
//       N new stores (connect, one push, close), C at a time; meanwhile one pusher keeps pushing to
//       an existing store. Per window of W new stores: stores/s and that pusher's push p50/p99.
// Prints one JSON object on the last line.
import WS from 'ws'
import fs from 'node:fs'

const [scenario, url, ...rest] = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = rest.indexOf(`--${name}`)
  return i >= 0 ? rest[i + 1] : dflt
}
const token = opt('token', 'insecure-token-change-me')
const wsBase = url.replace(/^http/, 'ws')
const payload = encodeURIComponent(encodeURIComponent(JSON.stringify({ authToken: token })))
const tag = Math.random().toString(36).slice(2, 8)
const connect = (storeId) =>
  new Promise((resolve, reject) => {
    const ws = new WS(`${wsBase}/?storeId=${storeId}&payload=${payload}&transport=ws`, { perMessageDeflate: false })
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })
const request = (ws, frame) =>
  new Promise((resolve, reject) => {
    const onMessage = (data) => {
      const msg = JSON.parse(data.toString())
      if (msg.requestId === frame.id) {
        ws.off('message', onMessage)
        resolve(msg)
      }
    }
    ws.on('message', onMessage)
    ws.once('error', reject)
    ws.send(JSON.stringify(frame))
  })
const event = (seq) => ({ name: 'bench', args: { n: seq }, seqNum: seq, parentSeqNum: seq - 1, clientId: 'c', sessionId: 's' })
const rssMiB = (pid) => {
  try {
    const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))
    return Number(line.split(/\s+/)[1]) / 1024
  } catch {
    return NaN
  }
}

if (scenario === 'many-stores') {
  const stores = Number(opt('stores', 1000))
  const pushes = Number(opt('pushes', 10))
  const start = performance.now()
  let ok = 0
  await Promise.all(
    Array.from({ length: stores }, async (_, s) => {
      const storeId = `many-${tag}-${s}`
      const ws = await connect(storeId)
      for (let i = 1; i <= pushes; i++) {
        const reply = await request(ws, {
          _tag: 'Request', id: String(i), tag: 'SyncWsRpc.Push',
          payload: { storeId, batch: [event(i)], backendId: { _tag: 'None' } }, headers: [],
        })
        if (reply.exit?._tag === 'Success') ok++
      }
      ws.close()
    }),
  )
  const ms = performance.now() - start
  console.log(JSON.stringify({ scenario, stores, pushes, ok, ms, pushesPerSec: (ok / ms) * 1000 }))
} else if (scenario === 'idle') {
  const n = Number(opt('connections', 10000))
  const pid = opt('pid')
  const before = rssMiB(pid)
  const sockets = []
  const batch = 200
  for (let i = 0; i < n; i += batch) {
    const opened = await Promise.all(
      Array.from({ length: Math.min(batch, n - i) }, async (_, j) => {
        const storeId = `idle-${tag}-${(i + j) % 100}`
        const ws = await connect(storeId)
        await new Promise((resolve) => {
          ws.once('message', resolve)
          ws.send(JSON.stringify({ _tag: 'Request', id: '1', tag: 'SyncWsRpc.Pull', payload: { storeId, live: true, cursor: { _tag: 'None' } }, headers: [] }))
        })
        ws.send(JSON.stringify({ _tag: 'Ack', requestId: '1' }))
        return ws
      }),
    )
    sockets.push(...opened)
  }
  await new Promise((r) => setTimeout(r, 1500))
  const after = rssMiB(pid)
  for (const ws of sockets) ws.terminate()
  console.log(JSON.stringify({ scenario, connections: sockets.length, rssBeforeMiB: before, rssMiB: after }))
} else if (scenario === 'store-creation') {
  const total = Number(opt('stores', 10000))
  const window = Number(opt('window', 1000))
  const concurrency = Number(opt('concurrency', 16))
  const maxMs = Number(opt('max-seconds', 600)) * 1000
  const push = (ws, storeId, seq) =>
    request(ws, { _tag: 'Request', id: String(seq), tag: 'SyncWsRpc.Push', payload: { storeId, batch: [event(seq)], backendId: { _tag: 'None' } }, headers: [] })
  // The witness: an existing store whose pushes must not slow down while stores are created.
  const witnessId = `witness-${tag}`
  const witness = await connect(witnessId)
  let witnessSeq = 0
  let latencies = []
  let creating = true
  const witnessLoop = (async () => {
    while (creating) {
      const t = performance.now()
      const reply = await push(witness, witnessId, ++witnessSeq)
      if (reply.exit?._tag !== 'Success') throw new Error(`witness push refused: ${JSON.stringify(reply)}`)
      latencies.push(performance.now() - t)
      await new Promise((r) => setTimeout(r, 5))
    }
  })()
  const pct = (xs, p) => {
    if (!xs.length) return NaN
    const s = [...xs].sort((a, b) => a - b)
    return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]
  }
  const windows = []
  const started = performance.now()
  let next = 0
  let created = 0
  let windowStart = performance.now()
  const createOne = async (n) => {
    const storeId = `created-${tag}-${n}`
    const ws = await connect(storeId)
    const reply = await push(ws, storeId, 1)
    if (reply.exit?._tag !== 'Success') throw new Error(`push to a new store refused: ${JSON.stringify(reply)}`)
    ws.close()
    created++
    if (created % window === 0) {
      const now = performance.now()
      const ms = now - windowStart
      windows.push({ stores: created, storesPerSec: (window / ms) * 1000, msPer1000: (ms * 1000) / window, witnessP50Ms: pct(latencies, 50), witnessP99Ms: pct(latencies, 99), witnessPushes: latencies.length })
      console.error(`# ${created} stores: ${((window / ms) * 1000).toFixed(0)} stores/s, witness p99 ${pct(latencies, 99).toFixed(2)} ms`)
      windowStart = now
      latencies = []
    }
  }
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total && performance.now() - started < maxMs) await createOne(next++)
    }),
  )
  creating = false
  await witnessLoop
  witness.close()
  console.log(JSON.stringify({ scenario, created, seconds: (performance.now() - started) / 1000, windows }))
} else {
  console.error(`unknown scenario ${scenario}`)
  process.exit(2)
}
process.exit(0)
