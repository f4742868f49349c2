// Signing in: WeChat (wx.login -> code2Session on the server) in the mini-program, phone +
// SMS code on H5. Pages call `requireLogin()` before anything that needs a member.
import { api } from '../api/http'
import { IS_MP } from './platform'
import { clearSession, loggedIn, session, setMember, setTokens } from './session'

function wxCode(): Promise<string> {
  return new Promise((resolve, reject) => {
    uni.login({
      provider: 'weixin',
      success: (res) => resolve(res.code),
      fail: (err) => reject(err),
    })
  })
}

/** Mini-program: sign in with wx.login without asking anything. H5: nothing to do. */
export async function silentLogin(): Promise<boolean> {
  if (loggedIn.value) return true
  if (!IS_MP) return false
  try {
    const code = await wxCode()
    const res = await api.post('/api/v1/auth/wechat/login', { body: { code } })
    setTokens(res.access_token, res.refresh_token, res.member)
    return true
  } catch {
    return false
  }
}

export async function smsSend(phone: string) {
  return api.post('/api/v1/auth/sms/send', { body: { phone } })
}

export async function smsLogin(phone: string, code: string) {
  const res = await api.post('/api/v1/auth/sms/login', { body: { phone, code } })
  setTokens(res.access_token, res.refresh_token, res.member)
  return res
}

export async function refreshMe() {
  const me = await api.get('/api/v1/me')
  setMember(me)
  return me
}

export async function logout(): Promise<void> {
  const refresh = session.refresh
  clearSession()
  if (refresh) {
    try {
      await api.post('/api/v1/auth/logout', { body: { refresh_token: refresh } })
    } catch {
      /* signed out locally either way */
    }
  }
}

/** Signed in, or on the way to the login page (which comes back to `back`). */
export async function requireLogin(back: string): Promise<boolean> {
  if (loggedIn.value) return true
  if (await silentLogin()) return true
  uni.navigateTo({ url: `/pages/login/login?back=${encodeURIComponent(back)}` })
  return false
}
