"""The exceptions the CLI turns into a one-line message and a non-zero exit: SpamkitError (the
runtime's own, so that the runtime imports nothing from here) and its subclasses."""

from spamkit.runtime.errors import SpamkitError

__all__ = ["Interrupted", "SpamkitError"]


class Interrupted(SpamkitError):
    """The user stopped the work (Ctrl-C); what can be resumed has been saved."""

    exit_code = 130
