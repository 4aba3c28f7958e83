"""``python -m fastem``: the fastem command line (see ``fastem --help``)."""
import sys

from fastem._app.cli import main

if __name__ == "__main__":
    sys.exit(main())
