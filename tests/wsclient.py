"""A raw engine.io v4 / socket.io v5 client over a hand-made WebSocket, for input the libraries never send.

python-socketio's client only sends well-formed packets and always reads; the
tests of input bounds and slow consumers need a client that sends anything
and may stop reading. This one does the WebSocket handshake itself on a
plain TCP socket, masks what it sends as a browser must, and reads only when
asked. ``receive_buffer`` shrinks the socket's kernel receive buffer so that
a client that stops reading is noticed by the server after a few kilobytes,
not after the megabytes loopback would otherwise absorb.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any

from .support import WAIT


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One masked, final WebSocket frame, as a client sends it."""
    key = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = bytes((0x80 | opcode, 0x80 | length))
    elif length < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    masked = bytes(byte ^ key[index % 4] for index, byte in enumerate(payload)) \
        if length < 4096 else _mask_large(payload, key)
    return header + key + masked


def _mask_large(payload: bytes, key: bytes) -> bytes:
    repeated = (key * (len(payload) // 4 + 1))[:len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big")


class RawSocketIO:
    """One engine.io WebSocket connection to ``port``, speaking frames by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.head = ""  # the server's 101 answer

    @classmethod
    async def connect(cls, port: int, query: str = "", *, receive_buffer: int | None = None,
                      namespace_connect: bool = True) -> "RawSocketIO":
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        raw.setblocking(False)
        await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=raw)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /socket.io/?EIO=4&transport=websocket{query} HTTP/1.1\r\n"
                      f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      f"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                      f"\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        assert head.startswith(b"HTTP/1.1 101"), head
        client = cls(reader, writer)
        client.head = head.decode("latin-1")
        opened = await client.receive()
        assert opened is not None and opened.startswith("0"), opened
        if namespace_connect:
            client.send("40")
            connected = await client.receive()
            assert connected is not None and connected.startswith("40"), connected
        return client

    def send(self, text: str) -> None:
        self.writer.write(client_frame(text.encode()))

    def send_binary(self, data: bytes) -> None:
        self.writer.write(client_frame(data, opcode=0x2))

    def emit(self, event: str, *arguments: Any, ack: int | None = None) -> None:
        self.send("42" + ("" if ack is None else str(ack)) + json.dumps([event, *arguments]))

    async def receive(self, timeout: float = WAIT) -> str | None:
        """The next text message (pings answered), or None once the server closed."""
        while True:
            try:
                first, second = await asyncio.wait_for(self.reader.readexactly(2), timeout)
            except asyncio.IncompleteReadError:
                return None
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            payload = await self.reader.readexactly(length)
            opcode = first & 0x0F
            if opcode == 0x8:
                return None
            text = payload.decode()
            if text == "2":
                self.send("3")
                continue
            return text

    async def until(self, prefix: str, timeout: float = WAIT) -> str:
        """Messages are read until one starts with ``prefix``; that one is returned."""
        while True:
            message = await self.receive(timeout)
            assert message is not None, f"closed before a message starting with {prefix!r}"
            if message.startswith(prefix):
                return message

    async def read_all(self, timeout: float = WAIT) -> bytes:
        """Everything the server still sends, until it closes the connection."""
        return await asyncio.wait_for(self.reader.read(), timeout)

    async def closed_by_server(self, timeout: float = WAIT) -> bool:
        """Read (and drop) messages until the server closes; True if it did within ``timeout``."""
        try:
            while await self.receive(timeout) is not None:
                pass
        except asyncio.TimeoutError:
            return False
        except ConnectionError:  # a reset: the server closed with our data still unread
            return True
        return True

    def close(self) -> None:
        self.writer.close()
