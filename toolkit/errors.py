"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class SpamkitError(Exception):
    """A problem the user can fix (bad input, missing file, damaged bundle)."""


class Interrupted(SpamkitError):
    """The user stopped the work (Ctrl-C); what can be resumed has been saved."""

    exit_code = 130
