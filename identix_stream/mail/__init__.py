"""Outgoing mail behind one small interface: an outbox folder (default) or SMTP."""

from __future__ import annotations

from identix_stream.config import Settings
from identix_stream.mail.sender import MailMessage, MailSender, OutboxSender, SmtpSender

__all__ = ["MailMessage", "MailSender", "OutboxSender", "SmtpSender", "mail_sender"]


def mail_sender(settings: Settings) -> MailSender:
    if settings.smtp_host:
        return SmtpSender(
            settings.smtp_host,
            settings.smtp_port,
            user=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            sender=settings.mail_from,
        )
    return OutboxSender(settings.data_dir / "outbox", sender=settings.mail_from)
