#!/usr/bin/env bash
# The benchmark client (bench/bench.mjs, raw frames) against the Cloudflare home and the
# reference, one after the other on the same local workerd (wrangler 4.86 dev --local):
#   livestore-sync worker on DO SQLite, the same on D1, the reference (@livestore/sync-cf 0.4.0).
#   bash bench/cloudflare.sh [bench.mjs options, e.g. --runs 3]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
port=${BENCH_PORT:-8797}
out=$(mktemp -d)
[ -d bench/node_modules/ws ] || npm ci --prefix bench --no-audit --no-fund
[ -d cloudflare/node_modules/wrangler ] || npm ci --prefix cloudflare --no-audit --no-fund
node cloudflare/scripts/build.mjs
ref=${TMPDIR:-/tmp}/livestore-sync-bench-reference
if [ ! -d "$ref/node_modules/wrangler" ]; then
  rm -rf "$ref" && mkdir -p "$ref" && cp -r "$root/bench/sync-cf/." "$ref" && rm -rf "$ref/node_modules" "$ref/.wrangler" && npm ci --prefix "$ref" --no-audit --no-fund
fi

run() { # label dir wrangler-args...
  local label=$1 dir=$2; shift 2
  (cd "$dir" && exec setsid npx wrangler dev --local --ip 127.0.0.1 --port "$port" --persist-to "$out/$label" "$@" >"$out/$label.log" 2>&1) &
  local pid=$!
  for _ in $(seq 1 120); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.5; done
  echo "=== $label"
  node bench/bench.mjs "http://127.0.0.1:$port" --pid auto --json "$out/$label.json" "${BENCH_ARGS[@]}" || true
  kill -- -"$pid" 2>/dev/null || kill "$pid"; wait "$pid" 2>/dev/null || true
  sleep 1
}
BENCH_ARGS=("$@")
run worker-do-sqlite cloudflare
run worker-d1 cloudflare --var STORAGE:d1
run reference "$ref"
echo "raw results: $out/*.json"
