"""Membership: tiers, growth value, RFM, the points ledger, the points mall, WeCom CRM."""
