#!/usr/bin/env node
// Scenarios beyond bench.mjs, speaking raw LiveStore frames:
//   many-stores URL --stores N --pushes K   N stores pushed concurrently, K sequential 1-event pushes each -> pushes/s
//   idle URL --connections N --pid PID      N idle WebSocket connections (each with a live pull) -> server RSS
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
} else {
  console.error(`unknown scenario ${scenario}`)
  process.exit(2)
}
process.exit(0)
