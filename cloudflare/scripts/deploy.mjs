#!/usr/bin/env node
// `npm run deploy`: the build (scripts/build.mjs, with any `--hook name=path.wasm`), then
// `wrangler deploy`, but never an open endpoint by accident: refuses unless the worker has an
// AUTH_TOKEN secret, a bundled hook validates payloads, or --allow-open says an open endpoint is
// meant; then prints the URL to give the LiveStore client.
//
//   npm run deploy -- [--hook name=path.wasm]… [--allow-open] [any `wrangler deploy` option, e.g. --env d1]
//
// WRANGLER names another wrangler executable (the tests use a stand-in).
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const wrangler = process.env.WRANGLER ?? join(root, 'node_modules', '.bin', 'wrangler')
const args = process.argv.slice(2)
const allowOpen = args.includes('--allow-open')
// `--hook X` pairs go to the build (which bundles them), everything else to wrangler.
const hookArgs = args.flatMap((a, i) => (a === '--hook' ? [a, args[i + 1]] : []))
const deployArgs = args.filter((a, i) => a !== '--allow-open' && a !== '--hook' && args[i - 1] !== '--hook')

// The wrangler environment (`--env d1`, `-e d1`, `--env=d1`): secrets are per environment.
function envArgs() {
  for (const [i, a] of deployArgs.entries()) {
    if (a === '--env' || a === '-e') return [a, deployArgs[i + 1]]
    if (a.startsWith('--env=')) return [a]
  }
  return []
}

function refuse(why) {
  const env = envArgs().join(' ')
  console.error(`deploy refused: ${why}
Clients would sync without any token. Either
  npx wrangler secret put AUTH_TOKEN${env ? ` ${env}` : ''}     (creates the worker if it does not exist yet), then deploy again, or
  bundle a validate-payload hook (npm run deploy -- --hook name=path.wasm …), or
  npm run deploy -- --allow-open${env ? ` ${env}` : ''}          to deploy an open endpoint on purpose.`)
  process.exit(1)
}

function bundledPayloadHook() {
  const hooks = join(root, 'gen', 'hooks.js')
  return existsSync(hooks) && readFileSync(hooks, 'utf8').includes('livestore:hooks/validate-payload@')
}

// The build first: it bundles the hooks, and the check below reads what it bundled.
const built = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs'), ...hookArgs], { cwd: root, stdio: 'inherit' })
if (built.status !== 0) process.exit(built.status ?? 1)

if (allowOpen) {
  console.error('deploying an open endpoint (--allow-open): any client can read and write every store')
} else if (bundledPayloadHook()) {
  console.error('a bundled validate-payload hook checks connections')
} else {
  const listed = spawnSync(wrangler, ['secret', 'list', '--format', 'json', ...envArgs()], { cwd: root, encoding: 'utf8' })
  if (listed.status !== 0) {
    const said = `${listed.stderr ?? ''}${listed.stdout ?? ''}`.trim().split('\n').filter(Boolean).pop() ?? `exit ${listed.status}`
    refuse(`could not list the worker's secrets to find AUTH_TOKEN (wrangler said: ${said})`)
  }
  let names
  try {
    names = JSON.parse(listed.stdout).map((s) => s.name)
  } catch {
    refuse(`wrangler secret list printed no JSON: ${listed.stdout.slice(0, 200)}`)
  }
  if (!names.includes('AUTH_TOKEN')) refuse('the worker has no AUTH_TOKEN secret')
}

const deployed = spawnSync(wrangler, ['deploy', ...deployArgs], { cwd: root, encoding: 'utf8', stdio: ['inherit', 'pipe', 'pipe'] })
process.stdout.write(deployed.stdout ?? '')
process.stderr.write(deployed.stderr ?? '')
if (deployed.status !== 0 && /\b100328\b|CPU limits are not supported/i.test(`${deployed.stdout}${deployed.stderr}`)) {
  console.error(`
This account is on the Workers Free plan, which allows no [limits] block in wrangler.toml. Delete
the two lines "[limits]" and "cpu_ms = 30000" there and deploy again: the Free plan's fixed 10 ms of
CPU per request then applies. Hook calls keep their own bound (HOOK_FUEL) on every plan.`)
}
const url = (deployed.stdout ?? '').match(/https:\/\/[^\s'"]+/)?.[0]
if (deployed.status === 0 && url) {
  const ws = url.replace(/^https:/, 'wss:')
  console.log(`\nLiveStore clients: makeWsSync({ url: '${ws}' }) or makeHttpSync({ url: '${url}' })`)
}
process.exit(deployed.status ?? 1)
