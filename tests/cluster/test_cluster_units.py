"""The systemd units of the distributed mode (deploy/): hardened like deploy/dumpwatch.service, the
Redis password from a root-only file, a restart policy, and an ExecStart that `dumpwatch` accepts."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ["dumpwatch-control.service", "dumpwatch-worker.service"]
HARDENING = ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "ReadWritePaths", "ReadOnlyPaths", "PrivateTmp",
             "PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
             "ProtectControlGroups", "ProtectClock", "ProtectHostname", "RestrictSUIDSGID", "RestrictRealtime",
             "RestrictNamespaces", "LockPersonality", "RestrictAddressFamilies", "CapabilityBoundingSet",
             "AmbientCapabilities", "SystemCallArchitectures", "UMask")


def parse(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A unit file as systemd reads it: sections of ``Key=value`` lines, repeated keys kept in order."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None and "=" in line, f"{path.name}:{n}: not a Key=value line in a section"
        key, value = line.split("=", 1)
        current.append((key.strip(), value.strip()))
    return sections


def values(unit: dict, section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def one(unit: dict, section: str, key: str) -> str:
    [value] = values(unit, section, key)
    return value


def _accepts(argv: list[str]) -> click.Context:
    """Parse ``dumpwatch ARGS`` with the real command line (nothing run): unknown options raise."""
    from dumpwatch.cli.main import cli

    assert argv[0].endswith("/dumpwatch")
    ctx = cli.make_context("dumpwatch", argv[1:], resilient_parsing=False)
    # click 8.2 keeps the subcommand apart (``protected_args``, deprecated); click 9 puts it in ``args``
    name, *rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
    command = cli.get_command(ctx, name)
    assert command is not None, f"no command {name!r}"
    return command.make_context(name, rest, parent=ctx)


@pytest.mark.parametrize("name", UNITS)
def test_a_unit_is_hardened_like_the_daemons(name):
    reference = parse(ROOT / "deploy" / "dumpwatch.service")
    unit = parse(ROOT / "deploy" / name)
    assert set(unit) == {"Unit", "Service", "Install"}
    assert one(unit, "Service", "User") == "dumpwatch" and one(unit, "Service", "Group") == "dumpwatch"
    for key in HARDENING:
        assert values(unit, "Service", key) == values(reference, "Service", key), key
    assert one(unit, "Service", "Restart") == "on-failure" and float(one(unit, "Service", "RestartSec")) > 0
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


@pytest.mark.parametrize("name", UNITS)
def test_the_redis_password_comes_from_a_root_only_file_not_the_unit(name):
    unit = parse(ROOT / "deploy" / name)
    assert values(unit, "Service", "EnvironmentFile") == ["/etc/dumpwatch/redis.env"]
    for env in values(unit, "Service", "Environment"):
        assert "PASSWORD" not in env.upper() and "redis://" not in env
    text = (ROOT / "deploy" / name).read_text()
    assert "redis.env" in text and "0600" in text  # the install steps make it root-only


@pytest.mark.parametrize("name", UNITS)
def test_each_command_of_a_unit_is_a_real_dumpwatch_command_line(name):
    unit = parse(ROOT / "deploy" / name)
    commands = values(unit, "Service", "ExecStartPre") + values(unit, "Service", "ExecStart")
    assert commands
    for line in commands:
        ctx = _accepts(shlex.split(line))
        assert ctx.command.name in ("daemon", "worker")


def test_the_worker_unit_runs_a_worker_with_metrics_on_loopback():
    from crawler.cluster.metrics import parse_address

    ctx = _accepts(shlex.split(one(parse(ROOT / "deploy" / "dumpwatch-worker.service"), "Service", "ExecStart")))
    assert ctx.command.name == "worker"
    host, port = parse_address(ctx.params["metrics"])  # loopback, without the opt-in
    assert host == "127.0.0.1" and port != 9464  # not the control node's port, should both run on one machine
    control = parse(ROOT / "deploy" / "dumpwatch-control.service")
    assert _accepts(shlex.split(one(control, "Service", "ExecStart"))).command.name == "daemon"


def test_an_unknown_option_is_refused_by_the_check_itself():
    """The check above can fail: an option `dumpwatch worker` does not have."""
    with pytest.raises(click.UsageError):
        _accepts(["/opt/dumpwatch/bin/dumpwatch", "worker", "--no-such-option"])
