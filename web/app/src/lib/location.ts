// The driver's position in GCJ-02. The mini-program asks wx.getLocation for GCJ-02; the H5
// site reads the browser's WGS-84 fix and converts it. Without a fix the last known position
// (or the city centre) is used, and the page says so.
import { wgs84ToGcj02, type LatLng } from './geo'
import { load, save } from './storage'

const KEY = 'fc.position'
/** Kunming city centre (GCJ-02): the demo's city. */
export const CITY_CENTRE: LatLng = { lat: 25.0389, lng: 102.7183 }

export interface Position extends LatLng {
  source: 'gps' | 'last' | 'default'
}

export function lastPosition(): Position | null {
  const p = load<LatLng | null>(KEY, null)
  return p ? { ...p, source: 'last' } : null
}

function fromDevice(timeoutMs: number): Promise<LatLng> {
  return new Promise((resolve, reject) => {
    // #ifdef H5
    if (typeof navigator === 'undefined' || !navigator.geolocation) {
      reject(new Error('no geolocation'))
      return
    }
    navigator.geolocation.getCurrentPosition(
      (pos) => resolve(wgs84ToGcj02({ lat: pos.coords.latitude, lng: pos.coords.longitude })),
      (err) => reject(err),
      { enableHighAccuracy: true, timeout: timeoutMs, maximumAge: 60000 },
    )
    // #endif
    // #ifdef MP-WEIXIN
    uni.getLocation({
      type: 'gcj02',
      success: (res) => resolve({ lat: res.latitude, lng: res.longitude }),
      fail: (err) => reject(err),
    })
    // #endif
  })
}

export async function locate(timeoutMs = 6000): Promise<Position> {
  try {
    const p = await fromDevice(timeoutMs)
    save(KEY, p)
    return { ...p, source: 'gps' }
  } catch {
    return lastPosition() ?? { ...CITY_CENTRE, source: 'default' }
  }
}
