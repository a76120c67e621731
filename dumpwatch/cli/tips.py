"""Tips become findings: what `dumpwatch scan --record` does with each scanned input.

Someone tells the CNIL (or a lab's DPO) "the file is at this URL", or hands over a copy: recorded,
the scan result becomes a finding like one of a crawled document, through the same door
(:func:`alerts.record_finding`: the finding, its alerts routed to the CNIL and the labs, in one
transaction), with the evidence a crawl keeps (the URL or file name, the time, the content's
SHA-256 and size) and the tipster's note in ``detail.tip`` (scrubbed of anything identifier-shaped,
as every stored text is). A copy already recorded (same content, same verdict, same leak) makes no
second finding and no second alert. Only what a crawl would record is recorded: ``repost`` and
``schema-match``; ``none`` and ``error`` are said, not stored.

Standard input (``scan -``) is read into a spooled temporary file (in memory up to 16 MiB), at most
``limits.max_bytes``, like a download.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from matchers.finding import REPOST, SCHEMA_MATCH, Finding

STDIN = "-"
RECORDED_VERDICTS = (REPOST, SCHEMA_MATCH)


def scan_stdin(scanner: Any, max_bytes: int, stream: Any = None) -> Finding:
    """Scan what standard input holds (at most ``max_bytes``: the rest is not read, and said)."""
    stream = stream if stream is not None else sys.stdin.buffer
    spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)
    n, cut = 0, False
    with spool:
        while True:
            chunk = stream.read(1 << 20)
            if not chunk:
                break
            room = max_bytes - n
            spool.write(chunk[:room])
            n += min(len(chunk), room)
            if len(chunk) > room:
                cut = True
                break
        spool.seek(0)
        finding = scanner.scan_stream(spool, "(stdin)")
    if cut:
        import dataclasses

        finding = dataclasses.replace(
            finding, complete=False,
            errors=(*finding.errors, f"(stdin): larger than limits.max_bytes={max_bytes} bytes; only the first "
                                     f"{n} bytes were scanned (raise [limits] max_bytes to read it all)"))
    return finding


def record(obj: Any, finding: Finding, *, note: str | None, author: str | None) -> tuple[int | None, str]:
    """Record one scanned input as a tip; ``(finding id or None, what was done, in words)``."""
    if finding.verdict not in RECORDED_VERDICTS:
        return None, f"not recorded (verdict {finding.verdict}: nothing a crawl would record)"
    from alerts import record_finding
    from dumpwatch import clock

    url = finding.input
    if finding.input not in ("(stdin)",) and not finding.input.lower().startswith(("http://", "https://")):
        url = "file:" + os.path.basename(finding.input)  # the analyst's own path is not evidence
    tip = {"by": author or "unknown", "at": clock.utcnow()}
    if note:
        tip["note"] = note
    detail = {"document": "tip", "sha256": finding.sha256, "size": finding.size, "tip": tip}
    finding_id = record_finding(obj.db(), finding, source="tip", url=url, detail=detail, config=obj.config)
    if finding_id is None:
        return None, "already recorded (the same copy): no new finding, no new alert"
    return finding_id, f"recorded as finding {finding_id} (see: dumpwatch findings show {finding_id})"
