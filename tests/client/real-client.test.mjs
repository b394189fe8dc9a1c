// The real LiveStore client (@livestore/sync-cf 0.4.0, makeWsSync) against livestore-sync.
// Usage: LIVESTORE_SYNC_URL=ws://127.0.0.1:8787 node --test real-client.test.mjs
// (the Rust test `tests/tests/real_client.rs` starts a server and runs this).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import WS from 'ws'
import { makeWsSync } from '@livestore/sync-cf/client'
import { Chunk, Duration, Effect, Fiber, FetchHttpClient, KeyValueStore, Layer, Option, Stream } from '@livestore/utils/effect'

// Node 20 has no global WebSocket; the client uses whatever is installed there.
globalThis.WebSocket = WS

const URL_BASE = process.env.LIVESTORE_SYNC_URL ?? 'ws://127.0.0.1:8787'
const TOKEN = process.env.LIVESTORE_SYNC_TOKEN ?? 'insecure-token-change-me'
const payload = { authToken: TOKEN }
let storeCounter = 0
const newStore = (name) => `rc-${name}-${process.pid}-${Date.now()}-${storeCounter++}`

const ev = (seqNum, parentSeqNum, clientId, text) => ({
  name: 'todoCreated-v1',
  args: { id: `todo-${seqNum}`, text },
  seqNum,
  parentSeqNum,
  clientId,
  sessionId: `${clientId}-session`,
})

/** Run `body(backend)` with a fresh client for `storeId`; `kvInit` pre-seeds the client's KV store. */
const withBackend = (storeId, clientId, body, { kvInit, clientPayload = payload } = {}) =>
  Effect.gen(function* () {
    const kv = yield* KeyValueStore.KeyValueStore
    if (kvInit !== undefined) for (const [k, v] of Object.entries(kvInit)) yield* kv.set(k, v)
    const backend = yield* makeWsSync({ url: URL_BASE })({ storeId, clientId, payload: clientPayload })
    return yield* body(backend)
  }).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(KeyValueStore.layerMemory, FetchHttpClient.layer)))

const run = (effect) => Effect.runPromise(effect.pipe(Effect.timeout(Duration.seconds(20))))

const collectPull = (backend, cursor) => backend.pull(cursor).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
const seqNums = (items) => items.flatMap((item) => item.batch.map((e) => e.eventEncoded.seqNum))
const cursorAt = (n) => Option.some({ eventSequenceNumber: n, metadata: Option.none() })

test('push, then pull everything and pull from a cursor', async () => {
  const storeId = newStore('pushpull')
  await run(
    withBackend(storeId, 'client-A', (a) =>
      Effect.gen(function* () {
        yield* a.push([ev(1, 0, 'client-A', 'first'), ev(2, 1, 'client-A', 'second'), ev(3, 2, 'client-A', 'third')])
        const all = yield* collectPull(a, Option.none())
        assert.deepEqual(seqNums(all), [1, 2, 3])
        const first = all[0].batch[0]
        assert.deepEqual(first.eventEncoded.args, { id: 'todo-1', text: 'first' })
        assert.equal(first.eventEncoded.clientId, 'client-A')
        assert.equal(Option.isSome(first.metadata), true)
        assert.match(first.metadata.value.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
        assert.equal(all.at(-1).pageInfo._tag, 'NoMore')
        const after2 = yield* collectPull(a, cursorAt(2))
        assert.deepEqual(seqNums(after2), [3])
      }),
    ),
  )
})

test('a stale or gapped push fails with ServerAheadError', async () => {
  const storeId = newStore('ahead')
  await run(
    withBackend(storeId, 'client-A', (a) =>
      Effect.gen(function* () {
        yield* a.push([ev(1, 0, 'client-A', 'a'), ev(2, 1, 'client-A', 'b'), ev(3, 2, 'client-A', 'c')])
        yield* collectPull(a, Option.none())
        const stale = yield* a.push([ev(2, 1, 'client-A', 'stale')]).pipe(Effect.flip)
        assert.equal(stale._tag, 'ServerAheadError')
        assert.equal(stale.minimumExpectedNum, 3)
        assert.equal(stale.providedNum, 1)
        const gap = yield* a.push([ev(5, 4, 'client-A', 'gap')]).pipe(Effect.flip)
        assert.equal(gap._tag, 'ServerAheadError')
        assert.equal(gap.providedNum, 4)
      }),
    ),
  )
})

test('a client holding another backend id gets BackendIdMismatchError on push and pull', async () => {
  const storeId = newStore('backend')
  const backendId = await run(
    withBackend(storeId, 'client-A', (a) =>
      Effect.gen(function* () {
        yield* a.push([ev(1, 0, 'client-A', 'a')])
        yield* collectPull(a, Option.none())
        // The client keeps the server's backend id in its KV store (set during pull).
        const kv = yield* KeyValueStore.KeyValueStore
        return Option.getOrUndefined(yield* kv.get('backendId'))
      }),
    ),
  )
  assert.equal(typeof backendId, 'string')
  await run(
    withBackend(
      storeId,
      'client-C',
      (c) =>
        Effect.gen(function* () {
          const push = yield* c.push([ev(2, 1, 'client-C', 'mismatch')]).pipe(Effect.flip)
          assert.equal(push._tag, 'BackendIdMismatchError')
          assert.equal(push.expected, backendId)
          assert.equal(push.received, 'wrong-backend-id')
          const pull = yield* collectPull(c, cursorAt(1)).pipe(Effect.flip)
          assert.equal(pull._tag, 'BackendIdMismatchError')
          assert.equal(pull.expected, backendId)
        }),
      { kvInit: { backendId: 'wrong-backend-id' } },
    ),
  )
})

test('a live pull receives another client’s push', async () => {
  const storeId = newStore('live')
  await run(
    withBackend(storeId, 'client-A', (a) => a.push([ev(1, 0, 'client-A', 'seed')])),
  )
  const received = []
  const liveFiber = Effect.runFork(
    withBackend(storeId, 'client-B', (b) =>
      b.pull(Option.none(), { live: true }).pipe(
        Stream.tap((item) => Effect.sync(() => received.push(...seqNums([item])))),
        Stream.takeUntil((item) => item.batch.some((e) => e.eventEncoded.seqNum === 3)),
        Stream.runDrain,
      ),
    ),
  )
  // Let B catch up before A pushes.
  for (let i = 0; i < 100 && !received.includes(1); i++) await new Promise((r) => setTimeout(r, 50))
  assert.deepEqual(received, [1])
  await run(
    withBackend(storeId, 'client-A', (a) =>
      Effect.gen(function* () {
        yield* collectPull(a, Option.none())
        yield* a.push([ev(2, 1, 'client-A', 'live-1'), ev(3, 2, 'client-A', 'live-2')])
      }),
    ),
  )
  await run(Fiber.join(liveFiber))
  assert.deepEqual(received, [1, 2, 3])
})

test('a wrong token never connects', async () => {
  const storeId = newStore('badtoken')
  const outcome = await run(
    withBackend(
      storeId,
      'client-X',
      (x) =>
        Effect.gen(function* () {
          const push = yield* x.push([ev(1, 0, 'client-X', 'nope')]).pipe(Effect.timeout(Duration.millis(1500)), Effect.either)
          const connected = yield* x.isConnected.get
          return { pushTag: push._tag, connected }
        }),
      { clientPayload: { authToken: 'nope' } },
    ),
  )
  assert.deepEqual(outcome, { pushTag: 'Left', connected: false })
})
