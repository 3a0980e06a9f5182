#!/usr/bin/env python3
"""Writes a pcap of about --packets Ethernet/IPv4/TCP packets to stdout: connections of 300 pods
to 400 external servers (a SYN, a SYN-ACK, a ClientHello with a server name, then data both
ways), with DNS answers over UDP in between. Deterministic (fixed seed)."""
import argparse
import random
import struct
import sys


def checksum_free_ipv4(src, dst, proto, payload):
    total = 20 + len(payload)
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, proto, 0, src, dst) + payload


def tcp(sport, dport, flags, payload=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 5 << 4, flags, 65535, 0, 0) + payload


def udp(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ether(ip):
    return b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00" + ip


def hello(name):
    n = name.encode()
    sni = struct.pack("!HHHBH", 0, len(n) + 5, len(n) + 3, 0, len(n)) + n
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + struct.pack("!H", len(sni)) + sni
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def dns_answer(name, ip):
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    header = struct.pack("!HHHHHH", 7, 0x8180, 1, 1, 0, 0)
    return header + q + b"\x00\x01\x00\x01" + b"\xc0\x0c\x00\x01\x00\x01" + struct.pack("!IH", 300, 4) + ip


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=5_000_000)
    n = ap.parse_args().packets
    rng = random.Random(7)
    out = sys.stdout.buffer
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    written = 0
    t = 1_795_000_000 * 1_000_000
    port = 1024
    cache = {}
    while written < n:
        pod = struct.pack("!BBBB", 10, 244, rng.randrange(4), rng.randrange(2, 77))
        server_n = rng.randrange(400)
        server = struct.pack("!BBBB", 198, 51, 100 + server_n // 250, server_n % 250 + 1)
        name = f"api{server_n}.example.com"
        port = port + 1 if port < 65000 else 1024
        frames = [
            ether(checksum_free_ipv4(b"\x0a\x60\x00\x0a", pod, 17, udp(53, port, dns_answer(name, server)))),
            ether(checksum_free_ipv4(pod, server, 6, tcp(port, 443, 0x02))),
            ether(checksum_free_ipv4(server, pod, 6, tcp(443, port, 0x12))),
            ether(checksum_free_ipv4(pod, server, 6, tcp(port, 443, 0x18, hello(name)))),
        ]
        key = (server_n, rng.randrange(4))
        if key not in cache:
            cache[key] = [
                ether(checksum_free_ipv4(server, pod, 6, tcp(443, port, 0x18, bytes(100)))),
                ether(checksum_free_ipv4(pod, server, 6, tcp(port, 443, 0x10))),
            ]
        data = cache[key]
        frames += data * 8
        for f in frames:
            t += 1
            out.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(f), len(f)))
            out.write(f)
        written += len(frames)


main()
