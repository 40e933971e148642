"""Sending SMS, pluggable: a logging sender by default (development and the demo: the message
is written to the log, where the person running it reads the code), or an HTTP gateway that the
province's SMS platform offers (`QILU_SMS_GATEWAY_URL`). Messages are sent from the outbox,
after the transaction that caused them, never inside it."""

from __future__ import annotations

from typing import Protocol

import httpx
import structlog

from qilu.pii import mask_phone
from qilu.settings import Settings

log = structlog.get_logger("qilu.sms")
GATEWAY_TIMEOUT = 10.0


class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> None: ...


class LoggingSender:
    """Writes each message to the log instead of sending it (not for production)."""

    def send(self, phone: str, text: str) -> None:
        log.warning("sms.logged", phone=mask_phone(phone), text=text)


class GatewaySender:
    """POSTs `{"phone", "text"}` as JSON to the SMS platform, with a bearer token if set; any
    answer but 2xx is a failure the outbox tries again."""

    def __init__(self, url: str, token: str | None):
        self.url, self.token = url, token

    def send(self, phone: str, text: str) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = httpx.post(
            self.url, json={"phone": phone, "text": text}, headers=headers, timeout=GATEWAY_TIMEOUT
        )
        response.raise_for_status()
        log.info("sms.sent", phone=mask_phone(phone))


def sender_for(settings: Settings) -> SmsSender:
    if settings.sms_gateway_url:
        token = (
            settings.sms_gateway_token.get_secret_value() if settings.sms_gateway_token else None
        )
        return GatewaySender(settings.sms_gateway_url, token)
    return LoggingSender()
