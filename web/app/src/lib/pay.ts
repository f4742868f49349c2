// Paying an order: the mini-program calls wx.requestPayment with the server's paySign
// parameters; the H5 site goes to the provider's page (the sandbox cashier in the demo) and
// comes back to the result page. Keys make a double tap harmless: one order per intent, one
// payment per (order, provider).
import { api, ApiError, type Schemas } from '../api/http'
import { newKey } from './ids'
import { IS_MP } from './platform'
import { load, save } from './storage'

export type Provider = 'wechatpay' | 'alipay' | 'unionpay' | 'wallet'

const PENDING = 'fc.pending'
const LAST_PROVIDER = 'fc.provider'

interface Pending {
  order: string
  payment?: string
  provider?: string
  at: number
}

export function providersHere(): Provider[] {
  return IS_MP ? ['wechatpay', 'wallet'] : ['wechatpay', 'alipay', 'unionpay', 'wallet']
}

export function lastProvider(): Provider {
  const p = load<Provider>(LAST_PROVIDER, 'wechatpay')
  return providersHere().includes(p) ? p : 'wechatpay'
}

/** Remember which order a payment belongs to (the browser leaves the app to pay). */
function remember(p: Pending): void {
  const all = load<Pending[]>(PENDING, []).filter((x) => Date.now() - x.at < 24 * 3600 * 1000)
  all.unshift(p)
  save(PENDING, all.slice(0, 20))
}

export function orderOfPayment(paymentId: string): string | null {
  return load<Pending[]>(PENDING, []).find((p) => p.payment === paymentId)?.order ?? null
}

export function lastPendingOrder(): string | null {
  return load<Pending[]>(PENDING, [])[0]?.order ?? null
}

const paymentKeys = new Map<string, string>()

function paymentKey(orderId: string, provider: Provider): string {
  const k = `${orderId}:${provider}`
  let key = paymentKeys.get(k)
  if (!key) {
    key = newKey('pay')
    paymentKeys.set(k, key)
  }
  return key
}

export function resultUrl(orderId: string, extra = ''): string {
  return `/pages/result/result?order=${encodeURIComponent(orderId)}${extra}`
}

function h5Origin(): string {
  let origin = ''
  // #ifdef H5
  origin = location.origin
  // #endif
  return origin
}

function postForm(action: string, fieldsJson: string): void {
  // #ifdef H5
  const fields = JSON.parse(fieldsJson) as Record<string, string>
  const form = document.createElement('form')
  form.method = 'POST'
  form.action = action
  form.style.display = 'none'
  for (const [name, value] of Object.entries(fields)) {
    const input = document.createElement('input')
    input.type = 'hidden'
    input.name = name
    input.value = value
    form.appendChild(input)
  }
  document.body.appendChild(form)
  form.submit()
  // #endif
}

function go(url: string): void {
  // #ifdef H5
  location.href = url
  // #endif
}

export interface PayOutcome {
  /** 'paid': done here (wallet, mini-program); 'left': the browser is on the cashier page; 'cancelled' by the driver. */
  outcome: 'paid' | 'left' | 'cancelled'
  payment: Schemas['PaymentOut']
}

function requestPayment(params: Record<string, unknown>): Promise<boolean> {
  return new Promise((resolve, reject) => {
    uni.requestPayment({
      provider: 'wxpay',
      orderInfo: '',
      timeStamp: String(params.timeStamp),
      nonceStr: String(params.nonceStr),
      package: String(params.package),
      signType: String(params.signType ?? 'RSA'),
      paySign: String(params.paySign),
      success: () => resolve(true),
      fail: (err: { errMsg?: string }) => {
        if (/cancel/i.test(err.errMsg ?? '')) resolve(false)
        else reject(new ApiError('微信支付没有完成，请重试', 0, 'wx_pay_failed'))
      },
    } as UniApp.RequestPaymentOptions)
  })
}

/** Start paying an order with a provider. */
export async function payOrder(orderId: string, provider: Provider): Promise<PayOutcome> {
  save(LAST_PROVIDER, provider)
  const payment = await api.post('/api/v1/orders/{order_id}/payments', {
    path: { order_id: orderId },
    body: { provider, channel: IS_MP ? 'miniprogram' : 'h5' },
    idempotencyKey: paymentKey(orderId, provider),
  })
  remember({ order: orderId, payment: payment.id, provider, at: Date.now() })
  if (provider === 'wallet' || payment.status === 'paid') return { outcome: 'paid', payment }
  const p = (payment.client_params ?? {}) as Record<string, unknown>
  if (IS_MP) {
    const ok = await requestPayment(p)
    return { outcome: ok ? 'paid' : 'cancelled', payment }
  }
  if (typeof p.h5_url === 'string') {
    const back = `${h5Origin()}/app/#${resultUrl(orderId, `&payment=${payment.id}&provider=${provider}`)}`
    go(`${p.h5_url}&redirect_url=${encodeURIComponent(back)}`)
  } else if (typeof p.pay_url === 'string') {
    go(p.pay_url)
  } else if (typeof p.form_action === 'string' && typeof p.form_fields === 'string') {
    postForm(p.form_action, p.form_fields)
  } else {
    throw new ApiError('支付渠道暂时不可用，请换一种支付方式', 0, 'no_client_params')
  }
  return { outcome: 'left', payment }
}
