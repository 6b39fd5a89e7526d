"""A stand-in PostgreSQL server for the failures the shared test server cannot show.

The shared server trusts every local connection and has no SSL, so a wrong password
and "SSL required" cannot happen against it. This speaks just enough of the
PostgreSQL wire protocol (v3) to fail the way a real server does: it answers the
SSLRequest, reads the startup message, then

* `password`: asks for a cleartext password, reads it, and fails with SQLSTATE 28P01
  `password authentication failed for user "..."`;
* `ssl_required`: fails with SQLSTATE 28000 `no pg_hba.conf entry for host ..., no encryption`
  (what pg_hba.conf's `hostssl` lines give a non-SSL client);
* `silent`: listens but never accepts: the kernel completes the handshake into the
  backlog and nothing ever answers the startup packet (a blackholed server).

`with FakePostgres(mode) as pg:` runs it in a thread on a free port: `pg.port`, `pg.url(user)`,
`pg.connections` (how many clients connected), `pg.passwords` (what they sent).
"""

from __future__ import annotations

import socket
import struct
import threading

SSL_REQUEST = 80877103
GSS_REQUEST = 80877104


def _error(code: str, message: str) -> bytes:
    fields = b"".join(
        tag + value.encode() + b"\0"
        for tag, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", code), (b"M", message))
    ) + b"\0"
    return b"E" + struct.pack("!I", len(fields) + 4) + fields


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


class FakePostgres:
    def __init__(self, mode: str) -> None:
        if mode not in ("password", "ssl_required", "silent"):
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.passwords: list[str] = []
        self._open: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, user: str = "someone", password: str | None = None, database: str = "test") -> str:
        auth = f"{user}:{password}" if password is not None else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def __enter__(self) -> FakePostgres:
        if self.mode != "silent":
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.sock.close()
        for conn in self._open:
            conn.close()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        try:
            while True:
                (length,) = struct.unpack("!I", _recv_exact(conn, 4))
                body = _recv_exact(conn, length - 4)
                (code,) = struct.unpack("!I", body[:4])
                if code in (SSL_REQUEST, GSS_REQUEST):
                    conn.sendall(b"N")  # no SSL here; the client goes on in plain text
                    continue
                break
            params = body[4:].split(b"\0")
            values = dict(zip(params[0::2], params[1::2], strict=False))
            user = values.get(b"user", b"").decode(errors="replace")
            database = values.get(b"database", b"").decode(errors="replace")
            if self.mode == "ssl_required":
                conn.sendall(_error(
                    "28000", f'no pg_hba.conf entry for host "127.0.0.1", user "{user}", '
                             f'database "{database}", no encryption'))
                return
            conn.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
            tag = _recv_exact(conn, 1)
            (length,) = struct.unpack("!I", _recv_exact(conn, 4))
            password = _recv_exact(conn, length - 4).rstrip(b"\0").decode(errors="replace")
            if tag == b"p":
                self.passwords.append(password)
            conn.sendall(_error("28P01", f'password authentication failed for user "{user}"'))
        except (ConnectionError, OSError, struct.error):
            pass
