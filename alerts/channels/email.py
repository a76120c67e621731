"""Email channel: SMTP with STARTTLS or implicit TLS, optional authentication.

The message is multipart: plain text, HTML, and the Article 33 draft attached as Markdown. Its
Message-ID is built from the idempotency key (``<KEY@dumpwatch>``), also in ``X-Dumpwatch-Key``, so a
message delivered twice is recognisable. The password comes from ``password_env`` or
``password_file``, never from the configuration file.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from alerts.channels import ChannelError, tls_context
from alerts.render import Message
from alerts.settings import Receiver

log = logging.getLogger(__name__)


def build(receiver: Receiver, message: Message, idempotency_key: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = message.subject
    msg["From"] = receiver.sender
    msg["To"] = ", ".join(receiver.to)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = f"<{idempotency_key}@dumpwatch>"
    msg["X-Dumpwatch-Key"] = idempotency_key
    msg["X-Dumpwatch-Severity"] = str(message.data.get("severity", ""))
    msg["X-Dumpwatch-Kind"] = str(message.data.get("kind", ""))
    msg.set_content(message.text)
    msg.add_alternative(message.html, subtype="html")
    if message.markdown:
        msg.add_attachment(message.markdown, subtype="markdown", charset="utf-8", cte="base64",
                           filename="article33-draft.md")  # charset said: the French draft is not ASCII
    return msg


def send(receiver: Receiver, message: Message, idempotency_key: str) -> str:
    msg = build(receiver, message, idempotency_key)
    where = f"{receiver.smtp_host}:{receiver.smtp_port}"
    try:
        password = receiver.password() if receiver.username else None
        if receiver.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(receiver.smtp_host, receiver.smtp_port, timeout=receiver.timeout,
                                                  context=tls_context(receiver))
        else:
            smtp = smtplib.SMTP(receiver.smtp_host, receiver.smtp_port, timeout=receiver.timeout)
        with smtp:
            smtp.ehlo()
            if receiver.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise ChannelError(f"receiver {receiver.name}: {where} does not offer STARTTLS; refusing to "
                                       "send in clear (set security = \"none\" only for a local relay)")
                smtp.starttls(context=tls_context(receiver))
                smtp.ehlo()
            if receiver.username:
                smtp.login(receiver.username, password or "")
            refused = smtp.send_message(msg)
    except ChannelError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        raise ChannelError(f"receiver {receiver.name}: all recipients refused by {where}: "
                           f"{sorted(exc.recipients)}", permanent=True) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise ChannelError(f"receiver {receiver.name}: authentication failed at {where} ({exc.smtp_code}); "
                           "check username and password_env/password_file") from None
    except smtplib.SMTPResponseException as exc:
        raise ChannelError(f"receiver {receiver.name}: {where} answered {exc.smtp_code} "
                           f"{exc.smtp_error.decode(errors='replace')[:200]}",
                           permanent=500 <= exc.smtp_code < 600) from None
    except ssl.SSLError as exc:
        raise ChannelError(f"receiver {receiver.name}: TLS with {where} failed ({exc.reason}); check the "
                           "certificate, or give ca_file") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise ChannelError(f"receiver {receiver.name}: cannot send through {where}: "
                           f"{type(exc).__name__}: {exc}") from None
    if refused:
        log.warning("receiver %s: %d recipient(s) refused: %s", receiver.name, len(refused), sorted(refused))
    return f"smtp {where} accepted for {len(receiver.to) - len(refused)} recipient(s)"
