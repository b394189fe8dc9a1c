#!/usr/bin/env node
// One store's events from a @livestore/sync-cf deployment → `livestore-sync import` JSON lines.
//   node scripts/d1-to-import.mjs [--store-id ID [--backend-id ID]] FILE… > store.jsonl
// FILE (`-`: stdin; several files: pages) is `wrangler d1 execute … --json` output for
// `SELECT * FROM eventlog_7_<table>`, a plain array of such rows (`sqlite3 -json`), or the answer
// to an HTTP-transport pull (`SyncHttpRpc.Pull`), which also carries the backend id. With
// --store-id and a backend id a header line is written: the import keeps that backend id.
import { readFileSync } from 'node:fs'

const argv = process.argv.slice(2)
const option = (name) => (argv.includes(name) ? argv.splice(argv.indexOf(name), 2)[1] : undefined)
const fail = (message) => {
  console.error(`d1-to-import: ${message}`)
  process.exit(1)
}
const storeId = option('--store-id')
let backendId = option('--backend-id')
if (argv.length === 0) fail('usage: d1-to-import.mjs [--store-id ID [--backend-id ID]] FILE… > store.jsonl')

const bySeq = new Map()
function add(e, argsText) {
  for (const k of ['seqNum', 'parentSeqNum', 'name', 'createdAt', 'clientId', 'sessionId']) {
    if (e[k] === undefined || e[k] === null) fail(`an event without ${k}: ${JSON.stringify(e).slice(0, 300)}`)
  }
  const { seqNum, parentSeqNum, name, createdAt, clientId, sessionId } = e
  let line = JSON.stringify({ seqNum, parentSeqNum, name, createdAt, clientId, sessionId })
  if (argsText !== null && argsText !== undefined) {
    try {
      JSON.parse(argsText)
    } catch {
      fail(`seqNum ${seqNum}: args is not JSON text: ${String(argsText).slice(0, 200)}`)
    }
    // Kept as stored (not re-encoded); raw line breaks can only be JSON whitespace.
    line = `${line.slice(0, -1)},"args":${argsText.replace(/[\r\n]/g, ' ')}}`
  }
  if (bySeq.has(seqNum) && bySeq.get(seqNum).line !== line) fail(`seqNum ${seqNum} appears twice, different`)
  bySeq.set(seqNum, { parentSeqNum, line })
}

for (const file of argv) {
  const json = JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8'))
  if (!Array.isArray(json)) fail(`${file}: expected a JSON array, got ${JSON.stringify(json).slice(0, 200)}`)
  if (json.some((m) => m?._tag === 'Chunk' || m?._tag === 'Exit')) {
    const failed = json.find((m) => m._tag === 'Exit' && m.exit?._tag !== 'Success')
    if (failed) fail(`${file}: the pull failed: ${JSON.stringify(failed).slice(0, 300)}`)
    for (const value of json.filter((m) => m._tag === 'Chunk').flatMap((m) => m.values)) {
      if (backendId !== undefined && backendId !== value.backendId) fail(`${file}: backend id ${value.backendId}, not ${backendId}`)
      backendId = value.backendId
      for (const { eventEncoded: e, metadata } of value.batch) {
        add({ ...e, createdAt: metadata?.value?.createdAt }, e.args === undefined || e.args === null ? null : JSON.stringify(e.args))
      }
    }
  } else {
    const rows = json.every((r) => Array.isArray(r?.results)) ? json.flatMap((r) => r.results) : json
    for (const r of rows) add(r ?? {}, r?.args)
  }
}

const seqs = [...bySeq.keys()].sort((a, b) => a - b)
let head = 0
for (const s of seqs) {
  const { parentSeqNum } = bySeq.get(s)
  if (parentSeqNum !== head) fail(`seqNum ${s} has parentSeqNum ${parentSeqNum}, expected ${head}: events are missing`)
  head = s
}
if (backendId !== undefined && storeId === undefined) fail('pass --store-id to write the header that keeps the backend id')
const lines = seqs.map((s) => bySeq.get(s).line)
if (backendId !== undefined) lines.unshift(JSON.stringify({ livestoreSyncExport: 1, storeId, backendId, head, events: seqs.length }))
process.stdout.write(lines.map((l) => `${l}\n`).join(''))
console.error(`d1-to-import: ${seqs.length} events, head ${head}, ${backendId !== undefined ? `backend id ${backendId} kept` : 'no header: new backend id on import'}`)
