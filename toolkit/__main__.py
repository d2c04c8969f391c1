"""The `spamkit` command, as the console script and as `python -m spamkit`: it imports only
what it needs to say, in one line, that the cli extra is missing, before the CLI loads."""

import sys

from spamkit.extras import missing_extra


def main() -> None:
    try:
        from spamkit.cli import main as cli_main
    except ImportError as e:  # typer or tqdm: an install without the cli extra
        missing = missing_extra(e)
        if missing is None:
            raise
        print(f"spamkit: error: {missing}", file=sys.stderr)
        sys.exit(1)
    cli_main()


if __name__ == "__main__":
    main()
