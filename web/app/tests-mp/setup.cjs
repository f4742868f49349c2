// Globals the compiled mini-program expects from WeChat, with the API answers the home page
// needs (a nearby station, its nozzles and the live snapshot), recorded calls for assertions.
const path = require('node:path')

const STATION = {
  id: 1, code: 'KM001', name: '中国石化北京路加油站', brand: '中国石化', address: '昆明市盘龙区北京路1079号',
  lat: 25.0552, lng: 102.7226, coord: 'gcj02', distance_m: 80.5, open_now: true, open_24h: true,
  opens_at: null, closes_at: null, services: ['shop', 'toilet', 'car_wash'], phone: '0871-60010007',
  grade: null, price_fen: null, price_yuan: null, availability: 'unknown',
  prices: [
    { grade: '92', name: '92#汽油', price_fen: 776, price_yuan: '7.76' },
    { grade: '95', name: '95#汽油', price_fen: 832, price_yuan: '8.32' },
  ],
  nav: { amap_web: 'https://uri.amap.com/navigation', amap_app: 'amapuri://route/plan/', tencent: 'https://apis.map.qq.com/uri/v1/routeplan', baidu: 'https://api.map.baidu.com/direction' },
}
const NOZZLES = [
  { number: 1, fp: 1, grade: '92', state: 'Idle', state_code: 3, nozzle_out: false, progress: null, payable: [] },
  { number: 2, fp: 1, grade: '95', state: 'Idle', state_code: 3, nozzle_out: false, progress: null, payable: [{ seq: 7, volume_ml: 30120, amount_fen: 25060 }] },
  { number: 3, fp: 2, grade: '95', state: 'Fuelling', state_code: 8, nozzle_out: true, progress: { volume_ml: 12340, amount_fen: 10267, unit_price_fen: 832 }, payable: [] },
]
const SNAPSHOT = { type: 'snapshot', station_id: 1, gateway_online: true, nozzles: NOZZLES, tanks: [{ type: 'tank', tank: 1, grade: '92', availability: 'in_stock' }] }

function answer(url, method) {
  const u = new URL(url)
  const p = u.pathname
  if (p === '/api/v1/stations/nearby') return [200, { items: [STATION], origin: { lat: 25.0552, lng: 102.7226, coord: 'gcj02' }, radius_m: 30000, count: 1 }]
  if (p === '/api/v1/stations/1/nozzles') {
    return [200, { station_id: 1, gateway_online: true, nozzles: NOZZLES.map((n) => ({ number: n.number, fp: n.fp, grade: n.grade, price_fen: 800, state: n.state, state_code: n.state_code, payable: n.payable.map((s) => ({ ...s, fp: n.fp, ended_at: '2026-01-01T00:00:00Z' })), payable_volume_ml: 0, payable_amount_fen: 0 })) }]
  }
  if (p === '/api/v1/stations/1/tanks/availability') return [200, { station_id: 1, grades: [{ grade: '92', availability: 'in_stock' }, { grade: '95', availability: 'low' }] }]
  if (p === '/api/v1/auth/wechat/login' && method === 'POST') {
    return [200, { access_token: 'a', refresh_token: 'r', token_type: 'bearer', expires_in: 900, refresh_expires_in: 1, member: { id: 1, phone_masked: null, has_wechat: true, created_at: '2026-01-01T00:00:00Z' }, created: true }]
  }
  return [404, { code: 'not_found', status: 404, detail: 'not found' }]
}

const storage = new Map()
const calls = { request: [], navigateTo: [], sockets: [], login: 0 }
global.__mp = { calls, STATION, NOZZLES, SNAPSHOT }

const api = {
  getWindowInfo: () => ({ pixelRatio: 2, screenWidth: 390, screenHeight: 844, windowWidth: 390, windowHeight: 844, statusBarHeight: 20, safeArea: { left: 0, right: 390, top: 20, bottom: 844, width: 390, height: 824 }, screenTop: 0 }),
  getSystemInfoSync: () => ({ platform: 'devtools', system: 'iOS 16', language: 'zh_CN', version: '8.0.40', SDKVersion: '3.3.0', pixelRatio: 2, windowWidth: 390, windowHeight: 844, screenWidth: 390, screenHeight: 844, statusBarHeight: 20 }),
  getDeviceInfo: () => ({ platform: 'devtools', system: 'iOS 16', brand: 'devtools', model: 'iPhone 14', pixelRatio: 2 }),
  getAppBaseInfo: () => ({ SDKVersion: '3.3.0', language: 'zh_CN', version: '8.0.40', theme: 'light', enableDebug: false, host: { env: 'WeChat' } }),
  getStorageSync: (k) => (storage.has(k) ? storage.get(k) : ''),
  setStorageSync: (k, v) => storage.set(k, v),
  removeStorageSync: (k) => storage.delete(k),
  request: (opts) => {
    calls.request.push(opts)
    const [statusCode, data] = answer(opts.url, (opts.method || 'GET').toUpperCase())
    setTimeout(() => opts.success && opts.success({ statusCode, data, header: {} }), 0)
    return { abort() {} }
  },
  connectSocket: (opts) => {
    const h = {}
    const task = {
      url: opts.url,
      onOpen: (cb) => (h.open = cb),
      onMessage: (cb) => (h.message = cb),
      onClose: (cb) => (h.close = cb),
      onError: (cb) => (h.error = cb),
      send() {},
      close() {},
    }
    calls.sockets.push(task)
    setTimeout(() => {
      h.open && h.open({})
      h.message && h.message({ data: JSON.stringify(SNAPSHOT) })
    }, 5)
    return task
  },
  getLocation: (opts) => setTimeout(() => opts.success && opts.success({ latitude: 25.0552, longitude: 102.7226, accuracy: 10 }), 0),
  login: (opts) => {
    calls.login += 1
    setTimeout(() => opts.success && opts.success({ code: 'wx-code-1', errMsg: 'login:ok' }), 0)
  },
  navigateTo: (opts) => {
    calls.navigateTo.push(opts.url)
    opts.success && opts.success({})
  },
  onNetworkStatusChange: () => {},
  canIUse: () => true,
}
// Anything else the framework touches is a harmless no-op.
global.wx = new Proxy(api, {
  get: (target, key) => (key in target ? target[key] : typeof key === 'string' ? () => {} : undefined),
})

let app = null
global.App = (def) => {
  app = def
  if (def.onLaunch) def.onLaunch.call(def, { path: 'pages/home/home', query: {} })
}
global.getApp = () => app || { globalData: {} }
global.getCurrentPages = () => []
global.Page = (def) => global.Component(def)
global.__mpDist = path.resolve(__dirname, '..', 'dist', 'build', 'mp-weixin')

// uni-app binds events as `bindtap="{{c}}"` (the handler's name in the data); the simulator
// takes that literally. Resolve `{{name}}` from the component's data (top-level names).
const exparser = require('miniprogram-exparser')
const original = exparser.Element.getMethodCaller
exparser.Element.getMethodCaller = function (element) {
  const caller = original.call(this, element)
  if (!caller || caller.__fcWrapped) return caller
  return new Proxy(caller, {
    get(target, key) {
      if (typeof key === 'string') {
        const m = /^\{\{\s*(\w+)\s*\}\}$/.exec(key)
        if (m) {
          const name = target.data && target.data[m[1]]
          if (typeof name === 'string' && typeof target[name] === 'function') return target[name].bind(target)
        }
      }
      return target[key]
    },
  })
}
