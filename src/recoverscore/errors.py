"""The one exception type users see: its message is a complete one-line explanation."""


class RecoverscoreError(Exception):
    """A problem with the user's input, file or configuration, explained in one line.

    The CLI prints these without a traceback; anything else escaping is a bug.
    """
