// The stations the signed-in staff member may see (hq: all; others: their own).
import { reactive } from 'vue'
import { api, type Schemas } from '../api/http'
import { selectStation, session } from './session'

export type Station = Schemas['StationOut']

export const stations = reactive<{ items: Station[]; loaded: boolean; error: string | null }>({
  items: [],
  loaded: false,
  error: null,
})

export async function loadStations(): Promise<void> {
  const items: Station[] = []
  let offset = 0
  for (;;) {
    const page = await api.get('/api/v1/admin/stations', { query: { offset, limit: 100 } })
    items.push(...page.items)
    offset += page.items.length
    if (!page.items.length || offset >= page.total) break
  }
  const staff = session.staff
  stations.items = staff && staff.role !== 'hq_admin' ? items.filter((s) => staff.station_ids.includes(s.id)) : items
  stations.loaded = true
  if (!session.stationId || !stations.items.some((s) => s.id === session.stationId)) {
    selectStation(stations.items[0]?.id ?? null)
  }
}

export function stationName(id: number | null | undefined): string {
  const s = stations.items.find((x) => x.id === id)
  return s ? `${s.code} ${s.name}` : id ? `#${id}` : '—'
}
