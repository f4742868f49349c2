// Back-office endpoints (dashboard, shifts, audit) through the typed client, and the names the
// pages use for their shapes.
import { api, raw, type Schemas } from './http'
import { newKey } from '../lib/format'
import type { paths } from './schema'

export type Line = Schemas['Line']
export type Totals = Schemas['Totals']
export type UnpaidSale = Schemas['UnpaidSale']
export type UnpaidSales = Schemas['UnpaidSales']
export type ShiftSummary = Schemas['ShiftSummary']
export type Shift = Schemas['ShiftOut']
export type ShiftPage = Schemas['ShiftPage']
export type Bucket = Schemas['Bucket']
export type Dashboard = Schemas['DashboardOut']
export type AuditEntry = Schemas['AuditOut']
export type AuditPage = Schemas['AuditPage']

export type AuditQuery = NonNullable<paths['/api/v1/admin/audit']['get']['parameters']['query']>
export type AuditAction = NonNullable<AuditQuery['action']>

export const AUDIT_ACTIONS: Record<AuditAction, string> = {
  'price.scheduled': '调价',
  'price.cancelled': '取消调价',
  'refund.requested': '发起退款',
  'refund.decided': '审批退款',
  'points.adjusted': '调整积分',
  'sale.locked': '锁定加油记录',
  'sale.cleared': '结清加油记录',
  'pump.stopped': '急停油机',
  'shift.opened': '开班',
  'shift.closed': '交班',
  'staff.created': '添加员工',
  'staff.updated': '修改员工',
}

export const backoffice = {
  dashboard: (stationId: number | null, days: number) =>
    api.get('/api/v1/admin/dashboard', { query: { station_id: stationId ?? undefined, days } }),
  shifts: (stationId: number, cursor?: string) =>
    api.get('/api/v1/admin/stations/{station_id}/shifts', { path: { station_id: stationId }, query: { cursor } }),
  currentShift: (stationId: number) =>
    api.get('/api/v1/admin/stations/{station_id}/shifts/current', { path: { station_id: stationId } }),
  shift: (id: number) => api.get('/api/v1/admin/shifts/{shift_id}', { path: { shift_id: id } }),
  openShift: (stationId: number, note: string | null) =>
    api.post('/api/v1/admin/stations/{station_id}/shifts', { path: { station_id: stationId }, body: { note } }),
  /** One key per handover intent: a retried close never closes twice. */
  closeShift: (id: number, cashCountedFen: number, note: string | null, key: string = newKey('close')) =>
    api.post('/api/v1/admin/shifts/{shift_id}/close', {
      path: { shift_id: id },
      body: { cash_counted_fen: cashCountedFen, note },
      idempotencyKey: key,
    }),
  /** The printable summary is HTML, not JSON: fetched untyped. */
  summaryHtml: (id: number) => raw<string>('get', `/api/v1/admin/shifts/${id}/summary`),
  audit: (query: AuditQuery) => api.get('/api/v1/admin/audit', { query }),
}
