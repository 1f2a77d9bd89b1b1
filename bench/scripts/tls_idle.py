#!/usr/bin/env python3
"""Resident memory per idle TLS connection of a server process.

Usage: tls_idle.py PID HOST PORT [N]

Opens N TLS connections (TLS 1.3, one keep-alive request each, then idle), waits for the
server to settle, and prints the growth of the process's resident memory (all its threads)
divided by N, in bytes.
"""
import socket
import ssl
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    pid, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    time.sleep(0.5)
    before = rss_kib(pid)
    conns = []
    for _ in range(n):
        s = ctx.wrap_socket(socket.create_connection((host, port)), server_hostname="localhost")
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        s.recv(4096)
        conns.append(s)
    time.sleep(2.0)
    after = rss_kib(pid)
    print(f"{(after - before) * 1024 // n}")
    for s in conns:
        s.close()


main()
