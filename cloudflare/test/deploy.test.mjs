// scripts/deploy.mjs (`npm run deploy`) against a stand-in wrangler: an open endpoint is never
// deployed by accident, and the URL for the LiveStore client is printed after a deploy.
// Run: node --test test/deploy.test.mjs
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// A copy of the script in a scratch project whose build (a stand-in for scripts/build.mjs) logs
// its arguments and bundles a validate-payload hook when given `--hook`, and a wrangler that logs
// its arguments and answers `secret list` with $FAKE_SECRETS ("fail": not found).
function project() {
  const dir = mkdtempSync(join(tmpdir(), 'deploy-test-'))
  mkdirSync(join(dir, 'scripts'))
  mkdirSync(join(dir, 'gen'))
  copyFileSync(new URL('../scripts/deploy.mjs', import.meta.url), join(dir, 'scripts', 'deploy.mjs'))
  writeFileSync(
    join(dir, 'scripts', 'build.mjs'),
    `import { appendFileSync, writeFileSync } from 'node:fs'
const args = process.argv.slice(2)
appendFileSync(${JSON.stringify(join(dir, 'calls.log'))}, JSON.stringify(['build', ...args]) + '\\n')
const hooks = args.includes('--hook') ? '  { name: "static-token", exports: ["livestore:hooks/validate-payload@0.1.0"] },\\n' : ''
writeFileSync(${JSON.stringify(join(dir, 'gen', 'hooks.js'))}, 'export const HOOKS = [\\n' + hooks + ']\\n')
`,
  )
  const wrangler = join(dir, 'fake-wrangler.mjs')
  writeFileSync(
    wrangler,
    `#!/usr/bin/env node
import { appendFileSync } from 'node:fs'
const args = process.argv.slice(2)
appendFileSync(${JSON.stringify(join(dir, 'calls.log'))}, JSON.stringify(args) + '\\n')
if (args[0] === 'secret') {
  if (process.env.FAKE_SECRETS === 'fail') { console.error('✘ [ERROR] This Worker does not exist on your account. [code: 10007]'); process.exit(1) }
  console.log(process.env.FAKE_SECRETS)
} else if (args[0] === 'deploy' && process.env.FAKE_FREE_PLAN) {
  console.error('✘ [ERROR] A request to the Cloudflare API failed. CPU limits are not supported for the Free plan. [code: 100328]')
  process.exit(1)
} else if (args[0] === 'deploy') {
  console.log('Uploaded livestore-sync-worker (3.1 sec)')
  console.log('Deployed livestore-sync-worker triggers (0.8 sec)')
  console.log('  https://livestore-sync-worker.example.workers.dev')
}
`,
  )
  chmodSync(wrangler, 0o755)
  return { dir, wrangler }
}

function deploy({ dir, wrangler }, args, secrets, env = {}) {
  const r = spawnSync(process.execPath, [join(dir, 'scripts', 'deploy.mjs'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, WRANGLER: wrangler, FAKE_SECRETS: secrets ?? '', ...env },
  })
  let calls = []
  try {
    calls = readFileSync(join(dir, 'calls.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
  } catch {}
  return { ...r, calls }
}

test('a worker without an AUTH_TOKEN secret is not deployed', () => {
  const r = deploy(project(), [], '[]')
  assert.equal(r.status, 1)
  assert.match(r.stderr, /deploy refused: the worker has no AUTH_TOKEN secret/)
  assert.match(r.stderr, /npx wrangler secret put AUTH_TOKEN/)
  assert.deepEqual(r.calls, [['build'], ['secret', 'list', '--format', 'json']], 'wrangler deploy never ran')
})

test('a first deploy (no worker yet) is refused with the way forward, per environment', () => {
  const r = deploy(project(), ['--env', 'd1'], 'fail')
  assert.equal(r.status, 1)
  assert.match(r.stderr, /could not list the worker's secrets .*This Worker does not exist/)
  assert.match(r.stderr, /npx wrangler secret put AUTH_TOKEN --env d1/)
  assert.deepEqual(r.calls, [['build'], ['secret', 'list', '--format', 'json', '--env', 'd1']])
})

test('with the secret it deploys and prints the URL for makeWsSync', () => {
  const r = deploy(project(), ['--env', 'd1'], JSON.stringify([{ name: 'AUTH_TOKEN', type: 'secret_text' }]))
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(r.calls.at(-1), ['deploy', '--env', 'd1'])
  assert.match(r.stdout, /makeWsSync\(\{ url: 'wss:\/\/livestore-sync-worker\.example\.workers\.dev' \}\)/)
})

test('--allow-open deploys an open endpoint on purpose, and says so', () => {
  const r = deploy(project(), ['--allow-open'], '[]')
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stderr, /open endpoint/)
  assert.deepEqual(r.calls, [['build'], ['deploy']], 'no secret lookup, and --allow-open is not passed to wrangler')
})

test('hooks given to deploy are bundled by its build, and a validate-payload hook counts as authentication', () => {
  const r = deploy(project(), ['--hook', 'auth=static_token.wasm', '--env', 'd1'], '[]')
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(r.calls, [['build', '--hook', 'auth=static_token.wasm'], ['deploy', '--env', 'd1']])
})

test('on the Free plan, the refused [limits] block is named with the fix', () => {
  const secrets = JSON.stringify([{ name: 'AUTH_TOKEN', type: 'secret_text' }])
  const r = deploy(project(), [], secrets, { FAKE_FREE_PLAN: '1' })
  assert.equal(r.status, 1)
  assert.match(r.stderr, /code: 100328/, "wrangler's own error is shown")
  assert.match(r.stderr, /Workers Free plan, which allows no \[limits\] block/)
  assert.match(r.stderr, /Delete\nthe two lines "\[limits\]" and "cpu_ms = 30000"/)
  assert.doesNotMatch(r.stdout, /makeWsSync/, 'no URL after a failed deploy')
})
