"""An ordinary asyncio program: a streams echo server and a client, no phaseloop in sight.

Run it on phaseloop with:  python -m phaseloop run examples/echo.py
"""

import asyncio

handled = 0


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    global handled
    while data := await reader.readline():
        writer.write(data.upper())
        await writer.drain()
    writer.close()
    await writer.wait_closed()
    handled += 1


async def main() -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for word in ("hello", "node", "semantics"):
            writer.write(word.encode() + b"\n")
            await writer.drain()
            print((await reader.readline()).decode().strip())
        writer.close()
        await writer.wait_closed()
        while not handled:  # let the server side see the end of the stream
            await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    print(f"loop: {type(loop).__module__}.{type(loop).__name__}")


asyncio.run(main())
