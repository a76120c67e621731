"""The alerting settings checked before anything runs: what a delivery or a routing would meet later.

:func:`preflight` reads every receiver's URL, secret or password and builds its TLS context (as the
channels will), and checks ``[contacts]`` against the labs of the enrolled leaks: a misspelt lab is
an error with a did-you-mean (routing compares names exactly, so that lab's contact would never be
told); an enrolled lab without a contact is a warning. ``dumpwatch daemon --check`` and the daemon's
start call it (:func:`dumpwatch.daemon.check.check_configuration`).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterable
from fnmatch import fnmatchcase

from rapidfuzz import fuzz, process, utils

from alerts.credentials import urls_in_a_shared_file
from alerts.settings import Alerting, Route
from dumpwatch.errors import ConfigError


SUGGEST_SCORE = 80.0  # rapidfuzz ratio (0-100, case and punctuation ignored) from which a lab is suggested


def preflight(alerting: Alerting, labs: Iterable[str] | None) -> tuple[list[ConfigError], list[str]]:
    """Errors and warnings a delivery or a routing would otherwise meet later.

    Every receiver's URL (from url_env/url_file), secret or password is read and its TLS context
    built (as the channels do);
    ``[contacts]`` is checked against ``labs``, the labs of the enrolled leaks (``None``: no leak
    enrolled, nothing to check against): a contact whose lab is not enrolled but close to one that
    is, is a misspelling (an error with a did-you-mean, since routing compares names exactly and that
    lab's contact would never be told); an enrolled lab without a contact is a warning.
    """
    from alerts.channels import tls_context

    errors: list[ConfigError] = []
    warnings: list[str] = []
    path = alerting.path

    def located(exc: ConfigError) -> ConfigError:  # in the configuration file (the message names others)
        return ConfigError(exc.message, path=path, key=exc.key) if path else exc

    for r in alerting.receivers.values():
        for read in (r.endpoint, r.secret) if r.type == "webhook" else (r.password,):
            try:
                read()
            except ConfigError as exc:
                errors.append(located(exc))
        if r.ca_file or not r.verify_tls:
            try:
                tls_context(r)
            except (OSError, ssl.SSLError) as exc:
                errors.append(ConfigError(f"receiver {r.name!r}: cannot load its CA file {r.ca_file!r} "
                                          f"({getattr(exc, 'strerror', None) or exc}); give a readable PEM file",
                                          path=path, key=f"receivers.{r.name}.ca_file"))
    warnings += urls_in_a_shared_file(alerting.path, [r.name for r in alerting.receivers.values()
                                                      if r.type == "webhook" and r.url and r.format == "slack"])
    if labs is None or not alerting.configured:  # no leak to check against; no receiver to tell at all
        return errors, warnings
    enrolled = sorted(set(labs))
    for lab in alerting.contacts:
        if lab in enrolled:
            continue
        best = process.extractOne(lab, enrolled, scorer=fuzz.ratio, processor=utils.default_process,
                                  score_cutoff=SUGGEST_SCORE) if enrolled else None
        if best is not None:
            errors.append(ConfigError(
                f"no enrolled leak has a lab {lab!r}: did you mean {best[0]!r}? Lab names must be written "
                f"exactly as in the enrolled file's lab column, or that lab's contact is never told",
                path=path, key=f"contacts.{lab}"))
        else:
            warnings.append(f"{path or 'the configuration'} [contacts.{lab}]: no enrolled leak has a lab "
                            f"{lab!r}; receiver {alerting.contacts[lab]!r} is told nothing until one does")
    per_lab = [r for r in alerting.routes if r.per_lab]
    whole = sorted({r.receiver for r in alerting.routes if not r.per_lab and r.receiver and _takes_reposts(r)})
    still = (f"{', '.join(whole)} still receive{'s' if len(whole) == 1 else ''} them" if whole else
             "no route sends reposts to any other receiver: nobody is told")
    for lab in enrolled:
        if lab in alerting.contacts:
            continue
        if per_lab:
            warnings.append(f"{path or 'the configuration'} [contacts]: enrolled lab {lab!r} has no contact: "
                            f"its DPO is not told of copies holding its patients ({still}); add "
                            f"{json.dumps(lab, ensure_ascii=False)} = \"RECEIVER\"")
    if enrolled and not per_lab:
        warnings.append(f"{path or 'the configuration'} [routes]: no route has per_lab = true, so no lab's "
                        f"contact is ever told ({still})")
    return errors, warnings


def _takes_reposts(route: Route) -> bool:
    verdicts = route.match.get("verdict")
    return not verdicts or any(fnmatchcase("repost", p) for p in verdicts)
