#!/usr/bin/env bash
# Builds the no_std firmware test program (firmware/) for a Cortex-M4 and runs
# it under QEMU (machine mps2-an386). Exits with QEMU's status, which is the
# firmware's semihosting exit status: 0 iff every firmware test passed.
#
# Run from the repository root:  bash .ci/firmware.sh
#
# If the tools cannot be installed (no network on this CI machine) it prints a
# loud WARNING and exits 0: the firmware run is then SKIPPED, not passed.
#
# Environment knobs:
#   FIRMWARE_TIMEOUT  seconds before QEMU is killed (default 120)
set -euo pipefail

TARGET=thumbv7em-none-eabihf
TIMEOUT="${FIRMWARE_TIMEOUT:-120}"
ROOT="$(pwd)"
FW="$ROOT/firmware"
ELF="$FW/target/$TARGET/release/cachee-firmware"

if [[ ! -f "$FW/Cargo.toml" ]]; then
    echo "firmware.sh: run me from the repository root (no firmware/Cargo.toml here)" >&2
    exit 2
fi

skip() {
    echo
    echo "################################################################"
    echo "WARNING: firmware test SKIPPED: $*"
    echo "WARNING: the Cortex-M4 / QEMU firmware tests did NOT run."
    echo "################################################################"
    echo
    exit 0
}

SECONDS=0

# --- QEMU ---------------------------------------------------------------------
if ! command -v qemu-system-arm >/dev/null 2>&1; then
    echo "== installing qemu-system-arm"
    SUDO=()
    if [[ "$(id -u)" != 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); else
            skip "qemu-system-arm is missing and we are not root to apt-get install it"
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! { "${SUDO[@]}" apt-get update -qq &&
           "${SUDO[@]}" apt-get install -y -qq --no-install-recommends qemu-system-arm >/dev/null; }; then
        skip "could not install qemu-system-arm with apt-get (no network?)"
    fi
    command -v qemu-system-arm >/dev/null 2>&1 || skip "qemu-system-arm still not on PATH after apt-get"
fi
echo "== $(qemu-system-arm --version | head -n1)"
if ! qemu-system-arm -machine help | grep -q '^mps2-an386 '; then
    skip "this qemu-system-arm has no mps2-an386 machine (needs QEMU >= 6.0)"
fi

# --- Rust target --------------------------------------------------------------
echo "== rustup target add $TARGET"
if ! rustup target add "$TARGET"; then
    skip "could not install the rustup target $TARGET (no network?)"
fi

# --- Build --------------------------------------------------------------------
echo "== cargo build --release (firmware/)"
# The target and linker script come from firmware/.cargo/config.toml, which
# cargo only reads when run from inside firmware/.
(cd "$FW" && cargo build --release --locked)

# --- Footprint ----------------------------------------------------------------
# Flash = .vector_table + .text + .rodata + .data (its initial values live in
# flash); static RAM = .data + .bss + .uninit. The stack gets the rest of RAM.
echo "== footprint ($ELF)"
SIZE_TOOL=""
for t in arm-none-eabi-size llvm-size $(compgen -c llvm-size- | sort -rV | uniq) size; do
    if command -v "$t" >/dev/null 2>&1 && "$t" -A "$ELF" >/dev/null 2>&1; then
        SIZE_TOOL="$t"
        break
    fi
done
if [[ -n "$SIZE_TOOL" ]]; then
    "$SIZE_TOOL" -A "$ELF" | awk 'NR <= 2 || ($1 ~ /^\./ && $1 !~ /^\.(debug|comment|ARM|symtab|strtab|shstrtab)/)'
    sections() { "$SIZE_TOOL" -A "$ELF" | awk '$1 ~ /^\./ { print $1, $2 }'; }
elif command -v readelf >/dev/null 2>&1; then
    echo "(no size tool; section sizes from readelf)"
    sections() {
        readelf -S -W "$ELF" | sed 's/^ *\[ *[0-9]*\]//' | awk '$1 ~ /^\./ { print $1, $5 }' |
            while read -r name hex; do echo "$name $((16#$hex))"; done
    }
    sections | awk '$1 !~ /^\.(debug|comment|ARM|symtab|strtab|shstrtab)/'
else
    sections() { :; }
    echo "(no size tool and no readelf: footprint not shown)"
fi
sections | awk '
    $1 == ".vector_table" || $1 == ".text" || $1 == ".rodata" { flash += $2 }
    $1 == ".data" { flash += $2; ram += $2 }
    $1 == ".bss" || $1 == ".uninit" { ram += $2 }
    END { if (flash + ram > 0)
        printf "footprint: flash %d bytes (%.1f KiB), static RAM %d bytes (%.1f KiB)\n",
               flash, flash / 1024, ram, ram / 1024 }'

# --- Run ----------------------------------------------------------------------
# Same command as `cargo run --release`: the runner in firmware/.cargo/config.toml.
RUNNER="$(sed -n 's/^runner *= *"\(.*\)" *$/\1/p' "$FW/.cargo/config.toml")"
if [[ -z "$RUNNER" ]]; then
    echo "firmware.sh: no runner line in firmware/.cargo/config.toml" >&2
    exit 2
fi
echo "== $RUNNER $ELF   (timeout ${TIMEOUT}s)"
status=0
# stdin from /dev/null: -nographic would otherwise read (and under `timeout`,
# in a background process group, stop on) the terminal.
# shellcheck disable=SC2086 # RUNNER is a command line, split on purpose
timeout -k 5 "$TIMEOUT" $RUNNER "$ELF" </dev/null || status=$?
echo "== firmware.sh: QEMU exited with status $status after ${SECONDS}s in all"
case "$status" in
    0) ;;
    124|137) echo "FIRMWARE FAILED: QEMU timed out after ${TIMEOUT}s (firmware hung?)" ;;
    *) echo "FIRMWARE FAILED: exit status $status (a test failed, panicked or faulted)" ;;
esac
exit "$status"
