"""36_net_lifecycle.js: a TCP server and client on 127.0.0.1: listening, connect/connection,
data, end and close on both sides, with a nextTick and an immediate queued from each event
handler (R4, R20, R25).

Node's socket events and their asyncio counterparts (stdlib transports and protocols):

=========================================  ==============================================
Node                                       asyncio
=========================================  ==============================================
``server.listen(0, host, cb)``             ``await loop.create_server(...)``, then the rest
``'connection'`` / ``connect`` callback    ``connection_made`` (server / client protocol)
``'data'``                                 ``data_received``
``'end'``                                  ``eof_received``; returning None closes the
                                           transport, as Node's default allowHalfOpen=false
``sock.end(data)`` / ``c.end()``           ``transport.write(data)``; ``transport.write_eof()``
``'close'``                                ``connection_lost``
``server.close(cb)``                       ``server.close()``; ``await server.wait_closed()``
=========================================  ==============================================
"""

import asyncio
from typing import cast

from _scenario import log, print_out, run

from phaseloop import node

server: asyncio.Server | None = None


def ev(name: str) -> None:
    log(name)
    node.next_tick(lambda: log(name + ":tick"))
    node.set_immediate(lambda: log(name + ":imm"))


async def server_closed() -> None:
    assert server is not None
    await server.wait_closed()
    log("server-closed")


class ServerSide(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        ev("s-connection")

    def data_received(self, data: bytes) -> None:
        ev("s-data")
        self.transport.write(b"pong")
        self.transport.write_eof()

    def eof_received(self) -> None:
        ev("s-end")

    def connection_lost(self, exc: Exception | None) -> None:
        ev("s-close")
        assert server is not None
        server.close()
        asyncio.get_running_loop().create_task(server_closed())


class ClientSide(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        ev("c-connect")
        self.transport.write(b"ping")

    def data_received(self, data: bytes) -> None:
        ev("c-data")

    def eof_received(self) -> None:
        ev("c-end")
        self.transport.write_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        ev("c-close")


async def listen() -> None:
    global server
    loop = asyncio.get_running_loop()
    server = await loop.create_server(ServerSide, "127.0.0.1", 0)
    ev("listening")
    port = server.sockets[0].getsockname()[1]
    loop.create_task(loop.create_connection(ClientSide, "127.0.0.1", port))


def main() -> None:
    asyncio.get_running_loop().create_task(listen())


run(main)
print_out()
