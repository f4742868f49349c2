// Live nozzle states of a station over the WebSocket `/api/v1/stations/{id}/nozzles/live`:
// a snapshot, then every change. One connection per station, shared by every page that shows
// it; it reconnects by itself (backoff 0.5 s .. 10 s, at once when the network comes back)
// and each new connection starts with a fresh snapshot, so nothing missed while away is lost.
import { reactive } from 'vue'
import { wsBase } from './platform'

export type LinkStatus = 'connecting' | 'live' | 'reconnecting' | 'closed'

export interface Progress {
  volume_ml: number | null
  amount_fen: number | null
  unit_price_fen: number | null
}

export interface PayableSale {
  fp?: number
  seq: number
  volume_ml: number
  amount_fen: number
}

export interface LiveNozzle {
  number: number
  fp: number | null
  grade: string
  payable: PayableSale[]
}

export interface LiveFp {
  state: string
  state_code: number
  nozzle_out: number | null
  progress: Progress | null
}

export interface StationLive {
  stationId: number
  status: LinkStatus
  /** Whether a snapshot arrived on the current connection. */
  synced: boolean
  gatewayOnline: boolean
  nozzles: Record<number, LiveNozzle>
  fps: Record<number, LiveFp>
  availability: Record<string, string>
  messages: number
  reconnects: number
  updatedAt: number
}

interface Channel {
  state: StationLive
  task: UniApp.SocketTask | null
  listeners: number
  retry: number
  timer: ReturnType<typeof setTimeout> | null
  watchdog: ReturnType<typeof setTimeout> | null
  linger: ReturnType<typeof setTimeout> | null
  closedByUs: boolean
}

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10000]
const SILENCE_MS = 45000 // the server pings every 20 s
const CONNECT_MS = 8000 // a connection attempt that neither opens nor fails is abandoned
const LINGER_MS = 5000 // keep a connection a moment after the last page left (page changes)

const channels = new Map<number, Channel>()

type Msg = Record<string, unknown>

function applySnapshot(s: StationLive, m: Msg): void {
  const nozzles: Record<number, LiveNozzle> = {}
  const fps: Record<number, LiveFp> = {}
  for (const n of (m.nozzles as Msg[]) ?? []) {
    const number = n.number as number
    const fp = (n.fp as number | null) ?? null
    nozzles[number] = {
      number,
      fp,
      grade: String(n.grade),
      payable: ((n.payable as PayableSale[]) ?? []).map((p) => ({ ...p, fp: fp ?? undefined })),
    }
    if (fp !== null) {
      const out = Boolean(n.nozzle_out)
      const prev = fps[fp]
      fps[fp] = {
        state: String(n.state),
        state_code: n.state_code as number,
        nozzle_out: out ? number : (prev?.nozzle_out ?? null),
        progress: out ? ((n.progress as Progress | null) ?? null) : (prev?.progress ?? null),
      }
    }
  }
  const availability: Record<string, string> = {}
  for (const t of (m.tanks as Msg[]) ?? []) availability[String(t.grade)] = String(t.availability)
  s.nozzles = nozzles
  s.fps = fps
  s.availability = availability
  s.gatewayOnline = Boolean(m.gateway_online)
  s.synced = true
}

function applyFp(s: StationLive, m: Msg): void {
  const fp = m.fp as number
  s.fps[fp] = {
    state: String(m.state),
    state_code: m.state_code as number,
    nozzle_out: (m.nozzle_out as number | null) ?? null,
    progress: (m.progress as Progress | null) ?? null,
  }
}

function applySale(s: StationLive, m: Msg): void {
  const nozzle = s.nozzles[m.nozzle as number]
  if (!nozzle) return
  const seq = m.seq as number
  const rest = nozzle.payable.filter((p) => p.seq !== seq)
  if (m.status === 'payable') {
    rest.push({ fp: m.fp as number, seq, volume_ml: m.volume_ml as number, amount_fen: m.amount_fen as number })
    rest.sort((a, b) => a.seq - b.seq)
  }
  nozzle.payable = rest
}

function handle(s: StationLive, text: string): void {
  let m: Msg
  try {
    m = JSON.parse(text) as Msg
  } catch {
    return
  }
  s.messages += 1
  s.updatedAt = Date.now()
  switch (m.type) {
    case 'snapshot':
      applySnapshot(s, m)
      break
    case 'fp':
      applyFp(s, m)
      break
    case 'sale':
      applySale(s, m)
      break
    case 'gateway':
      s.gatewayOnline = Boolean(m.online)
      break
    case 'tank':
      s.availability[String(m.grade)] = String(m.availability)
      break
    default:
      break // ping and future message types
  }
}

function clearTimers(c: Channel): void {
  if (c.timer) clearTimeout(c.timer)
  if (c.watchdog) clearTimeout(c.watchdog)
  c.timer = null
  c.watchdog = null
}

function armWatchdog(c: Channel): void {
  if (c.watchdog) clearTimeout(c.watchdog)
  c.watchdog = setTimeout(() => {
    // No message (not even a ping) for too long: the connection is dead without knowing it.
    c.task?.close({ code: 4000, reason: 'silent' })
    scheduleReconnect(c, true)
  }, SILENCE_MS)
}

function scheduleReconnect(c: Channel, now = false): void {
  if (c.listeners <= 0 || c.closedByUs) return
  clearTimers(c)
  const old = c.task
  c.task = null
  try {
    old?.close({ code: 4001, reason: 'reconnect' })
  } catch {
    /* already gone */
  }
  c.state.status = 'reconnecting'
  c.state.synced = false
  const delay = now ? 0 : BACKOFF_MS[Math.min(c.retry, BACKOFF_MS.length - 1)]
  c.retry += 1
  c.timer = setTimeout(() => open(c), delay)
}

function open(c: Channel): void {
  if (c.listeners <= 0) return
  clearTimers(c)
  if (c.state.status !== 'reconnecting') c.state.status = 'connecting'
  const url = `${wsBase()}/api/v1/stations/${c.state.stationId}/nozzles/live`
  let task: UniApp.SocketTask
  try {
    task = uni.connectSocket({ url, complete: () => {} })
  } catch {
    scheduleReconnect(c)
    return
  }
  c.task = task
  const mine = () => c.task === task
  c.watchdog = setTimeout(() => {
    if (mine()) scheduleReconnect(c)
  }, CONNECT_MS)
  task.onOpen(() => {
    if (!mine()) return
    armWatchdog(c)
  })
  task.onMessage((ev) => {
    if (!mine()) return
    handle(c.state, String(ev.data))
    if (c.state.synced) {
      if (c.state.status !== 'live' && c.state.status !== 'closed') {
        if (c.state.status === 'reconnecting') c.state.reconnects += 1
        c.state.status = 'live'
      }
      c.retry = 0
    }
    armWatchdog(c)
  })
  task.onClose(() => {
    if (!mine()) return
    if (c.watchdog) clearTimeout(c.watchdog)
    if (c.state.status === 'closed') return
    scheduleReconnect(c)
  })
  task.onError(() => {
    if (!mine()) return
    if (c.watchdog) clearTimeout(c.watchdog)
    scheduleReconnect(c)
  })
}

function channel(stationId: number): Channel {
  let c = channels.get(stationId)
  if (!c) {
    c = {
      state: reactive<StationLive>({
        stationId,
        status: 'connecting',
        synced: false,
        gatewayOnline: true,
        nozzles: {},
        fps: {},
        availability: {},
        messages: 0,
        reconnects: 0,
        updatedAt: 0,
      }) as StationLive,
      task: null,
      listeners: 0,
      retry: 0,
      timer: null,
      watchdog: null,
      linger: null,
      closedByUs: false,
    }
    channels.set(stationId, c)
  }
  return c
}

/** Live state of a station; call the returned function when the page no longer shows it. */
export function watchStation(stationId: number): { state: StationLive; release: () => void } {
  const c = channel(stationId)
  c.listeners += 1
  if (c.linger) {
    clearTimeout(c.linger)
    c.linger = null
  }
  if (!c.task && !c.timer) {
    c.closedByUs = false
    c.state.status = 'connecting'
    open(c)
  }
  let released = false
  return {
    state: c.state,
    release: () => {
      if (released) return
      released = true
      c.listeners -= 1
      if (c.listeners > 0) return
      c.linger = setTimeout(() => {
        if (c.listeners > 0) return
        c.closedByUs = true
        clearTimers(c)
        c.state.status = 'closed'
        const task = c.task
        c.task = null
        task?.close({ code: 1000, reason: 'page left' })
        channels.delete(stationId)
      }, LINGER_MS)
    },
  }
}

/** Fill a station's state from the REST snapshot (`GET /stations/{id}/nozzles`) until the
 * WebSocket's own snapshot arrives, so the grid shows at once even when the socket is slow. */
export function seedFromRest(
  stationId: number,
  rest: { gateway_online: boolean; nozzles: { number: number; fp: number; grade: string; state: string; state_code: number; payable: { fp: number; seq: number; volume_ml: number; amount_fen: number }[] }[] },
): void {
  const c = channels.get(stationId)
  if (!c || c.state.synced) return
  const nozzles: Record<number, LiveNozzle> = {}
  const fps: Record<number, LiveFp> = {}
  for (const n of rest.nozzles) {
    nozzles[n.number] = { number: n.number, fp: n.fp, grade: n.grade, payable: n.payable.map((p) => ({ ...p })) }
    fps[n.fp] ??= { state: n.state, state_code: n.state_code, nozzle_out: null, progress: null }
  }
  c.state.nozzles = nozzles
  c.state.fps = fps
  c.state.gatewayOnline = rest.gateway_online
}

/** The network came back (or the app returned to the foreground): retry every link now. */
export function reconnectAll(): void {
  for (const c of channels.values()) {
    if (c.listeners > 0 && c.state.status === 'reconnecting') {
      c.retry = 0
      scheduleReconnect(c, true)
    }
  }
}

let watching = false
/** Start reacting to network changes (once, from App.vue). */
export function watchNetwork(): void {
  if (watching) return
  watching = true
  uni.onNetworkStatusChange((res) => {
    if (res.isConnected) reconnectAll()
  })
}

export type NozzleView = {
  number: number
  fp: number | null
  grade: string
  /** idle | lifted | authorised | fuelling | busy | payable | closed | offline */
  kind: string
  label: string
  progress: Progress | null
  payable: PayableSale[]
}

/** What a nozzle tile says, from the live state. */
export function nozzleView(s: StationLive, n: LiveNozzle): NozzleView {
  const base = { number: n.number, fp: n.fp, grade: n.grade, payable: n.payable, progress: null as Progress | null }
  const fp = n.fp !== null ? s.fps[n.fp] : undefined
  if (!s.gatewayOnline || !fp || fp.state_code === 10) return { ...base, kind: 'offline', label: '离线' }
  const code = fp.state_code
  const mine = fp.nozzle_out === n.number
  if (code === 1 || code === 2 || code === 11) return { ...base, kind: 'closed', label: '暂停服务' }
  if (code >= 4 && code <= 9) {
    if (!mine && fp.nozzle_out !== null) {
      return n.payable.length ? { ...base, kind: 'payable', label: '待支付' } : { ...base, kind: 'busy', label: '占用中' }
    }
    if (code === 4) return { ...base, kind: 'lifted', label: '已提枪' }
    if (code === 5) return { ...base, kind: 'authorised', label: '已授权' }
    return { ...base, kind: 'fuelling', label: '加油中', progress: fp.progress }
  }
  if (n.payable.length) return { ...base, kind: 'payable', label: '待支付' }
  return { ...base, kind: 'idle', label: '空闲' }
}
