#!/usr/bin/env bash
# The whole test suite, from a fresh clone: toolchain target, npm packages for the
# real-client test, formatting, lints, guest unit tests, and every workspace test.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "Debian packages the tests use (systemd-analyze for the unit in deploy/, chromium for the console, postgresql for the Postgres engine's private test clusters)"
missing=()
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && ! command -v initdb >/dev/null; then
  missing+=(postgresql)
fi
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v chromium >/dev/null || missing+=(chromium fonts-liberation)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"
  else
    echo "missing Debian packages: ${missing[*]} (Debian/Ubuntu: sudo apt-get install ${missing[*]}), then run again"
    exit 1
  fi
fi

step "wasm32-wasip2 target"
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

step "npm ci (real LiveStore client, tests/client)"
if [ ! -d tests/client/node_modules/@livestore/sync-cf ] || [ tests/client/package-lock.json -nt tests/client/node_modules/.package-lock.json ]; then
  npm ci --prefix tests/client --no-audit --no-fund
fi

step "npm ci (the quick start's LiveStore app, examples/node-app)"
if [ ! -d examples/node-app/node_modules/@livestore/adapter-node ] || [ examples/node-app/package-lock.json -nt examples/node-app/node_modules/.package-lock.json ]; then
  npm ci --prefix examples/node-app --no-audit --no-fund
fi

step "npm ci + build (Cloudflare home: wrangler, jco; transpiles the same guest component)"
if [ ! -d cloudflare/node_modules/wrangler ] || [ cloudflare/package-lock.json -nt cloudflare/node_modules/.package-lock.json ]; then
  npm ci --prefix cloudflare --no-audit --no-fund
fi
node cloudflare/scripts/build.mjs

step "cargo fmt --check"
cargo fmt --all --check
(cd guest && cargo fmt --check)
(cd guest/fuzz && cargo fmt --check)
(cd hooks && cargo fmt --check)

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
(cd guest && cargo clippy --all-targets --locked -- -D warnings)
(cd guest && cargo clippy --target wasm32-wasip2 --locked -- -D warnings)
(cd hooks && cargo clippy --all-targets --locked -- -D warnings)
(cd hooks && cargo clippy --target wasm32-wasip2 --locked -- -D warnings)

step "guest unit tests (native)"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
(cd guest && cargo test --locked) 2>&1 | tee "$scratch/guest-test.log"

step "example hooks: unit tests (native) and wasm32-wasip2 build"
(cd hooks && cargo test --locked) 2>&1 | tee "$scratch/hooks-test.log"
cargo build --release --locked --target wasm32-wasip2 --manifest-path hooks/Cargo.toml --target-dir target/hooks

step "fuzz smoke run (cargo fuzz, ${FUZZ_SECONDS:=15} s per target; longer: FUZZ_SECONDS=600 bash scripts/test.sh)"
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
corpus="$scratch"
for target in frame_decode push_validation simple_protocol; do
  mkdir -p "$corpus/$target"
  # New inputs go to the scratch corpus; the committed seeds stay untouched. A crash, a leak,
  # an allocation over 256 MiB or RSS over 1 GiB fails the run.
  if ! (cd guest && cargo +nightly fuzz run "$target" "$corpus/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$FUZZ_SECONDS" -max_len=4096 -rss_limit_mb=1024 -malloc_limit_mb=256 >"$corpus/$target.log" 2>&1); then
    tail -60 "$corpus/$target.log"
    echo "fuzz target $target failed (crash input in guest/fuzz/artifacts/$target/)"
    exit 1
  fi
  echo "$target: $(grep -E '^Done' "$corpus/$target.log")"
done

step "bench smoke run (tiny sizes, native server only: the harness cannot rot)"
if [ ! -d bench/node_modules/ws ]; then
  npm ci --prefix bench --no-audit --no-fund
fi
node bench/run.mjs --smoke

step "workspace tests (server, raw-frame conformance, real client)"
cargo test --workspace --locked 2>&1 | tee "$corpus/cargo-test.log"
# One closing line over every test binary (guest unit tests included).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' \
  "$corpus/cargo-test.log" "$corpus/guest-test.log" "$corpus/hooks-test.log"

