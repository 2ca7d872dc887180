"""The one exception type users see, and how anything else is reported."""

from __future__ import annotations

import traceback


class RecoverscoreError(Exception):
    """A problem with the user's input, file or configuration, explained in one line.

    The CLI prints these without a traceback; anything else escaping is a bug.
    """


def internal_report(error: BaseException) -> str:
    """The traceback of an unexpected error, for a log file, with every message withheld.

    A message may quote the cell or id that triggered the bug (``KeyError: 'D0001'``), and logs
    hold no personal data: the stack (files, lines, code) and the exception types are kept,
    which is what finding the bug needs; ``--debug`` shows the messages on screen.
    """
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    blocks = []
    for link in reversed(chain):  # the first cause first, as Python prints a chain
        frames = "".join(traceback.format_list(traceback.extract_tb(link.__traceback__)))
        kind = type(link)
        blocks.append(
            f"Traceback (most recent call last):\n{frames}"
            f"{kind.__module__}.{kind.__qualname__}: (message withheld)\n"
        )
    return "\nwhich led to\n\n".join(blocks)
