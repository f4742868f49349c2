// API problems (RFC 9457: `code`, `detail`, `errors: [{field, reason}]`) as one Chinese line
// for staff: a label for the code, then the API's own detail so nothing is hidden.

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
  unauthorized: '登录已过期，请重新登录',
  invalid_credentials: '用户名或密码错误',
  bad_credentials: '用户名或密码错误',
  forbidden: '没有权限进行此操作',
  account_disabled: '账号已停用',
  rate_limited: '操作太频繁，请稍后再试',
  not_found: '没有找到相关内容',
  unknown_station: '没有找到这个加油站',
  unknown_grade: '不支持的油品',
  price_above_cap: '价格高于省级最高限价，已拒绝',
  price_cap_missing: '该省份和油品没有配置最高限价，不能调价',
  price_already_effective: '价格已生效，不能取消',
  price_in_past: '生效时间不能早于当前时间',
  pump_offline: '油机离线',
  pump_busy: '油枪正在使用中',
  pump_conflict: '油机状态已变化，请刷新后重试',
  sale_locked: '这笔加油记录已被锁定',
  sale_cleared: '这笔加油已结清',
  unknown_sale: '没有找到这笔加油记录',
  order_not_found: '没有找到这笔订单',
  refund_not_allowed: '该订单不能退款',
  refund_exceeds_paid: '退款金额超过可退金额',
  refund_not_pending: '该退款不在待审批状态',
  self_approval: '不能审批自己发起的退款，需要另一位管理员审批',
  idempotency_key_reused: '请求重复，请刷新后重试',
  idempotency_key_in_progress: '正在处理上一次请求，请稍候',
  shift_already_open: '已有未交班的班次',
  shift_closed: '班次已交班，不能重复交班',
  shift_not_found: '没有找到班次',
  validation_error: '填写的内容有误',
  malformed_json: '请求格式有误',
  conflict: '操作冲突，请刷新后重试',
  unprocessable: '填写的内容有误',
  unavailable: '服务暂时不可用，请稍后再试',
  internal_error: '系统开小差了，请稍后再试',
}

const BY_STATUS: Record<number, string> = {
  400: '请求有误',
  401: '请先登录',
  403: '没有权限进行此操作',
  404: '接口或内容不存在',
  405: '接口暂不支持该操作',
  409: '状态已变化，请刷新后重试',
  422: '填写的内容有误',
  429: '操作太频繁，请稍后再试',
}

export const NETWORK_MESSAGE = '网络连接失败，请检查网络后重试'
export const TIMEOUT_MESSAGE = '网络超时，请重试'

/** The Chinese label for a problem, followed by the API's detail (and field reasons). */
export function problemMessage(p: Problem): string {
  const code = p.code ?? ''
  const status = p.status ?? 0
  const label =
    MESSAGES[code] ?? BY_STATUS[status] ?? (status >= 500 ? '服务暂时不可用，请稍后再试' : '操作没有成功')
  const parts: string[] = []
  if (p.detail) parts.push(p.detail)
  for (const e of p.errors ?? []) parts.push(`${e.field}: ${e.reason}`)
  return parts.length ? `${label}（${parts.join('；')}）` : label
}
