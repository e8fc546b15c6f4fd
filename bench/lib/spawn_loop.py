#!/usr/bin/env python3
"""Runs one command N times, one after the other, on one CPU, and times each run from its
exec to its exit.

    spawn_loop.py CPU N WANT_RC WALL_FILE ERR_FILE -- COMMAND [ARG...]

Each run is started with posix_spawn (a vfork, so the launcher's own size costs the run
nothing: a forked bash copies its page tables first, about 0.15 ms a run on the build
machines) with stdin and stdout on /dev/null; ERR_FILE keeps the standard error of the last run that
failed.
WALL_FILE gets each run's wall time in microseconds, a line each; standard output gets
"FAILS TOTAL_US": the runs whose exit status was not WANT_RC, and the whole loop's wall time.
"""
import os
import sys
import time


def main(argv):
    if len(argv) < 8 or argv[6] != "--":
        sys.exit("usage: spawn_loop.py CPU N WANT_RC WALL_FILE ERR_FILE -- COMMAND [ARG...]")
    cpu, n, want_rc = int(argv[1]), int(argv[2]), int(argv[3])
    wall_path, err_path, cmd = argv[4], argv[5], argv[7:]
    os.sched_setaffinity(0, {cpu})
    null = os.open(os.devnull, os.O_RDWR)
    walls = []
    fails = 0
    start = time.perf_counter_ns()
    for _ in range(n):
        err = os.open(err_path + ".run", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        actions = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1),
                   (os.POSIX_SPAWN_DUP2, err, 2)]
        t0 = time.perf_counter_ns()
        pid = os.posix_spawnp(cmd[0], cmd, os.environ, file_actions=actions)
        _, status = os.waitpid(pid, 0)
        t1 = time.perf_counter_ns()
        os.close(err)
        if os.waitstatus_to_exitcode(status) != want_rc:
            fails += 1
            os.replace(err_path + ".run", err_path)
        walls.append((t1 - t0) // 1000)
    total_us = (time.perf_counter_ns() - start) // 1000
    if os.path.exists(err_path + ".run"):
        os.unlink(err_path + ".run")
    with open(wall_path, "w") as f:
        f.write("".join("%d\n" % w for w in walls))
    print(fails, total_us)


if __name__ == "__main__":
    main(sys.argv)
