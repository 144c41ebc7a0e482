"""Mail senders. The outbox sender writes each message as an .eml file and logs where, so password
reset and email verification work locally without an SMTP server."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from identix_stream.errors import StoreUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MailMessage:
    to: str
    subject: str
    body: str


class MailSender(Protocol):
    async def send(self, message: MailMessage) -> None: ...


def _build(message: MailMessage, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = message.to
    msg["Subject"] = message.subject
    # plain 7bit when possible, so links in the outbox files stay whole and clickable
    msg.set_content(message.body, cte="7bit" if message.body.isascii() else "quoted-printable")
    return msg


class OutboxSender:
    def __init__(self, folder: Path, sender: str) -> None:
        self.folder = Path(folder)
        self.sender = sender

    def _write(self, message: MailMessage) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        path.write_bytes(bytes(_build(message, self.sender)))
        return path

    async def send(self, message: MailMessage) -> None:
        path = await asyncio.to_thread(self._write, message)
        log.info("mail to %s (%s) written to %s", message.to, message.subject, path)


class SmtpSender:
    def __init__(self, host: str, port: int, *, user: str, password: str, starttls: bool, sender: str) -> None:
        self.host, self.port = host, port
        self.user, self.password = user, password
        self.starttls = starttls
        self.sender = sender

    def _send_sync(self, message: MailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=15) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self.password)
            smtp.send_message(_build(message, self.sender))

    async def send(self, message: MailMessage) -> None:
        try:
            await asyncio.to_thread(self._send_sync, message)
        except (OSError, smtplib.SMTPException) as exc:
            log.error("SMTP delivery to %s failed: %s", message.to, exc)
            raise StoreUnavailable("the mail server is unreachable; try again later", code="mail_unavailable") from exc
        log.info("mail to %s (%s) sent via %s:%d", message.to, message.subject, self.host, self.port)
