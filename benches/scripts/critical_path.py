#!/usr/bin/env python3
"""Where a serial pipeline's wall time goes, step by step, from the kernel's
process events: for each step's shell, the gap from the previous step's exit
to its fork (the runner's own work between two steps), from its fork to its
exec (the spawn: the child's set-up before the program runs), and from its
exec to its exit (the program itself); plus the time before the first fork
and after the last exit (the runner's start-up and teardown).

Run, as root, any command that runs a serial pipeline of `sh` steps:

    python3 benches/scripts/critical_path.py -- target/release/runnerkit exec FILE
    python3 benches/scripts/critical_path.py -- sh -c 'for f in d/*.sh; do sh -e $f; done'

It records the `sched:sched_process_{fork,exec,exit}` tracepoints with
`perf record -a` and prints medians in microseconds (docs/benchmarks.md,
"Host engine against the shell").
"""

import re
import statistics
import subprocess
import sys
import tempfile

EVENT = re.compile(r"\s(\d+)/\d+\s+([\d.]+): sched:(\w+): (.*)")


def events(command):
    with tempfile.NamedTemporaryFile(suffix=".data") as data:
        subprocess.run(
            ["perf", "record", "-q", "-a", "-o", data.name,
             "-e", "sched:sched_process_exec,sched:sched_process_exit,sched:sched_process_fork",
             "--", *command],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        script = subprocess.run(
            ["perf", "script", "-i", data.name, "-F", "comm,pid,tid,time,event,trace"],
            check=True, capture_output=True, text=True).stdout
    for line in script.splitlines():
        m = EVENT.search(line)
        if m:
            yield float(m.group(2)), m.group(3), m.group(4)


def main():
    command = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    if not command:
        sys.exit(__doc__)
    evs = list(events(command))
    forked, execed, exited = {}, [], {}
    for t, kind, detail in evs:
        if kind == "sched_process_fork":
            forked[re.search(r"child_pid=(\d+)", detail).group(1)] = t
        elif kind == "sched_process_exec" and re.search(r"filename=(/usr)?/bin/sh ", detail):
            execed.append((re.search(r" pid=(\d+)", detail).group(1), t))
        elif kind == "sched_process_exit" and detail.startswith("comm=sh "):
            exited[re.search(r" pid=(\d+)", detail).group(1)] = t
    between, spawn, run = [], [], []
    last_exit = None
    steps = [(pid, t) for pid, t in execed if pid in forked and pid in exited]
    for pid, t in steps:
        if last_exit is not None:
            between.append(forked[pid] - last_exit)
        spawn.append(t - forked[pid])
        run.append(exited[pid] - t)
        last_exit = exited[pid]
    if len(steps) < 2:
        sys.exit("fewer than two sh steps seen")
    us = lambda xs: f"{statistics.median(xs) * 1e6:.0f}"
    print(f"{len(steps)} steps, medians in µs: exit to next fork {us(between)}, "
          f"fork to exec {us(spawn)}, exec to exit {us(run)}")
    first_fork = forked[steps[0][0]]
    print(f"before the first step: {(first_fork - evs[0][0]) * 1e3:.1f} ms, "
          f"after the last: {(evs[-1][0] - last_exit) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
