#!/usr/bin/env bash
# Proves that cachee-core builds and links without `std`:
#
#   1. builds nostd-check/ (a `#![no_std]` staticlib with its own panic handler,
#      outside the workspace) for the host, in release. If cachee-core or any of
#      its dependencies pulled in `std`, std's `panic_impl` would collide with
#      nostd-check's and the build fails (E0152). Then it
#        - checks that the exported C functions are in the archive,
#        - links the archive into a C program and runs it (if there is a C
#          compiler): a real final link with no Rust runtime,
#        - builds a copy with `extern crate std;` added and requires THAT build
#          to fail, so the check above is known to be armed;
#   2. `rustup target add thumbv7em-none-eabihf` (no `std` for that target at
#      all; no 64-bit atomics, so cachee-core uses 32-bit words there);
#   3. `cargo build -p cachee-core --target thumbv7em-none-eabihf --release`;
#   4. builds nostd-check for thumbv7em-none-eabihf.
#
# If the target cannot be installed (no network), steps 3-4 are SKIPPED with a
# loud WARNING and the script still exits 0. Any build failure exits non-zero.
#
# Run from the repository root:  bash .ci/nostd.sh
# Target directories: target-nostd/ (nostd-check) and target-thumb/ (the
# workspace build for the embedded target); both are git-ignored (/target-*).
set -euo pipefail

TARGET=thumbv7em-none-eabihf
ROOT="$(pwd)"
CHECK="$ROOT/nostd-check"
NOSTD_DIR="$ROOT/target-nostd"
THUMB_DIR="$ROOT/target-thumb"
EXPORTS=(cachee_nostd_init cachee_nostd_set cachee_nostd_get cachee_nostd_remove
         cachee_nostd_len cachee_nostd_typed_insert cachee_nostd_typed_get
         cachee_nostd_selftest)

if [[ ! -f "$CHECK/Cargo.toml" || ! -f "$ROOT/cachee-core/Cargo.toml" ]]; then
    echo "nostd.sh: run me from the repository root (no nostd-check/ or cachee-core/ here)" >&2
    exit 2
fi

now_ms() { date +%s%3N; }
t0=$(now_ms)
SUMMARY=()
step_start=0
begin() {
    step_start=$(now_ms)
    echo
    echo "== $*"
}
secs() { # milliseconds -> "12.3s"
    printf '%d.%ds' $(($1 / 1000)) $(($1 % 1000 / 100))
}
done_step() {
    SUMMARY+=("$(printf '%7s  %s' "$(secs $(($(now_ms) - step_start)))" "$*")")
}

# Prints the C symbols an archive defines (text), with whichever nm reads it.
defined_symbols() {
    local nm
    for nm in llvm-nm nm; do
        if command -v "$nm" >/dev/null 2>&1 && "$nm" -g --defined-only "$1" >/dev/null 2>&1; then
            "$nm" -g --defined-only "$1" 2>/dev/null | awk '$2 == "T" { print $3 }'
            return 0
        fi
    done
    return 1
}

# Fails unless every function in EXPORTS is defined in archive $1.
check_exports() {
    local syms missing=()
    if ! syms="$(defined_symbols "$1")"; then
        echo "   (no nm that reads $(basename "$1"): exported symbols not checked)"
        return 0
    fi
    for s in "${EXPORTS[@]}"; do
        grep -qx "$s" <<<"$syms" || missing+=("$s")
    done
    if ((${#missing[@]})); then
        echo "nostd.sh: exported functions missing from $1: ${missing[*]}" >&2
        exit 1
    fi
    echo "   all ${#EXPORTS[@]} exported functions present: ${EXPORTS[*]}"
}

echo "== $(rustc --version); $(cargo --version)"

# --- 1. host ---------------------------------------------------------------------
begin "1. nostd-check for the host ($(rustc -vV | sed -n 's/^host: //p')), release"
echo "   dependencies (cargo tree -e normal):"
(cd "$CHECK" && cargo tree -e normal --locked) | sed 's/^/     /'
(cd "$CHECK" && CARGO_TARGET_DIR="$NOSTD_DIR" cargo build --release --locked)
HOST_LIB="$NOSTD_DIR/release/libcachee_nostd_check.a"
echo "   built $HOST_LIB ($(du -k "$HOST_LIB" | cut -f1) KiB)"
check_exports "$HOST_LIB"
done_step "nostd-check, host: built (no std linked), exports present"

begin "1b. link the host archive into a C program and run it"
CC_BIN="${CC:-cc}"
if command -v "$CC_BIN" >/dev/null 2>&1; then
    exe="$NOSTD_DIR/nostd-selftest"
    # --gc-sections: the precompiled `core` still references rust_eh_personality
    # from unwinding code that panic=abort never reaches.
    "$CC_BIN" -std=c99 -O2 -Wall -Wextra "$CHECK/selftest.c" "$HOST_LIB" \
        -Wl,--gc-sections -o "$exe"
    "$exe"
    done_step "C program linked against the archive, selftest passed"
else
    echo "   WARNING: no C compiler ($CC_BIN): link-and-run step skipped"
    done_step "C link-and-run SKIPPED (no C compiler)"
fi

begin "1c. canary: the same crate with 'extern crate std;' must NOT build"
canary="$(mktemp -d)"
trap 'rm -rf "$canary"' EXIT
cp -r "$CHECK/Cargo.toml" "$CHECK/Cargo.lock" "$CHECK/src" "$canary/"
sed -i "s|path = \"../cachee-core\"|path = \"$ROOT/cachee-core\"|" "$canary/Cargo.toml"
sed -i 's|^#!\[no_std\]$|#![no_std]\nextern crate std; // canary: must collide with our #[panic_handler]|' \
    "$canary/src/lib.rs"
grep -q '^extern crate std;' "$canary/src/lib.rs" || {
    echo "nostd.sh: could not plant the canary (no '#![no_std]' line in nostd-check/src/lib.rs?)" >&2
    exit 1
}
if (cd "$canary" && CARGO_TARGET_DIR="$NOSTD_DIR/canary" cargo build --release --locked) \
        >"$canary/build.log" 2>&1; then
    echo "nostd.sh: the canary build with 'extern crate std;' SUCCEEDED: the no-std check is not armed" >&2
    exit 1
fi
if ! grep -q 'E0152' "$canary/build.log"; then
    echo "nostd.sh: the canary build failed, but not with E0152 (duplicate panic_impl):" >&2
    tail -n 20 "$canary/build.log" >&2
    exit 1
fi
grep -m1 'E0152' "$canary/build.log" | sed 's/^/   as expected: /'
done_step "canary with std failed with E0152, as it must"

# --- 2. embedded target ----------------------------------------------------------
begin "2. rustup target add $TARGET"
if rustup target add "$TARGET"; then
    have_target=1
    done_step "rustup target $TARGET installed"
else
    have_target=0
    echo
    echo "################################################################"
    echo "WARNING: could not install the rustup target $TARGET (no network?)"
    echo "WARNING: the $TARGET builds (steps 3 and 4) are SKIPPED:"
    echo "WARNING: cachee-core was NOT checked on a target without std"
    echo "WARNING: or without 64-bit atomics."
    echo "################################################################"
    echo
    done_step "target $TARGET NOT installed: steps 3-4 SKIPPED"
fi

if ((have_target)); then
    # --- 3. the library itself, from the workspace ---------------------------------
    begin "3. cargo build -p cachee-core --target $TARGET --release (32-bit words: no 64-bit atomics)"
    CARGO_TARGET_DIR="$THUMB_DIR" cargo build -p cachee-core --target "$TARGET" --release --locked
    rlib="$THUMB_DIR/$TARGET/release/libcachee_core.rlib"
    if [[ -f "$rlib" ]]; then echo "   built $rlib ($(du -k "$rlib" | cut -f1) KiB)"; fi
    done_step "cachee-core for $TARGET built"

    # --- 4. nostd-check for the embedded target ------------------------------------
    begin "4. nostd-check for $TARGET, release"
    (cd "$CHECK" && CARGO_TARGET_DIR="$NOSTD_DIR" cargo build --release --locked --target "$TARGET")
    THUMB_LIB="$NOSTD_DIR/$TARGET/release/libcachee_nostd_check.a"
    echo "   built $THUMB_LIB ($(du -k "$THUMB_LIB" | cut -f1) KiB)"
    check_exports "$THUMB_LIB"
    done_step "nostd-check for $TARGET built, exports present"
fi

echo
echo "== nostd.sh summary"
printf '%s\n' "${SUMMARY[@]}"
printf '%7s  total\n' "$(secs $(($(now_ms) - t0)))"
if ((have_target)); then
    echo "nostd.sh: OK: cachee-core builds and links without std (host and $TARGET)"
else
    echo "nostd.sh: PARTIAL: host checks passed; $TARGET checks SKIPPED (see WARNING above)"
fi
