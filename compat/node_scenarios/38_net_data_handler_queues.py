"""38_net_data_handler_queues.js: inside a socket 'data' handler (``data_received``, poll phase):
tick, promise, immediate, then the timeout (R20, R29). ``sock.destroy()`` is
``transport.abort()``; ``c.end('x')`` is ``write(b"x")`` + ``write_eof()``; the client ignores
errors (``c.on('error', () => {})``); see 36 for the other counterparts."""

import asyncio
from typing import cast

from _scenario import log, print_out, resolved, run, then

from phaseloop import node

server: asyncio.Server | None = None


class ServerSide(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        log("data")
        node.set_timeout(lambda: log("timeout0"), 0)
        node.set_immediate(lambda: log("immediate"))
        then(resolved(), lambda: log("promise"))
        node.next_tick(lambda: log("tick"))
        self.transport.abort()
        assert server is not None
        server.close()


class ClientSide(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)
        stream.write(b"x")
        stream.write_eof()


async def listen() -> None:
    global server
    loop = asyncio.get_running_loop()
    server = await loop.create_server(ServerSide, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop.create_task(loop.create_connection(ClientSide, "127.0.0.1", port))


def main() -> None:
    asyncio.get_running_loop().create_task(listen())


run(main)
print_out()
