"""A TCP proxy the drills can partition: the network between the internal
tier and PostgreSQL, or between cinemo and Kinesis.

    python3 tcpproxy.py LISTEN_PORT TARGET_PORT

Listens on 127.0.0.1:LISTEN_PORT and forwards every connection to
127.0.0.1:TARGET_PORT. SIGUSR1 cuts the network, SIGUSR2 heals it.

A cut behaves like packets being dropped, not like a refusing peer:
- bytes stop moving in both directions on every open connection (the
  kernel's buffers fill and the senders block, as while TCP retransmits);
- new connections are not accepted: the few that fit the small backlog
  complete their handshake in the kernel and wait, later ones have their
  handshake dropped, so clients wait until their own connect timeouts.
When the network heals, what was held back flows on, as after a partition
that TCP survived. A target that refuses or resets is passed on as a
reset, which is what the client would have seen without the proxy.

Prints "listening" once it accepts connections; stops on SIGTERM/SIGINT.
"""

import asyncio
import signal
import socket
import struct
import sys

CHUNK = 65536
BACKLOG = 8


def reset(writer):
    """Closes with a reset (SO_LINGER 0) instead of a clean close."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.close()


async def pump(reader, writer, gate):
    try:
        while True:
            await gate.wait()
            data = await reader.read(CHUNK)
            if not data:
                break
            # A chunk read just before the cut waits here until the heal.
            await gate.wait()
            writer.write(data)
            await writer.drain()
    except ConnectionResetError:
        reset(writer)
        return
    except OSError:
        pass
    try:
        writer.close()
    except OSError:
        pass


async def serve(listen_port, target_port):
    gate = asyncio.Event()
    gate.set()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, gate.clear)
    loop.add_signal_handler(signal.SIGUSR2, gate.set)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    tasks = set()

    async def client(conn):
        c_reader, c_writer = await asyncio.open_connection(sock=conn)
        try:
            t_reader, t_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            reset(c_writer)
            return
        await asyncio.gather(pump(c_reader, t_writer, gate), pump(t_reader, c_writer, gate))

    async def accept():
        lsock = socket.socket()
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", listen_port))
        lsock.listen(BACKLOG)
        lsock.setblocking(False)
        print("listening", flush=True)
        while True:
            # During a cut nothing is accepted: the backlog fills, and
            # further handshakes are dropped.
            await gate.wait()
            conn, _ = await loop.sock_accept(lsock)
            task = asyncio.create_task(client(conn))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    acceptor = asyncio.create_task(accept())
    await stop.wait()
    acceptor.cancel()
    for task in list(tasks):
        task.cancel()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2])))
