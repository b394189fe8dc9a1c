// Hooks' outbound HTTP (`wasi:http/outgoing-handler`) on Cloudflare: the platform's `fetch`
// (through @bytecodealliance/preview2-shim's fetch-based wasi:http), under the rules the native
// server applies (host/src/hooks/http.rs): only hosts of the operator's allowlist
// (HOOK_ALLOW_HOSTS: `host`, `host:port`, `*.domain`), every timeout clamped to
// HOOK_HTTP_TIMEOUT_MS, no redirects followed, and a refusal is `HTTP-request-denied`, logged.
// The hook suspends (JSPI) while the request runs; see scripts/build.mjs.
import * as http from '@bytecodealliance/preview2-shim/http'

export const DEFAULT_HTTP_TIMEOUT_MS = 5000

/** `HOOK_ALLOW_HOSTS` (comma-separated) as a list of entries. */
export const parseAllowHosts = (text) =>
  String(text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)

/** Whether `host` and `port` match an entry: `host`, `host:port` or `*.domain` (ASCII case ignored). */
export function hostAllowed(allow, host, port) {
  const h = host.replace(/^\[/, '').replace(/\]$/, '').toLowerCase()
  return allow.some((raw) => {
    const entry = raw.toLowerCase()
    const colon = entry.lastIndexOf(':')
    let pattern = entry
    let wantPort = null
    if (colon > 0 && /^[0-9]+$/.test(entry.slice(colon + 1)) && Number(entry.slice(colon + 1)) <= 65535) {
      pattern = entry.slice(0, colon)
      wantPort = Number(entry.slice(colon + 1))
    }
    pattern = pattern.replace(/^\[/, '').replace(/\]$/, '')
    const hostOk = pattern.startsWith('*.') ? h.endsWith(`.${pattern.slice(2)}`) : h === pattern
    return hostOk && (wantPort === null || wantPort === port)
  })
}

/** `authority` (`host[:port]`, IPv6 in brackets) split, with the scheme's default port. */
export function splitAuthority(authority, https) {
  const text = String(authority ?? '')
  const m = text.match(/^(\[[^\]]*\]|[^:]*)(?::([0-9]+))?$/)
  const host = m ? m[1] : text
  const port = m && m[2] !== undefined ? Number(m[2]) : https ? 443 : 80
  return { host, port }
}

// The shim calls the global fetch, which follows redirects: an allowlisted host could send a
// hook anywhere. Hooks are the only caller of the global fetch in this worker, so it is wrapped
// once to hand 3xx answers back to the hook, as the native sender does.
let redirectsPinned = false
function pinRedirects() {
  if (redirectsPinned) return
  redirectsPinned = true
  const fetch = globalThis.fetch
  globalThis.fetch = (input, init = {}) => fetch(input, { ...init, redirect: 'manual' })
}

/** The `wasi:http/outgoing-handler` a hook named `hook` gets. */
export function outgoingHandler(hook, allow, timeoutMs) {
  pinRedirects()
  const limitNs = BigInt(Math.max(1, Math.floor(timeoutMs))) * 1_000_000n
  const clamp = (ns) => (ns === undefined || ns > limitNs ? limitNs : ns)
  return {
    handle(request, options) {
      const scheme = request.scheme()
      const https = scheme?.tag === 'HTTPS'
      const { host, port } = splitAuthority(request.authority(), https)
      if (!hostAllowed(allow, host, port)) {
        console.warn(
          `hook ${JSON.stringify(hook)} tried to reach ${host}:${port}, which is not allowlisted (HOOK_ALLOW_HOSTS)`,
        )
        throw { tag: 'HTTP-request-denied' }
      }
      const clamped = new http.types.RequestOptions()
      clamped.setConnectTimeout(clamp(options?.connectTimeout?.()))
      clamped.setFirstByteTimeout(clamp(options?.firstByteTimeout?.()))
      clamped.setBetweenBytesTimeout(clamp(options?.betweenBytesTimeout?.()))
      return http.outgoingHandler.handle(request, clamped)
    },
  }
}
