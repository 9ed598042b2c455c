"""HTTP/1.1 by hand, for tests that must know a request's bytes are on the wire before acting."""

from __future__ import annotations

import socket
from typing import Any

import orjson


def send_request(port: int, body: dict[str, Any], token: str | None) -> socket.socket:
    """Connect and send a whole POST /graphql; returns the socket to read the reply from later."""
    payload = orjson.dumps(body)
    head = [
        "POST /graphql HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        "Connection: close",
    ]
    if token:
        head.append(f"Authorization: Bearer {token}")
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    data = b""
    with sock:
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    parsed: dict[str, Any] = orjson.loads(body)
    return status, parsed
