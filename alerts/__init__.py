"""What happens after a finding: routing, grouping, the durable outbox, channels, scheduled jobs.

Entry points: :func:`record_finding` and :func:`record_health` (write a finding and its alerts in one
transaction), :func:`alerts.jobs.deliver_once` and :func:`alerts.jobs.add_jobs` (send them).
See docs/alerts.md.
"""

from alerts.outbox import record_finding, record_health

__all__ = ["record_finding", "record_health"]
