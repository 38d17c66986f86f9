#!/usr/bin/env python3
"""zkctl's benchmark driver (run through benchmarks/bench.sh, i.e. `make bench`).

Times whole processes (start, connect, work, close, exit) of zkctl next to a C reference over
libzookeeper_mt (cref.c) and the peers installed here, on a server that bench.sh started for
this run, with trees of 10k and 100k znodes (1M with BENCH_1M=1). Runs are interleaved (round
robin, the starting tool rotating every round), and every run is checked (exit status and what
it wrote or left on the server) so that a tool that fails cannot look fast.

Every run goes through runner.c, which measures like /usr/bin/time (fork, exec, wait4; peak RSS
is the ru_maxrss GNU time prints as %M) with only fork and exec inside the timed interval; the
one-shot memory figures are also taken once with /usr/bin/time itself.

Standard library only. Settings come from the environment (see bench.sh).
"""
import datetime
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


CS = os.environ["BENCH_CONNECT"]
ZKCTL = os.environ["BENCH_ZKCTL"]
CREF = os.environ["BENCH_CREF"]
RUNNER = os.environ["BENCH_RUNNER"]
OUT = os.environ.get("BENCH_OUT", os.path.join(HERE, "out"))
RESULTS = os.environ.get("BENCH_RESULTS", os.path.join(HERE, "RESULTS.md"))
VENV = os.environ.get("BENCH_VENV", os.path.join(HERE, ".venv"))
RUNS = env_int("BENCH_RUNS", 5)              # fast tools, 10k
RUNS_100K = env_int("BENCH_RUNS_100K", 2)    # fast tools, 100k
SLOW_RUNS = env_int("BENCH_SLOW_RUNS", 3)    # zkCli.sh, zk-shell, kazoo at 10k
ONESHOT_RUNS = env_int("BENCH_ONESHOT_RUNS", 51)
SWEEP_RUNS = env_int("BENCH_SWEEP_RUNS", 3)
SWEEP_RUNS_100K = env_int("BENCH_SWEEP_RUNS_100K", 1)
SWEEP = os.environ.get("BENCH_SWEEP", "16,64,128,256,512,1024")
SWEEP_100K = os.environ.get("BENCH_SWEEP_100K", "256,1024")
SHELL_GETS = env_int("BENCH_SHELL_GETS", 1000)
JOBS = set(os.environ.get("BENCH_JOBS", "oneshot,shell,10k,100k,find,sweep,tls").split(","))
if os.environ.get("BENCH_1M", "0") == "1":
    JOBS.add("1m")
DEADLINE = time.monotonic() + env_int("BENCH_DEADLINE", 1800)  # seconds for the whole driver
NOTES = []

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
CLI_MT = "/usr/lib/zookeeper/bin/cli_mt"
PY = os.path.join(VENV, "bin", "python")
ZKSHELL = os.path.join(VENV, "bin", "zk-shell")
KAZOO = [PY, os.path.join(HERE, "kazoo_peer.py")]
HAVE_PY = os.access(PY, os.X_OK) and subprocess.run([PY, "-c", "import kazoo"], capture_output=True).returncode == 0
HAVE_ZKSHELL = os.access(ZKSHELL, os.X_OK)
HAVE_ZKCLI = os.access(ZKCLI, os.X_OK)
HAVE_CLI_MT = os.access(CLI_MT, os.X_OK)

# The C reference runs like zkctl does since f1f6cd3: zoo_set_servers_resolution_delay(-1), no
# getaddrinfo on every poll of the socket. The rows marked "library default" show the C client
# as it comes (see FINDINGS.md, section 1).
NO_RERESOLVE = ["--resolve-delay", "-1"]


def cref(mode, *args):
    return [CREF, mode, CS] + list(args) + NO_RERESOLVE

SIZES = {"10k": (100, 100), "100k": (1000, 100), "1M": (1000, 1000)}


def count_nodes(size):
    a, b = SIZES[size]
    return 1 + a * (1 + b)


def value(n, length=50):
    return '"' + f"{n:08d}" + "x" * (length - 10) + '"'


def creation_order(a, b):
    """(relative path, sequence number) in the order cref and kazoo create them."""
    yield "", 0
    n = 1
    for i in range(a):
        yield f"a{i}", n
        n += 1
        for j in range(b):
            yield f"a{i}/b{j}", n
            n += 1


# ----------------------------------------------------------------------------------------------
# Running one process

CLEAN_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "HOME": OUT,  # no ~/.config/zkctl, no ~/.zk_shell history of the user
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "XDG_CONFIG_HOME": os.path.join(OUT, "xdg"),
}
if os.environ.get("JAVA_HOME"):
    CLEAN_ENV["JAVA_HOME"] = os.environ["JAVA_HOME"]


CURRENT = [None]  # the runner running now


def on_signal(signum, frame):
    """Interrupted: end the running child's process group (ours), then stop."""
    p = CURRENT[0]
    if p:
        p.terminate()  # the runner kills its command's process group
        p.wait()
    sys.exit(128 + signum)


class Run:
    def __init__(self, status, wall, cpu, rss_kb, stdout_path, stderr_path):
        self.status, self.wall, self.cpu, self.rss_kb = status, wall, cpu, rss_kb
        self.stdout_path, self.stderr_path = stdout_path, stderr_path

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read()

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


def spawn(argv, limit, stdin=None, tag="run"):
    """Runs argv through the runner (fork, exec, wait4, in its own process group, killed when
    `limit` seconds pass) and returns what it measured."""
    out_path = os.path.join(OUT, f"{tag}.stdout")
    err_path = os.path.join(OUT, f"{tag}.stderr")
    res_path = os.path.join(OUT, f"{tag}.measure")
    if os.path.exists(res_path):
        os.unlink(res_path)
    p = subprocess.Popen([RUNNER, str(int(limit)), res_path, stdin or "/dev/null", out_path, err_path] + argv,
                         env=CLEAN_ENV, stdin=subprocess.DEVNULL)
    CURRENT[0] = p
    try:
        p.wait(timeout=limit + 60)
    except subprocess.TimeoutExpired:
        p.terminate()
        p.wait()
    CURRENT[0] = None
    try:
        with open(res_path) as f:
            status, wall, cpu, rss = f.read().split()
    except (OSError, ValueError):
        return Run("runner failed", 0.0, 0.0, 0, out_path, err_path)
    code = int(status) if status.lstrip("-").isdigit() else status
    return Run(code, float(wall), float(cpu), int(rss), out_path, err_path)


def gnu_time_rss(argv, limit=120):
    """Peak RSS in KiB as /usr/bin/time -f %M reports it (one extra, untimed run)."""
    if not os.access("/usr/bin/time", os.X_OK):
        return None
    fmt_file = os.path.join(OUT, "gnu-time.txt")
    r = spawn(["/usr/bin/time", "-f", "%M", "-o", fmt_file] + argv, limit, tag="gnutime")
    if r.status != 0:
        return None
    with open(fmt_file) as f:
        return int(f.read().strip().splitlines()[-1])


def helper(argv, limit=600, what=""):
    """An untimed preparation step; it must succeed."""
    r = spawn(argv, limit, tag="helper")
    if r.status != 0:
        raise SystemExit(f"bench: preparation failed ({what or ' '.join(argv)}): exit {r.status}: {r.stderr()[-2000:]}")
    return r


def tree_count(root):
    r = spawn(cref("walk", root), 600, tag="count")
    if r.status != 0:
        return 0
    return r.stdout().count(b"\n")


def server_nodes():
    """The server's znode count (four-letter word srvr), a cheap check of creates and deletes."""
    host, port = CS.split(",")[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"srvr")
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    m = re.search(rb"Node count: (\d+)", data)
    if not m:
        raise SystemExit(f"bench: no node count in the server's srvr answer: {data[:200]!r}")
    return int(m.group(1))


def make_tree(root, size):
    a, b = SIZES[size]
    helper(cref("create", root, str(a), str(b)), 1800, f"create {root}")


def remove_tree(root):
    helper(cref("delete", root), 1800, f"delete {root}")


# ----------------------------------------------------------------------------------------------
# Jobs: a set of tools, each an argv plus optional before/after steps and a check

class Tool:
    def __init__(self, name, argv, runs, check=None, before=None, after=None, stdin=None, limit=300, kind="peer"):
        self.name, self.argv, self.runs = name, argv, runs
        self.check, self.before, self.after, self.stdin, self.limit = check, before, after, stdin, limit
        self.kind = kind  # zkctl | cref | peer
        self.results = []
        self.failures = []


def lines_at_least(n):
    def check(run, ctx):
        got = run.stdout().count(b"\n")
        return None if got >= n else f"wrote {got} lines, expected at least {n}"
    return check


def file_lines_at_least(path, n):
    def check(run, ctx):
        try:
            with open(path, "rb") as f:
                got = sum(1 for _ in f)
        except OSError as e:
            return f"no output file: {e}"
        return None if got >= n else f"file has {got} lines, expected at least {n}"
    return check


def file_bytes_at_least(path, n):
    def check(run, ctx):
        try:
            got = os.path.getsize(path)
        except OSError as e:
            return f"no output file: {e}"
        return None if got >= n else f"file has {got} bytes, expected at least {n}"
    return check


def cpu_busy():
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


SETTLE = {}   # job -> seconds waited for a quiet machine before its first round


def settle(job, quiet=0.15, window=0.5, limit=30.0):
    """Wait until the machine is quiet before a job's rounds: less than `quiet` of one core busy
    over a `window`, for at most `limit` seconds. The server's JIT and collector keep working for
    seconds after a tree is built or a slow peer's run, and a one-shot command timed then measures
    them (the run of 2026-12-03: 86 % of a core on the server as the one-shot job began)."""
    cores = os.cpu_count() or 1
    started = time.monotonic()
    while True:
        b0, t0 = cpu_busy()
        time.sleep(window)
        b1, t1 = cpu_busy()
        busy = (b1 - b0) / max(t1 - t0, 1) * cores
        waited = time.monotonic() - started
        if busy < quiet:
            SETTLE[job] = waited
            return
        if waited >= limit:
            SETTLE[job] = waited
            NOTES.append(f"{job}: the machine was still busy ({busy:.2f} of a core) after {limit:.0f} s; timed anyway")
            return


def run_job(job, tools, note=""):
    """Interleaved rounds: round r runs every tool that still has runs, starting one further
    along each round. Returns False when the deadline cut it short."""
    settle(job)
    print(f"== {job}", flush=True)
    started = time.monotonic()
    tools = [t for t in tools if t.runs > 0]
    rounds = max(t.runs for t in tools)
    complete = True
    for r in range(rounds):
        if time.monotonic() > DEADLINE:
            NOTES.append(f"{job}: stopped after {r} rounds (BENCH_DEADLINE reached)")
            complete = False
            break
        order = tools[r % len(tools):] + tools[:r % len(tools)]
        for t in order:
            if r >= t.runs:
                continue
            ctx = {"round": r}
            if t.before:
                t.before(ctx)
            argv = t.argv(ctx) if callable(t.argv) else t.argv
            run = spawn(argv, t.limit, stdin=t.stdin, tag="job")
            problem = None
            if run.status != 0:
                problem = f"exit {run.status}: {run.stderr().strip()[-300:]}"
            elif t.check:
                problem = t.check(run, ctx)
            if t.after:
                after_problem = t.after(ctx)
                problem = problem or after_problem
            if problem:
                t.failures.append(problem)
                print(f"   {t.name}: FAILED: {problem}", flush=True)
            else:
                t.results.append(run)
                print(f"   {t.name}: {run.wall:.3f} s, cpu {run.cpu:.3f} s, rss {run.rss_kb} KiB", flush=True)
    DURATION[job] = time.monotonic() - started
    return complete


def stats(tool):
    if not tool.results:
        return None
    walls = [r.wall for r in tool.results]
    return {
        "n": len(walls),
        "median": statistics.median(walls),
        "min": min(walls),
        "max": max(walls),
        "cpu": statistics.median(r.cpu for r in tool.results),
        "rss": max(r.rss_kb for r in tool.results),
        "failures": len(tool.failures),
        "failure": tool.failures[0] if tool.failures else None,
    }


# ----------------------------------------------------------------------------------------------
# Formatting

def fmt_t(s):
    if s is None:
        return "–"
    if s < 1:
        return f"{s * 1000:.1f} ms" if s < 0.1 else f"{s * 1000:.0f} ms"
    return f"{s:.2f} s"


def fmt_x(x):
    if x is None:
        return "–"
    return f"{x:.2f}×" if x < 10 else f"{x:.0f}×"


REPORT = []   # sections of RESULTS.md, in order
POOL = {}     # size -> roots of full trees left by the create job for the delete job
ALL = {}      # job -> {tool name: stats}, for the targets
REF = {}      # job -> the name of its C reference row
DURATION = {} # job -> seconds it took, preparation included


def table(job, tools, ref_name, title, note="", speedup=True):
    tools = [t for t in tools if t.runs > 0]
    ref = next((stats(t) for t in tools if t.name == ref_name), None)
    ALL[job] = {t.name: stats(t) for t in tools}
    REF[job] = ref_name
    lines = [f"### {title}", ""]
    if note:
        lines += [note, ""]
    lines += ["| tool | runs | median | min | max | ÷ C ref | CPU (median) | peak RSS |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for t in tools:
        s = stats(t)
        if s is None:
            why = t.failures[0] if t.failures else "not run"
            lines.append(f"| {t.name} | 0 | failed: {why[:120]} | | | | | |")
            continue
        ratio = s["median"] / ref["median"] if ref and ref["median"] else None
        fail = f" ({s['failures']} failed)" if s["failures"] else ""
        lines.append(f"| {t.name} | {s['n']}{fail} | {fmt_t(s['median'])} | {fmt_t(s['min'])} | {fmt_t(s['max'])} | "
                     f"{fmt_x(ratio)} | {fmt_t(s['cpu'])} | {s['rss'] / 1024:.1f} MiB |")
    zk = [t for t in tools if t.kind == "zkctl" and stats(t)]
    peers = [t for t in tools if t.kind != "zkctl" and stats(t)]
    if zk and peers and speedup:
        lines += ["", "Speed-up of zkctl (peer median ÷ zkctl median; above 1 means zkctl is faster):", "",
                  "| zkctl | " + " | ".join(p.name for p in peers) + " |",
                  "|---|" + "---:|" * len(peers)]
        for z in zk:
            zm = stats(z)["median"]
            lines.append(f"| {z.name} | " + " | ".join(fmt_x(stats(p)["median"] / zm) for p in peers) + " |")
    REPORT.append("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------------------
# The jobs

def zk(*args, inflight=None):
    argv = [ZKCTL, "-s", CS]
    if inflight:
        argv += ["--max-inflight", str(inflight)]
    return argv + list(args)


def job_oneshot():
    path = "/bench10k/a42/b17"
    expect = value(42 * 101 + 1 + 17 + 1).encode()

    def has_value(run, ctx):
        return None if expect in run.stdout() else f"value not printed: {run.stdout()[:200]!r}"

    slow = min(ONESHOT_RUNS, 5)
    tools = [
        Tool("zkctl get", zk("get", path), ONESHOT_RUNS, has_value, kind="zkctl"),
        Tool("zkctl config get", zk("--config-root", "/bench10k/a42", "config", "get", "b17"), ONESHOT_RUNS, has_value, kind="zkctl"),
        Tool("C ref (get)", cref("get", path), ONESHOT_RUNS, has_value, kind="cref"),
        Tool("C ref (get), library default", [CREF, "get", CS, path], ONESHOT_RUNS, has_value, kind="cref"),
    ]
    if HAVE_CLI_MT:
        def cli_mt_ok(run, ctx):
            return None if expect in run.stdout() + open(run.stderr_path, "rb").read() else "value not printed"
        tools.append(Tool("cli_mt -c get", [CLI_MT, "-h", CS, "-c", f"get {path}"], ONESHOT_RUNS, cli_mt_ok))
    if HAVE_PY:
        tools.append(Tool("kazoo script", KAZOO + ["get", CS, path], ONESHOT_RUNS, has_value))
    if HAVE_ZKSHELL:
        tools.append(Tool("zk-shell --run-once get", [ZKSHELL, "--run-once", f"get {path}", CS], slow, has_value))
    if HAVE_ZKCLI:
        tools.append(Tool("zkCli.sh get", [ZKCLI, "-server", CS, "get", path], slow, has_value))
    # Warm the server's JIT for this path first.
    for _ in range(3):
        spawn(cref("get", path), 30, tag="warm")
    run_job("one-shot get", tools)
    table("oneshot", tools, "C ref (get)", "One-shot: start, connect, get one 50-byte value, close, exit",
          f"`{path}` on the 10k tree. Slow peers run {slow} times, the others {ONESHOT_RUNS}.")
    # Peak RSS as /usr/bin/time reports it, one extra run each.
    rss = {}
    for t in tools:
        if t.kind in ("zkctl", "cref"):
            rss[t.name] = gnu_time_rss(t.argv)
    ALL["oneshot_gnutime"] = rss
    REPORT.append("Peak RSS by `/usr/bin/time -f %M` (one extra run): " +
                  ", ".join(f"{k} {v / 1024:.1f} MiB" if v else f"{k} –" for k, v in rss.items()) + "\n")


def job_listing(size, runs, slow_runs, sweep_only=False):
    root = f"/bench{size}"
    n = count_nodes(size)
    limit = 120 if size == "10k" else 900
    tools = [
        Tool("zkctl tree", zk("tree", root), runs, lines_at_least(n), kind="zkctl", limit=limit),
        Tool("zkctl -o ndjson tree", zk("-o", "ndjson", "tree", root), runs if size == "10k" else 0, lines_at_least(n), kind="zkctl", limit=limit),
        Tool("C ref (pipelined walk)", cref("walk", root), runs, lines_at_least(n), kind="cref", limit=limit),
        Tool("C ref (walk), library default", [CREF, "walk", CS, root], runs, lines_at_least(n), kind="cref", limit=limit),
    ]
    if HAVE_PY and slow_runs:
        tools.append(Tool("kazoo async walk", KAZOO + ["walk", CS, root], slow_runs, lines_at_least(n), limit=limit))
    if HAVE_ZKSHELL and slow_runs:
        tools.append(Tool("zk-shell tree", [ZKSHELL, "--run-once", f"tree {root}", CS], slow_runs, lines_at_least(n - 1), limit=limit))
    if HAVE_ZKCLI and slow_runs:
        tools.append(Tool("zkCli.sh ls -R", [ZKCLI, "-server", CS, "ls", "-R", root], slow_runs, lines_at_least(n), limit=limit))
    run_job(f"listing {size}", tools)
    table(f"tree {size}", tools, "C ref (pipelined walk)", f"Recursive listing, {size} ({n:,} znodes)",
          "Every tool prints the paths (zkctl: the drawn tree) into a file.")


def job_values(size, runs, slow_runs):
    root = f"/bench{size}"
    n = count_nodes(size)
    limit = 180 if size == "10k" else 1200
    tools = [
        Tool("zkctl config list", zk("--config-root", root, "config", "list"), runs, lines_at_least(n - 1), kind="zkctl", limit=limit),
        Tool("zkctl tree --data", zk("tree", "--data", root), runs if size == "10k" else 0, lines_at_least(n), kind="zkctl", limit=limit),
        Tool("C ref (walk + values)", cref("walk", root, "--data"), runs, lines_at_least(n), kind="cref", limit=limit),
    ]
    if HAVE_PY and slow_runs:
        tools.append(Tool("kazoo async walk + get", KAZOO + ["walk", CS, root, "--data"], slow_runs, lines_at_least(n), limit=limit))
    if HAVE_ZKSHELL and slow_runs and size == "10k":
        # grep reads every value under the path (and finds nothing here).
        tools.append(Tool("zk-shell grep", [ZKSHELL, "--run-once", f"grep {root} no-such-text", CS], slow_runs, limit=limit))
    if HAVE_ZKCLI and slow_runs and size == "10k":
        script = os.path.join(OUT, f"zkcli-gets-{size}.txt")
        a, b = SIZES[size]
        with open(script, "w") as f:
            for rel, _ in creation_order(a, b):
                f.write(f"get {root}/{rel}\n".replace(f"{root}/\n", f"{root}\n"))
        tools.append(Tool("zkCli.sh (a get per node on stdin)", [ZKCLI, "-server", CS], slow_runs,
                          lines_at_least(n), stdin=script, limit=limit))
    run_job(f"values {size}", tools)
    table(f"values {size}", tools, "C ref (walk + values)", f"Read every value, {size} ({n:,} znodes)",
          "The C reference lists and reads every node with both requests pipelined (window 512).")


def du_counts(n):
    def check(run, ctx):
        # du's first row is the whole tree: BYTES NODES ...; its NODES must be the tree's count.
        rows = run.stdout().decode(errors="replace").splitlines()
        got = rows[1].split()[1] if len(rows) > 1 and len(rows[1].split()) > 1 else "?"
        return None if got == str(n) else f"du counted {got} nodes, expected {n}"
    return check


def job_find(size, runs):
    """find and du (issue 19) next to the C walk: stats only, data only for find --data."""
    root = f"/bench{size}"
    n = count_nodes(size)
    limit = 120 if size == "10k" else 900
    tools = [
        Tool("zkctl find", zk("find", root), runs, lines_at_least(n), kind="zkctl", limit=limit),
        Tool("zkctl find --min-bytes 1", zk("find", root, "--min-bytes", "1"), runs, lines_at_least(n), kind="zkctl", limit=limit),
        Tool("zkctl du", zk("du", root), runs, du_counts(n), kind="zkctl", limit=limit),
        Tool("C ref (pipelined walk)", cref("walk", root), runs, lines_at_least(n), kind="cref", limit=limit),
    ]
    run_job(f"find {size}", tools)
    table(f"find {size}", tools, "C ref (pipelined walk)", f"find and du, {size} ({n:,} znodes)",
          "find prints every path (--min-bytes 1 matches every node: each holds a value), du sums the tree; "
          "neither reads data.")
    values = [
        Tool("zkctl find --data", zk("find", root, "--data", "."), runs, lines_at_least(n), kind="zkctl", limit=limit),
        Tool("C ref (walk + values)", cref("walk", root, "--data"), runs, lines_at_least(n), kind="cref", limit=limit),
    ]
    run_job(f"find --data {size}", values)
    table(f"find --data {size}", values, "C ref (walk + values)", f"find --data, {size} ({n:,} znodes)",
          "find --data reads every value (the pattern '.' matches each).")


def job_export(size, runs, slow_runs):
    root = f"/bench{size}"
    n = count_nodes(size)
    limit = 180 if size == "10k" else 1200
    zfile = os.path.join(OUT, f"zkctl-export-{size}.json")
    cfile = os.path.join(OUT, f"cref-export-{size}.jsonl")
    tools = [
        Tool("zkctl export", zk("export", root, "-f", zfile), runs, file_lines_at_least(zfile, n), kind="zkctl", limit=limit),
        Tool("C ref (walk + values, JSON)", cref("walk", root, "--data", "--json", "--out", cfile), runs,
             file_lines_at_least(cfile, n), kind="cref", limit=limit),
        Tool("C ref (+ ACLs, JSON)", cref("walk", root, "--data", "--acl", "--json", "--out", cfile), runs,
             file_lines_at_least(cfile, n), kind="cref", limit=limit),
    ]
    if HAVE_ZKSHELL and slow_runs and size == "10k":
        sfile = os.path.join(OUT, f"zkshell-export-{size}.json")

        def rm_sfile(ctx):
            if os.path.exists(sfile):
                os.unlink(sfile)
        # cp's arguments: recursive, overwrite, asynchronous (its fastest way).
        tools.append(Tool("zk-shell cp to json (async)",
                          [ZKSHELL, "--run-once", f"cp {root} json://{sfile.replace('/', '!')}/x true true true", CS],
                          slow_runs, file_bytes_at_least(sfile, n * 100), before=rm_sfile, limit=limit))
    run_job(f"export {size}", tools)
    table(f"export {size}", tools, "C ref (walk + values, JSON)", f"Export (list + values into a file), {size} ({n:,} znodes)",
          "zkctl export also reads every ACL (3 requests a node); the second C row does the same. "
          "The first issue's reference is the first row (list + values); issue 22's is the second.")
    return zfile


def job_create(size, runs, slow_runs, export_file):
    n = count_nodes(size)
    a, b = SIZES[size]
    limit = 300 if size == "10k" else 1800
    counter = [0]

    def fresh(ctx):
        counter[0] += 1
        ctx["root"] = f"/c{size}-{counter[0]}"
        ctx["before"] = server_nodes()

    def verify_and_keep(ctx):
        # The server's node count must have grown by exactly the tree; the tree then waits in
        # POOL for the delete job (which would otherwise build its own).
        got = server_nodes() - ctx["before"]
        if got != n:
            if tree_count(ctx["root"]):
                remove_tree(ctx["root"])
            return f"{ctx['root']}: {got} nodes created, expected {n}"
        POOL.setdefault(size, []).append(ctx["root"])
        return None

    cfg_file = os.path.join(OUT, f"config-import-{size}.json")
    with open(cfg_file, "w") as f:
        items = {rel: json.loads(value(seq)) for rel, seq in creation_order(a, b) if rel}
        json.dump(items, f)
    tools = [
        Tool("zkctl import", lambda c: zk("import", export_file, "--to", c["root"]), runs,
             before=fresh, after=verify_and_keep, kind="zkctl", limit=limit),
        Tool("zkctl config import", lambda c: zk("--config-root", c["root"], "config", "import", "--nested", cfg_file), runs,
             before=fresh, after=verify_and_keep, kind="zkctl", limit=limit),
        Tool("C ref (1000-op multis)", lambda c: cref("create", c["root"], str(a), str(b)), runs,
             before=fresh, after=verify_and_keep, kind="cref", limit=limit),
    ]
    if HAVE_PY and slow_runs:
        tools.append(Tool("kazoo 1000-op txns", lambda c: KAZOO + ["create", CS, c["root"], str(a), str(b)], slow_runs,
                          before=fresh, after=verify_and_keep, limit=limit))
    if HAVE_ZKSHELL and slow_runs and size == "10k":
        sfile = os.path.join(OUT, f"zkshell-import-{size}.json")
        # zk-shell reads its own dump: write one of the benchmark tree once (with zk-shell, untimed).
        if not os.path.exists(sfile):
            helper([ZKSHELL, "--run-once", f"cp /bench{size} json://{sfile.replace('/', '!')}/x true true true", CS], 600, "zk-shell dump")
        tools.append(Tool("zk-shell cp from json (async)",
                          lambda c: [ZKSHELL, "--run-once", f"cp json://{sfile.replace('/', '!')}/x {c['root']} true true true", CS],
                          slow_runs, before=fresh, after=verify_and_keep, limit=limit))
    if HAVE_ZKCLI and slow_runs and size == "10k":
        def zkcli_script(ctx):
            fresh(ctx)
            script = os.path.join(OUT, "zkcli-creates.txt")
            with open(script, "w") as f:
                for rel, seq in creation_order(a, b):
                    f.write(f"create {ctx['root']}{'/' + rel if rel else ''} '{value(seq)}'\n")
            ctx["script"] = script
        t = Tool("zkCli.sh (a create per node on stdin)", [ZKCLI, "-server", CS], slow_runs,
                 before=zkcli_script, after=verify_and_keep, stdin=os.path.join(OUT, "zkcli-creates.txt"), limit=limit)
        tools.append(t)
    run_job(f"create {size}", tools)
    table(f"create {size}", tools, "C ref (1000-op multis)", f"Create every node, {size} ({n:,} znodes)",
          "zkctl import reads its own export of the tree; config import a {\"a0/b0\": value, ...} file (--nested). "
          "Each run writes a fresh root, checked and removed afterwards (untimed).")


def job_delete(size, runs, slow_runs):
    n = count_nodes(size)
    limit = 300 if size == "10k" else 1800
    counter = [0]

    def fresh(ctx):
        pool = POOL.get(size, [])
        if pool:
            ctx["root"] = pool.pop(0)
        else:
            counter[0] += 1
            ctx["root"] = f"/d{size}-{counter[0]}"
            make_tree(ctx["root"], size)
        ctx["before"] = server_nodes()

    def gone(ctx):
        got = ctx["before"] - server_nodes()
        if got != n:
            if tree_count(ctx["root"]):
                remove_tree(ctx["root"])
            return f"{got} nodes deleted, expected {n}"
        return None

    tools = [
        Tool("zkctl delete -r", lambda c: zk("delete", "-r", "--force", c["root"]), runs, before=fresh, after=gone, kind="zkctl", limit=limit),
        Tool("C ref (walk + 1000-op multis)", lambda c: cref("delete", c["root"]), runs, before=fresh, after=gone, kind="cref", limit=limit),
    ]
    if HAVE_ZKCLI and slow_runs:
        tools.append(Tool("zkCli.sh deleteall", lambda c: [ZKCLI, "-server", CS, "deleteall", c["root"]], slow_runs,
                          before=fresh, after=gone, limit=limit))
    run_job(f"delete {size}", tools)
    for root in POOL.pop(size, []):
        remove_tree(root)
    table(f"delete {size}", tools, "C ref (walk + 1000-op multis)", f"Recursive delete, {size} ({n:,} znodes)")


def job_sweep():
    rows = []
    for size, runs, spec in (("10k", SWEEP_RUNS, SWEEP), ("100k", SWEEP_RUNS_100K, SWEEP_100K)):
        windows = [int(w) for w in spec.split(",") if w.strip()]
        if not windows or runs <= 0:
            continue
        root = f"/bench{size}"
        n = count_nodes(size)
        zfile = os.path.join(OUT, f"sweep-export-{size}.json")
        tools = []
        for w in windows:
            tools.append(Tool(f"tree w={w}", zk("tree", root, inflight=w), runs, lines_at_least(n), kind="zkctl", limit=900))
            tools.append(Tool(f"export w={w}", zk("export", root, "-f", zfile, inflight=w), runs, file_lines_at_least(zfile, n), kind="zkctl", limit=900))
            tools.append(Tool(f"C walk w={w}", cref("walk", root, "--window", str(w)), runs, lines_at_least(n), kind="cref", limit=900))
        if not run_job(f"sweep {size}", tools) and not any(t.results for t in tools):
            break
        for w in windows:
            cells = []
            for kind in ("tree", "export", "C walk"):
                s = stats(next(t for t in tools if t.name == f"{kind} w={w}"))
                cells.append(f"{fmt_t(s['median'])} ({fmt_t(s['min'])}–{fmt_t(s['max'])})" if s else "–")
                ALL.setdefault("sweep", {})[(size, kind, w)] = s
            rows.append(f"| {size} | {w} | " + " | ".join(cells) + " |")
    lines = ["### `--max-inflight` sweep", "",
             "Median (min–max) of zkctl tree and export, and the C walk with the same window. "
             f"{SWEEP_RUNS} runs each at 10k, {SWEEP_RUNS_100K} at 100k, interleaved (the window order rotates each round).", "",
             "| size | window | zkctl tree | zkctl export | C walk |", "|---|---:|---:|---:|---:|"] + rows
    best = {}
    for kind in ("tree", "export"):
        for size in ("10k", "100k"):
            cand = [(s["median"], w) for (sz, k, w), s in ALL.get("sweep", {}).items() if sz == size and k == kind and s]
            if cand:
                best[(kind, size)] = min(cand)[1]
    ALL["sweep_best"] = best
    lines += ["", "Fastest window: " + ", ".join(f"{k} {s}: {w}" for (k, s), w in sorted(best.items()))]
    REPORT.append("\n".join(lines) + "\n")


def job_1m():
    size = "1M"
    root = f"/bench{size}"
    n = count_nodes(size)
    print("== 1M: building the tree (C ref)", flush=True)
    t0 = time.monotonic()
    make_tree(root, size)
    build = time.monotonic() - t0
    zfile = os.path.join(OUT, "zkctl-export-1M.json")
    cfile = os.path.join(OUT, "cref-export-1M.jsonl")
    tools = [
        Tool("zkctl export", zk("export", root, "-f", zfile), 1, file_lines_at_least(zfile, n), kind="zkctl", limit=1800),
        Tool("zkctl tree", zk("tree", root), 1, lines_at_least(n), kind="zkctl", limit=1800),
        Tool("C ref (walk + values, JSON)", cref("walk", root, "--data", "--json", "--out", cfile), 1,
             file_lines_at_least(cfile, n), kind="cref", limit=1800),
        Tool("C ref (pipelined walk)", cref("walk", root), 1, lines_at_least(n), kind="cref", limit=1800),
    ]
    run_job("1M", tools)
    table("1M", tools, "C ref (walk + values, JSON)", f"1M ({n:,} znodes), one run each",
          f"The tree was built by the C reference in {build:.1f} s.")
    for p in (zfile, cfile):
        if os.path.exists(p):
            os.unlink(p)
    remove_tree(root)


def job_shell():
    """A get inside `zkctl shell`: N gets of one znode read from stdin by one shell, against the
    same N gets by the C reference on one session (zoo_get, one round trip each). Each tool also
    runs with a single get; (time of N - time of 1) / (N - 1) is what one more get costs, its
    start-up, connect and close taken out the same way for both."""
    path = "/bench10k/a42/b17"
    expect = value(42 * 101 + 1 + 17 + 1).encode()
    n = max(SHELL_GETS, 2)
    scripts = {}
    for k in (1, n):
        scripts[k] = os.path.join(OUT, f"shell-{k}-gets.zk")
        with open(scripts[k], "w") as f:
            f.write(f"get {path}\n" * k)

    def values(k):
        def check(run, ctx):
            got = run.stdout().count(expect)
            return None if got == k else f"printed the value {got} times, expected {k}"
        return check
    tools = [
        Tool("zkctl shell, 1 get", zk("shell"), ONESHOT_RUNS, values(1), stdin=scripts[1], kind="zkctl"),
        Tool(f"zkctl shell, {n} gets", zk("shell"), ONESHOT_RUNS, values(n), stdin=scripts[n], kind="zkctl"),
        Tool("C ref, 1 get", cref("gets", path, "1"), ONESHOT_RUNS, values(1), kind="cref"),
        Tool(f"C ref, {n} gets", cref("gets", path, str(n)), ONESHOT_RUNS, values(n), kind="cref"),
    ]
    for _ in range(3):
        spawn(cref("gets", path, str(n)), 60, tag="warm")
    run_job("shell gets", tools)
    table("shell", tools, f"C ref, {n} gets", f"Inside the shell: {n} gets of one znode on one session",
          f"`{path}` on the 10k tree; `zkctl shell` reads `get {path}` lines from a file on stdin, the C reference "
          f"calls zoo_get {n} times (one round trip each). A get's cost is (median of {n} − median of 1) ÷ {n - 1}, "
          "for both: start-up, connect and close cancel out.", speedup=False)
    per = {}
    for who in ("zkctl shell", "C ref"):
        one = med("shell", f"{who}, 1 get" if who == "C ref" else "zkctl shell, 1 get")
        many = med("shell", f"{who}, {n} gets")
        per[who] = (many - one) / (n - 1) if one is not None and many is not None else None
    ALL["shell_per_get"] = per
    REPORT.append("One get more: " + ", ".join(f"{k} {v * 1000:.3f} ms" if v is not None else f"{k} –" for k, v in per.items())
                  + (f"; zkctl shell − C ref = {(per['zkctl shell'] - per['C ref']) * 1000:.3f} ms"
                     if None not in per.values() else "") + "\n")


def job_tls():
    """zkctl over TLS (its relay) against zkctl over the plain port of the same server (Netty,
    with a secureClientPort): tree and export of 10k, and one get."""
    global CS
    plain, secure, ca = (os.environ.get(k) for k in ("BENCH_TLS_CONNECT", "BENCH_TLS_SECURE", "BENCH_TLS_CA"))
    if not (plain and secure and ca):
        NOTES.append("tls: no TLS server (bench.sh starts one when BENCH_JOBS has tls)")
        return
    saved, CS = CS, plain
    try:
        root, n = "/bench10k", count_nodes("10k")
        if tree_count(root) != n:
            make_tree(root, "10k")

        # Sessions: every TLS row but one makes a full handshake (--tls-session-cache off, whatever
        # XDG_RUNTIME_DIR says); "resumed" keeps its session in a directory of its own, as a
        # login session's $XDG_RUNTIME_DIR/zkctl would, so each of its runs but the first resumes.
        sessions = os.path.join(OUT, "tls-sessions")
        os.makedirs(sessions, mode=0o700, exist_ok=True)
        os.chmod(sessions, 0o700)

        def z(tls, *args, cache="off"):
            return [ZKCTL, "-s", secure if tls else plain] + (["--tls-ca", ca, "--tls-session-cache", cache] if tls else []) + list(args)
        note = ("The same server (NettyServerCnxnFactory) on its plain port and on its secureClientPort; "
                "÷ C ref is ÷ the plain row here. TLS goes through zkctl's in-process relay; every TLS row makes a "
                "full TLS handshake (--tls-session-cache off) except \"resumed\", which resumes the session its "
                "previous run kept (what a command does within 10 minutes of another to the same server). Each row "
                "ran 5 times untimed first, to warm the server's JIT on both paths.")

        def warm(tools):
            for t in tools:
                for _ in range(5):
                    spawn(t.argv, t.limit, tag="warm")
        tools = [Tool("zkctl tree (plain)", z(False, "tree", root), RUNS, lines_at_least(n), kind="zkctl"),
                 Tool("zkctl tree (TLS)", z(True, "tree", root), RUNS, lines_at_least(n), kind="zkctl")]
        warm(tools)
        run_job("tls tree 10k", tools)
        table("tls tree 10k", tools, "zkctl tree (plain)", f"TLS: recursive listing, 10k ({n:,} znodes)", note)
        pfile, tfile = os.path.join(OUT, "tls-plain-export.json"), os.path.join(OUT, "tls-export.json")
        tools = [Tool("zkctl export (plain)", z(False, "export", root, "-f", pfile), RUNS, file_lines_at_least(pfile, n), kind="zkctl"),
                 Tool("zkctl export (TLS)", z(True, "export", root, "-f", tfile), RUNS, file_lines_at_least(tfile, n), kind="zkctl")]
        warm(tools)
        run_job("tls export 10k", tools)
        table("tls export 10k", tools, "zkctl export (plain)", f"TLS: export, 10k ({n:,} znodes)", note)
        path = "/bench10k/a42/b17"
        expect = value(42 * 101 + 1 + 17 + 1).encode()

        def has_value(run, ctx):
            return None if expect in run.stdout() else f"value not printed: {run.stdout()[:200]!r}"
        tools = [Tool("zkctl get (plain)", z(False, "get", path), ONESHOT_RUNS, has_value, kind="zkctl"),
                 Tool("zkctl get (TLS)", z(True, "get", path), ONESHOT_RUNS, has_value, kind="zkctl"),
                 Tool("zkctl get (TLS, resumed)", z(True, "get", path, cache=sessions), ONESHOT_RUNS, has_value, kind="zkctl")]
        warm(tools)
        run_job("tls get", tools)
        table("tls get", tools, "zkctl get (plain)", "TLS: one-shot get (start, connect, handshake, get, close)", note)
    finally:
        CS = saved


# ----------------------------------------------------------------------------------------------
# Targets

def med(job, tool):
    s = ALL.get(job, {}).get(tool)
    return s["median"] if s else None


def targets():
    rows = []

    def row(target, measured, ok, cref="–"):
        verdict = "–" if ok is None else ("met" if ok else "**not met**")
        rows.append(f"| {target} | {measured} | {cref} | {verdict} |")

    def ratio(a, b):
        return a / b if a is not None and b else None

    def check_le(label, job, tool, ref_tool, limit):
        r = ratio(med(job, tool), med(job, ref_tool))
        row(f"{label}: {tool} ≤ {limit}× {ref_tool}", fmt_x(r), None if r is None else r <= limit)

    def check_faster(label, job, tool, peer, factor):
        r = ratio(med(job, peer), med(job, tool))
        # What the C reference itself reaches against the same peer: the bound on this machine.
        c = ratio(med(job, peer), med(job, REF.get(job, "")))
        row(f"{label}: {tool} ≥ {factor}× faster than {peer}", fmt_x(r), None if r is None else r >= factor,
            fmt_x(c) if c is not None else "–")

    for z in ("zkctl get", "zkctl config get"):
        check_le("one-shot", "oneshot", z, "C ref (get)", 1.5)
        for peer, f in (("cli_mt -c get", 2), ("kazoo script", 15), ("zk-shell --run-once get", 50), ("zkCli.sh get", 100)):
            check_faster("one-shot", "oneshot", z, peer, f)
        s = ALL.get("oneshot", {}).get(z)
        if s:
            row(f"one-shot: {z} peak RSS < 16 MiB", f"{s['rss'] / 1024:.1f} MiB", s["rss"] < 16 * 1024)
    per = ALL.get("shell_per_get", {})
    z, c = per.get("zkctl shell"), per.get("C ref")
    if z is not None and c is not None:
        row("shell: a get inside zkctl shell ≤ its round trip (C ref's get) + 1 ms",
            f"{z * 1000:.3f} ms (+{(z - c) * 1000:.3f} ms)", z <= c + 0.001, f"{c * 1000:.3f} ms")
    else:
        row("shell: a get inside zkctl shell ≤ its round trip (C ref's get) + 1 ms", "not run", None)
    for size in ("10k", "100k"):
        check_le(size, f"tree {size}", "zkctl tree", "C ref (pipelined walk)", 1.25)
        for peer in ("zkCli.sh ls -R", "zk-shell tree"):
            check_faster(size, f"tree {size}", "zkctl tree", peer, 3)
        check_faster(size, f"tree {size}", "zkctl tree", "kazoo async walk", 1)
        check_le(size, f"values {size}", "zkctl config list", "C ref (walk + values)", 1.25)
        for peer in ("zkCli.sh (a get per node on stdin)", "zk-shell grep"):
            check_faster(size, f"values {size}", "zkctl config list", peer, 3)
        check_faster(size, f"values {size}", "zkctl config list", "kazoo async walk + get", 1)
        check_le(size, f"export {size}", "zkctl export", "C ref (walk + values, JSON)", 1.25)
        # Issue 22's target: against a C reference that reads what zkctl reads (data and ACL).
        check_le(size, f"export {size}", "zkctl export", "C ref (+ ACLs, JSON)", 1.25)
        check_faster(size, f"export {size}", "zkctl export", "zk-shell cp to json (async)", 3)
        # kazoo has no export; its async walk reading every value is the nearest (measured in the values job).
        r = ratio(med(f"values {size}", "kazoo async walk + get"), med(f"export {size}", "zkctl export"))
        row(f"{size}: zkctl export faster than kazoo async walk + get (values job)", fmt_x(r), None if r is None else r >= 1)
        for z in ("zkctl import", "zkctl config import"):
            check_le(size, f"create {size}", z, "C ref (1000-op multis)", 1.5)
            check_faster(size, f"create {size}", z, "zk-shell cp from json (async)", 50)
        check_faster(size, f"delete {size}", "zkctl delete -r", "zkCli.sh deleteall", 20)
    # Memory of export: flat from 10k to 100k (and under 64 MiB at 1M when run).
    e10, e100 = ALL.get("export 10k", {}).get("zkctl export"), ALL.get("export 100k", {}).get("zkctl export")
    if e10 and e100:
        row("export peak RSS flat (10k → 100k)", f"{e10['rss'] / 1024:.1f} → {e100['rss'] / 1024:.1f} MiB",
            e100["rss"] < 64 * 1024 and e100["rss"] < e10["rss"] * 1.5)
    m1 = ALL.get("1M", {}).get("zkctl export")
    if m1:
        row("export of 1M peak RSS < 64 MiB", f"{m1['rss'] / 1024:.1f} MiB", m1["rss"] < 64 * 1024)
    else:
        row("export of 1M peak RSS < 64 MiB", "not run (BENCH_1M=1)", None)
    # Linear growth.
    for job, tool in (("tree", "zkctl tree"), ("values", "zkctl config list"), ("export", "zkctl export"),
                      ("create", "zkctl import"), ("create", "zkctl config import"), ("delete", "zkctl delete -r")):
        a, b = med(f"{job} 10k", tool), med(f"{job} 100k", tool)
        cref = {"tree": "C ref (pipelined walk)", "values": "C ref (walk + values)", "export": "C ref (walk + values, JSON)",
                "create": "C ref (1000-op multis)", "delete": "C ref (walk + 1000-op multis)"}[job]
        ca, cb = med(f"{job} 10k", cref), med(f"{job} 100k", cref)
        r = ratio(b, a)
        cr = ratio(cb, ca)
        row(f"linear: {tool} 100k ÷ 10k ≈ 10× (≤ 12×)", f"{fmt_x(r)} (C ref {fmt_x(cr)})", None if r is None else r <= 12)
    if ALL.get("1M"):
        for tool, job in (("zkctl export", "export 100k"), ("zkctl tree", "tree 100k")):
            a, b = med(job, tool), med("1M", tool)
            r = ratio(b, a)
            row(f"linear: {tool} 1M ÷ 100k ≈ 10× (≤ 12×)", fmt_x(r), None if r is None else r <= 12)
    check_le("TLS", "tls tree 10k", "zkctl tree (TLS)", "zkctl tree (plain)", 1.3)
    check_le("TLS", "tls export 10k", "zkctl export (TLS)", "zkctl export (plain)", 1.3)
    check_le("TLS", "tls get", "zkctl get (TLS)", "zkctl get (plain)", 2)
    check_le("TLS", "tls get", "zkctl get (TLS, resumed)", "zkctl get (plain)", 2)
    best = ALL.get("sweep_best", {})
    if best:
        row("default --max-inflight (256) is the best window found",
            ", ".join(f"{k} {s}: {w}" for (k, s), w in sorted(best.items())), None)
    return ["## Targets", "",
            "Ratios of medians from the same run. *C ref* is what the C reference itself reaches against the same "
            "peer: where it falls short of the target too, the target is out of reach on this machine under this load.", "",
            "| target | zkctl (median ratio) | C ref | verdict |", "|---|---|---|---|"] + rows


# ----------------------------------------------------------------------------------------------

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:
        return ""


def machine():
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    srvr = sh(f"{os.path.join(HERE, '..', 'scripts', 'zkserver')} srvr {CS} | head -1")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}), {mem}",
        "zkctl": sh(f"{ZKCTL} --version").replace("\n", "; "),
        "server": srvr,
        "java": sh("java -version 2>&1 | head -1"),
        "peers": re.sub(r" +", " ", sh(f"{PY} -m pip list 2>/dev/null | grep -Ei '^(kazoo|zk-shell) '").replace("\n", ", ")) if HAVE_PY else "no venv",
        "cc": sh("cc --version | head -1"),
    }


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    os.makedirs(os.path.join(OUT, "xdg"), exist_ok=True)
    started = time.monotonic()
    info = machine()
    load_start = sh("uptime")
    busy_start = sh("ps -eo pcpu,comm --sort=-pcpu | head -6 | tail -5 | tr -s ' ' | tr '\\n' ';'")
    print(f"bench: server {CS}; load: {load_start}", flush=True)

    print("== building the trees (C ref, untimed)", flush=True)
    for size in ("10k", "100k"):
        if tree_count(f"/bench{size}") != count_nodes(size):
            make_tree(f"/bench{size}", size)

    if "oneshot" in JOBS:
        job_oneshot()
    if "shell" in JOBS:
        job_shell()
    if "10k" in JOBS:
        job_listing("10k", RUNS, SLOW_RUNS)
        job_values("10k", RUNS, SLOW_RUNS)
        export10 = job_export("10k", RUNS, SLOW_RUNS)
        job_create("10k", RUNS, SLOW_RUNS, export10)
        job_delete("10k", RUNS, SLOW_RUNS)
    if "100k" in JOBS:
        job_listing("100k", RUNS_100K, 1)
        job_values("100k", RUNS_100K, 1)
        export100 = job_export("100k", RUNS_100K, 0)
        job_create("100k", RUNS_100K, 1, export100)
        job_delete("100k", RUNS_100K, 1)
    if "find" in JOBS:
        job_find("10k", RUNS)
        job_find("100k", RUNS_100K)
    if "sweep" in JOBS:
        job_sweep()
    if "1m" in JOBS:
        job_1m()
    if "tls" in JOBS:
        job_tls()

    load_end = sh("uptime")
    busy_end = sh("ps -eo pcpu,comm --sort=-pcpu | head -6 | tail -5 | tr -s ' ' | tr '\\n' ';'")
    elapsed = time.monotonic() - started
    doc = ["# zkctl benchmark results", "",
           f"Written by `make bench` (benchmarks/bench.sh, bench.py) on {info['date']}, in {elapsed / 60:.1f} min.", "",
           "## Machine and setup", "",
           f"- host: {info['host']}",
           f"- load average at start: `{load_start}`; at end: `{load_end}`",
           f"- busiest processes at start: `{busy_start}`; at end: `{busy_end}`",
           f"- server: standalone ZooKeeper started by `scripts/zkserver` for this run on loopback ({info['server']}), "
           f"forceSync={os.environ.get('ZKSERVER_FORCE_SYNC', 'no')}, extra JVM flags `{os.environ.get('ZKSERVER_JVM_FLAGS', '')}`; "
           f"{info['java']}",
           f"- zkctl: `{info['zkctl']}`, built with `swift build {os.environ.get('BENCH_BUILD_FLAGS', '(given binary)')}`, "
           "default --max-inflight 256 unless stated",
           f"- C reference: benchmarks/cref.c, {info['cc']}, `-O2 -DTHREADED -lzookeeper_mt`, walk window 512, multis of 1000 ops with 4 in flight; "
           "with `zoo_set_servers_resolution_delay(zh, -1)` as zkctl sets it (the rows marked *library default* leave the C "
           "client's default, a getaddrinfo on every poll of its socket)",
           f"- peers: zkCli.sh and cli_mt from Debian's zookeeper 3.8.0 packages; {info['peers']} (benchmarks/.venv)",
           "- trees: `/benchN/a0..aA/b0..bB` with 50-byte JSON-string values on every node: "
           "10k = 100×100 (10,101 znodes), 100k = 1000×100 (101,001), 1M = 1000×1000 (1,001,001)",
           "- timing: wall time of the whole process (fork to wait4, benchmarks/runner.c), stdout into a file; CPU = user+sys; "
           "peak RSS = ru_maxrss from wait4, as `/usr/bin/time -f %M` prints it. Runs interleaved round-robin, "
           "the first tool rotating each round; a run whose output or resulting tree is wrong counts as failed, not timed.",
           ""]
    settings = {k: v for k, v in os.environ.items() if k.startswith("BENCH_") and k not in
                ("BENCH_CONNECT", "BENCH_ZKCTL", "BENCH_CREF", "BENCH_RUNNER", "BENCH_VENV", "BENCH_OUT", "BENCH_RESULTS")}
    doc.insert(-1, f"- settings: runs {RUNS} (10k), {RUNS_100K} (100k), slow peers {SLOW_RUNS} (10k) and 1 (100k), "
                   f"one-shot {ONESHOT_RUNS} (the shell job too, with {SHELL_GETS} gets); sweep {SWEEP or '–'} at 10k ({SWEEP_RUNS} runs), {SWEEP_100K or '–'} at 100k "
                   f"({SWEEP_RUNS_100K} run); environment overrides: "
                   + (", ".join(f"`{k}={v}`" for k, v in sorted(settings.items())) or "none"))
    doc.insert(-1, "- time per job (preparation included): " + ", ".join(f"{k} {v:.0f} s" for k, v in DURATION.items()))
    doc.insert(-1, "- each job waits for a quiet machine first (under 0.15 of a core busy over half a second, at most 30 s): "
                   + ", ".join(f"{k} {v:.1f} s" for k, v in SETTLE.items()))
    loads = [float(x) for x in re.findall(r"load average: ([0-9.]+)", load_start + " " + load_end)]
    if loads and max(loads) > 1.0:
        doc += [f"**Other work was running on this machine during the run** (1-minute load {', '.join(f'{x:.1f}' for x in loads)} "
                "at start and end on 2 cores; see the busiest processes above): wall times are noisy and the server shares "
                "the cores with it. Ratios come from interleaved runs, so they suffer less than absolute times.", ""]
    if NOTES:
        doc += ["Notes: " + "; ".join(NOTES), ""]
    doc += targets() + ["", "## Measurements", ""] + REPORT
    findings = os.path.join(HERE, "FINDINGS.md")
    if os.path.exists(findings):
        with open(findings) as f:
            doc += ["", f.read()]
    with open(RESULTS, "w") as f:
        f.write("\n".join(doc) + "\n")
    with open(os.path.join(OUT, "results.json"), "w") as f:
        def plain(v):
            if isinstance(v, dict):
                return {str(k): plain(x) for k, x in v.items()}
            return v
        json.dump(plain(ALL), f, indent=1, default=str)
    print(f"bench: wrote {RESULTS} ({elapsed / 60:.1f} min)", flush=True)


if __name__ == "__main__":
    main()
