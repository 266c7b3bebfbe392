"""A small HTTP/1.1 keep-alive client over asyncio streams.

The drills count what a customer sees, so the client must never hide an
event: no retries, no redirects, no pooling policy of its own, and every
transport failure comes back as a named kind instead of an exception
somewhere inside a library. It also opens connections from a chosen
loopback source address, which is how the load looks like many customers
to the public tier's per-client rate limit.
"""

import asyncio


class TransportError(Exception):
    """The exchange failed below HTTP; `kind` names how."""

    def __init__(self, kind, detail=""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def text(self, limit=80):
        return self.body[:limit].decode("utf-8", "replace")


def _kind(e):
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, ConnectionResetError):
        return "connection reset"
    if isinstance(e, (asyncio.IncompleteReadError, EOFError)):
        return "connection closed before the answer"
    if isinstance(e, BrokenPipeError):
        return "broken pipe"
    if isinstance(e, TimeoutError):
        return "client timeout"
    return type(e).__name__


class Connection:
    """One keep-alive connection; one exchange at a time."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.reusable = True

    @classmethod
    async def open(cls, host, port, source=None, timeout=5.0):
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=(source, 0) if source else None
                )
        except (OSError, TimeoutError) as e:
            raise TransportError(_kind(e), str(e)) from None
        return cls(reader, writer)

    def close(self):
        self.reusable = False
        try:
            self.writer.close()
        except OSError:
            pass

    async def request(self, method, path, headers=(), body=b"", timeout=30.0):
        head = [f"{method} {path} HTTP/1.1", "Host: cinemo.drill"]
        for name, value in headers:
            head.append(f"{name}: {value}")
        if body or method in ("POST", "PUT"):
            head.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        try:
            async with asyncio.timeout(timeout):
                self.writer.write(raw)
                await self.writer.drain()
                return await self._read(method)
        except (OSError, EOFError, asyncio.IncompleteReadError, TimeoutError, ValueError) as e:
            self.close()
            raise TransportError(_kind(e), str(e)) from None

    async def _read(self, method):
        line = await self.reader.readline()
        if not line:
            raise EOFError("no status line")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ValueError(f"bad status line {line[:60]!r}")
        status = int(parts[1])
        headers = {}
        while True:
            h = await self.reader.readline()
            if not h:
                raise EOFError("headers cut short")
            if h in (b"\r\n", b"\n"):
                break
            name, _, value = h.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = bytearray()
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                body += await self.reader.readexactly(size)
                await self.reader.readexactly(2)
            body = bytes(body)
        elif "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        else:
            body = await self.reader.read()
            self.reusable = False
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, headers, body)
