"""A TCP proxy that adds latency, as a cross-region link does: each burst of bytes from the
client (a request, or a request's next chunk) waits DELAY_MS before it is forwarded, so every
request/response round trip costs at least DELAY_MS more. Answers are not delayed.

Usage: delay_proxy.py LISTEN_PORT TARGET_HOST:TARGET_PORT DELAY_MS
"""

import asyncio
import sys

listen_port, target, delay_ms = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
host, port = target.rsplit(":", 1)


async def pipe(reader, writer, delay):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if delay:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def handle(client_r, client_w):
    try:
        server_r, server_w = await asyncio.open_connection(host, int(port))
    except OSError:
        client_w.close()
        return
    await asyncio.gather(
        pipe(client_r, server_w, delay_ms / 1000.0),
        pipe(server_r, client_w, 0),
    )


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


asyncio.run(main())
