"""Write one benchmark's section into BENCHMARKS.md, leaving the other sections as they are."""

from __future__ import annotations

from pathlib import Path

MD_PATH = Path(__file__).with_name("BENCHMARKS.md")


def update_section(start: str, end: str, section: str, path: Path = MD_PATH) -> None:
    """Put ``section`` between the ``start`` and ``end`` markers, replacing what was there;
    append it with its markers when the file has none yet."""
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    block = f"{start}\n{section.strip()}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
