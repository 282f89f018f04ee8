"""Outbound webhooks: per-organization endpoints subscribed to events, signed per the Standard Webhooks scheme."""
