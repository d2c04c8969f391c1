"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class SpamkitError(Exception):
    """A problem the user can fix (bad input, missing file, damaged bundle)."""
