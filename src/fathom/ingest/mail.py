"""E-mail (RFC 5322 ``.eml``): headers, then the body (plain text preferred, else HTML).

Attachments are not ingested; how many there were is reported as a warning.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from fathom.errors import IngestError
from fathom.ingest.detect import EML
from fathom.ingest.document import DocumentBuilder, ParsedDocument
from fathom.ingest.html import parse_html_text

__all__ = ["parse_eml"]

_HEADERS = ("From", "To", "Cc", "Date", "Subject")


def parse_eml(data: bytes) -> ParsedDocument:
    """Parse one e-mail message."""
    try:
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        subject = " ".join(str(message.get("Subject", "") or "").split())
        header_lines = [f"{name}: {message.get(name)}" for name in _HEADERS if message.get(name)]
        body = message.get_body(preferencelist=("plain", "html"))
        content = body.get_content() if body is not None else ""
        is_html = body is not None and body.get_content_subtype() == "html"
        attachments = sum(1 for _ in message.iter_attachments())
    except (
        LookupError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        AssertionError,
        UnicodeError,
    ) as exc:
        raise IngestError("the e-mail is malformed", code="ingest.malformed_email") from exc
    builder = DocumentBuilder()
    warnings: list[str] = []
    if subject:
        builder.heading(1, subject)
    if header_lines:
        builder.block("\n".join(header_lines))
    if isinstance(content, str) and content.strip():
        if is_html:
            html = parse_html_text(content)
            warnings.extend(html.warnings)
            for block in html.blocks:
                piece = html.text[block.start : block.end]
                if block.kind == "heading":
                    builder.heading(len(block.heading_path) + 1, piece)
                else:
                    builder.block(piece, block.kind)
        else:
            for paragraph in content.split("\n\n"):
                builder.block(paragraph)
    if attachments:
        warnings.append(f"{attachments} attachment(s) not ingested")
    return ParsedDocument(
        subject, builder.text(), builder.blocks, EML, [*warnings, *builder.removed.warnings()]
    )
