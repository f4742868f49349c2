// Small typed wrappers over uni storage (localStorage on H5, wx storage in the mini-program).

export function load<T>(key: string, fallback: T): T {
  try {
    const v = uni.getStorageSync(key)
    if (v === '' || v === undefined || v === null) return fallback
    return (typeof v === 'string' ? JSON.parse(v) : v) as T
  } catch {
    return fallback
  }
}

export function save(key: string, value: unknown): void {
  try {
    uni.setStorageSync(key, JSON.stringify(value))
  } catch {
    /* storage full or unavailable: the app still works without it */
  }
}

export function drop(key: string): void {
  try {
    uni.removeStorageSync(key)
  } catch {
    /* ignore */
  }
}
