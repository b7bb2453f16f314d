"""Console entry point ``webxample``: a drop-in replacement for manage.py."""

import os
import sys


def main(argv: list[str] | None = None) -> None:
    """Run a Django management command, e.g. ``webxample migrate --noinput``."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webxample.settings")
    from django.core.management import execute_from_command_line

    args = list(sys.argv if argv is None else argv)
    if args:
        args[0] = "webxample"
    else:
        args = ["webxample"]
    execute_from_command_line(args)


if __name__ == "__main__":
    main()
