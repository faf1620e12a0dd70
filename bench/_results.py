"""Write one benchmark's figures into its own section of bench/RESULTS.md.

Each benchmark owns the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->``,
so benchmarks can be rerun one at a time without disturbing the others' figures.
"""

from __future__ import annotations

import platform
import re
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\nEach section is rewritten by the benchmark named in it.\n"


def machine_line() -> str:
    import os

    return (
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def _pattern(name: str) -> re.Pattern:
    return re.compile(re.escape(f"<!-- BEGIN {name} -->") + r"(.*?)" + re.escape(f"<!-- END {name} -->"), re.S)


def read_section(name: str) -> str:
    """The current text of section ``name`` ("" if RESULTS.md has none)."""
    found = _pattern(name).search(RESULTS.read_text()) if RESULTS.exists() else None
    return found.group(1) if found else ""


def write_section(name: str, markdown: str) -> None:
    """Replace (or append) the section called ``name`` with ``markdown``."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{markdown.strip()}\n\n_{machine_line()}_\n{end}"
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    pattern = _pattern(name)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)
