"""What decides who may use `chrysopedia serve`, and where it can be reached, without the
web server's imports."""

from __future__ import annotations

import contextlib
import ipaddress
import socket

TOKEN_ENV = "CHRYSOPEDIA_SERVE_TOKEN"
MIN_TOKEN_CHARS = 16
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def is_loopback(host: str) -> bool:
    """True for a loopback address or name (127.0.0.0/8, ::1, localhost)."""
    host = host.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def lan_url(port: int) -> str:
    """http://ADDRESS:PORT with the address this machine's outgoing interface has.

    A UDP socket "connected" to a private address picks the route without sending a
    packet; with no route (no network at all) the host name is the best there is.
    """
    address = None
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.255.255.255", 1))
        address = s.getsockname()[0]
    if not address or address.startswith("0."):
        address = socket.gethostname()
    return f"http://{address}:{port}"
