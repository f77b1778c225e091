from pathlib import Path

import pytest

from fathom.errors import IngestError, UnsupportedFormat
from fathom.ingest.detect import DOCX, HTML, MARKDOWN, PDF, TEXT, detect_format
from fathom.ingest.parsers import parse_bytes
from tests.files import make_docx, make_pdf


def _block_texts(doc):
    return [doc.text[b.start : b.end] for b in doc.blocks]


def test_plain_text_keeps_text_verbatim_and_finds_section_titles():
    raw = (
        "Acme Cloud - Operations Guide\n\n"
        "Contact & Support:\nSupport Email: help@acme.test\nPhone: +1 555 0100\n\n"
        "Platform Services:\n1. Compute:\n   - Virtual machines\n"
    )
    doc = parse_bytes(raw.encode(), "acme.txt")
    assert doc.mime_type == TEXT
    assert doc.text == raw.strip("\n")
    assert doc.title == "Acme Cloud - Operations Guide"
    email_block = next(b for b in doc.blocks if "help@acme.test" in doc.text[b.start : b.end])
    assert email_block.heading_path == ("Acme Cloud - Operations Guide", "Contact & Support")
    machines = next(b for b in doc.blocks if "Virtual machines" in doc.text[b.start : b.end])
    assert machines.heading_path == ("Acme Cloud - Operations Guide", "Platform Services", "1. Compute")


def test_markdown_headings_and_code_blocks_kept_whole():
    raw = "# Manual\n\nIntro text.\n\n## Install\n\n```bash\npip install x\n\n# not a heading\n```\n\nDone.\n"
    doc = parse_bytes(raw.encode(), "readme.md")
    assert doc.mime_type == MARKDOWN
    assert doc.title == "Manual"
    code = next(b for b in doc.blocks if b.kind == "code")
    assert doc.text[code.start : code.end] == "```bash\npip install x\n\n# not a heading\n```"
    assert code.heading_path == ("Manual", "Install")


def test_html_main_text_only_hidden_and_scripts_dropped():
    raw = b"""<!doctype html><html><head><title>Widget FAQ</title><style>p{}</style></head>
    <body><nav>Home | About</nav><h1>Widgets</h1><p>Widgets are <b>blue</b>.</p>
    <script>alert('x')</script><div style="display:none">secret hidden words</div>
    <h2>Sizes</h2><ul><li>Small</li><li>Large</li></ul><footer>copyright</footer></body></html>"""
    doc = parse_bytes(raw, "faq.html")
    assert doc.mime_type == HTML
    assert doc.title == "Widget FAQ"
    assert "Widgets are blue." in doc.text
    for absent in ("alert", "secret hidden", "Home | About", "copyright", "p{}"):
        assert absent not in doc.text
    assert any("hidden" in w for w in doc.warnings)
    small = next(b for b in doc.blocks if doc.text[b.start : b.end] == "Small")
    assert small.heading_path == ("Widgets", "Sizes")


def test_pdf_text_is_extracted(tmp_path: Path):
    path = make_pdf(tmp_path / "r.pdf", ["Quarterly report", "Revenue grew by 12 percent."], title="Q3")
    doc = parse_bytes(path.read_bytes(), "r.pdf")
    assert doc.mime_type == PDF
    assert doc.title == "Q3"
    assert "Revenue grew by 12 percent." in doc.text
    assert doc.metadata["pages"] == 2


@pytest.mark.parametrize(
    ("metadata_title", "expected"),
    [
        (None, "Safety Manual"),  # reportlab writes "untitled" when no title is set
        ("Untitled", "Safety Manual"),
        ("untitled-3", "Safety Manual"),
        ("Microsoft Word - lid_guide.docx", "lid_guide"),
        ("Lid Safety Guide", "Lid Safety Guide"),
    ],
)
def test_a_pdf_without_a_real_title_is_named_by_its_first_line(
    tmp_path: Path, metadata_title: str | None, expected: str
):
    path = make_pdf(tmp_path / "manual.pdf", ["Safety Manual\n\nKeep the lid closed."], title=metadata_title)
    assert parse_bytes(path.read_bytes(), "manual.pdf").title == expected


def test_docx_headings_paragraphs_and_tables(tmp_path: Path):
    path = make_docx(
        tmp_path / "h.docx",
        title="Handbook",
        sections={"Leave": ["Staff get 25 days of leave."], "Travel": ["Book trains early."]},
        table=[["City", "Allowance"], ["Paris", "90"]],
    )
    doc = parse_bytes(path.read_bytes(), "h.docx")
    assert doc.mime_type == DOCX
    assert doc.title == "Handbook"
    leave = next(b for b in doc.blocks if "25 days" in doc.text[b.start : b.end])
    assert leave.heading_path == ("Handbook", "Leave")
    assert "City | Allowance\nParis | 90" in doc.text


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (b"# Heading\n\nbody", "notes.txt", MARKDOWN),
        (b"<!DOCTYPE html><html><body><p>x</p></body></html>", "page.txt", HTML),
        (b"plain words only", "file.md", MARKDOWN),
        (b"plain words only", "file.html", TEXT),
    ],
)
def test_type_comes_from_content(data: bytes, name: str, expected: str):
    assert detect_format(data, Path(name).suffix) == expected


def test_pdf_detected_whatever_its_name(tmp_path: Path):
    path = make_pdf(tmp_path / "x.pdf", ["hello"])
    assert detect_format(path.read_bytes(), ".txt") == PDF


def test_encrypted_pdf_is_refused_clearly(tmp_path: Path):
    path = make_pdf(tmp_path / "locked.pdf", ["secret"], password="hunter2")
    with pytest.raises(IngestError) as info:
        parse_bytes(path.read_bytes(), "locked.pdf")
    assert info.value.code == "ingest.encrypted_pdf"
    assert "password" in info.value.message


def test_binary_and_empty_input_are_refused():
    with pytest.raises(UnsupportedFormat) as info:
        parse_bytes(bytes(range(256)) * 64, "junk.txt")
    assert info.value.code == "ingest.binary"
    with pytest.raises(UnsupportedFormat):
        parse_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "image.txt")
    with pytest.raises(IngestError) as empty:
        parse_bytes(b"  \n\n ", "empty.txt")
    assert empty.value.code == "ingest.empty"


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Crème brûlée for dessert.", "latin-1"),
        ("Zürich café naïve résumé", "latin-1"),
        ("La crème brûlée est un dessert. Où est la gare?", "latin-1"),
        ("Straße und Größe", "latin-1"),
        ("Señor Muñoz paid €20 for the “deluxe” menu.", "cp1252"),
        ("Příliš žluťoučký kůň úpěl ďábelské ódy. Dobrý den, jak se máte?", "cp1250"),
        ("Привет, как дела? Это тест кодировки.", "cp1251"),
    ],
)
def test_single_byte_text_decodes_to_what_was_written(text: str, encoding: str):
    """Western text that is not UTF-8 is Windows-1252/Latin-1 (it came out as Windows-1250,
    "crčme brűlée"); text that is clearly another encoding keeps it."""
    assert parse_bytes(text.encode(encoding), "note.txt").text == text


def test_utf16_with_bom_and_invalid_utf8_and_nul_bytes():
    doc = parse_bytes("Grüße aus Köln".encode("utf-16"), "u16.txt")
    assert doc.text == "Grüße aus Köln"
    latin = parse_bytes("Café crème brûlée is on the menu today.".encode("latin-1"), "menu.txt")
    assert "Café" in latin.text
    assert any("UTF-8" in w for w in latin.warnings)
    nul = parse_bytes(b"before\x00after and more ordinary text here", "nul.txt")
    assert "\x00" not in nul.text
    assert nul.text.startswith("beforeafter")
    assert any("NUL" in w for w in nul.warnings)
