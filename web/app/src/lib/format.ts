// Money is integer fen and volume integer millilitres everywhere; this is the only place
// they become text: ¥ with 2 decimals, litres with 2 decimals.

function twoDecimals(hundredths: number): string {
  const sign = hundredths < 0 ? '-' : ''
  const abs = Math.abs(hundredths)
  const whole = Math.floor(abs / 100)
  const frac = String(abs % 100).padStart(2, '0')
  return `${sign}${whole}.${frac}`
}

/** 21688 -> "¥216.88"; -500 -> "-¥5.00". */
export function yuan(fen: number | null | undefined): string {
  if (fen === null || fen === undefined) return '¥0.00'
  const text = twoDecimals(Math.abs(Math.round(fen)))
  return fen < 0 ? `-¥${text}` : `¥${text}`
}

/** 21688 -> "216.88" (no sign, for big figures with a separate ¥). */
export function yuanNumber(fen: number | null | undefined): string {
  return twoDecimals(Math.round(fen ?? 0))
}

/** 23574 ml -> "23.57" (half up at 5 ml). */
export function litresNumber(ml: number | null | undefined): string {
  const v = Math.max(0, Math.round(ml ?? 0))
  return twoDecimals(Math.floor((v + 5) / 10))
}

/** 23574 ml -> "23.57 L". */
export function litres(ml: number | null | undefined): string {
  return `${litresNumber(ml)} L`
}

/** Price per litre: 832 -> "¥8.32/L". */
export function perLitre(fen: number | null | undefined): string {
  return fen === null || fen === undefined ? '--' : `${yuan(fen)}/L`
}

/** 626.3 -> "626 m"; 1242 -> "1.2 km". */
export function distance(m: number | null | undefined): string {
  if (m === null || m === undefined) return ''
  if (m < 1000) return `${Math.round(m)} m`
  return `${(m / 1000).toFixed(m < 10000 ? 1 : 0)} km`
}

/** ISO time -> "11-25 06:56" in the device's zone. */
export function shortTime(iso: string | null | undefined): string {
  if (!iso) return ''
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return ''
  const p = (n: number) => String(n).padStart(2, '0')
  return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`
}

/** ISO time -> "2026-11-25 06:56:13". */
export function fullTime(iso: string | null | undefined): string {
  if (!iso) return ''
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return ''
  const p = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(
    d.getMinutes(),
  )}:${p(d.getSeconds())}`
}

/** "yuan" text typed by a driver -> fen, or null when it is not a valid amount. */
export function parseYuan(text: string): number | null {
  const t = text.trim()
  if (!/^\d{1,6}(\.\d{0,2})?$/.test(t)) return null
  const [whole, frac = ''] = t.split('.')
  return Number(whole) * 100 + Number(frac.padEnd(2, '0'))
}
