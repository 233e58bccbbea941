"""A lean asyncio HTTP/1.1 client for simulated crowds: a bounded pool of keep-alive connections.

Thousands of simulated people share a few connections to one server (a person does not need a
TCP connection of its own to look like one to the service: the buyer cookie says who it is).
Only what the benches need: requests with a body and headers, answers with ``Content-Length``
(or read to the end when the server closes), ``Connection: close`` and HTTP/1.0 honoured.
Each answer carries its time from the request written to the answer read (not the wait for a
connection, which is the bench's own queueing: see ``Pool.waited``).
"""

from __future__ import annotations

import asyncio
import time
from typing import NamedTuple

HEADER_LIMIT = 256 * 1024


class Reply(NamedTuple):
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes
    seconds: float  # request written to answer read


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()

    async def exchange(self, request: bytes, head_only: bool) -> tuple[Reply, bool]:
        """One request and its answer; True with it when the connection can be used again."""
        started = time.perf_counter()
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        status = int(rest[:3])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        reusable = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
        if head_only or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        else:
            body = await self.reader.read()
            reusable = False
        return Reply(status, headers, body, time.perf_counter() - started), reusable


class Pool:
    """At most ``size`` keep-alive connections to ``host:port``, opened as needed and shared."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host = host
        self.port = port
        self.size = size
        self.idle: list[Connection] = []
        self.open = 0
        self.free = asyncio.Condition()
        self.waited = 0.0  # seconds requests spent waiting for a connection, summed

    async def _take(self) -> Connection:
        async with self.free:
            started = time.perf_counter()
            while not self.idle and self.open >= self.size:
                await self.free.wait()
            self.waited += time.perf_counter() - started
            if self.idle:
                return self.idle.pop()
            self.open += 1
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=HEADER_LIMIT)
        except BaseException:
            await self._give(None)
            raise
        return Connection(reader, writer)

    async def _give(self, conn: Connection | None) -> None:
        async with self.free:
            if conn is None:
                self.open -= 1
            else:
                self.idle.append(conn)
            self.free.notify()

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                      body: bytes | None = None) -> Reply:
        """Send one request on a pooled connection and read its answer (OSError and
        asyncio.IncompleteReadError when the connection fails: it is closed, not reused)."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if headers:
            lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        conn = await self._take()
        reusable = False
        try:
            reply, reusable = await conn.exchange(request, method == "HEAD")
            return reply
        finally:
            if not reusable:
                conn.close()
            await self._give(conn if reusable else None)

    async def close(self) -> None:
        async with self.free:
            for conn in self.idle:
                conn.close()
            self.idle.clear()
