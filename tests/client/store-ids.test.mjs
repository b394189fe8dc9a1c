// Store ids as real apps and LiveStore's own test suite write them, through the real LiveStore
// clients (@livestore/sync-cf 0.4.0, makeWsSync and makeHttpSync): every id syncs, and every
// store sees only its own events and head, even for ids that differ only in case, in Unicode
// normalization form, in punctuation, or past the 128th character.
// Usage: LIVESTORE_SYNC_URL=ws://… LIVESTORE_SYNC_HTTP_URL=http://… node --test store-ids.test.mjs
import { test } from 'node:test'
import assert from 'node:assert/strict'
import WS from 'ws'
import { makeHttpSync, makeWsSync } from '@livestore/sync-cf/client'
import { Chunk, Duration, Effect, FetchHttpClient, KeyValueStore, Layer, Option, Stream } from '@livestore/utils/effect'

globalThis.WebSocket = WS

const WS_URL = process.env.LIVESTORE_SYNC_URL ?? 'ws://127.0.0.1:8787'
const HTTP_URL = process.env.LIVESTORE_SYNC_HTTP_URL ?? 'http://127.0.0.1:8787'
const TOKEN = process.env.LIVESTORE_SYNC_TOKEN ?? 'insecure-token-change-me'
const payload = { authToken: TOKEN }
const run = `${process.pid}-${Date.now()}`

/** Ids every transport can carry. */
const commonIds = (tag) => [
  // The shape of LiveStore's sync-provider test suite ids.
  `test-store-${tag} WS-can ping sync backend-${run}`,
  `${tag} (parens) user:42`,
  `${tag}/team/abc`,
  `${tag} ada@example.com`,
  `${tag} 100% sure`,
  `${tag} a+b?c=d&e#f`,
  `${tag} Zoë Café`,
  `${tag}-${'p'.repeat(300)}`,
  // Pairs and triples one careless mapping would merge.
  `${tag}-Abc`,
  `${tag}-abc`,
  `${tag}-ABC`,
  `${tag}-${'q'.repeat(140)}-1`,
  `${tag}-${'q'.repeat(140)}-2`,
  `${tag} a-b`,
  `${tag} a_b`,
  `${tag} a b`,
  `${tag} a/b`,
  `${tag} a%2Fb`,
].map((id) => `${id} ${run}`)

/** Ids with characters past U+00FF: makeHttpSync also sends the store id in an
 * `x-livestore-store-id` header, and fetch refuses such header values before any request. */
const wideIds = (tag) => [`${tag} 東京 😀`, `${tag} caf\u00e9`, `${tag} cafe\u0301`].map((id) => `${id} ${run}`)

const ev = (seqNum, clientId, text) => ({
  name: 'todoCreated-v1',
  args: { id: `todo-${seqNum}`, text },
  seqNum,
  parentSeqNum: seqNum - 1,
  clientId,
  sessionId: `${clientId}-session`,
})

const runEffect = (effect) =>
  Effect.runPromise(
    effect.pipe(
      Effect.scoped,
      Effect.provide(Layer.mergeAll(KeyValueStore.layerMemory, FetchHttpClient.layer)),
      Effect.timeout(Duration.seconds(30)),
    ),
  )

const collect = (backend) => backend.pull(Option.none()).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))

/** Push 1 to 3 events to each store (each event names its store), then pull each store back. */
async function eachStoreSeesOnlyItsOwnEvents(ids, makeBackend) {
  const count = (i) => (i % 3) + 1
  for (const [i, storeId] of ids.entries()) {
    await runEffect(
      Effect.gen(function* () {
        const b = yield* makeBackend(storeId, `client-${i}`)
        yield* b.push(Array.from({ length: count(i) }, (_, k) => ev(k + 1, `client-${i}`, storeId)))
      }),
    )
  }
  for (const [i, storeId] of ids.entries()) {
    const items = await runEffect(
      Effect.gen(function* () {
        return yield* collect(yield* makeBackend(storeId, `reader-${i}`))
      }),
    )
    const events = items.flatMap((item) => item.batch.map((e) => e.eventEncoded))
    assert.deepEqual(
      events.map((e) => [e.seqNum, e.args.text]),
      Array.from({ length: count(i) }, (_, k) => [k + 1, storeId]),
      `store ${JSON.stringify(storeId)} must hold exactly its own ${count(i)} events`,
    )
    // The head is the store's own: the next push continues from it.
    await runEffect(
      Effect.gen(function* () {
        const b = yield* makeBackend(storeId, `client-${i}`)
        yield* b.push([ev(count(i) + 1, `client-${i}`, storeId)])
      }),
    )
  }
}

const wsBackend = (storeId, clientId) => makeWsSync({ url: WS_URL })({ storeId, clientId, payload })
const httpBackend = (storeId, clientId) =>
  makeHttpSync({ url: HTTP_URL, ping: { enabled: false } })({ storeId, clientId, payload })

test('WebSocket client: any store id syncs, and each store sees only its own events', async () => {
  await eachStoreSeesOnlyItsOwnEvents([...commonIds('ws'), ...wideIds('ws')], wsBackend)
})

test('HTTP client: any store id syncs, and each store sees only its own events', async () => {
  await eachStoreSeesOnlyItsOwnEvents(commonIds('http'), httpBackend)
})
