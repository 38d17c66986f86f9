#!/usr/bin/env bash
# make bench: build zkctl (release) and the C reference, set up the Python peers, start a
# throwaway ZooKeeper on loopback, run bench.py, and destroy the server whatever happens.
#
# Environment (all optional):
#   BENCH_1M=1              also the 1M-znode runs (export memory and linearity; slow)
#   BENCH_JOBS=oneshot,shell,10k,100k,find,sweep,tls   which parts to run (add 1m, or pick a few)
#   BENCH_SHELL_GETS=1000   gets of one znode inside one `zkctl shell` (the shell job)
#   BENCH_RUNS=5            runs of each fast tool at 10k (BENCH_RUNS_100K=2 at 100k)
#   BENCH_SLOW_RUNS=3       runs of zkCli.sh, zk-shell and kazoo at 10k (1 at 100k)
#   BENCH_ONESHOT_RUNS=51   runs of each one-shot command (a few ms each: 11 left the median to the noise)
#   BENCH_SWEEP=16,64,128,256,512,1024   --max-inflight values swept at 10k (BENCH_SWEEP_RUNS=3 runs)
#   BENCH_SWEEP_100K=64,256,1024         and at 100k (BENCH_SWEEP_RUNS_100K=1 run)
#   BENCH_DEADLINE=1800     seconds after which bench.py stops starting new rounds
#   BENCH_ZKCTL=PATH        time this zkctl binary instead of building one
#   BENCH_SWIFT_FLAGS       flags of the release build (default -c release; make bench passes RELEASE_FLAGS)
#   ZKSERVER_FORCE_SYNC     yes to fsync the server's transaction log (default no, see RESULTS.md)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
out=$here/out
mkdir -p "$out"
cd "$repo"

say() { printf 'bench: %s\n' "$*" >&2; }

if [[ ! -x /usr/bin/time ]]; then
    say "installing GNU time (/usr/bin/time is missing)"
    if [[ $(id -u) == 0 ]]; then apt-get install -y -qq time >/dev/null; else sudo apt-get install -y -qq time >/dev/null; fi
fi
for need in cc java python3; do
    command -v "$need" >/dev/null || { say "$need is missing (make deps installs the rest)"; exit 1; }
done
[[ -f /usr/include/zookeeper/zookeeper.h ]] || { say "libzookeeper-mt-dev is missing: run make deps"; exit 1; }

# zkctl, release build. Other engineers may be editing sources in this tree: retry a few times.
# BENCH_SWIFT_FLAGS: the release flags (make bench passes the Makefile's RELEASE_FLAGS).
read -r -a swift_flags <<< "${BENCH_SWIFT_FLAGS:--c release}"
if [[ -z ${BENCH_ZKCTL:-} ]]; then
    built=0
    for attempt in 1 2 3 4 5; do
        if swift build "${swift_flags[@]}" --scratch-path .build-bench --product zkctl >"$out/build.log" 2>&1; then built=1; break; fi
        say "release build failed (attempt $attempt of 5; last lines below), retrying in 30 s"
        tail -n 3 "$out/build.log" >&2
        sleep 30
    done
    [[ $built == 1 ]] || { say "cannot build zkctl: see $out/build.log"; exit 1; }
    BENCH_ZKCTL=$(swift build "${swift_flags[@]}" --scratch-path .build-bench --show-bin-path)/zkctl
    export BENCH_BUILD_FLAGS="${swift_flags[*]}"
fi
export BENCH_ZKCTL

# The C reference, and the runner that times every process.
cc -O2 -Wall -Wextra -DTHREADED -o "$out/cref" "$here/cref.c" -lzookeeper_mt
cc -O2 -Wall -Wextra -o "$out/runner" "$here/runner.c"
export BENCH_CREF=$out/cref BENCH_RUNNER=$out/runner

# zk-shell and kazoo from PyPI in a virtual environment (git-ignored).
venv=$here/.venv
if [[ ! -x $venv/bin/zk-shell ]] || ! "$venv/bin/python" -c 'import kazoo' 2>/dev/null; then
    say "setting up $venv (zk-shell, kazoo)"
    { python3 -m venv "$venv" && "$venv/bin/pip" install -q zk-shell kazoo; } >"$out/venv.log" 2>&1 \
        || say "could not install zk-shell and kazoo (see $out/venv.log): those peers are left out"
fi
export BENCH_VENV=$venv

# The server: standalone, loopback, its own directory, gone when this script ends.
# A full C2 JIT and a heap that holds 1M znodes; forceSync stays off unless asked for.
srvdir=$(mktemp -d /tmp/zkctl-bench.XXXXXX)
cleanup() {
    scripts/zkserver destroy "$srvdir/zk" >/dev/null 2>&1 || true
    scripts/zkserver destroy "$srvdir/zk-tls" >/dev/null 2>&1 || true
    rm -rf "$srvdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
export ZKSERVER_JVM_FLAGS=${ZKSERVER_JVM_FLAGS:--Xms512m -Xmx3g -XX:TieredStopAtLevel=4}
export ZKSERVER_FORCE_SYNC=${ZKSERVER_FORCE_SYNC:-no}
BENCH_CONNECT=$(scripts/zkserver start "$srvdir/zk" --owner $$)
export BENCH_CONNECT
say "server $BENCH_CONNECT in $srvdir/zk"

# The TLS rows: a second server (Netty, with a secureClientPort; its plain port is the baseline,
# so both rows meet the same connection factory) and test keys made by scripts/tls-fixtures.
if [[ ,${BENCH_JOBS:-oneshot,10k,100k,sweep,tls}, == *,tls,* ]]; then
    mkdir -p "$srvdir/tls"
    scripts/tls-fixtures "$srvdir/tls" >"$out/tls-fixtures.log" 2>&1 || { say "cannot make TLS keys (see $out/tls-fixtures.log)"; exit 1; }
    BENCH_TLS_CONNECT=$(scripts/zkserver start "$srvdir/zk-tls" --owner $$ --tls "$srvdir/tls/stores")
    BENCH_TLS_SECURE=$(< "$srvdir/zk-tls/secure_connect")
    BENCH_TLS_CA=$srvdir/tls/ca.pem
    export BENCH_TLS_CONNECT BENCH_TLS_SECURE BENCH_TLS_CA
    say "TLS server $BENCH_TLS_SECURE (plain $BENCH_TLS_CONNECT) in $srvdir/zk-tls"
fi

py=python3
[[ -x $venv/bin/python ]] && py=$venv/bin/python
timeout --signal=TERM 7200 "$py" "$here/bench.py"
