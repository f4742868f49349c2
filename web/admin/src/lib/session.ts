// The signed-in staff member: tokens and profile in localStorage (`fc.admin`), reactive.
import { reactive } from 'vue'
import type { components } from '../api/schema'

export type Staff = components['schemas']['StaffOut']
export type Role = Staff['role']

const KEY = 'fc.admin'

interface Stored {
  access: string
  refresh: string
  staff: Staff
}

function load(): Stored | null {
  try {
    const raw = localStorage.getItem(KEY)
    return raw ? (JSON.parse(raw) as Stored) : null
  } catch {
    return null
  }
}

const stored = load()

export const session = reactive<{ access: string; refresh: string; staff: Staff | null; stationId: number | null }>({
  access: stored?.access ?? '',
  refresh: stored?.refresh ?? '',
  staff: stored?.staff ?? null,
  stationId: Number(localStorage.getItem(`${KEY}.station`)) || null,
})

function save(): void {
  if (session.staff && session.access) {
    localStorage.setItem(KEY, JSON.stringify({ access: session.access, refresh: session.refresh, staff: session.staff }))
  } else {
    localStorage.removeItem(KEY)
  }
}

export function signIn(access: string, refresh: string, staff: Staff): void {
  session.access = access
  session.refresh = refresh
  session.staff = staff
  if (staff.role !== 'hq_admin' && staff.station_ids.length) {
    if (!session.stationId || !staff.station_ids.includes(session.stationId)) selectStation(staff.station_ids[0])
  }
  save()
}

export function setTokens(access: string, refresh: string): void {
  session.access = access
  session.refresh = refresh
  save()
}

export function signOut(): void {
  session.access = ''
  session.refresh = ''
  session.staff = null
  save()
}

export function selectStation(id: number | null): void {
  session.stationId = id
  if (id) localStorage.setItem(`${KEY}.station`, String(id))
  else localStorage.removeItem(`${KEY}.station`)
}

export const ROLE_LABELS: Record<Role, string> = {
  hq_admin: '总部管理员',
  station_manager: '站长',
  attendant: '收银员',
}

/** Whether the signed-in role may see a page that lists the roles allowed. */
export function allowed(roles: readonly Role[] | undefined): boolean {
  if (!roles) return true
  return !!session.staff && roles.includes(session.staff.role)
}
