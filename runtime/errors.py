"""The runtime's errors. spamkit.errors re-exports SpamkitError, so the CLI turns any of them
into a one-line message and a non-zero exit."""


class SpamkitError(Exception):
    """A problem the user can fix (bad input, missing file, damaged bundle)."""


class BundleError(SpamkitError):
    """The bundle is missing, damaged, or from an incompatible spamkit."""
