// Idempotency keys and other random ids (works in browsers and in the mini-program).

function randomHex(bytes: number): string {
  let out = ''
  const g = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto
  if (g?.getRandomValues) {
    const buf = g.getRandomValues(new Uint8Array(bytes))
    for (const b of buf) out += b.toString(16).padStart(2, '0')
    return out
  }
  for (let i = 0; i < bytes; i++) out += Math.floor(Math.random() * 256).toString(16).padStart(2, '0')
  return out
}

/** A fresh idempotency key: one per user intent, reused for every retry of that intent. */
export function newKey(prefix = 'k'): string {
  return `${prefix}-${Date.now().toString(36)}-${randomHex(10)}`
}
