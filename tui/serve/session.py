"""One browser session's app process: `python -m tui.serve.session`.

The server starts this with the web driver selected (`TEXTUAL_DRIVER`) and every setting
in the environment (see `server.session_environment`), so it is the ordinary
`chrysopedia run` with the server's database, Redis, model and config file.

A killed server (even by SIGKILL) leaves no app running: the app's pipes close, and on
Linux the process has also asked the kernel for SIGTERM when the server dies (the web
driver turns SIGTERM into a clean exit), so it ends even if it never reads or writes again.
"""

from __future__ import annotations

import os
import signal
import sys

PARENT_ENV = "CHRYSOPEDIA_SERVE_PARENT"
PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """Ask for SIGTERM when the parent dies; False when the parent is already gone."""
    parent = os.environ.get(PARENT_ENV)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    # The parent may have died before prctl: then the signal never comes.
    return not (parent and parent.isdigit() and os.getppid() != int(parent))


def main() -> int:
    if not die_with_parent():
        return 1
    from tui.cli import main as cli_main

    return cli_main(["run"])


if __name__ == "__main__":
    sys.exit(main())
