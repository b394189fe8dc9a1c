// A LiveStore app for Node that syncs its todos through livestore-sync.
// Run it twice with different names: each prints every todo, its own and the other's.
import { makeAdapter } from '@livestore/adapter-node'
import { createStorePromise, Events, makeSchema, queryDb, Schema, State } from '@livestore/livestore'
import { makeWsSync } from '@livestore/sync-cf/client'
import { WebSocket } from 'ws'

globalThis.WebSocket ??= WebSocket // Node 20 has no WebSocket global (Node 22 has one)

const todos = State.SQLite.table({
  name: 'todos',
  columns: { id: State.SQLite.text({ primaryKey: true }), text: State.SQLite.text() },
})
const events = {
  todoCreated: Events.synced({
    name: 'v1.TodoCreated',
    schema: Schema.Struct({ id: Schema.String, text: Schema.String }),
  }),
}
const materializers = State.SQLite.materializers(events, {
  'v1.TodoCreated': ({ id, text }) => todos.insert({ id, text }),
})
const schema = makeSchema({ events, state: State.SQLite.makeState({ tables: { todos }, materializers }) })

const [name = 'alice', text = `hello from ${name}`] = process.argv.slice(2)
const url = process.env.SYNC_URL ?? 'ws://localhost:8787'

const adapter = makeAdapter({
  clientId: name,
  storage: { type: 'fs', baseDirectory: `./data/${name}` },
  // Start from the server's events (up to 5 s), so a new todo follows them instead of racing them.
  sync: { backend: makeWsSync({ url }), initialSyncOptions: { _tag: 'Blocking', timeout: 5000 } },
})
const store = await createStorePromise({
  adapter,
  schema,
  storeId: 'quickstart',
  syncPayload: { authToken: process.env.AUTH_TOKEN ?? 'insecure-token-change-me' },
})

store.subscribe(queryDb(todos.orderBy('text', 'asc')), (rows) => console.log(`todos: ${rows.map((r) => r.text).join(' | ')}`))
store.commit(events.todoCreated({ id: crypto.randomUUID(), text }))

process.on('SIGINT', async () => {
  await store.shutdownPromise()
  process.exit(0)
})
