// uni-app's <input> reports its value in `event.detail.value` (H5 and mini-program alike).
export function inputValue(e: Event): string {
  const detail = (e as unknown as { detail?: { value?: unknown } }).detail
  if (detail && typeof detail.value === 'string') return detail.value
  const target = e.target as { value?: unknown } | null
  return typeof target?.value === 'string' ? target.value : ''
}
