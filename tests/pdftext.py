"""The text of a PDF, for tests: poppler's `pdftotext` where it is installed (a real PDF
reader), else the text objects of the page's content streams as matplotlib writes them
(its Type 3 fonts keep characters up to U+00FF as latin-1 bytes in `[...] TJ` arrays;
glyphs it takes from another font, such as the ligature "fi", arrows and dashes, read
back as U+FFFD)."""
from __future__ import annotations

import re
import shutil
import subprocess
import zlib


def pdf_text(pdf: bytes) -> str:
    """The PDF's text, lines separated by newlines."""
    if shutil.which("pdftotext"):
        return subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True,
                              check=True).stdout.decode("utf-8")
    return "\n".join(matplotlib_pdf_strings(pdf))


def matplotlib_pdf_strings(pdf: bytes) -> list[str]:
    """Each text object's string in the content streams of a PDF matplotlib wrote."""
    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            content = zlib.decompress(stream)
        except zlib.error:
            continue          # a font program or an image, not a page's content
        for block in re.findall(rb"\bBT\b(.*?)\bET\b", content, re.S):   # one text object: one string
            raw = b"".join(re.findall(rb"\(((?:\\.|[^\\)])*)\)", b" ".join(
                re.findall(rb"\[(.*?)\]\s*TJ", block, re.S)), re.S))
            raw = re.sub(rb"\\([0-7]{1,3})", lambda m: bytes([int(m.group(1), 8)]), raw)
            raw = re.sub(rb"\\(.)", rb"\1", raw, flags=re.S)
            # a glyph of another font (a ligature such as "fi", an arrow) reads as U+FFFD
            out.append(re.sub(r"[\x00-\x1f]+", "\ufffd", raw.decode("latin-1")))
    return out
