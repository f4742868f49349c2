"""Sending an invoice PDF by e-mail over SMTP (the address never appears in a log line)."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from forecourt.config import Settings
from forecourt.invoice import emails
from forecourt.kit.money import yuan

log = logging.getLogger("forecourt.invoice")


class MailError(Exception):
    """The SMTP server refused the message or could not be reached."""


def message(
    *,
    sender: str,
    to: str,
    number: str,
    seller_name: str,
    total_fen: int,
    red: bool,
    pdf: bytes,
    original_number: str | None = None,
) -> EmailMessage:
    """The e-mail with the invoice attached (`{number}.pdf`)."""
    msg = EmailMessage()
    kind = "红字电子发票" if red else "电子发票"
    msg["Subject"] = f"{kind} {number}（{seller_name}）"
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(idstring=number, domain="forecourt.invalid")
    lines = [
        "您好：",
        "",
        f"附件是{seller_name}为您开具的{kind}（数电票），发票号码 {number}，"
        f"价税合计 ¥{yuan(total_fen)}。",
    ]
    if red and original_number:
        lines.append(f"本发票红冲原蓝字发票 {original_number}（订单退款）。")
    lines += ["", "此邮件由系统自动发送，请勿回复。"]
    msg.set_content("\n".join(lines))
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"{number}.pdf")
    return msg


async def send(settings: Settings, msg: EmailMessage) -> bool:
    """Send through the configured SMTP server; False when e-mail is not configured."""
    to = str(msg["To"])
    if not settings.smtp_host:
        log.info("invoice e-mail not configured", extra={"to": emails.mask(to)})
        return False
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    try:
        await aiosmtplib.send(
            msg,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=password,
            start_tls=settings.smtp_starttls,
            timeout=20,
        )
    except aiosmtplib.SMTPException as exc:
        log.warning(
            "invoice e-mail failed", extra={"to": emails.mask(to), "error": type(exc).__name__}
        )
        raise MailError(type(exc).__name__) from exc
    log.info("invoice e-mailed", extra={"to": emails.mask(to), "subject": str(msg["Subject"])})
    return True
