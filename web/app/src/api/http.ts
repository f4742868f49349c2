// The typed API client. Paths, parameters, bodies and answers are typed from the generated
// `schema.d.ts` (the backend's OpenAPI document), so a change in the API that the app relies
// on breaks `vue-tsc`, and `make app` fails. Requests go through `uni.request`, which works on
// H5 and in the mini-program alike.
import type { components, paths } from './schema'
import { NETWORK_MESSAGE, TIMEOUT_MESSAGE, problemMessage, type Problem } from './errors'
import { apiBase } from '../lib/platform'
import { clearSession, session, setTokens } from '../lib/session'

export type Schemas = components['schemas']

type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete'
type Op<P extends keyof paths, M extends HttpMethod> = NonNullable<paths[P][M]>
export type PathsWith<M extends HttpMethod> = {
  [P in keyof paths]: [Op<P, M>] extends [never] ? never : P
}[keyof paths]
type ParamsOf<O> = O extends { parameters: infer X } ? X : never
type PathParams<O> = ParamsOf<O> extends { path: infer X } ? X : never
type QueryParams<O> = ParamsOf<O> extends { query?: infer X } ? X : never
type BodyOf<O> = O extends { requestBody: { content: { 'application/json': infer B } } }
  ? B
  : O extends { requestBody?: { content: { 'application/json': infer B } } }
    ? B
    : never
type OkOf<O> = O extends { responses: infer R }
  ? R extends { 200: infer X }
    ? X
    : R extends { 201: infer X }
      ? X
      : R extends { 204: infer X }
        ? X
        : never
  : never
type JsonOf<R> = R extends { content: { 'application/json': infer J } } ? J : undefined
export type Answer<P extends keyof paths, M extends HttpMethod> = JsonOf<OkOf<Op<P, M>>>

export interface Options<O> {
  path?: PathParams<O>
  query?: QueryParams<O>
  body?: BodyOf<O>
  /** Sent as `Idempotency-Key`: one per user intent, so double taps never create two of anything. */
  idempotencyKey?: string
  timeoutMs?: number
}

/** An API failure with a Chinese message fit for the screen. */
export class ApiError extends Error {
  status: number
  code: string
  problem: Problem
  constructor(message: string, status: number, code: string, problem: Problem = {}) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.problem = problem
  }
  get isNetwork(): boolean {
    return this.status === 0
  }
  get needsLogin(): boolean {
    return this.status === 401
  }
}

/** The Chinese message for anything thrown. */
export function messageOf(e: unknown): string {
  if (e instanceof ApiError) return e.message
  return '系统开小差了，请稍后再试'
}

interface RawResponse {
  statusCode: number
  data: unknown
}

function send(
  method: HttpMethod,
  url: string,
  body: unknown,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    uni.request({
      url,
      method: method.toUpperCase() as 'GET',
      data: body === undefined ? undefined : (body as Record<string, unknown>),
      header: headers,
      timeout: timeoutMs,
      dataType: 'json',
      success: (res) => resolve({ statusCode: res.statusCode, data: res.data }),
      fail: (err) => {
        const text = String((err as { errMsg?: string }).errMsg ?? '')
        reject(new ApiError(/timeout/i.test(text) ? TIMEOUT_MESSAGE : NETWORK_MESSAGE, 0, 'network'))
      },
    })
  })
}

function buildUrl(path: string, params?: Record<string, unknown>, query?: Record<string, unknown>): string {
  let url = path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(String(params?.[name] ?? '')))
  const pairs = Object.entries(query ?? {})
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
  if (pairs.length) url += `?${pairs.join('&')}`
  return apiBase() + url
}

let refreshing: Promise<boolean> | null = null

/** Trade the refresh token for a new pair once, however many requests saw the 401 at once. */
function refreshTokens(): Promise<boolean> {
  if (!session.refresh) return Promise.resolve(false)
  refreshing ??= (async () => {
    try {
      const res = await send('post', buildUrl('/api/v1/auth/refresh'), { refresh_token: session.refresh }, { 'Content-Type': 'application/json' }, 10000)
      if (res.statusCode === 200) {
        const pair = res.data as Schemas['TokenPair']
        setTokens(pair.access_token, pair.refresh_token)
        return true
      }
      clearSession()
      return false
    } catch {
      return false
    } finally {
      setTimeout(() => (refreshing = null), 0)
    }
  })()
  return refreshing
}

function toProblem(res: RawResponse): Problem {
  const data = res.data
  if (data && typeof data === 'object' && !Array.isArray(data)) {
    const d = data as Record<string, unknown>
    return {
      status: res.statusCode,
      code: typeof d.code === 'string' ? d.code : undefined,
      detail: typeof d.detail === 'string' ? d.detail : undefined,
      errors: Array.isArray(d.errors) ? (d.errors as Problem['errors']) : undefined,
    }
  }
  return { status: res.statusCode }
}

export async function request<M extends HttpMethod, P extends PathsWith<M>>(
  method: M,
  path: P,
  opts: Options<Op<P, M>> = {},
): Promise<Answer<P, M>> {
  const url = buildUrl(
    path as string,
    opts.path as Record<string, unknown> | undefined,
    opts.query as Record<string, unknown> | undefined,
  )
  const run = () => {
    const headers: Record<string, string> = { Accept: 'application/json' }
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json'
    if (session.access) headers.Authorization = `Bearer ${session.access}`
    if (opts.idempotencyKey) headers['Idempotency-Key'] = opts.idempotencyKey
    return send(method, url, opts.body, headers, opts.timeoutMs ?? 15000)
  }
  let res = await run()
  if (res.statusCode === 401 && session.refresh && !String(path).startsWith('/api/v1/auth/')) {
    if (await refreshTokens()) res = await run()
  }
  if (res.statusCode >= 200 && res.statusCode < 300) return res.data as Answer<P, M>
  const problem = toProblem(res)
  if (res.statusCode === 401 && !String(path).startsWith('/api/v1/auth/')) clearSession()
  throw new ApiError(problemMessage(problem), res.statusCode, problem.code ?? `http_${res.statusCode}`, problem)
}

export const api = {
  get: <P extends PathsWith<'get'>>(path: P, opts?: Options<Op<P, 'get'>>) => request('get', path, opts),
  post: <P extends PathsWith<'post'>>(path: P, opts?: Options<Op<P, 'post'>>) => request('post', path, opts),
  put: <P extends PathsWith<'put'>>(path: P, opts?: Options<Op<P, 'put'>>) => request('put', path, opts),
  delete: <P extends PathsWith<'delete'>>(path: P, opts?: Options<Op<P, 'delete'>>) => request('delete', path, opts),
}
