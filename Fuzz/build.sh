#!/usr/bin/env bash
# Builds Fuzz/.out/zkctl-fuzz: the ZooKeeper, ZooKeeperRecipes and ZKCtl sources compiled by
# swiftc with libFuzzer and AddressSanitizer, plus Fuzz/FuzzMain.swift in the ZKCtl module (so
# that internal parsers are reachable). No Package.swift change: SwiftPM cannot build a fuzzer binary without one.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${FUZZ_OUT:-Fuzz/.out}
SWIFTC=${SWIFTC:-swiftc}
mkdir -p "$OUT"
SAN="-sanitize=fuzzer,address"
# One package name for every module, as SwiftPM gives them, so that `package` declarations of
# the recipes library (the JSON parser's pieces) are visible to ZKCtl.
COMMON=(-swift-version 6 -parse-as-library -O -g -use-ld=lld -I Sources/CZooKeeper -I Sources/COpenSSL -I Sources/CEditline -package-name zkctl $SAN)
newer() {  # true when $1 is missing or older than any later argument
  local target=$1; shift
  [ -e "$target" ] || return 0
  for f in "$@"; do [ "$f" -nt "$target" ] && return 0; done
  return 1
}
zk_sources=(Sources/ZooKeeper/*.swift)
if newer "$OUT/ZooKeeper.o" "${zk_sources[@]}" "$0"; then
  echo "fuzz: compiling ZooKeeper"
  "$SWIFTC" "${COMMON[@]}" -wmo -module-name ZooKeeper -emit-module -emit-module-path "$OUT/ZooKeeper.swiftmodule" \
    -c "${zk_sources[@]}" -o "$OUT/ZooKeeper.o"
fi
recipes_sources=(Sources/ZooKeeperRecipes/*.swift)
if newer "$OUT/ZooKeeperRecipes.o" "${recipes_sources[@]}" "$OUT/ZooKeeper.o" "$0"; then
  echo "fuzz: compiling ZooKeeperRecipes"
  "$SWIFTC" "${COMMON[@]}" -wmo -module-name ZooKeeperRecipes -I "$OUT" -emit-module \
    -emit-module-path "$OUT/ZooKeeperRecipes.swiftmodule" -c "${recipes_sources[@]}" -o "$OUT/ZooKeeperRecipes.o"
fi
mapfile -t ctl_sources < <(find Sources/ZKCtl -name '*.swift' | sort)
if newer "$OUT/zkctl-fuzz" "${ctl_sources[@]}" Fuzz/FuzzMain.swift "$OUT/ZooKeeper.o" "$OUT/ZooKeeperRecipes.o" "$0"; then
  echo "fuzz: compiling ZKCtl and the fuzz entry"
  "$SWIFTC" "${COMMON[@]}" -wmo -module-name ZKCtl -I "$OUT" "${ctl_sources[@]}" Fuzz/FuzzMain.swift \
    "$OUT/ZooKeeper.o" "$OUT/ZooKeeperRecipes.o" -lzookeeper_mt -lssl -lcrypto -ledit -o "$OUT/zkctl-fuzz"
fi
echo "$OUT/zkctl-fuzz"
