// Operator hook components on Cloudflare: the same livestore:hooks .wasm files the native
// server loads with --hook, transpiled into the bundle by `scripts/build.mjs --hook name=path`
// (gen/hooks.js lists them). Each Durable Object (one store) instantiates each hook once; the
// Worker does the same for validate-payload.
//
// What differs from the native sandbox: V8 can neither interrupt a running module nor see time
// pass inside one call, so the per-call bounds are compiled into each hook's core modules by
// `wasm-meter` at build time: fuel (HOOK_FUEL loop iterations and function calls per call, where
// the native server has a CPU-time deadline) and a memory cap (HOOK_MEMORY_MIB, as natively). A
// trapped instance is replaced on the next call. Outbound HTTP goes through `fetch` under the
// native rules (src/hook-http.js); a hook suspends while it waits (JSPI), and calls into one
// instance never overlap.
import { HOOKS } from '../gen/hooks.js'
import { wasiImports } from './component.js'
import * as http from '@bytecodealliance/preview2-shim/http'
import { DEFAULT_HTTP_TIMEOUT_MS, outgoingHandler, parseAllowHosts } from './hook-http.js'
import { scratchSetError } from './scratch.js'

const IFACE = {
  validatePayload: 'livestore:hooks/validate-payload@0.1.0',
  onPush: 'livestore:hooks/on-push@0.1.0',
  onPull: 'livestore:hooks/on-pull@0.1.0',
  afterPush: 'livestore:hooks/after-push@0.1.0',
}
const MAX_OUTPUT = 16 << 10
/** Per-call fuel: about 50 ms of a tight loop in V8 on a 2020s server core, the native CPU deadline. */
export const DEFAULT_HOOK_FUEL = 20_000_000
export const DEFAULT_HOOK_MEMORY_MIB = 64
const PAGE = 64 << 10

/** A positive integer from an environment variable, or `fallback`. */
const positive = (value, fallback) => {
  const n = Number(value)
  return Number.isSafeInteger(n) && n > 0 ? n : fallback
}

/** A component's `result` error (jco throws it as a ComponentError carrying `payload`). */
const isRejection = (e) => e !== null && typeof e === 'object' && 'payload' in e && !(e instanceof WebAssembly.RuntimeError)

export class HookRunner {
  /** `vars`: the `HOOK_VARS` object; `logPrefix`: where log lines come from. */
  constructor(vars, allowHosts = [], httpTimeoutMs = DEFAULT_HTTP_TIMEOUT_MS, fuel = DEFAULT_HOOK_FUEL, memoryMib = DEFAULT_HOOK_MEMORY_MIB) {
    this.vars = vars
    this.allowHosts = allowHosts
    this.httpTimeoutMs = httpTimeoutMs
    this.fuel = BigInt(fuel)
    this.memoryMib = memoryMib
    this.instances = new Map() // name → Promise of { exports, current, queue }
    this.scratch = new Map() // `${hook}\u0000${store}` → Map(key → {value, expires})
  }

  static fromEnv(env) {
    let vars = {}
    try {
      vars = JSON.parse(env.HOOK_VARS || '{}')
    } catch (e) {
      console.error(`HOOK_VARS is not a JSON object: ${e.message}`)
    }
    return new HookRunner(
      vars,
      parseAllowHosts(env.HOOK_ALLOW_HOSTS),
      positive(env.HOOK_HTTP_TIMEOUT_MS, DEFAULT_HTTP_TIMEOUT_MS),
      positive(env.HOOK_FUEL, DEFAULT_HOOK_FUEL),
      positive(env.HOOK_MEMORY_MIB, DEFAULT_HOOK_MEMORY_MIB),
    )
  }

  has(fn) {
    return HOOKS.some((h) => h.exports.includes(IFACE[fn]))
  }

  space(hook, store) {
    const k = `${hook}\u0000${store}`
    let s = this.scratch.get(k)
    if (!s) this.scratch.set(k, (s = new Map()))
    return s
  }

  imports(hook, current) {
    return {
      ...wasiImports,
      'wasi:http/types': http.types,
      'wasi:http/outgoing-handler': outgoingHandler(hook, this.allowHosts, this.httpTimeoutMs),
      'livestore:hooks/types': {},
      'livestore:hooks/log': {
        log: (level, message) => {
          const line = `[hook ${hook}] ${String(message).slice(0, MAX_OUTPUT)}`
          ;(console[level] ?? console.log)(line)
        },
      },
      'livestore:hooks/config': { get: (name) => (typeof this.vars[name] === 'string' ? this.vars[name] : undefined) },
      'livestore:hooks/scratch': {
        get: (key) => {
          const entry = this.space(hook, current.store).get(key)
          if (!entry) return undefined
          if (entry.expires !== null && entry.expires <= Date.now()) {
            this.space(hook, current.store).delete(key)
            return undefined
          }
          return entry.value
        },
        set: (key, value, ttlMs) => {
          const space = this.space(hook, current.store)
          const refused = scratchSetError(space, key, value)
          if (refused !== null) return { tag: 'err', val: refused }
          space.set(key, { value: new Uint8Array(value), expires: ttlMs === undefined ? null : Date.now() + Number(ttlMs) })
          return { tag: 'ok', val: undefined }
        },
        delete: (key) => {
          this.space(hook, current.store).delete(key)
        },
      },
    }
  }

  /** The hook's instance, instantiated once (concurrent first calls share the instantiation). */
  instance(h) {
    let inst = this.instances.get(h.name)
    if (!inst) {
      const current = { store: '' }
      // The metered core modules export their fuel and memory-cap globals (scripts/build.mjs).
      const meters = []
      const instantiateCore = async (module, imports) => {
        const instance = await WebAssembly.instantiate(module, imports)
        if (instance.exports.livestore_fuel) meters.push(instance.exports)
        // The cap covers a module's initial memory too, not only what it grows.
        for (const v of Object.values(instance.exports)) {
          if (v instanceof WebAssembly.Memory && v.buffer.byteLength > this.maxPages() * PAGE) {
            throw new Error(`exceeded its ${this.memoryMib} MiB memory cap when instantiated (${v.buffer.byteLength >> 20} MiB)`)
          }
        }
        return instance
      }
      inst = h.instantiate((name) => h.cores[name], this.imports(h.name, current), instantiateCore).then((exports) => {
        if (meters.length === 0) throw new Error(`hook ${h.name} was bundled without fuel metering: rebuild with scripts/build.mjs`)
        return { exports, current, meters, queue: Promise.resolve() }
      })
      this.instances.set(h.name, inst)
      inst.catch(() => this.instances.delete(h.name))
    }
    return inst
  }

  /** Run `work` on `inst` after every call already queued on it: a suspended call is never re-entered. */
  exclusive(inst, work) {
    const turn = inst.queue.then(work)
    inst.queue = turn.catch(() => {})
    return turn
  }

  /**
   * Run `fn` of every hook that has it: `null` when all agree, else the first outcome that is
   * not: `{ rejected: message }` (the hook said no) or `{ failed: message }` (it broke).
   */
  async run(fn, store, call) {
    for (const h of HOOKS) {
      if (!h.exports.includes(IFACE[fn])) continue
      let inst
      try {
        inst = await this.instance(h)
        await this.exclusive(inst, async () => {
          inst.current.store = store
          for (const m of inst.meters) {
            m.livestore_fuel.value = this.fuel
            m.livestore_memory_max_pages.value = BigInt(this.maxPages())
            m.livestore_memory_denied.value = 0
          }
          await call(inst.exports[IFACE[fn]])
        })
      } catch (e) {
        if (isRejection(e)) {
          const message = String(e.payload)
          if (message.length > MAX_OUTPUT) {
            return { failed: `hook ${JSON.stringify(h.name)} failed: returned a ${message.length} byte message (limit ${MAX_OUTPUT})` }
          }
          return { rejected: message }
        }
        // A trap leaves the instance unusable: start a fresh one next time.
        this.instances.delete(h.name)
        const why = this.trapCause(inst, e)
        console.error(`hook ${h.name} (${fn}) failed: ${why}`)
        return { failed: `hook ${JSON.stringify(h.name)} failed: ${why}` }
      }
    }
    return null
  }

  /** The memory cap in 64 KiB pages (no 32-bit shifts: the cap may be any size). */
  maxPages() {
    return Math.floor((this.memoryMib * 1024 * 1024) / PAGE)
  }

  /** Why a call trapped: its memory cap, its fuel, or anything else. */
  trapCause(inst, e) {
    const meters = inst?.meters ?? []
    if (meters.some((m) => m.livestore_memory_denied.value !== 0)) return `exceeded its ${this.memoryMib} MiB memory cap`
    if (meters.some((m) => m.livestore_fuel.value < 0n)) {
      return `ran out of fuel (${this.fuel} loop iterations and calls per call, HOOK_FUEL)`
    }
    return `trapped (${e?.message ?? e})`
  }

  validatePayload(storeId, payload, headers) {
    return this.run('validatePayload', storeId, (x) => x.validatePayload(storeId, payload, headers))
  }

  onPush(ctx, batch) {
    return this.run('onPush', ctx.storeId, (x) => x.onPush(ctx, batch))
  }

  onPull(ctx, request) {
    return this.run('onPull', ctx.storeId, (x) => x.onPull(ctx, request))
  }

  afterPush(ctx, batch, createdAt) {
    return this.run('afterPush', ctx.storeId, (x) => x.afterPush(ctx, batch, createdAt))
  }
}

/** The text of a `run` outcome. */
export const outcomeMessage = (outcome) => outcome.rejected ?? outcome.failed

/** The component's `event-row` as a hook's `event`. */
export const hookEvent = (r) => ({
  seqNum: r.seqNum,
  parentSeqNum: r.parentSeqNum,
  name: r.name,
  args: r.args,
  clientId: r.clientId,
  sessionId: r.sessionId,
})
