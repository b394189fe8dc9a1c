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

/** A store id is any non-empty UTF-8 string of at most this many bytes (as natively). */
export const MAX_STORE_ID_BYTES = 1024

const utf8 = new TextDecoder('utf-8', { fatal: true })
const lossy = new TextDecoder('utf-8')

/**
 * The bytes of one form-urlencoded component (`+` is a space; a `%` not followed by two hex
 * digits stays as it is), as the native server and `URLSearchParams` read it.
 */
function componentBytes(raw) {
  const bytes = []
  const text = new TextEncoder()
  const chars = Array.from(raw) // code points, so a character outside the BMP stays whole
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]
    const hex = chars.slice(i + 1, i + 3).join('')
    if (c === '%' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16))
      i += 2
    } else {
      bytes.push(...text.encode(c === '+' ? ' ' : c))
    }
  }
  return new Uint8Array(bytes)
}

/**
 * The last `storeId` value decoded byte-exactly: `{ ok }`, or `{ error }` when its bytes are
 * not UTF-8 (`URLSearchParams` would replace them with U+FFFD and merge different ids).
 */
function rawStoreId(search) {
  let found = null
  for (const pair of search.replace(/^\?/, '').split('&')) {
    const eq = pair.indexOf('=')
    const key = lossy.decode(componentBytes(eq < 0 ? pair : pair.slice(0, eq)))
    if (key !== 'storeId') continue
    try {
      found = { ok: utf8.decode(componentBytes(eq < 0 ? '' : pair.slice(eq + 1))) }
    } catch {
      found = { error: 'invalid storeId: not valid UTF-8 once percent-decoded' }
    }
  }
  return found
}

/** The store-id rule: the error message for a refused id, or `null`. */
export function storeIdError(found, pattern) {
  if (found === null) return 'Missing storeId query parameter'
  if (found.error) return found.error
  const bytes = new TextEncoder().encode(found.ok).length
  if (bytes === 0) return 'invalid storeId: it is empty'
  if (bytes > MAX_STORE_ID_BYTES) return `invalid storeId: ${bytes} bytes of UTF-8, at most ${MAX_STORE_ID_BYTES} are allowed`
  if (pattern && !pattern.test(found.ok)) {
    return `invalid storeId ${JSON.stringify(found.ok)}: this server only accepts ids matching ${pattern.source}`
  }
  return null
}

export function syncParams(url) {
  const q = url.searchParams
  const transport = q.get('transport')
  const storeId = rawStoreId(url.search)
  return {
    storeId: storeId?.ok ?? null,
    storeIdRaw: storeId,
    transport: transport === 'ws' || transport === 'http' ? transport : null,
    unknownTransport: transport !== null && transport !== 'ws' && transport !== 'http' ? transport : null,
    payload: q.has('payload') ? decodePayload(q.get('payload')) : null,
    clientId: q.get('clientId') ?? undefined,
    token: q.get('token') ?? undefined,
  }
}

export const payloadToken = (params) => {
  const t = params.payload?.ok?.authToken
  return typeof t === 'string' ? t : undefined
}

/** The credentials of `Authorization: Bearer …`; the scheme name is case-insensitive (RFC 7235). */
export const bearerToken = (request) => {
  const m = /^\s*bearer[ \t]+(\S.*?)\s*$/i.exec(request.headers.get('authorization') ?? '')
  return m ? m[1] : undefined
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
