"""Bytes to text: binary sniffing and the page's encoding (declared, sniffed, or the
language's legacy default)."""

from __future__ import annotations

import charset_normalizer
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding, read_bom

from newsmon.scripts import lang_by_script

_BINARY_MAGIC = {
    b"%PDF": "pdf",
    b"\x89PNG": "png",
    b"GIF8": "gif",
    b"\xff\xd8\xff": "jpeg",
    b"PK\x03\x04": "zip",
    b"\x1f\x8b": "gzip",
    b"RIFF": "riff",
    b"\x00\x00\x01\x00": "ico",
    b"OggS": "ogg",
}
# Legacy encodings worth trying when a page's declared charset is absent or wrong.
_CJK_CANDIDATES = ("utf_8", "cp949", "gb18030", "big5hkscs", "cp932", "euc_jp")
_LANG_DEFAULT_ENCODING = {"ko": "cp949", "zh": "gb18030"}


def sniff_binary(data: bytes) -> str | None:
    """The kind of a non-text payload (``"pdf"``, ``"png"`` ...), or None for text."""
    for magic, kind in _BINARY_MAGIC.items():
        if data.startswith(magic):
            return kind
    head = data[:2048]
    # HTML never holds NUL bytes except in UTF-16/32, which start with a BOM.
    if b"\x00" in head and read_bom(data)[0] is None:
        return "binary"
    return None


def decode_html(data: bytes, content_type: str | None = None, lang: str | None = None) -> tuple[str, str]:
    """Decode page bytes; returns (text, encoding).

    Order: BOM; valid UTF-8 (nearly never valid by accident for CJK legacy bytes); the
    declared CJK charset if the bytes decode under it; else detection among CJK
    encodings, because Korean and Chinese sites often declare the wrong charset (or none,
    or the server's latin-1 default).
    """
    bom_enc, bom = read_bom(data)
    if bom_enc and bom:
        return data[len(bom) :].decode(bom_enc, errors="replace"), bom_enc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    declared = [
        enc for enc in (http_content_type_encoding(content_type), html_body_declared_encoding(data)) if enc
    ]
    for enc in declared:
        if enc in ("cp1252", "utf-8", "ascii"):
            continue  # Western defaults are no evidence for a page with high bytes
        try:
            text = data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
        # GB18030 decodes nearly any bytes: a Korean page mislabelled GB2312 reads as Chinese.
        if not (lang in ("ko", "zh") and lang_by_script(text) not in (lang, "en")):
            return text, enc
    # Mostly-UTF-8 pages with a few broken sequences (CMS truncation) are still UTF-8.
    text = data.decode("utf-8", errors="replace")
    if text.count("\ufffd") * 50 < sum(1 for c in text if ord(c) > 127):
        return text, "utf-8"
    best = charset_normalizer.from_bytes(data, cp_isolation=list(_CJK_CANDIDATES)).best()
    if best is not None:
        return str(best), best.encoding
    fallback = _LANG_DEFAULT_ENCODING.get(lang or "", "utf-8")
    return data.decode(fallback, errors="replace"), fallback
