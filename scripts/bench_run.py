#!/usr/bin/env python3
"""Times commands side by side on one capture, in alternating rounds, and prints a Markdown table.

usage: bench_run.py --capture FILE --packets N --sessions N --runs R [--peer-runs P]
                    --floor NAME=CMD --tool NAME=CMD ... [--peer NAME=CMD ...] [--nice N]

Every round first reads the capture once (untimed, so the page cache is warm), then runs each
command once, in the order given (tools and floor every round, peers in the
first P rounds), so slow drifts of a shared machine hit every command alike. Each run is measured
with wait4(): wall time, CPU time (user + system) and peak RSS. The table reports medians (peak RSS:
the largest seen), MB/s, packets/s and sessions/s over the wall median, and the ratios the
performance issue asks for: time relative to the floor, and the speed-up over each peer.
Commands run through /bin/sh with stdout to /dev/null; a non-zero exit fails the benchmark.
Before each round a two-core check times two CPU-bound loops at once against one (printed under the
table): on a VM whose two vCPUs the host sometimes runs on one physical core, two-threaded runs slow
down by that factor in those rounds, and the check says which rounds they were.
"""
import argparse, os, statistics, subprocess, sys, time


def run(cmd, nice, rss_file):
    # GNU time reports the peak RSS of the command itself (a forked Python child would report the
    # interpreter's pages); wait4 gives the CPU time of everything the run did.
    argv = ["/usr/bin/time", "-f", "%M", "-o", rss_file, "/bin/sh", "-c", cmd]
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         preexec_fn=(lambda: os.nice(nice)) if nice else None)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"bench_run: failed ({os.waitstatus_to_exitcode(status)}): {cmd}\n{err[-2000:]}")
    with open(rss_file) as f:
        rss_kb = int(f.read().split()[-1])
    return wall, ru.ru_utime + ru.ru_stime, rss_kb


def warm(path):
    """Reads the capture once, untimed: this VM reclaims cold page cache (DAMON), and a long peer run
    (tshark on 2 GB takes minutes) would otherwise leave the next round reading from disk."""
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 20):
            pass


# A CPU-bound loop timed inside its own interpreter (start-up excluded).
SPIN = "import time\nt = time.perf_counter()\nx = 0\nfor i in range(3_000_000):\n    x += i\nprint(time.perf_counter() - t)"


def spin(copies):
    """The slowest of `copies` CPU-bound loops run at once, in seconds."""
    ps = [subprocess.Popen([sys.executable, "-c", SPIN], stdout=subprocess.PIPE) for _ in range(copies)]
    return max(float(p.communicate()[0]) for p in ps)


def two_core_check():
    """Two loops at once over one alone: 1.0 when the machine's two cores are really two; a VM's
    two vCPUs that the host runs on one core's two hardware threads (or beside a busy neighbour)
    come out near 1.6-1.8, and then every two-threaded run of that round is slower by about as
    much while single-threaded ones are not."""
    alone = spin(1)
    return spin(2) / alone


def pair(s):
    name, _, cmd = s.partition("=")
    return name, cmd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--capture", required=True)
    ap.add_argument("--packets", type=int, required=True)
    ap.add_argument("--sessions", type=int, required=True)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--peer-runs", type=int, default=3)
    ap.add_argument("--floor", type=pair, required=True)
    ap.add_argument("--tool", type=pair, action="append", default=[])
    ap.add_argument("--peer", type=pair, action="append", default=[])
    ap.add_argument("--nice", type=int, default=0, help="niceness increment for the measured commands (root: negative)")
    a = ap.parse_args()

    size = os.path.getsize(a.capture)
    rss_file = f"/tmp/bench_run.{os.getpid()}.rss"
    order = [("floor", a.floor)] + [("tool", t) for t in a.tool] + [("peer", p) for p in a.peer]
    res = {name: [] for _, (name, _) in order}
    checks = []
    for r in range(max(a.runs, a.peer_runs)):
        warm(a.capture)
        checks.append(two_core_check())
        print(f"bench_run: round {r + 1}: two-core check {checks[-1]:.2f}", file=sys.stderr)
        for kind, (name, cmd) in order:
            if kind == "peer" and r >= a.peer_runs:
                continue
            if kind != "peer" and r >= a.runs:
                continue
            res[name].append(run(cmd, a.nice, rss_file))
            print(f"bench_run: round {r + 1}: {name}: {res[name][-1][0]:.3f} s", file=sys.stderr)

    def med(name, i):
        return statistics.median(x[i] for x in res[name])

    floor_name = a.floor[0]
    floor = med(floor_name, 0)
    print(f"| tool | runs | wall s (median) | CPU s | MB/s | packets/s | sessions/s | peak RSS MB | × floor time |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind, (name, _) in order:
        w, c = med(name, 0), med(name, 1)
        rss = max(x[2] for x in res[name]) / 1024
        # Only the SMTP analysers finish sessions; the floors and loops do not.
        sess = f"{a.sessions / w:,.0f}" if (name.startswith("smtpscope") or kind == "peer") else "—"
        print(f"| {name} | {len(res[name])} | {w:.3f} | {c:.3f} | {size / 1e6 / w:,.0f} | {a.packets / w / 1e3:,.0f} k | "
              f"{sess} | {rss:.1f} | {w / floor:.2f} |")
    os.unlink(rss_file)
    print()
    print("Two-core check before each round (two CPU-bound loops at once over one alone; ≈ 1.0 when the two cores "
          "are free, ≈ 1.7 when the host runs them as one core's two threads): "
          + ", ".join(f"{c:.2f}" for c in checks) + ".")
    tools = [t[0] for t in a.tool if t[0].startswith("smtpscope")]
    if a.peer and tools:
        print()
        print("| speed-up (wall, median) | " + " | ".join(tools) + " |")
        print("|---|" + "---|" * len(tools))
        for peer, _ in a.peer:
            print(f"| over {peer} | " + " | ".join(f"{med(peer, 0) / med(t, 0):.1f}×" for t in tools) + " |")


if __name__ == "__main__":
    main()
