// The worker's copies of the rules both homes implement, checked against schema/vectors.json
// (the Rust unit tests in host/src/shared_rules_tests.rs check the native ones).
// Run after scripts/build.mjs (sql.js reads gen/schema.js): node --test test/
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { encodedTableName, referenceTableName } from '../src/sql.js'
import { MAX_STORE_ID_BYTES, bearerToken, payloadToken, storeIdError, syncParams } from '../src/params.js'
import { SCRATCH, scratchSetError } from '../src/scratch.js'
import { hostAllowed, splitAuthority } from '../src/hook-http.js'

const vectors = JSON.parse(readFileSync(new URL('../../schema/vectors.json', import.meta.url), 'utf8'))
const params = (query) => syncParams(new URL(`http://x/?${query}`))

test('table names', () => {
  for (const c of vectors.tableNames) {
    assert.equal(referenceTableName(c.storeId), c.reference, JSON.stringify(c.storeId))
    assert.equal(encodedTableName(c.storeId), c.encoded, JSON.stringify(c.storeId))
  }
})

test('store ids', () => {
  assert.equal(MAX_STORE_ID_BYTES, vectors.storeIds.maxBytes)
  for (const id of vectors.storeIds.valid) assert.equal(storeIdError({ ok: id }, null), null, JSON.stringify(id))
  for (const c of vectors.storeIds.invalid) assert.equal(storeIdError(params(c.query).storeIdRaw, null), c.error, c.query)
  for (const c of vectors.storeIds.decoded) assert.equal(params(c.query).storeId, c.storeId, c.query)
})

test('auth tokens', () => {
  for (const c of vectors.authTokens) assert.equal(payloadToken(params(c.query)) ?? null, c.token, c.query)
})

test('bearer credentials (the scheme is case-insensitive)', () => {
  for (const c of vectors.bearer) {
    const request = new Request('http://x/', { headers: { authorization: c.authorization } })
    assert.equal(bearerToken(request) ?? null, c.token, JSON.stringify(c.authorization))
  }
})

test('scratch limits', () => {
  const s = vectors.scratch
  assert.deepEqual([SCRATCH.key, SCRATCH.value, SCRATCH.keys], [s.maxKeyBytes, s.maxValueBytes, s.maxKeys])
  for (const c of s.keys) assert.equal(scratchSetError(new Map(), c.key, new Uint8Array()) === null, c.ok, c.key)
  // A full space purges expired keys before it refuses a new one.
  const full = new Map(Array.from({ length: SCRATCH.keys }, (_, i) => [`k${i}`, { value: null, expires: i === 0 ? 1 : null }]))
  assert.equal(scratchSetError(full, 'new', new Uint8Array(), 2), null)
  assert.equal(full.has('k0'), false)
  full.set('new', { value: null, expires: null })
  assert.match(scratchSetError(full, 'newer', new Uint8Array(), 2) ?? '', /scratch space full/)
})

test('hook HTTP allowlist', () => {
  for (const c of vectors.allowHosts.cases) {
    assert.equal(hostAllowed(vectors.allowHosts.allow, c.host, c.port), c.allowed, `${c.host}:${c.port}`)
    assert.equal(hostAllowed([], c.host, c.port), false)
  }
  assert.deepEqual(splitAuthority('[::1]:8080', false), { host: '[::1]', port: 8080 })
  assert.deepEqual(splitAuthority('hooks.example.com', true), { host: 'hooks.example.com', port: 443 })
  assert.deepEqual(splitAuthority('127.0.0.1', false), { host: '127.0.0.1', port: 80 })
})
