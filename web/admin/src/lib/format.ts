// Display helpers: money is integer fen shown in 元, volume is integer mL shown in litres,
// times in Asia/Shanghai.

export function yuan(fen: number | null | undefined): string {
  if (fen === null || fen === undefined) return '—'
  const sign = fen < 0 ? '-' : ''
  const abs = Math.abs(fen)
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`
}

export function yuanLabel(fen: number | null | undefined): string {
  return fen === null || fen === undefined ? '—' : `¥${yuan(fen)}`
}

/** "7.89" → 789; null when it is not a money amount with at most two decimals. */
export function parseYuan(text: string): number | null {
  const t = text.trim()
  if (!/^\d{1,7}(\.\d{1,2})?$/.test(t)) return null
  const [whole, frac = ''] = t.split('.')
  return Number(whole) * 100 + Number(frac.padEnd(2, '0'))
}

export function litres(ml: number | null | undefined, digits = 2): string {
  if (ml === null || ml === undefined) return '—'
  return (ml / 1000).toFixed(digits)
}

const DT = new Intl.DateTimeFormat('zh-CN', {
  timeZone: 'Asia/Shanghai',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
})

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  return DT.format(d).replace(/\//g, '-')
}

/** Today's business date (Asia/Shanghai) as YYYY-MM-DD, shifted by `days`. */
export function businessDate(days = 0): string {
  const d = new Date(Date.now() + days * 86400000)
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(d)
}

/** Never show a full phone number: keep the first 3 and last 4 digits. */
export function maskPhone(phone: string | null | undefined): string {
  if (!phone) return '—'
  if (phone.includes('*')) return phone
  const digits = phone.replace(/\D/g, '')
  if (digits.length < 7) return '****'
  return `${digits.slice(0, 3)}****${digits.slice(-4)}`
}

export function newKey(prefix: string): string {
  const rnd = crypto.getRandomValues(new Uint32Array(2))
  return `${prefix}-${Date.now().toString(36)}-${rnd[0].toString(36)}${rnd[1].toString(36)}`
}

export const STATUS_LABELS: Record<string, string> = {
  created: '待支付',
  pending: '待支付',
  paying: '支付中',
  paid: '已支付',
  completed: '已完成',
  closed: '已关闭',
  expired: '已过期',
  cancelled: '已取消',
  refunded: '已退款',
  partially_refunded: '部分退款',
  refunding: '退款中',
  processing: '处理中',
  succeeded: '成功',
  failed: '失败',
  pending_approval: '待审批',
  rejected: '已驳回',
  payable: '待支付',
  locked: '已锁定',
  cleared: '已结清',
  scheduled: '待生效',
  current: '当前价',
  superseded: '已替换',
  balanced: '已平账',
  discrepancies: '有差异',
  matched: '已匹配',
  mismatched: '有差异',
  open: '进行中',
}

export const PROVIDER_LABELS: Record<string, string> = {
  wechat: '微信支付',
  wechatpay: '微信支付',
  alipay: '支付宝',
  unionpay: '云闪付',
  wallet: '钱包',
  cash: '现金',
  card: '银行卡',
}

/** IFSF fuelling-point states 1..9, plus 10 (offline) and 11 (fault). */
export const FP_STATES: Record<number, string> = {
  1: '停用',
  2: '关闭',
  3: '空闲',
  4: '提枪',
  5: '已授权',
  6: '启动',
  7: '暂停',
  8: '加油中',
  9: '暂停加油',
  10: '离线',
  11: '故障',
}

export const PROVIDERS = PROVIDER_LABELS

export const AVAILABILITY: Record<string, string> = {
  in_stock: '充足',
  low: '低库存',
  out: '缺油',
  unknown: '未知',
}

export function gradeName(code: string | null | undefined): string {
  if (code === null || code === undefined || code === '') return '—'
  return Number(code) <= 0 ? `${code}#柴油` : `${code}#汽油`
}

export function label(map: Record<string, string>, key: string | null | undefined): string {
  if (!key) return '—'
  return map[key] ?? key
}
