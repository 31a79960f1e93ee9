"""The ``scrapy`` commands the add-on brings (entry points of the ``scrapy.commands`` group).

Scrapy loads every entry-point command whenever ``scrapy`` runs, whatever the command: these
modules import only Scrapy's command base at module level, and the rest when they run.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scrapy.commands import ScrapyCommand


def fail(command: ScrapyCommand, message: str) -> None:
    """Report an error the user can fix as one line on stderr; the command exits with 1."""
    print(f"ERROR: {message}", file=sys.stderr)
    command.exitcode = 1
