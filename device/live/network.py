"""`serve` on the network: the socket, the address to print and the kept access token."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from pathlib import Path

from mnist_edge.device import atomic
from mnist_edge.device.errors import UsageError
from mnist_edge.device.live.history import state_dir

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def token_file() -> Path:
    return state_dir() / "token"


def stored_token(log: Callable[[str], None]) -> str:
    """The token kept in the user's state folder (mode 0600), made on the first start: a
    restart keeps it, so open pages reconnect. Where it cannot be kept, a new one each start."""
    path = token_file()
    try:
        kept = path.read_text().strip()
        if kept:
            return kept
    except FileNotFoundError:
        pass
    except OSError as e:
        log(f"warning: {path}: cannot read the kept token ({e.strerror or e}); using a new one")
        return secrets.token_urlsafe(16)
    token = secrets.token_urlsafe(16)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic.write_bytes(path, token.encode() + b"\n", mode=0o600)
    except OSError as e:
        log(f"warning: {path}: cannot keep the token ({e.strerror or e}): a new one at every "
            "start (set MNIST_EDGE_TOKEN to keep one)")
    return token


def own_names(host: str) -> tuple[str, ...]:
    """The Host header names a loopback server answers to (a page on another site that
    resolves its own name to 127.0.0.1 sends that name: DNS rebinding is refused)."""
    return ("127.0.0.1", "localhost", "::1", host.lower())


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (UsageError when the address is taken or foreign)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say
    # they are TCP; without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    return sock


def url(host: str, port: int, token: str | None) -> str:
    """The address to print: for a wildcard bind the machine's LAN address (phones often
    cannot resolve NAME.local), IPv6 literals in brackets."""
    shown = host
    if host in ("0.0.0.0", "::"):
        shown = lan_address() or socket.gethostname() + ".local"
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def lan_address() -> str | None:
    """The address this machine reaches its network from (no packet is sent), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: routing only, nothing is sent
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address

