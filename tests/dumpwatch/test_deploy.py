"""deploy/: the example configuration loads with the real loaders (so it never rots); the unit file's
essentials (a dedicated user, the key apart from the home, restart on failure, hardening)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from dumpwatch.home import Home

DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy"


def test_example_configuration_loads_with_every_loader(tmp_path):
    from alerts import settings as alert_settings
    from crawler.sources import KINDS, load_crawl_config
    from dumpwatch.daemon.settings import load_settings
    from dumpwatch.engine_settings import scan_settings_from

    config = Home(tmp_path).load_config(DEPLOY / "dumpwatch.example.toml")
    cc = load_crawl_config(config)
    assert {s.kind for s in cc.sources} == set(KINDS)  # a source of each kind
    assert "tg" not in {s.name for s in cc.enabled()}
    assert not cc.network.allow_private_networks and cc.network.allowed_networks == ()  # strict by default
    alerting = alert_settings.load(config)
    assert {"cnil", "ops", "oncall"} <= set(alerting.receivers) and alerting.contacts and alerting.routes
    assert alerting.receivers["oncall"].smtp_host == "smtp.example" and alerting.receivers["ops"].language == "en"
    assert alerting.contact_for("LBM Armor Analyses").name == "Yann Le Goff"  # its DPO, through [smtp]
    scan = scan_settings_from(config)
    assert scan.repost_threshold == 3
    daemon = load_settings(config)
    assert daemon.cron == {"board": "15 */6 * * *"} and daemon.crawl_timeout == 1800
    assert daemon.retention.seen_retention >= cc.defaults.recrawl_age


def test_example_configuration_gives_the_daemon_its_jobs(tmp_path):
    from dumpwatch.cli.main import cli

    text = (DEPLOY / "dumpwatch.example.toml").read_text()
    for name in ("cnil.secret", "ops.secret", "smtp.password", "ops.url"):  # the secrets the example points to
        (tmp_path / name).write_text("https://chat.example/hooks/t0ken\n" if name.endswith(".url")
                                     else "s3cret-for-the-test\n")
        text = text.replace(f"/etc/dumpwatch/{name}", str(tmp_path / name))
    cfg = tmp_path / "dumpwatch.toml"
    cfg.write_text(text)
    result = CliRunner().invoke(cli, ["--home", str(tmp_path / "home"), "--config", str(cfg), "daemon", "--check"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for job in ("crawl:paste-archive", "crawl:paste-api", "crawl:board", "crawl:disc", "crawl:blog",
                "alerts-delivery", "source-health", "housekeeping"):
        assert job in result.output
    assert "crawl:tg" not in result.output
    assert "cron[" in result.output  # the board is on a crontab line


def test_systemd_unit_essentials():
    svc: dict[str, str] = {}
    env: dict[str, str] = {}
    section = ""
    for line in (DEPLOY / "dumpwatch.service").read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith("#"):
            key, value = line.split("=", 1)
            if key == "Environment":
                env.update([value.split("=", 1)])
            svc[key] = value
    assert svc["Type"] == "simple" and svc["User"] == "dumpwatch"
    assert "DUMPWATCH_HOME" in env and "DUMPWATCH_KEY_FILE" in env
    assert not env["DUMPWATCH_KEY_FILE"].startswith(env["DUMPWATCH_HOME"])  # the key apart from the data
    assert svc["ExecStart"].endswith("dumpwatch daemon") and svc["Restart"] == "on-failure"
    assert svc["RestartPreventExitStatus"] == "2"  # a configuration error is not retried in a loop
    assert svc["ProtectSystem"] == "strict" and env["DUMPWATCH_HOME"] in svc["ReadWritePaths"]
    assert svc["NoNewPrivileges"] == "yes" and svc["PrivateTmp"] == "yes"
    assert int(svc["TimeoutStopSec"]) > 30 + 15  # above shutdown_grace + stop_timeout of the example
