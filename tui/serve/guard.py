"""What decides who may use `chrysopedia serve`, without the web server's imports."""

from __future__ import annotations

import ipaddress

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
