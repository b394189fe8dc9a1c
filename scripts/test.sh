#!/usr/bin/env bash
# The whole test suite, from a fresh clone: toolchain target, npm packages for the
# real-client test, formatting, lints, guest unit tests, and every workspace test.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "wasm32-wasip2 target"
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

step "npm ci (real LiveStore client, tests/client)"
if [ ! -d tests/client/node_modules/@livestore/sync-cf ] || [ tests/client/package-lock.json -nt tests/client/node_modules/.package-lock.json ]; then
  npm ci --prefix tests/client --no-audit --no-fund
fi

step "cargo fmt --check"
cargo fmt --all --check
(cd guest && cargo fmt --check)

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
(cd guest && cargo clippy --all-targets --locked -- -D warnings)
(cd guest && cargo clippy --target wasm32-wasip2 --locked -- -D warnings)

step "guest unit tests (native)"
(cd guest && cargo test --locked)

step "workspace tests (server, raw-frame conformance, real client)"
cargo test --workspace --locked
