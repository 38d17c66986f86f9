#!/usr/bin/env python3
"""A kazoo peer for the zkctl lock interop tests (LockTests.swift).

usage:
  kazoo_peer.py HOSTS hold PATH READY RELEASE [LOG]
      Take kazoo's Lock on PATH (waiting as long as it takes), create the file READY, hold the
      lock until the file RELEASE exists, then append "kazoo-release" to LOG (if given) and
      release. Exit 0.
  kazoo_peer.py HOSTS try PATH SECONDS [LOG]
      Try to take the Lock within SECONDS. Print "acquired" and exit 0 (after appending
      "kazoo-acquired" to LOG, if given, and releasing), or print "timeout" and exit 2.
  kazoo_peer.py HOSTS read-lock PATH HOLD_MS LOG
      Take kazoo's ReadLock on PATH (honouring Curator's and zkctl's writers, "__WRIT__", and
      mutex contenders, "-lock-"), append "start <ms> kazoo-reader" to LOG, hold it HOLD_MS,
      append "end <ms> kazoo-reader", release. Exit 0.
  kazoo_peer.py HOSTS children PATH
      Print PATH's children, sorted, one per line. Exit 1 when PATH does not exist.

Every Lock is created with extra_lock_patterns=["-lock-"], so that it honours contenders named
the way Apache Curator (and zkctl) names them. Needs kazoo (Debian: python3-kazoo).
"""
import logging
import os
import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import LockTimeout, NoNodeError

CURATOR_PATTERNS = ["-lock-"]
HOLD_LIMIT_SECONDS = 300  # a backstop: never hold for ever if a test forgets to release


def append(log, line):
    if log:
        with open(log, "a") as f:
            f.write(line + "\n")


def main(argv):
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 64
    hosts, action, path = argv[1], argv[2], argv[3]
    logging.basicConfig(level=logging.ERROR)
    zk = KazooClient(hosts=hosts, timeout=10.0)
    zk.start(timeout=30)
    try:
        if action == "hold" and len(argv) in (6, 7):
            ready, release = argv[4], argv[5]
            log = argv[6] if len(argv) == 7 else None
            lock = zk.Lock(path, "kazoo-peer-%d" % os.getpid(), extra_lock_patterns=CURATOR_PATTERNS)
            lock.acquire()
            open(ready, "w").close()
            deadline = time.monotonic() + HOLD_LIMIT_SECONDS
            while not os.path.exists(release) and time.monotonic() < deadline:
                time.sleep(0.02)
            append(log, "kazoo-release")
            lock.release()
            return 0
        if action == "try" and len(argv) in (5, 6):
            seconds = float(argv[4])
            log = argv[5] if len(argv) == 6 else None
            lock = zk.Lock(path, "kazoo-peer-%d" % os.getpid(), extra_lock_patterns=CURATOR_PATTERNS)
            try:
                got = lock.acquire(timeout=seconds)
            except LockTimeout:
                got = False
            if not got:
                print("timeout", flush=True)
                return 2
            append(log, "kazoo-acquired")
            print("acquired", flush=True)
            lock.release()
            return 0
        if action == "read-lock" and len(argv) == 6:
            hold_ms, log = int(argv[4]), argv[5]
            lock = zk.ReadLock(path, "kazoo-reader-%d" % os.getpid(), extra_lock_patterns=["__WRIT__", "-lock-"])
            lock.acquire()
            append(log, "start %d kazoo-reader" % int(time.time() * 1000))
            time.sleep(hold_ms / 1000.0)
            append(log, "end %d kazoo-reader" % int(time.time() * 1000))
            lock.release()
            return 0
        if action == "children" and len(argv) == 4:
            try:
                children = zk.get_children(path)
            except NoNodeError:
                print("no such node: " + path, file=sys.stderr)
                return 1
            for child in sorted(children):
                print(child)
            return 0
        sys.stderr.write(__doc__)
        return 64
    finally:
        zk.stop()
        zk.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
