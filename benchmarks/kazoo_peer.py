"""kazoo_peer: the kazoo peer of zkctl's benchmark, written the fastest way kazoo allows.

  kazoo_peer.py get HOSTS PATH                  start, connect, get, print, stop, close
  kazoo_peer.py walk HOSTS ROOT [--data]        every level's requests sent asynchronously at once
                                                (children, and with --data the values too); prints
                                                one path (and value) per line
  kazoo_peer.py create HOSTS ROOT A B [--batch N]
                                                the benchmark tree in transactions of N creates
                                                (default 1000), committed asynchronously, in order

Values are the benchmark's 50-byte JSON strings (see cref.c): '"' + 8-digit sequence number +
'x' * 40 + '"', numbered in creation order.
"""
import sys

from kazoo.client import KazooClient


def value(n, length=50):
    text = '"' + f"{n:08d}" + "x" * (length - 10) + '"'
    return text.encode()


def connect(hosts):
    zk = KazooClient(hosts=hosts, timeout=10.0)
    zk.start(timeout=10)
    return zk


def join(parent, name):
    return parent.rstrip("/") + "/" + name


def run_get(hosts, path):
    zk = connect(hosts)
    data, _ = zk.get(path)
    sys.stdout.write(data.decode("utf-8", "replace") + "\n")
    zk.stop()
    zk.close()


def run_walk(hosts, root, with_data):
    zk = connect(hosts)
    out = sys.stdout
    level = [root]
    while level:
        kids = [zk.get_children_async(p) for p in level]
        values = [zk.get_async(p) for p in level] if with_data else None
        nxt = []
        for i, path in enumerate(level):
            names = sorted(kids[i].get(timeout=60))
            if with_data:
                data, _ = values[i].get(timeout=60)
                out.write(path + " " + data.decode("utf-8", "replace") + "\n")
            else:
                out.write(path + "\n")
            nxt.extend(join(path, n) for n in names)
        level = nxt
    out.flush()
    zk.stop()
    zk.close()


def run_create(hosts, root, a, b, batch):
    zk = connect(hosts)
    paths = [root]
    for i in range(a):
        paths.append(f"{root}/a{i}")
        paths.extend(f"{root}/a{i}/b{j}" for j in range(b))
    pending = []
    for start in range(0, len(paths), batch):
        t = zk.transaction()
        for n in range(start, min(start + batch, len(paths))):
            t.create(paths[n], value(n))
        pending.append(t.commit_async())
    for p in pending:
        for r in p.get(timeout=120):
            if isinstance(r, Exception):
                raise r
    zk.stop()
    zk.close()


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    mode, hosts, target = argv[1], argv[2], argv[3]
    if mode == "get":
        run_get(hosts, target)
    elif mode == "walk":
        run_walk(hosts, target, "--data" in argv[4:])
    elif mode == "create":
        batch = int(argv[argv.index("--batch") + 1]) if "--batch" in argv else 1000
        run_create(hosts, target, int(argv[4]), int(argv[5]), batch)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
