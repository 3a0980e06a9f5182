#!/usr/bin/env python3
"""Writes a realistic CoreDNS `log` plugin stream of about --mb megabytes to stdout.

Each simulated lookup follows a pod's resolv.conf (ndots:5, search <ns>.svc.cluster.local
svc.cluster.local cluster.local <node domain>): in-cluster names resolve at once, external names
first go through the NXDOMAIN search-path expansions. Deterministic (fixed seed).
"""
import argparse
import random
import sys

EXTERNAL = [f"{host}.{domain}" for domain in (
    "stripe.com", "github.com", "amazonaws.com", "googleapis.com", "slack.com", "datadoghq.eu",
    "docker.io", "microsoft.com", "sentry.io", "cloudflare.net", "openai.com", "npmjs.org",
    "pypi.org", "gitlab.com", "okta.com", "twilio.com", "segment.io", "launchdarkly.com",
    "newrelic.com", "algolia.net",
) for host in ("api", "www", "auth", "cdn", "uploads", "events", "hooks", "eu")]
SERVICES = [f"{svc}.{ns}.svc.cluster.local" for ns in ("shop", "payments", "monitoring", "auth")
            for svc in ("postgres", "redis", "orders", "users", "gateway", "kafka", "vault")]
NAMESPACES = ("shop", "payments", "monitoring", "auth")
RCODE_OK = "NOERROR qr,rd,ra"


def line(rng, client, qtype, name, rcode, flags):
    return (f'[INFO] {client}:{rng.randrange(1024, 65535)} - {rng.randrange(65536)} '
            f'"{qtype} IN {name}. udp {len(name) + 18} false 512" {rcode} {flags} '
            f'{rng.randrange(60, 400)} 0.{rng.randrange(10**8, 10**9)}s\n')


# A cluster of 300 pods.
CLIENTS = [f"10.244.{i // 100}.{i % 100 + 2}" for i in range(300)]


def lookups(rng):
    client = rng.choice(CLIENTS)
    if rng.random() < 0.55:
        name = rng.choice(SERVICES)
        for qtype in ("A", "AAAA"):
            yield line(rng, client, qtype, name, "NOERROR", "qr,aa,rd")
        return
    name = rng.choice(EXTERNAL)
    ns = rng.choice(NAMESPACES)
    for suffix in (f"{ns}.svc.cluster.local", "svc.cluster.local", "cluster.local",
                   "eu-west-1.compute.internal"):
        yield line(rng, client, "A", f"{name}.{suffix}", "NXDOMAIN", "qr,aa,rd")
    for qtype in ("A", "AAAA"):
        yield line(rng, client, qtype, name, "NOERROR", "qr,rd,ra")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=120, help="approximate size in megabytes")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    target = args.mb * 1024 * 1024
    written = 0
    out = sys.stdout
    buf = []
    while written < target:
        for text in lookups(rng):
            buf.append(text)
            written += len(text)
        if len(buf) > 10000:
            out.write("".join(buf))
            buf.clear()
    out.write("".join(buf))


if __name__ == "__main__":
    main()
