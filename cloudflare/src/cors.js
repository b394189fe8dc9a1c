// Browser origins on the Worker, like the native server's `--cors` / `--allowed-origin`:
// `CORS` ("true") answers preflights and marks responses readable from other origins;
// `ALLOWED_ORIGINS` (comma-separated) narrows that to a list (the response names the request's
// own origin with `Vary: Origin`; other origins get 403). Without `CORS` nothing changes, as
// with `@livestore/sync-cf`'s `enableCORS: false`.

const truthy = (v) => ['1', 'true', 'yes', 'on'].includes(String(v ?? '').trim().toLowerCase())

export function corsPolicy(env) {
  const origins = String(env.ALLOWED_ORIGINS ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean)
  return { enabled: truthy(env.CORS), origins }
}

/** `null` when the request may go on; otherwise the response to give (403). */
export function refuseOrigin(request, policy) {
  const origin = request.headers.get('origin')
  if (policy.origins.length === 0 || origin === null || policy.origins.includes('*')) return null
  if (policy.origins.some((o) => o.toLowerCase() === origin.toLowerCase())) return null
  return new Response('Origin not allowed\n', { status: 403, headers: { 'content-type': 'text/plain; charset=utf-8' } })
}

/** The answer to an `OPTIONS` preflight. */
export function preflight(request) {
  return new Response(null, {
    status: 204,
    headers: {
      'access-control-allow-methods': 'GET, POST, OPTIONS',
      'access-control-allow-headers':
        request.headers.get('access-control-request-headers') ?? 'content-type, authorization, x-livestore-store-id, traceparent, b3',
      'access-control-max-age': '86400',
    },
  })
}

/** `response` with the CORS headers for `request` (WebSocket upgrades are returned as they are). */
export function withCors(request, response, policy) {
  if (!policy.enabled || response.status === 101) return response
  const out = new Response(response.body, response)
  const origin = request.headers.get('origin')
  if (policy.origins.length === 0 || policy.origins.includes('*')) {
    out.headers.set('access-control-allow-origin', '*')
  } else if (origin !== null && policy.origins.some((o) => o.toLowerCase() === origin.toLowerCase())) {
    out.headers.set('access-control-allow-origin', origin)
    out.headers.append('vary', 'Origin')
  } else {
    out.headers.append('vary', 'Origin')
  }
  return out
}
