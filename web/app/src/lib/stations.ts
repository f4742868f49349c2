// Station cards by id (names for order lists, prices for the pay page), cached per visit.
import { api, type Schemas } from '../api/http'

const cache = new Map<number, Promise<Schemas['StationOut']>>()

export function station(id: number): Promise<Schemas['StationOut']> {
  let p = cache.get(id)
  if (!p) {
    p = api.get('/api/v1/stations/{station_id}', { path: { station_id: id } })
    p.catch(() => cache.delete(id))
    cache.set(id, p)
  }
  return p
}

export async function stationName(id: number | null | undefined): Promise<string> {
  if (!id) return ''
  try {
    return (await station(id)).name
  } catch {
    return ''
  }
}
