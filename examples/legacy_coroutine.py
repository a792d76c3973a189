"""A program in the pre-3.11 ``@asyncio.coroutine`` / ``yield from`` style.

It was written for Python 3.5-3.10, where ``asyncio.coroutine`` still existed. Python
3.11 removed that decorator; this copy runs on 3.11+ after changing one line:

    -from asyncio import coroutine
    +from phaseloop import coroutine

Everything else below is the legacy program, unchanged.
"""

import asyncio

from phaseloop import coroutine  # was: from asyncio import coroutine


@coroutine
def banner():
    # A plain function under @coroutine: it becomes a coroutine returning its value.
    return "legacy echo"


@coroutine
def handle_echo(reader, writer):
    line = yield from reader.readline()
    writer.write(line.upper())
    yield from writer.drain()
    writer.close()


@coroutine
def ask(port, text):
    reader, writer = yield from asyncio.open_connection("127.0.0.1", port)
    writer.write(text.encode() + b"\n")
    yield from writer.drain()
    answer = yield from reader.readline()
    writer.close()
    return answer.decode().strip()


@coroutine
def countdown(n, ticks):
    while n:
        ticks.append(str(n))
        yield from asyncio.sleep(0)
        n -= 1
    return " ".join(ticks)


@coroutine
def slow():
    yield from asyncio.sleep(3600)


@coroutine
def main():
    print("banner:", (yield from banner()))

    server = yield from asyncio.start_server(handle_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    answers = yield from asyncio.gather(ask(port, "hello"), ask(port, "world"))
    print("echo:", " ".join(answers))
    server.close()
    yield from server.wait_closed()

    task = asyncio.ensure_future(countdown(3, []))
    print("countdown:", (yield from task))

    try:
        yield from asyncio.wait_for(slow(), timeout=0.01)
    except asyncio.TimeoutError:  # noqa: UP041 - as written before 3.11
        print("slow() timed out")
    return "done"


if __name__ == "__main__":
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        print(loop.run_until_complete(main()))
    finally:
        loop.close()
