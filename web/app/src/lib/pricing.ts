// The member-tier discount, exactly as the server prices it (order/domain.py: tier_discount_fen,
// tier_label), so the pay page shows the breakdown before the order exists. The server's
// order is what is paid; this only previews it.
import type { Schemas } from '../api/http'

type Tier = Schemas['TierOut']

export interface DiscountLine {
  code: string
  label: string
  amount_fen: number
}

function yuan2(fen: number): string {
  return `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`
}

/** The tier's view for one grade: percent (basis points) or fen per litre, or nothing. */
export function tierRate(tier: Tier | null | undefined, grade: string): { percentBp: number; perLitreFen: number } | null {
  if (!tier) return null
  if (tier.discount_kind === 'percent' && tier.percent_bp > 0) return { percentBp: tier.percent_bp, perLitreFen: 0 }
  if (tier.discount_kind === 'per_litre') {
    const off = tier.grade_per_litre?.[grade] ?? tier.per_litre_fen
    return off > 0 ? { percentBp: 0, perLitreFen: off } : null
  }
  return null
}

/** The discount line for an amount (post-pay: with its volume; pay at the pump: the preset). */
export function tierDiscount(
  tier: Tier | null | undefined,
  grade: string,
  amountFen: number,
  volumeMl: number | null,
  unitPriceFen: number | null,
): DiscountLine | null {
  const rate = tierRate(tier, grade)
  if (!rate || !tier || amountFen <= 0) return null
  let off = 0
  let label = ''
  if (rate.percentBp > 0) {
    off = Math.floor((amountFen * rate.percentBp + 5000) / 10000)
    const whole = Math.floor(rate.percentBp / 100)
    const part = rate.percentBp % 100
    label = `${tier.name} 优惠${part === 0 ? whole : `${whole}.${String(part).padStart(2, '0')}`.replace(/0+$/, '')}%`
  } else {
    let v = volumeMl
    if (v === null) v = unitPriceFen && unitPriceFen > 0 ? Math.floor((amountFen * 1000) / unitPriceFen) : 0
    off = Math.floor((v * rate.perLitreFen + 500) / 1000)
    label = `${tier.name} 每升优惠¥${yuan2(rate.perLitreFen)}`
  }
  off = Math.min(off, amountFen)
  return off > 0 ? { code: 'member_tier', label, amount_fen: -off } : null
}
