// The sync query (`?storeId=…&payload=…&transport=ws|http`) and the connection-time token
// check: the same rules as host/src/sync_params.rs and host/src/server.rs.

/** The real client encodes the payload twice; accept a once-encoded payload too. */
export function decodePayload(onceDecoded) {
  try {
    return { ok: JSON.parse(decodeURIComponent(onceDecoded)) }
  } catch {}
  try {
    return { ok: JSON.parse(onceDecoded) }
  } catch {
    return { raw: onceDecoded }
  }
}

export function syncParams(url) {
  const q = url.searchParams
  const transport = q.get('transport')
  return {
    storeId: q.get('storeId'),
    transport: transport === 'ws' || transport === 'http' ? transport : null,
    payload: q.has('payload') ? decodePayload(q.get('payload')) : null,
    clientId: q.get('clientId') ?? undefined,
    token: q.get('token') ?? undefined,
  }
}

export const payloadToken = (params) => {
  const t = params.payload?.ok?.authToken
  return typeof t === 'string' ? t : undefined
}

export const bearerToken = (request) => {
  const h = request.headers.get('authorization') ?? ''
  return h.startsWith('Bearer ') ? h.slice(7) : undefined
}

/** Constant-time comparison (no early exit on content; the length only decides the result). */
export function tokenMatches(presented, expected) {
  if (typeof presented !== 'string') return false
  const a = new TextEncoder().encode(presented)
  const b = new TextEncoder().encode(expected)
  let diff = a.length ^ b.length
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0)
  return diff === 0
}
