// Live nozzle states of a station over the WebSocket `/api/v1/stations/{id}/nozzles/live`:
// a snapshot, then every change (`fp`, `sale`, `gateway`, `tank`). It reconnects by itself
// (backoff 0.5 s .. 10 s) and each new connection starts with a fresh snapshot.
import { onBeforeUnmount, reactive, watch, type WatchSource } from 'vue'

export type LinkStatus = 'connecting' | 'live' | 'reconnecting' | 'closed'

export interface Progress {
  volume_ml: number | null
  amount_fen: number | null
  unit_price_fen: number | null
}

export interface PayableSale {
  fp: number
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
  stationId: number | null
  status: LinkStatus
  synced: boolean
  gatewayOnline: boolean
  nozzles: Record<number, LiveNozzle>
  fps: Record<number, LiveFp>
  availability: Record<string, string>
  messages: number
  updatedAt: number
}

type Msg = Record<string, unknown>
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10000]
const SILENCE_MS = 45000

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
      payable: ((n.payable as PayableSale[]) ?? []).map((p) => ({ ...p, fp: fp ?? 0 })),
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

function applySale(s: StationLive, m: Msg): void {
  const nozzle = s.nozzles[m.nozzle as number]
  if (!nozzle) return
  const seq = m.seq as number
  const rest = nozzle.payable.filter((p) => !(p.seq === seq && p.fp === (m.fp as number)))
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
      s.fps[m.fp as number] = {
        state: String(m.state),
        state_code: m.state_code as number,
        nozzle_out: (m.nozzle_out as number | null) ?? null,
        progress: (m.progress as Progress | null) ?? null,
      }
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
      break
  }
}

function wsUrl(stationId: number): string {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:'
  return `${proto}//${location.host}/api/v1/stations/${stationId}/nozzles/live`
}

/** A live view of the station `source` names, for as long as the calling component lives. */
export function useStationLive(source: WatchSource<number | null>): StationLive {
  const state = reactive<StationLive>({
    stationId: null,
    status: 'connecting',
    synced: false,
    gatewayOnline: false,
    nozzles: {},
    fps: {},
    availability: {},
    messages: 0,
    updatedAt: 0,
  })
  let socket: WebSocket | null = null
  let retry = 0
  let timer: ReturnType<typeof setTimeout> | null = null
  let watchdog: ReturnType<typeof setTimeout> | null = null
  let stopped = false

  const clearTimers = () => {
    if (timer) clearTimeout(timer)
    if (watchdog) clearTimeout(watchdog)
    timer = watchdog = null
  }
  const close = () => {
    clearTimers()
    if (socket) {
      socket.onclose = socket.onmessage = socket.onerror = socket.onopen = null
      socket.close()
      socket = null
    }
  }
  const arm = () => {
    if (watchdog) clearTimeout(watchdog)
    watchdog = setTimeout(() => socket?.close(), SILENCE_MS)
  }
  const connect = () => {
    const id = state.stationId
    if (stopped || !id) return
    const ws = new WebSocket(wsUrl(id))
    socket = ws
    ws.onopen = () => {
      retry = 0
      state.status = 'live'
      arm()
    }
    ws.onmessage = (ev) => {
      arm()
      handle(state, String(ev.data))
    }
    ws.onclose = () => {
      socket = null
      state.synced = false
      if (stopped) return
      state.status = 'reconnecting'
      timer = setTimeout(connect, BACKOFF_MS[Math.min(retry++, BACKOFF_MS.length - 1)])
    }
  }
  watch(
    source,
    (id) => {
      close()
      state.stationId = id
      state.synced = false
      state.nozzles = {}
      state.fps = {}
      state.status = id ? 'connecting' : 'closed'
      retry = 0
      connect()
    },
    { immediate: true },
  )
  onBeforeUnmount(() => {
    stopped = true
    state.status = 'closed'
    close()
  })
  return state
}
