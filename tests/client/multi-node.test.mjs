// Two real LiveStore sync clients (@livestore/sync-cf 0.4.0, makeWsSync), each on its own node
// of one Postgres database, pushing against each other: each keeps a live pull open, pushes its
// next event at the head it knows, and on ServerAheadError waits for its pull to bring what the
// other node admitted, then pushes again at the new head (what LiveStore's rebase does).
// Usage: LIVESTORE_SYNC_URLS=ws://127.0.0.1:A,ws://127.0.0.1:B node --test multi-node.test.mjs
import { test } from 'node:test'
import assert from 'node:assert/strict'
import WS from 'ws'
import { makeWsSync } from '@livestore/sync-cf/client'
import { Deferred, Duration, Effect, FetchHttpClient, Fiber, KeyValueStore, Layer, Option, Ref, Stream } from '@livestore/utils/effect'

globalThis.WebSocket = WS

const URLS = (process.env.LIVESTORE_SYNC_URLS ?? '').split(',').filter(Boolean)
const TOKEN = process.env.LIVESTORE_SYNC_TOKEN ?? 'insecure-token-change-me'
const PER_CLIENT = Number(process.env.EVENTS_PER_CLIENT ?? 100)

const withBackend = (url, storeId, clientId, body) =>
  Effect.gen(function* () {
    const backend = yield* makeWsSync({ url })({ storeId, clientId, payload: { authToken: TOKEN } })
    return yield* body(backend)
  }).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(KeyValueStore.layerMemory, FetchHttpClient.layer)))

const seqNums = (items) => items.flatMap((item) => item.batch.map((e) => e.eventEncoded.seqNum))

test('two clients on two nodes rebase against each other and end with one contiguous log', async () => {
  assert.ok(URLS.length >= 2, 'LIVESTORE_SYNC_URLS names two nodes')
  const storeId = `multi-${process.pid}-${Date.now()}`
  const total = 2 * PER_CLIENT
  const run = (url, clientId) =>
    withBackend(url, storeId, clientId, (backend) =>
      Effect.gen(function* () {
        const head = yield* Ref.make(0)
        const log = yield* Ref.make([])
        const done = yield* Deferred.make()
        const puller = yield* backend.pull(Option.none(), { live: true }).pipe(
          Stream.runForEach((item) =>
            Effect.gen(function* () {
              const events = item.batch.map((e) => e.eventEncoded)
              yield* Ref.update(log, (l) => [...l, ...events])
              if (events.length) yield* Ref.set(head, events.at(-1).seqNum)
              if ((yield* Ref.get(head)) >= total) yield* Deferred.succeed(done, undefined)
            }),
          ),
          Effect.fork,
        )
        let pushed = 0
        let rebases = 0
        while (pushed < PER_CLIENT) {
          const at = yield* Ref.get(head)
          const event = {
            name: 'todoCreated-v1',
            args: { id: `${clientId}-${pushed}`, text: `${clientId} ${pushed}` },
            seqNum: at + 1,
            parentSeqNum: at,
            clientId,
            sessionId: `${clientId}-session`,
          }
          const result = yield* backend.push([event]).pipe(Effect.either)
          if (result._tag === 'Right') {
            pushed++
            while ((yield* Ref.get(head)) < at + 1) yield* Effect.sleep(Duration.millis(1))
            continue
          }
          const cause = JSON.stringify(result.left)
          assert.match(cause, /ServerAheadError/, cause)
          const expected = Number(cause.match(/"minimumExpectedNum":(\d+)/)?.[1] ?? at + 1)
          rebases++
          // The node delivered what the other node admitted before this error.
          while ((yield* Ref.get(head)) < expected) yield* Effect.sleep(Duration.millis(1))
        }
        yield* Deferred.await(done).pipe(Effect.timeout(Duration.seconds(30)))
        yield* Fiber.interrupt(puller)
        return { log: yield* Ref.get(log), rebases }
      }),
    )
  const [a, b] = await Effect.runPromise(
    Effect.all([run(URLS[0], 'client-A'), run(URLS[1], 'client-B')], { concurrency: 2 }).pipe(Effect.timeout(Duration.seconds(90))),
  )
  for (const [name, r] of [['A', a], ['B', b]]) {
    assert.deepEqual(r.log.map((e) => e.seqNum), Array.from({ length: total }, (_, i) => i + 1), `${name}'s live pull: every seqNum once, in order`)
    for (const [i, e] of r.log.entries()) assert.equal(e.parentSeqNum, i, `${name}: parent of ${e.seqNum}`)
  }
  assert.deepEqual(a.log, b.log, 'both nodes delivered the same log')
  for (const c of ['client-A', 'client-B']) {
    const mine = a.log.filter((e) => e.clientId === c).map((e) => e.args.id)
    assert.deepEqual(mine, Array.from({ length: PER_CLIENT }, (_, i) => `${c}-${i}`), `${c}'s events, each once, in its order`)
  }
  console.log(`rebases: A ${a.rebases}, B ${b.rebases}`)
})
