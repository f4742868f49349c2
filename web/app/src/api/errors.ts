// Every API error becomes one human sentence in Chinese (never raw JSON, never English).
// Codes come from the backend's RFC 9457 problem documents (`code`, `detail`, `errors`).

export interface FieldProblem {
  field: string
  reason: string
}

export interface Problem {
  status?: number
  code?: string
  detail?: string
  errors?: FieldProblem[]
}

const MESSAGES: Record<string, string> = {
  // sign-in
  unauthorized: '登录已过期，请重新登录',
  forbidden: '没有权限进行此操作',
  account_disabled: '账号已停用，请联系客服',
  sms_code_invalid: '验证码错误',
  sms_code_expired: '验证码已过期，请重新获取',
  sms_code_used: '验证码已使用，请重新获取',
  sms_code_exhausted: '验证码错误次数过多，请重新获取',
  sms_unavailable: '短信服务暂时不可用，请稍后再试',
  wechat_code_invalid: '微信登录已失效，请重试',
  wechat_high_risk: '微信判定当前账号存在风险，暂无法登录',
  wechat_rate_limited: '微信登录太频繁，请稍后再试',
  wechat_unavailable: '微信服务暂时不可用，请稍后再试',
  refresh_expired: '登录已过期，请重新登录',
  refresh_invalid: '登录已失效，请重新登录',
  refresh_reused: '账号在其他地方登录，请重新登录',
  refresh_revoked: '登录已失效，请重新登录',
  rate_limited: '操作太频繁，请稍后再试',
  // stations, pumps
  not_found: '没有找到相关内容',
  unknown_station: '没有找到这个加油站',
  unknown_grade: '不支持的油品',
  nozzle_not_found: '没有这把油枪，请核对枪号',
  fp_not_found: '没有这个加油位',
  pump_offline: '油机暂时离线，请到收银台付款或稍后再试',
  pump_busy: '这把油枪正在使用中，请稍后或换一把油枪',
  pump_unavailable: '这把油枪暂停服务，请换一把油枪',
  pump_conflict: '油机状态已变化，请刷新后重试',
  nozzle_not_authorised: '油枪未授权，请稍后再试',
  sale_locked: '这笔加油记录正在被他人支付，请核对枪号',
  sale_cleared: '这笔加油已付款',
  unknown_sale: '没有找到这笔加油记录',
  // orders, payments
  no_payable_sale: '这把油枪暂无待支付的加油记录，请确认已挂枪',
  amount_above_sale: '支付金额与加油金额不符，请刷新后重试',
  preset_above_cap: '预付金额超过上限',
  price_missing: '该油品暂未定价，请到收银台付款',
  order_not_found: '没有找到这笔订单',
  order_not_payable: '订单当前不可支付',
  order_already_paid: '订单已支付，无需重复付款',
  order_expired: '订单已过期，请重新下单',
  insufficient_balance: '钱包余额不足，请换一种支付方式或先充值',
  provider_rejected: '支付渠道拒绝了本次支付，请换一种支付方式',
  provider_unavailable: '支付渠道暂时不可用，请换一种支付方式',
  payer_unknown: '该支付方式需要先绑定账号，请换一种支付方式',
  unknown_provider: '暂不支持该支付方式',
  idempotency_key_reused: '请求重复，请刷新后重试',
  idempotency_key_in_progress: '正在处理上一次请求，请稍候',
  refund_not_allowed: '该订单不能退款',
  refund_exceeds_paid: '退款金额超过可退金额',
  // invoices
  invalid_tax_id: '纳税人识别号格式不正确',
  invalid_email: '邮箱地址格式不正确',
  invoice_not_found: '没有找到这张发票',
  invoice_title_not_found: '没有找到这个发票抬头',
  invoice_not_issued: '发票尚未开具完成',
  invoice_period_over: '已超过开票期限',
  invoice_provider_unavailable: '开票服务暂时不可用，请稍后再试',
  mixed_sellers: '不同加油站的订单请分开开票',
  oil_quota_exhausted: '成品油开票额度不足，请联系加油站',
  order_already_invoiced: '订单已开过发票',
  order_not_invoiceable: '该订单不能开发票',
  order_not_paid: '订单未支付，暂不能开票',
  order_refunded: '订单已退款，不能开票',
  refund_in_progress: '订单退款处理中，暂不能开票',
  no_tax_code: '该油品暂不支持开票，请联系加油站',
  no_email: '请填写接收发票的邮箱',
  // generic
  validation_error: '填写的内容有误',
  malformed_json: '请求格式有误，请重试',
  conflict: '操作冲突，请刷新后重试',
  unprocessable: '填写的内容有误',
  unavailable: '服务暂时不可用，请稍后再试',
  internal_error: '系统开小差了，请稍后再试',
}

const FIELDS: Record<string, string> = {
  phone: '手机号',
  code: '验证码',
  amount_fen: '金额',
  nozzle: '枪号',
  station_id: '加油站',
  sale_seq: '加油记录',
  provider: '支付方式',
  tax_id: '纳税人识别号',
  name: '抬头名称',
  email: '邮箱',
  lat: '位置',
  lng: '位置',
  grade: '油品',
}

const BY_STATUS: Record<number, string> = {
  400: '请求有误，请检查后重试',
  401: '请先登录',
  403: '没有权限进行此操作',
  404: '没有找到相关内容',
  409: '状态已变化，请刷新后重试',
  422: '填写的内容有误',
  429: '操作太频繁，请稍后再试',
}

export const NETWORK_MESSAGE = '网络连接失败，请检查网络后重试'
export const TIMEOUT_MESSAGE = '网络超时，请重试'

function fieldLabel(field: string): string | undefined {
  const last = field.split('.').pop() ?? field
  return FIELDS[last]
}

/** The Chinese sentence for a problem document (or any error-ish value). */
export function problemMessage(p: Problem): string {
  const code = p.code ?? ''
  if (code === 'sms_code_invalid') {
    const left = /(\d+)/.exec(p.detail ?? '')
    return left ? `验证码错误，还可尝试 ${left[1]} 次` : MESSAGES[code]
  }
  if ((code === 'validation_error' || code === 'unprocessable') && p.errors?.length) {
    const labels = [...new Set(p.errors.map((e) => fieldLabel(e.field)).filter(Boolean))]
    if (labels.length) return `${labels.join('、')}填写有误，请检查`
  }
  if (MESSAGES[code]) return MESSAGES[code]
  const status = p.status ?? 0
  if (BY_STATUS[status]) return BY_STATUS[status]
  if (status >= 500) return '服务暂时不可用，请稍后再试'
  return '操作没有成功，请稍后再试'
}
