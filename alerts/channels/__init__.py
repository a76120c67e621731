"""Channels deliver one rendered message to one receiver: email (SMTP) or webhook (HTTP POST).

Each channel's ``send(receiver, message, idempotency_key)`` returns a short receipt, or raises
:class:`ChannelError`; ``permanent=True`` means retrying cannot help (a refused recipient, an HTTP 4xx),
so the message goes to the dead-letter state (and the fallback receiver) at once.
"""

from __future__ import annotations

import ssl

from alerts.render import Message
from alerts.settings import Receiver
from dumpwatch.errors import ChannelError

__all__ = ["ChannelError", "send", "tls_context"]




def tls_context(receiver: Receiver) -> ssl.SSLContext:
    """Verification on (system CAs, or ``ca_file``); off only when the receiver says verify_tls = false."""
    if not receiver.verify_tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=receiver.ca_file) if receiver.ca_file else ssl.create_default_context()


def send(receiver: Receiver, message: Message, idempotency_key: str) -> str:
    """Deliver ``message`` through the receiver's channel."""
    if receiver.type == "email":
        from alerts.channels import email

        return email.send(receiver, message, idempotency_key)
    from alerts.channels import webhook

    return webhook.send(receiver, message, idempotency_key)
