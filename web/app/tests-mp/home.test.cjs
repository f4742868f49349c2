// The mp-weixin build loaded in miniprogram-simulate: the home page renders the nearest
// station and its nozzles (R12) from the API and the live snapshot, and a nozzle tap goes to
// the pay page.
const path = require('node:path')
const fs = require('node:fs')
const simulate = require('miniprogram-simulate')

const dist = global.__mpDist

beforeAll(() => {
  if (!fs.existsSync(path.join(dist, 'app.js'))) throw new Error(`build the mini-program first (make app): ${dist}`)
  require(path.join(dist, 'app.js')) // the framework, then App(): silent wx.login
})

test('app.json declares the pages, the tab bar and the location permission', () => {
  const app = JSON.parse(fs.readFileSync(path.join(dist, 'app.json'), 'utf8'))
  expect(app.pages[0]).toBe('pages/home/home')
  expect(app.pages).toEqual(expect.arrayContaining(['pages/pay/pay', 'pages/result/result', 'pages/login/login']))
  expect(app.tabBar.list.map((t) => t.text)).toEqual(['加油', '油站', '订单', '我的'])
  expect(app.permission['scope.userLocation'].desc).toContain('加油站')
  expect(app.requiredPrivateInfos).toContain('getLocation')
})

test('home renders the nearest station and its live nozzle grid; a tap opens the pay page', async () => {
  const id = simulate.load(path.join(dist, 'pages/home/home'), { less: false })
  const page = simulate.render(id)
  const parent = document.createElement('parent-wrapper')
  page.attach(parent)
  page.instance.onLoad && page.instance.onLoad({})
  page.instance.onShow && page.instance.onShow()
  await simulate.sleep(300)

  const text = page.dom.textContent
  expect(global.__mp.calls.login).toBeGreaterThan(0) // signed in silently with wx.login
  expect(text).toContain('中国石化北京路加油站')
  expect(text).toContain('¥7.76')
  expect(text).toContain('1号枪')
  expect(text).toContain('2号枪')
  expect(text).toContain('3号枪')
  expect(text).toContain('待付 ¥250.60') // the payable sale on nozzle 2
  expect(text).toContain('加油 12.34L') // nozzle 3 is fuelling, live from the snapshot
  expect(text).toContain('油枪状态实时更新')
  expect(global.__mp.calls.sockets[0].url).toMatch(/\/api\/v1\/stations\/1\/nozzles\/live$/)
  const nearby = global.__mp.calls.request.find((r) => r.url.includes('/stations/nearby'))
  expect(nearby.url).toContain('coord=gcj02')

  const tiles = page.querySelectorAll('.cell >>> .tile')
  expect(tiles.length).toBe(3)
  const tile = tiles[1]
  expect(tile.dom.textContent).toContain('2号枪')
  tile.dispatchEvent('tap')
  await simulate.sleep(50)
  expect(global.__mp.calls.navigateTo).toContain('/pages/pay/pay?station=1&nozzle=2')
  page.detach()
})
