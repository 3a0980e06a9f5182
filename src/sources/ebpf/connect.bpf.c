// SPDX-License-Identifier: GPL-2.0
// egress-scout's eBPF source: every connect() and UDP send of every process below the cgroup
// the programs are attached to (the cgroup v2 root), as events in a ring buffer. The programs
// only observe: they always return 1 (allow). A full ring drops the event and counts it in
// LOST; it never blocks the caller.

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* One socket call. Layout read by src/sources/ebpf/event.rs: keep both in step. */
struct event {
    __u64 time_ns;   /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
    __u64 cgroup_id; /* the caller's cgroup v2 id: its directory's inode number */
    __u32 pid;       /* the caller's process (thread group) id */
    __u16 port;      /* destination port, host order */
    __u8 family;     /* 4 or 6 */
    __u8 protocol;   /* IPPROTO_TCP, IPPROTO_UDP */
    __u8 addr[16];   /* destination, network order; IPv4 in the first 4 bytes */
    char comm[16];   /* the caller's command name */
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 22); /* set by the loader from ring_bytes */
} EVENTS SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} LOST SEC(".maps");

static __always_inline int record(struct bpf_sock_addr *ctx, __u8 family)
{
    struct event *e = bpf_ringbuf_reserve(&EVENTS, sizeof(*e), 0);
    if (!e) {
        __u32 key = 0;
        __u64 *lost = bpf_map_lookup_elem(&LOST, &key);
        if (lost)
            __sync_fetch_and_add(lost, 1);
        return 1;
    }
    e->time_ns = bpf_ktime_get_ns();
    e->cgroup_id = bpf_get_current_cgroup_id();
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->port = bpf_ntohs(ctx->user_port);
    e->family = family;
    e->protocol = ctx->protocol;
    __builtin_memset(e->addr, 0, sizeof(e->addr));
    if (family == 4) {
        __u32 a = ctx->user_ip4;
        __builtin_memcpy(e->addr, &a, 4);
    } else {
        /* Word by word: the verifier allows only 4-byte reads of user_ip6. */
        __u32 a0 = ctx->user_ip6[0], a1 = ctx->user_ip6[1];
        __u32 a2 = ctx->user_ip6[2], a3 = ctx->user_ip6[3];
        __builtin_memcpy(e->addr, &a0, 4);
        __builtin_memcpy(e->addr + 4, &a1, 4);
        __builtin_memcpy(e->addr + 8, &a2, 4);
        __builtin_memcpy(e->addr + 12, &a3, 4);
    }
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    bpf_ringbuf_submit(e, 0);
    return 1;
}

SEC("cgroup/connect4")
int es_connect4(struct bpf_sock_addr *ctx) { return record(ctx, 4); }

SEC("cgroup/connect6")
int es_connect6(struct bpf_sock_addr *ctx) { return record(ctx, 6); }

SEC("cgroup/sendmsg4")
int es_sendmsg4(struct bpf_sock_addr *ctx) { return record(ctx, 4); }

SEC("cgroup/sendmsg6")
int es_sendmsg6(struct bpf_sock_addr *ctx) { return record(ctx, 6); }

char LICENSE[] SEC("license") = "GPL";
