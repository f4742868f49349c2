// The signed-in driver: tokens and member, kept in storage across visits.
import { computed, reactive } from 'vue'
import type { Schemas } from '../api/http'
import { drop, load, save } from './storage'

const KEY = 'fc.session'

interface Stored {
  access: string
  refresh: string
  member: Schemas['MemberOut'] | null
}

export const session = reactive<Stored>(load<Stored>(KEY, { access: '', refresh: '', member: null }))

export const loggedIn = computed(() => Boolean(session.access || session.refresh))

export function setTokens(access: string, refresh: string, member?: Schemas['MemberOut'] | null): void {
  session.access = access
  session.refresh = refresh
  if (member !== undefined) session.member = member
  save(KEY, { access: session.access, refresh: session.refresh, member: session.member })
}

export function setMember(member: Schemas['MemberOut']): void {
  session.member = member
  save(KEY, { access: session.access, refresh: session.refresh, member })
}

export function clearSession(): void {
  session.access = ''
  session.refresh = ''
  session.member = null
  drop(KEY)
}
