// The hooks' scratch space limits, as natively (host/src/hooks/scratch.rs; both are checked
// against schema/vectors.json): sizes in UTF-8 bytes, expired keys purged before a full space
// refuses a new one.

export const SCRATCH = { key: 256, value: 4096, keys: 1024 }

/** Why `space.set(key, …)` must be refused (`null`: it may be stored); purges expired keys. */
export function scratchSetError(space, key, value, now = Date.now()) {
  if (new TextEncoder().encode(key).length > SCRATCH.key) return `scratch keys are at most ${SCRATCH.key} bytes`
  if (value.length > SCRATCH.value) return `scratch values are at most ${SCRATCH.value} bytes`
  if (space.size >= SCRATCH.keys && !space.has(key)) {
    for (const [k, entry] of space) if (entry.expires !== null && entry.expires <= now) space.delete(k)
    if (space.size >= SCRATCH.keys) return `scratch space full (${SCRATCH.keys} keys per hook and store)`
  }
  return null
}
