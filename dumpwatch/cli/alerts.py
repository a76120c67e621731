"""`dumpwatch alerts …`: see and act on the outbox, the receivers, the incidents and the silences.

The findings commands are in :mod:`dumpwatch.cli.findings`.

Stored text (URLs, errors, subjects, message texts) is printed through :func:`dumpwatch.escape.terminal`
(JSON through :func:`dumpwatch.escape.json_line`): what a page wrote never drives the terminal.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

import click

from dumpwatch.cli.listing import chosen, emit, format_option
from dumpwatch.errors import DumpwatchError
from dumpwatch.escape import json_line, terminal


def _alerting(obj: Any):
    from alerts.outbox import alerting_of

    return alerting_of(obj.config)


def _echo_json(value: Any) -> None:
    click.echo(json_line(value, sort_keys=True, default=str))


# -- alerts ----------------------------------------------------------------------------------------

@click.group("alerts")
def alerts_group() -> None:
    """See and act on the alert outbox: messages, delivery, silences, incidents.

    \b
    Example:
      dumpwatch alerts list --status dead
      dumpwatch alerts send
    """


@alerts_group.command("list")
@click.option("--status", type=click.Choice(["pending", "sending", "delivered", "dead"]), help="Only this state.")
@click.option("--receiver", help="Only messages to this receiver.")
@click.option("--limit", default=50, show_default=True, help="At most this many, newest first.")
@format_option
@click.pass_obj
def alerts_list(obj: Any, status: str | None, receiver: str | None, limit: int, fmt: str, as_json: bool) -> None:
    """List messages in the outbox (newest first) with their delivery state.

    Alerts become messages when their group goes out (group_wait after the first alert; the
    daemon, or `dumpwatch alerts send`); alerts still waiting are counted under the table.

    \b
    Example:
      dumpwatch alerts list --receiver cnil --status pending
      dumpwatch alerts list --format csv > outbox.csv
    """
    from alerts import delivery, grouping

    db = obj.db()
    rows = delivery.messages(db, status=status, receiver=receiver, limit=limit)
    fmt = chosen(fmt, as_json)
    emit(rows, ["id", "receiver", "kind", "severity", "status", "attempts", "created_at", "subject"], fmt)
    waiting = grouping.pending_alerts(db) if fmt == "table" and status in (None, "pending") else 0
    if waiting:
        click.echo(f"{waiting} alert(s) waiting for their group to go out, not yet messages (see: dumpwatch "
                   "alerts incidents; dumpwatch alerts send sends what is due)")


@alerts_group.command("show")
@click.argument("message_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="The stored message and its payload as JSON.")
@click.option("--draft", is_flag=True, help="Print only the Article 33 notification draft (Markdown).")
@click.pass_obj
def alerts_show(obj: Any, message_id: int, as_json: bool, draft: bool) -> None:
    """Show one message: delivery state, errors, and the text that is (or was) sent.

    \b
    Example:
      dumpwatch alerts show 12
      dumpwatch alerts show 12 --draft > article33.md
    """
    from alerts import delivery, grouping

    db = obj.db()
    msg = delivery.get_message(db, message_id)
    if msg is None:
        raise DumpwatchError(f"no message {message_id}; see: dumpwatch alerts list")
    cols = list(msg)
    payload = json.loads(msg.pop("payload"))
    if draft:
        click.echo(terminal(payload["markdown"], multiline=True) or "(no Article 33 draft for this message)")
        return
    if as_json:
        _echo_json({**msg, "payload": payload})
        return
    for k in cols:
        if k != "payload":
            click.echo(f"{k:16} {'' if msg[k] is None else terminal(msg[k])}")
    alerts = grouping.alerts_of_message(db, message_id)
    if alerts:
        click.echo("alerts           " + ", ".join(
            f"{a['id']} (finding {a['finding_id']}{', lab ' + terminal(a['lab']) if a['lab'] else ''})"
            for a in alerts))
    click.echo("")
    click.echo(terminal(payload["text"], multiline=True))


@alerts_group.command("retry")
@click.argument("message_id", type=int)
@click.option("--now", "send_now", is_flag=True, help="Run a delivery pass right away.")
@click.pass_obj
def alerts_retry(obj: Any, message_id: int, send_now: bool) -> None:
    """Make a message due again (a dead one included), with a fresh maximum age.

    \b
    Example:
      dumpwatch alerts retry 12 --now
    """
    from alerts import delivery

    alerting = _alerting(obj)
    db = obj.db()
    row = delivery.retry(db, alerting, message_id)
    click.echo(f"message {message_id} to {row['receiver']} is due again ({row['idempotency_key']})")
    if send_now:
        report = delivery.deliver_due(db, alerting, ids=[message_id])
        click.echo(report.summary())


@alerts_group.command("test")
@click.argument("receiver")
@click.pass_obj
def alerts_test(obj: Any, receiver: str) -> None:
    """Send a test message to RECEIVER now, through the outbox, and say whether it arrived.

    \b
    Example:
      dumpwatch alerts test cnil
    """
    import secrets

    from alerts import delivery, grouping, render
    from dumpwatch import clock
    from dumpwatch import store

    alerting = _alerting(obj)
    if receiver not in alerting.receivers:
        known = ", ".join(sorted(alerting.receivers)) or "none: add [[receivers]] to dumpwatch.toml"
        raise DumpwatchError(f"no receiver {receiver!r} in the configuration (known: {known})")
    db = obj.db()
    key = f"dw-test-{secrets.token_hex(8)}"
    with store.write(db):
        nid = grouping.insert_message(db, alerting, receiver=receiver, kind="test", key=key,
                                      message=render.probe_message(receiver, key, *alerting.speech(receiver)),
                                      incident_id=None,
                                      now=clock.now())
    report = delivery.deliver_due(db, alerting, ids=[nid])
    row = delivery.get_message(db, nid)
    if row["status"] == "delivered":
        click.echo(f"test message {key} delivered to {receiver} (message {nid})")
        return
    delivery.give_up(db, nid)  # a test is not retried later
    raise DumpwatchError(f"test message to {receiver} not delivered: {row['last_error'] or report.summary()}")


@alerts_group.command("send")
@click.option("--limit", default=200, show_default=True, help="At most this many messages in this pass.")
@click.pass_obj
def alerts_send(obj: Any, limit: int) -> None:
    """Run the delivery job once: group due alerts into messages, send due messages.

    The daemon runs the same job every few seconds; a message that fails is retried later with
    backoff, so running this again is always safe.

    \b
    Example:
      dumpwatch alerts send
    """
    from alerts.jobs import deliver_once

    _alerting(obj)  # validate before touching the database
    obj.home.ensure()
    report = deliver_once(obj.home.db_path, obj.config, limit=limit)
    click.echo(report.summary())


@alerts_group.command("receivers")
@format_option
@click.pass_obj
def alerts_receivers(obj: Any, fmt: str, as_json: bool) -> None:
    """List configured receivers with their delivery state (failures in a row, backoff, last error).

    \b
    Examples:
      dumpwatch alerts receivers
      dumpwatch alerts receivers --format csv > receivers.csv
    """
    from alerts import delivery

    alerting = _alerting(obj)
    db = obj.db()
    state = delivery.receiver_states(db)
    counts = delivery.message_counts_by_receiver(db)
    rows = []
    for name in sorted(set(alerting.receivers) | set(state)):
        r = alerting.receivers.get(name)
        st = state.get(name, {})
        rows.append({"name": name, "type": r.type if r else "(not configured)",
                     "target": r.target if r else "",  # a webhook URL redacted: it is a credential
                     "pending": counts.get((name, "pending"), 0), "dead": counts.get((name, "dead"), 0),
                     "failures": st.get("consecutive_failures") or 0, "retry_at": st.get("next_attempt_at"),
                     "last_error": st.get("last_error") if st.get("consecutive_failures") else ""})
    emit(rows, ["name", "type", "target", "pending", "dead", "failures", "retry_at", "last_error"],
         chosen(fmt, as_json))


@alerts_group.command("incidents")
@click.option("--all", "show_all", is_flag=True, help="Closed incidents too.")
@format_option
@click.pass_obj
def alerts_incidents(obj: Any, show_all: bool, fmt: str, as_json: bool) -> None:
    """List incidents: the groups of alerts (receiver, leak, verdict, lab) that go out together.

    \b
    Examples:
      dumpwatch alerts incidents --all
      dumpwatch alerts incidents --format json | jq .group_key
    """
    from alerts import grouping

    cols = ["id", "receiver", "route", "status", "opened_at", "last_alert_at", "notifications", "next_flush_at",
            "alerts", "group_key"]
    emit(grouping.incidents(obj.db(), include_closed=show_all), cols, chosen(fmt, as_json))


@alerts_group.command("ack")
@click.argument("incident_id", type=int)
@click.option("--author", default=lambda: os.environ.get("USER") or os.environ.get("LOGNAME", ""), help="Who acknowledges (default $USER).")
@click.pass_obj
def alerts_ack(obj: Any, incident_id: int, author: str) -> None:
    """Acknowledge an incident: no more reminders; it closes once its waiting alerts are sent.

    \b
    Example:
      dumpwatch alerts ack 3 --author dpo@lab.example
    """
    from alerts import grouping

    if not grouping.acknowledge(obj.db(), incident_id, author=author or "unknown"):
        raise DumpwatchError(f"no open incident {incident_id}; see: dumpwatch alerts incidents")
    click.echo(f"incident {incident_id} acknowledged by {author or 'unknown'}")


@alerts_group.group("silence")
def silence_group() -> None:
    """Silences: stop alerts matching labels from being sent, until they expire.

    \b
    Example:
      dumpwatch alerts silence add --match leak=labos-2021 --match receiver=ops \\
          --comment "takedown in progress" --duration 4h
    """


@silence_group.command("add")
@click.option("--match", "matchers", multiple=True, required=True, metavar="LABEL=GLOB",
              help="Label matcher (leak, verdict, severity, lab, source, receiver); repeat for more.")
@click.option("--author", default=lambda: os.environ.get("USER") or os.environ.get("LOGNAME", ""), help="Who silences (default $USER).")
@click.option("--comment", required=True, help="Why (shown in silence list).")
@click.option("--duration", default="2h", show_default=True, help="How long: 30m, 4h, 2d …")
@click.option("--until", "until", help="Or an end time (ISO 8601, UTC if no offset).")
@click.pass_obj
def silence_add(obj: Any, matchers: tuple[str, ...], author: str, comment: str, duration: str,
                until: str | None) -> None:
    """Add a silence: alerts whose labels match every matcher are not sent while it lasts.

    \b
    A lab must be one of the enrolled leaks' labs and a source one of the configured sources (or
    'tip', for `scan --record`); a value that matches none is refused, with a did-you-mean.

    \b
    Examples:
      dumpwatch alerts silence add --match lab="Biolab Vannes" --comment "DPO on leave, CNIL informed" \\
          --duration 14d
      dumpwatch alerts silence add --match source=pastes --match verdict=schema-match \\
          --comment "noisy source, being tuned" --duration 4h
    """
    from alerts import silences
    from dumpwatch import clock
    from dumpwatch.tables import parse_duration

    now = clock.now()
    if until:
        try:
            ends = clock.parse(until)
        except ValueError:
            raise click.BadParameter(f"{until!r} is not an ISO 8601 time", param_hint="--until") from None
    else:
        try:
            ends = now + timedelta(seconds=parse_duration(duration))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--duration") from None
    parsed = silences.parse_matchers(matchers)
    db = obj.db()
    silences.check_known(parsed, _known_labels(obj, db, parsed))
    if until and ends <= now:
        raise click.BadParameter(f"{until} is in the past (now {clock.iso(now)}): a silence must end later",
                                 param_hint="--until")
    sid = silences.add(db, parsed, author=author, comment=comment, ends_at=ends, now=now)
    click.echo(f"silence {sid} until {clock.iso(ends)}")


def _known_labels(obj: Any, db: Any, matchers: dict[str, str]) -> dict[str, list[str]]:
    """The labs and sources that exist, for the labels a silence matches on."""
    from dumpwatch import store

    known: dict[str, list[str]] = {}
    if "lab" in matchers:
        known["lab"] = [lab for leak in store.leaks(db) for lab in (leak["labs"] or {})]
    if "source" in matchers:
        from crawler.sources import load_crawl_config

        known["source"] = [s.name for s in load_crawl_config(obj.config).sources] + ["tip"]
    return known


@silence_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Expired silences too.")
@format_option
@click.pass_obj
def silence_list(obj: Any, show_all: bool, fmt: str, as_json: bool) -> None:
    """List active silences (with --all, expired ones too).

    \b
    Example:
      dumpwatch alerts silence list --all
    """
    import dataclasses

    from alerts import silences
    from dumpwatch import clock

    now = clock.now()
    rows = []
    for s in silences.listed(obj.db(), include_expired=show_all, now=now):
        d = dataclasses.asdict(s)
        d["state"] = "active" if s.active(now) else ("pending" if s.starts_at > clock.iso(now) else "expired")
        rows.append(d)
    fmt = chosen(fmt, as_json)
    if fmt != "json":
        for d in rows:
            d["matchers"] = " ".join(f"{k}={v}" for k, v in d["matchers"].items())
    emit(rows, ["id", "state", "matchers", "author", "ends_at", "comment"], fmt)


@silence_group.command("expire")
@click.argument("silence_id", type=int)
@click.pass_obj
def silence_expire(obj: Any, silence_id: int) -> None:
    """Expire a silence now: alerts it matches are sent again from the next pass.

    \b
    Example:
      dumpwatch alerts silence expire 4
    """
    from alerts import silences

    s = silences.expire(obj.db(), silence_id)
    click.echo(f"silence {s.id} expired at {s.ends_at}")


COMMANDS = [alerts_group]
