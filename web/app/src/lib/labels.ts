// Words the screens show for codes the API returns.

export const ORDER_STATUS: Record<string, string> = {
  pending: '待支付',
  paid: '已支付',
  fuelling: '加油中',
  completed: '已完成',
  refunded: '已退款',
  cancelled: '已取消',
  expired: '已过期',
}

export const ORDER_KIND: Record<string, string> = {
  postpay: '加油后付款',
  prepay: '先付后加',
  topup: '钱包充值',
}

export const PROVIDERS: Record<string, string> = {
  wechatpay: '微信支付',
  alipay: '支付宝',
  unionpay: '云闪付',
  wallet: '钱包余额',
}

export const SERVICES: Record<string, string> = {
  shop: '便利店',
  toilet: '卫生间',
  car_wash: '洗车',
  ev_charging: '充电',
}

export const AVAILABILITY: Record<string, string> = {
  in_stock: '充足',
  low: '紧张',
  out: '售罄',
  unknown: '',
}

export const INVOICE_STATUS: Record<string, string> = {
  requested: '开票中',
  issuing: '开票中',
  issued: '已开具',
  failed: '开票失败',
  reversed: '已红冲',
  reversing: '红冲中',
}

export function gradeName(code: string | null | undefined): string {
  if (code === null || code === undefined) return ''
  const n = Number(code)
  return n <= 0 ? `${code}#柴油` : `${code}#汽油`
}

export function refundText(fen: number): string {
  return fen > 0 ? '已退款' : ''
}
