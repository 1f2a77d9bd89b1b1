"""HTTP/3 requests with aioquic's client, for tests/h3.rs.

usage: h3_aioquic.py HOST PORT SERVER_NAME CA_FILE METHOD:PATH[:BODY_BYTES|-[:NAME=VALUE]] ...

Sends every request on one connection, all at once, and prints one JSON line per request in
order: {"status": N, "length": N, "sha256": HEX, "headers": {...}, "sent_sha256": HEX or null}
or {"error": CODE} when the server reset the stream.
"""

import asyncio
import hashlib
import json
import ssl
import sys

from aioquic.asyncio import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import StreamReset


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.waiting = {}

    def quic_event_received(self, event):
        if isinstance(event, StreamReset):
            fut, acc = self.waiting.get(event.stream_id, (None, None))
            if fut is not None and not fut.done():
                fut.set_result({"error": event.error_code})
            return
        for ev in self.h3.handle_event(event):
            entry = self.waiting.get(ev.stream_id)
            if entry is None:
                continue
            fut, acc = entry
            if isinstance(ev, HeadersReceived):
                for k, v in ev.headers:
                    if k == b":status":
                        acc["status"] = int(v)
                    else:
                        acc["headers"][k.decode()] = v.decode()
            elif isinstance(ev, DataReceived):
                acc["body"].update(ev.data)
                acc["length"] += len(ev.data)
            if ev.stream_ended and not fut.done():
                fut.set_result(
                    {
                        "status": acc.get("status"),
                        "length": acc["length"],
                        "sha256": acc["body"].hexdigest(),
                        "headers": acc["headers"],
                        "sent_sha256": acc.get("sent"),
                    }
                )

    def request(self, authority, method, path, body, extra):
        sid = self._quic.get_next_available_stream_id()
        headers = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", authority.encode()),
            (b":path", path.encode()),
        ]
        if body is not None:
            headers.append((b"content-length", str(len(body)).encode()))
        headers.extend(extra)
        self.h3.send_headers(sid, headers, end_stream=body is None)
        if body is not None:
            self.h3.send_data(sid, body, end_stream=True)
        fut = asyncio.get_running_loop().create_future()
        acc = {"headers": {}, "length": 0, "body": hashlib.sha256()}
        if body is not None:
            acc["sent"] = hashlib.sha256(body).hexdigest()
        self.waiting[sid] = (fut, acc)
        self.transmit()
        return fut


def body_of(n):
    return bytes(i % 253 for i in range(n))


async def main():
    host, port, name, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=name)
    config.load_verify_locations(ca)
    config.verify_mode = ssl.CERT_REQUIRED
    async with connect(host, port, configuration=config, create_protocol=Client) as client:
        futs = []
        for spec in sys.argv[5:]:
            parts = spec.split(":")
            body = body_of(int(parts[2])) if len(parts) > 2 and parts[2] != "-" else None
            extra = [tuple(f.encode().split(b"=", 1)) for f in parts[3:]]
            futs.append(client.request(name, parts[0], parts[1], body, extra))
        for result in await asyncio.wait_for(asyncio.gather(*futs), 60):
            print(json.dumps(result))


asyncio.run(main())
