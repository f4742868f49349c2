// The typed API client. Paths, parameters, bodies and answers are typed from the generated
// `schema.d.ts` (the backend's OpenAPI document), so an API change the console relies on
// breaks `vue-tsc` and `make admin` fails. `raw()` is the untyped door for endpoints that are
// not in the document yet; their shapes live next to the page that uses them.
import type { components, paths } from './schema'
import { NETWORK_MESSAGE, TIMEOUT_MESSAGE, problemMessage, type Problem } from './errors'
import { session, setTokens, signOut } from '../lib/session'

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
      : R extends { 202: infer X }
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
  /** Sent as `Idempotency-Key`: one per user intent, so a double click never does it twice. */
  idempotencyKey?: string
  timeoutMs?: number
}

/** An API failure with a Chinese message (and the API's detail) fit for the screen. */
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
  /** The API's reason for one field, if it named it. */
  field(name: string): string | undefined {
    return this.problem.errors?.find((e) => e.field === name || e.field.endsWith(`.${name}`))?.reason
  }
}

export function messageOf(e: unknown): string {
  if (e instanceof ApiError) return e.message
  if (e instanceof Error) return `出错了：${e.message}`
  return '系统开小差了，请稍后再试'
}

interface Raw {
  status: number
  data: unknown
  blob?: Blob
  filename?: string
}

function buildUrl(path: string, params?: Record<string, unknown>, query?: Record<string, unknown>): string {
  const url = path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(String(params?.[name] ?? '')))
  const search = new URLSearchParams()
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v === undefined || v === null || v === '') continue
    search.append(k, String(v))
  }
  const qs = search.toString()
  return qs ? `${url}?${qs}` : url
}

async function send(method: HttpMethod, url: string, body: unknown, headers: Record<string, string>, timeoutMs: number, asBlob = false): Promise<Raw> {
  const ctl = new AbortController()
  const timer = setTimeout(() => ctl.abort(), timeoutMs)
  let res: Response
  try {
    res = await fetch(url, {
      method: method.toUpperCase(),
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: ctl.signal,
    })
  } catch {
    throw new ApiError(ctl.signal.aborted ? TIMEOUT_MESSAGE : NETWORK_MESSAGE, 0, 'network')
  } finally {
    clearTimeout(timer)
  }
  if (asBlob && res.ok) {
    const disposition = res.headers.get('Content-Disposition') ?? ''
    const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition)
    return { status: res.status, data: null, blob: await res.blob(), filename: m ? decodeURIComponent(m[1]) : undefined }
  }
  const text = await res.text()
  let data: unknown = text
  if (text) {
    try {
      data = JSON.parse(text)
    } catch {
      data = text
    }
  } else {
    data = undefined
  }
  return { status: res.status, data }
}

let refreshing: Promise<boolean> | null = null

function refreshTokens(): Promise<boolean> {
  if (!session.refresh) return Promise.resolve(false)
  refreshing ??= (async () => {
    try {
      const res = await send('post', '/api/v1/auth/refresh', { refresh_token: session.refresh }, { 'Content-Type': 'application/json' }, 10000)
      if (res.status === 200) {
        const pair = res.data as Schemas['TokenPair']
        setTokens(pair.access_token, pair.refresh_token)
        return true
      }
      return false
    } catch {
      return false
    } finally {
      setTimeout(() => (refreshing = null), 0)
    }
  })()
  return refreshing
}

function toProblem(res: Raw): Problem {
  const d = res.data
  if (d && typeof d === 'object' && !Array.isArray(d)) {
    const o = d as Record<string, unknown>
    return {
      status: res.status,
      code: typeof o.code === 'string' ? o.code : undefined,
      detail: typeof o.detail === 'string' ? o.detail : undefined,
      errors: Array.isArray(o.errors) ? (o.errors as Problem['errors']) : undefined,
    }
  }
  return { status: res.status }
}

interface RawOptions {
  query?: Record<string, unknown>
  body?: unknown
  idempotencyKey?: string
  timeoutMs?: number
}

async function call(method: HttpMethod, url: string, opts: RawOptions, asBlob = false): Promise<Raw> {
  const run = () => {
    const headers: Record<string, string> = { Accept: asBlob ? '*/*' : 'application/json' }
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json'
    if (session.access) headers.Authorization = `Bearer ${session.access}`
    if (opts.idempotencyKey) headers['Idempotency-Key'] = opts.idempotencyKey
    return send(method, url, opts.body, headers, opts.timeoutMs ?? 20000, asBlob)
  }
  let res = await run()
  const isAuth = url.startsWith('/api/v1/auth/')
  if (res.status === 401 && session.refresh && !isAuth) {
    if (await refreshTokens()) res = await run()
  }
  if (res.status >= 200 && res.status < 300) return res
  const problem = toProblem(res)
  if (res.status === 401 && !isAuth) signOut()
  throw new ApiError(problemMessage(problem), res.status, problem.code ?? `http_${res.status}`, problem)
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
  const res = await call(method, url, { body: opts.body, idempotencyKey: opts.idempotencyKey, timeoutMs: opts.timeoutMs })
  return res.data as Answer<P, M>
}

export const api = {
  get: <P extends PathsWith<'get'>>(path: P, opts?: Options<Op<P, 'get'>>) => request('get', path, opts),
  post: <P extends PathsWith<'post'>>(path: P, opts?: Options<Op<P, 'post'>>) => request('post', path, opts),
  put: <P extends PathsWith<'put'>>(path: P, opts?: Options<Op<P, 'put'>>) => request('put', path, opts),
  patch: <P extends PathsWith<'patch'>>(path: P, opts?: Options<Op<P, 'patch'>>) => request('patch', path, opts),
  delete: <P extends PathsWith<'delete'>>(path: P, opts?: Options<Op<P, 'delete'>>) => request('delete', path, opts),
}

/** Untyped call for endpoints not yet in the OpenAPI document (shapes typed at the call site). */
export async function raw<T>(method: HttpMethod, path: string, opts: RawOptions = {}): Promise<T> {
  const res = await call(method, buildUrl(path, undefined, opts.query), opts)
  return res.data as T
}

/** Download a file (CSV / Excel export) with the staff token and save it in the browser. */
export async function download(path: string, query: Record<string, unknown>, fallbackName: string): Promise<string> {
  const res = await call('get', buildUrl(path, undefined, query), {}, true)
  const name = res.filename ?? fallbackName
  const href = URL.createObjectURL(res.blob as Blob)
  const a = document.createElement('a')
  a.href = href
  a.download = name
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(href), 1000)
  return name
}
