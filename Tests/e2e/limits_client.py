#!/usr/bin/env python3
"""Hostile clients for Hallmark's connection limits; each prints one JSON line.

  silent HOST PORT             a TCP connection that never speaks: seconds until the server closes it
  half-tls HOST PORT           a TLS ClientHello cut off halfway: seconds until closed
  slowloris HOST PORT          TLS, then a request head trickled a byte every 0.2 s: seconds until closed
  slow-body HOST PORT          TLS, a whole head, then its body trickled: seconds from the head until closed
  keepalive HOST PORT N        N TLS connections, one GET /healthz each, kept open: their statuses and
                               the seconds from each response until the server closed the connection
  hold HOST PORT N SECONDS     N silent TCP connections at once, held SECONDS: how many were closed at once
  spread HOST PORT N SECONDS   the same, each from its own loopback address (127.0.0.2, 127.0.0.3, …)
  big-header HOST PORT BYTES   GET /healthz with one header field of BYTES: the status, or "closed"
"""
import json
import socket
import ssl
import sys
import threading
import time

LIMIT = 15.0  # no server deadline in these tests is longer


def tls(host, port):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection((host, port), timeout=LIMIT)
    return context.wrap_socket(raw, server_hostname="localhost")


def until_closed(sock, started, trickle=None):
    """Seconds from `started` until the peer closes; `trickle` is sent a byte at a time meanwhile."""
    sock.settimeout(0.2)
    data = list(trickle or b"")
    while time.monotonic() - started < LIMIT:
        try:
            if sock.recv(65536) == b"":
                return round(time.monotonic() - started, 2)
        except (socket.timeout, TimeoutError):
            pass
        except (ConnectionResetError, ssl.SSLError, OSError):
            return round(time.monotonic() - started, 2)
        if data:
            try:
                sock.send(bytes([data.pop(0)]))
            except OSError:
                return round(time.monotonic() - started, 2)
    return None  # still open


def read_response(sock):
    sock.settimeout(LIMIT)
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
    while len(rest) < length:
        rest += sock.recv(65536)
    return status


def main(mode, host, port, *args):
    port = int(port)
    if mode == "silent":
        sock = socket.create_connection((host, port), timeout=LIMIT)
        return {"closed_after": until_closed(sock, time.monotonic())}
    if mode == "half-tls":
        sock = socket.create_connection((host, port), timeout=LIMIT)
        # A TLS record header announcing a 512-byte handshake message, and only its first bytes.
        sock.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]))
        return {"closed_after": until_closed(sock, time.monotonic())}
    if mode == "slowloris":
        started = time.monotonic()
        sock = tls(host, port)
        return {"closed_after": until_closed(sock, started, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n" + b"X-Padding: " + b"a" * 200)}
    if mode == "slow-body":
        sock = tls(host, port)
        sock.sendall(b"POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/pkcs10\r\nContent-Length: 1000\r\n\r\n")
        return {"closed_after": until_closed(sock, time.monotonic(), b"M" * 1000)}
    if mode == "keepalive":
        count = int(args[0])
        results = [None] * count

        def one(index):
            sock = tls(host, port)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            status = read_response(sock)
            answered = time.monotonic()
            results[index] = {"status": status, "closed_after": until_closed(sock, answered)}

        threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
        for thread in threads:
            thread.start()
            time.sleep(0.05)
        for thread in threads:
            thread.join()
        return {"connections": results}
    if mode in ("hold", "spread"):
        count, seconds = int(args[0]), float(args[1])
        sources = [(f"127.0.0.{n + 2}", 0) if mode == "spread" else None for n in range(count)]
        sockets = [socket.create_connection((host, port), timeout=LIMIT, source_address=source) for source in sources]
        time.sleep(0.5)
        closed = 0
        for sock in sockets:
            sock.setblocking(False)
            try:
                if sock.recv(1) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        time.sleep(max(0.0, seconds - 0.5))
        return {"closed_at_once": closed}
    if mode == "big-header":
        sock = tls(host, port)
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"b" * int(args[0]) + b"\r\n\r\n")
            status = read_response(sock)
        except OSError:
            status = None
        return {"status": status if status is not None else "closed"}
    raise SystemExit(__doc__)


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:])))
