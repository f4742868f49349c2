// What differs between the H5 site and the WeChat mini-program, in one place.

export type Platform = 'h5' | 'mp-weixin'

export const PLATFORM: Platform = (() => {
  let p: Platform = 'h5'
  // #ifdef MP-WEIXIN
  p = 'mp-weixin'
  // #endif
  return p as Platform
})()

export const IS_H5 = PLATFORM === 'h5'
export const IS_MP = PLATFORM === 'mp-weixin'

/** Where the API lives: the same origin for H5 (served by the backend at /app), configured for the mini-program. */
export function apiBase(): string {
  let base = ''
  // #ifdef MP-WEIXIN
  base = (import.meta.env.VITE_API_BASE as string | undefined) || 'http://127.0.0.1:8000'
  // #endif
  return base.replace(/\/$/, '')
}

/** The WebSocket origin for the live nozzle feed. */
export function wsBase(): string {
  let base = ''
  // #ifdef H5
  base = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`
  // #endif
  // #ifdef MP-WEIXIN
  base = apiBase().replace(/^http/, 'ws')
  // #endif
  return base
}
