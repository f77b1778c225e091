"""Decide what a file is from its bytes (magic numbers and content), not its name."""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from dataclasses import dataclass

from charset_normalizer import from_bytes

from fathom.errors import IngestError, UnsupportedFormat

__all__ = ["DecodedText", "decode_text", "detect_format"]

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv"
JSON = "application/json"
EML = "message/rfc822"
HTML = "text/html"
MARKDOWN = "text/markdown"
TEXT = "text/plain"

# Formats recognised only to refuse them with a helpful name.
_KNOWN_BINARY = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x7fELF", "an executable (ELF)"),
    (b"MZ", "a Windows executable"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\xd0\xcf\x11\xe0", "a legacy Office file (.doc/.xls); save it as .docx"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"OggS", "an Ogg media file"),
    (b"ID3", "an MP3 file"),
    (b"%!PS", "a PostScript file"),
]
_UNPACK = "; fathom does not read inside archives: unpack it and ingest the folder"
_HTML_START = re.compile(
    rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)\b", re.IGNORECASE | re.DOTALL
)
_HTML_TAGS = re.compile(
    rb"<(html|head|body|div|p|h[1-6]|article|section|table|ul|span)\b[^>]*>", re.IGNORECASE
)
_MD_HEADING = re.compile(r"^#{1,6}[ \t]+\S", re.MULTILINE)
_MD_FENCE = re.compile(r"^(```|~~~)", re.MULTILINE)

MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdown", ".mkd"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
CSV_SUFFIXES = {".csv", ".tsv"}
JSON_SUFFIXES = {".json", ".jsonl", ".ndjson"}
_MAIL_HEADER = re.compile(
    rb"^(Received|Return-Path|From|To|Message-ID|MIME-Version|Subject|Date|Delivered-To|Reply-To):[ \t]",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class DecodedText:
    text: str
    encoding: str
    warnings: tuple[str, ...]


def detect_format(data: bytes, suffix: str = "") -> str:
    """The MIME type fathom will parse ``data`` as.

    Raises:
        IngestError: the file is empty.
        UnsupportedFormat: the bytes are a format fathom does not read, or binary data.
    """
    if not data.strip():
        raise IngestError("the file is empty", code="ingest.empty")
    head = data[:8]
    if data[:1024].lstrip().startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"PK\x03\x04"):
        return _detect_zip(data)
    for magic, what in _KNOWN_BINARY:
        if head.startswith(magic):
            hint = _UNPACK if what.endswith(" archive") else ""
            raise UnsupportedFormat(f"this is {what}, not a document fathom reads{hint}")
    if _HTML_START.match(data[:4096]) or (
        suffix.lower() in HTML_SUFFIXES and _HTML_TAGS.search(data[:65536])
    ):
        return HTML
    suffix = suffix.lower()
    if suffix == ".eml" or _looks_like_mail(data[:8192]):
        return EML
    sample = decode_text(data[:65536], sample=True).text
    stripped = sample.lstrip()
    if suffix in JSON_SUFFIXES or (stripped[:1] in ("{", "[") and _looks_like_json(stripped)):
        return JSON
    if suffix in CSV_SUFFIXES:
        return CSV
    if suffix.lower() in MARKDOWN_SUFFIXES or _MD_HEADING.search(sample) or _MD_FENCE.search(sample):
        return MARKDOWN
    return TEXT


def _detect_zip(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except Exception:  # zipfile raises many kinds for a damaged archive, e.g. NotImplementedError
        # for an unsupported "version needed" field (found by fuzzing)
        raise UnsupportedFormat("the file looks like a ZIP archive but cannot be opened") from None
    if "word/document.xml" in names:
        return DOCX
    if "ppt/presentation.xml" in names:
        return PPTX
    if "xl/workbook.xml" in names:
        return XLSX
    raise UnsupportedFormat(f"this is a ZIP archive, not a Word, PowerPoint or Excel document{_UNPACK}")


def _looks_like_mail(head: bytes) -> bool:
    """Two or more RFC 5322 header lines at the very start, before any blank line."""
    lines = head.split(b"\n", 12)[:12]
    headers = 0
    for line in lines:
        if not line.strip():
            break
        if _MAIL_HEADER.match(line):
            headers += 1
        elif not line[:1].isspace() and b":" not in line[:80]:
            return False
    return headers >= 2


def _looks_like_json(sample: str) -> bool:
    """The sample parses as JSON, or its first line does (JSON Lines)."""
    import json

    candidates = [sample, sample.split("\n", 1)[0]]
    for candidate in candidates:
        try:
            json.loads(candidate)
        except (ValueError, RecursionError):
            continue
        return True
    return False


_BOMS = [
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
]


_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))


def _looks_binary(data: bytes) -> bool:
    """More than 5% control bytes: text files almost never have that many."""
    sample = data[:65536]
    if not sample:
        return False
    control = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return control / len(sample) > 0.05


_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _has_utf8_multibyte(data: bytes) -> bool:
    return _UTF8_MULTIBYTE.search(data[:1_000_000]) is not None


def _cp1252_fallback(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeDecodeError)
    piece = error.object[error.start : error.end]
    return piece.decode("cp1252", errors="replace"), error.end


codecs.register_error("fathom-cp1252", _cp1252_fallback)


# Western single-byte encodings, preferred among equally plausible guesses.
_WESTERN = ("cp1252", "latin_1", "iso8859_15")
# How much worse than the best guess (chaos up, coherence down) a Western guess may be and still
# win: charset-normalizer ranks DOS code pages such as cp437 first for short Windows-1252 text.
_TIE = 0.1


def _detected_encoding(data: bytes) -> str | None:
    """The encoding of bytes that are not UTF-8, or None for binary data.

    charset-normalizer often finds several single-byte encodings equally plausible for short
    Western text (a Latin-1 "crème brûlée" decodes without fault as Windows-1250 too, as
    "crčme brűlée"), or rank a DOS code page first ("Se±or" for "Señor"). Among the guesses
    about as plausible as the best, Windows-1252 wins: it is what non-UTF-8 Western text almost
    always is. Text whose guesses leave Windows-1252 out (Czech in Windows-1250, Cyrillic in
    Windows-1251) keeps the best guess.
    """
    matches = from_bytes(data[:1_000_000])
    best = matches.best()
    if best is None:
        return None
    for match in matches:
        tied = match.chaos <= best.chaos + _TIE and match.coherence >= best.coherence - _TIE
        if tied and match.encoding in _WESTERN:
            return "cp1252" if _decodes(data, "cp1252") else match.encoding
    return str(best.encoding)


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def decode_text(data: bytes, *, sample: bool = False) -> DecodedText:
    """Decode bytes to text: BOMs first, then UTF-8, then the best detected encoding.

    Raises:
        UnsupportedFormat: the bytes are binary data rather than text.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = data[len(bom) :].decode(encoding.replace("-sig", ""), errors="replace")
            return DecodedText(text, encoding, ())
    if _looks_binary(data):
        raise UnsupportedFormat("the file holds binary data, not text", code="ingest.binary")
    try:
        text = data.decode("utf-8")
        encoding = "utf-8"
        warnings: tuple[str, ...] = ()
    except UnicodeDecodeError as exc:
        if sample and exc.start >= len(data) - 4:
            # A sample may end inside a multi-byte character.
            text, encoding, warnings = data[: exc.start].decode("utf-8"), "utf-8", ()
        elif _has_utf8_multibyte(data):
            # Valid UTF-8 next to invalid bytes: mixed encodings, typically UTF-8 text with
            # pasted Windows-1252/Latin-1 pieces. Keep the UTF-8, decode the rest as cp1252.
            text = data.decode("utf-8", errors="fathom-cp1252")
            encoding = "utf-8"
            warnings = ("not valid UTF-8: mixed encodings; invalid bytes decoded as Windows-1252",)
        else:
            best = _detected_encoding(data)
            if best is None:
                raise UnsupportedFormat(
                    "the file holds binary data, not text", code="ingest.binary"
                ) from None
            if best not in {"utf_8", "utf-8"}:
                encoding = best
                text = data.decode(encoding, errors="replace")
                warnings = (f"not valid UTF-8; decoded as {encoding}",)
            else:
                encoding = "utf-8"
                text = data.decode("utf-8", errors="replace")
                warnings = ("not valid UTF-8; invalid bytes were replaced",)
    if text.count("\ufffd") > max(16, len(text) // 10):
        raise UnsupportedFormat("the file holds binary data, not text", code="ingest.binary")
    return DecodedText(text, encoding, warnings)
