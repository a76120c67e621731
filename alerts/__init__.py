"""What happens after a finding: routing, grouping, the durable outbox, channels, scheduled jobs."""

from alerts.outbox import record_finding

__all__ = ["record_finding"]
