#!/bin/bash
# Prove the test suite can fail: build vhost_blk.ko with a deliberate bug
# and require the I/O selftests to catch it in a VM.
#
#   scripts/mutant-check.sh [KVER]     (default: the 6.12 kernel)
#
# The first mutant of tools/testing/mutants (asynchronous completions never
# write the status byte), run by tools/testing/mutants/run-mutants.sh; the
# others: `make mutants`.  Prints TAP; exit 0 only when the mutant was
# caught.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
exec "$TOP/tools/testing/mutants/run-mutants.sh" ${1:+--kver "$1"} status_byte_never_written
