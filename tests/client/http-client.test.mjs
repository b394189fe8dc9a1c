// The real LiveStore HTTP client (@livestore/sync-cf 0.4.0, makeHttpSync) against livestore-sync.
// Usage: LIVESTORE_SYNC_HTTP_URL=http://127.0.0.1:8787 node --test http-client.test.mjs
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { makeHttpSync } from '@livestore/sync-cf/client'
import { Chunk, Duration, Effect, FetchHttpClient, KeyValueStore, Layer, Option, Stream } from '@livestore/utils/effect'

const URL_BASE = process.env.LIVESTORE_SYNC_HTTP_URL ?? 'http://127.0.0.1:8787'
const TOKEN = process.env.LIVESTORE_SYNC_TOKEN ?? 'insecure-token-change-me'
const payload = { authToken: TOKEN }
const storeId = `http-store-${process.pid}-${Date.now()}`

const ev = (seqNum, parentSeqNum, text) => ({
  name: 'todoCreated-v1',
  args: { id: `todo-${seqNum}`, text },
  seqNum,
  parentSeqNum,
  clientId: 'client-H',
  sessionId: 'client-H-session',
})

const run = (body) =>
  Effect.runPromise(
    Effect.gen(body).pipe(
      Effect.scoped,
      Effect.provide(Layer.mergeAll(KeyValueStore.layerMemory, FetchHttpClient.layer)),
      Effect.timeout(Duration.seconds(20)),
    ),
  )

const collect = (backend, cursor) => backend.pull(cursor).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
const seqNums = (items) => items.flatMap((item) => item.batch.map((e) => e.eventEncoded.seqNum))

test('ping, push, pull, pull from a cursor, ServerAheadError, BackendIdMismatchError', async () => {
  await run(function* () {
    const kv = yield* KeyValueStore.KeyValueStore
    const b = yield* makeHttpSync({ url: URL_BASE, ping: { enabled: false } })({ storeId, clientId: 'client-H', payload })
    yield* b.ping
    yield* b.push([ev(1, 0, 'a'), ev(2, 1, 'b')])
    const all = yield* collect(b, Option.none())
    assert.deepEqual(seqNums(all), [1, 2])
    assert.deepEqual(all[0].batch[0].eventEncoded.args, { id: 'todo-1', text: 'a' })
    const later = yield* collect(b, Option.some({ eventSequenceNumber: 1, metadata: Option.none() }))
    assert.deepEqual(seqNums(later), [2])
    const stale = yield* b.push([ev(2, 1, 'stale')]).pipe(Effect.flip)
    assert.equal(stale._tag, 'ServerAheadError')
    assert.equal(stale.minimumExpectedNum, 2)
    assert.equal(stale.providedNum, 1)

    yield* kv.set('backendId', 'wrong-backend-id')
    const b2 = yield* makeHttpSync({ url: URL_BASE, ping: { enabled: false } })({ storeId, clientId: 'client-H2', payload })
    const mismatch = yield* b2.push([ev(3, 2, 'c')]).pipe(Effect.flip)
    assert.equal(mismatch._tag, 'BackendIdMismatchError')
    assert.equal(mismatch.received, 'wrong-backend-id')
  })
})

test('a wrong token is refused', async () => {
  await run(function* () {
    const bad = yield* makeHttpSync({ url: URL_BASE, ping: { enabled: false } })({
      storeId,
      clientId: 'client-bad',
      payload: { authToken: 'nope' },
    })
    const err = yield* bad.ping.pipe(Effect.flip)
    assert.ok(err, 'ping with a wrong token must fail')
    const push = yield* bad.push([ev(3, 2, 'c')]).pipe(Effect.either)
    assert.equal(push._tag, 'Left')
  })
})
