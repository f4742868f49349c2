// Pages and who may open them. Hash history: every URL is /admin/#/..., no server fallback.
import { createRouter, createWebHashHistory, type RouteRecordRaw } from 'vue-router'
import { allowed, session, type Role } from './lib/session'

declare module 'vue-router' {
  interface RouteMeta {
    title?: string
    roles?: readonly Role[]
    public?: boolean
    menu?: boolean
  }
}

const ALL: readonly Role[] = ['hq_admin', 'station_manager', 'attendant']
const MANAGERS: readonly Role[] = ['hq_admin', 'station_manager']
const HQ: readonly Role[] = ['hq_admin']

export const pages: RouteRecordRaw[] = [
  { path: 'dashboard', name: 'dashboard', component: () => import('./views/DashboardView.vue'), meta: { title: '经营概览', roles: MANAGERS } },
  { path: 'live', name: 'live', component: () => import('./views/LiveView.vue'), meta: { title: '实时油枪', roles: ALL } },
  { path: 'orders', name: 'orders', component: () => import('./views/OrdersView.vue'), meta: { title: '订单与退款', roles: ALL } },
  { path: 'prices', name: 'prices', component: () => import('./views/PricesView.vue'), meta: { title: '油价管理', roles: MANAGERS } },
  { path: 'tanks', name: 'tanks', component: () => import('./views/TanksView.vue'), meta: { title: '油罐库存', roles: MANAGERS } },
  { path: 'shifts', name: 'shifts', component: () => import('./views/ShiftsView.vue'), meta: { title: '交接班', roles: ALL } },
  { path: 'reconciliation', name: 'reconciliation', component: () => import('./views/ReconciliationView.vue'), meta: { title: '支付对账', roles: HQ } },
  { path: 'members', name: 'members', component: () => import('./views/MembersView.vue'), meta: { title: '会员与积分商城', roles: MANAGERS } },
  { path: 'staff', name: 'staff', component: () => import('./views/StaffView.vue'), meta: { title: '员工与角色', roles: HQ } },
  { path: 'audit', name: 'audit', component: () => import('./views/AuditView.vue'), meta: { title: '审计日志', roles: MANAGERS } },
]

export function homeFor(role: Role | undefined): string {
  return role === 'attendant' ? '/live' : '/dashboard'
}

export const router = createRouter({
  history: createWebHashHistory(),
  routes: [
    { path: '/login', name: 'login', component: () => import('./views/LoginView.vue'), meta: { public: true, title: '登录' } },
    { path: '/shifts/:id/print', name: 'shift-print', component: () => import('./views/ShiftPrintView.vue'), meta: { title: '交接班单', roles: ALL } },
    {
      path: '/',
      component: () => import('./views/LayoutView.vue'),
      children: [{ path: '', redirect: () => homeFor(session.staff?.role) }, ...pages],
    },
    { path: '/:rest(.*)*', redirect: '/' },
  ],
})

router.beforeEach((to) => {
  if (to.meta.public) return true
  if (!session.staff || !session.access) return { name: 'login', query: { next: to.fullPath } }
  if (!allowed(to.meta.roles)) return homeFor(session.staff.role)
  return true
})

router.afterEach((to) => {
  document.title = to.meta.title ? `${to.meta.title} · Forecourt 管理后台` : 'Forecourt 管理后台'
})
