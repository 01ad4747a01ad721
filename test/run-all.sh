#!/usr/bin/env bash
# The whole suite: typecheck, build, unit, kernel (netns) and lab tests, the
# full-kernel VM suite, then a leak check against the root namespace as it was.
# Every stage runs even when an earlier one failed (the leak check matters most after a
# failure); the run fails if any stage failed, with a summary at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "the suite builds network namespaces: run it as root" >&2; exit 1; }
snap=$(mktemp)
trap 'rm -f "$snap"' EXIT
bash test/leak-check.sh "$snap" --save || { echo "run-all: cannot snapshot the root namespace" >&2; exit 1; }

summary=() failed=0
stage() {  # stage NAME CMD...: run, record the outcome, never abort the run
  local name=$1 rc; shift
  echo "=== run-all: $name"
  "$@"; rc=$?
  if [ $rc = 0 ]; then summary+=("ok      $name"); else summary+=("FAILED  $name (exit $rc)"); failed=1; fi
}
stage typecheck npx tsc --noEmit -p .
stage build npm run --silent build
stage jest npx jest --ci --runInBand --selectProjects unit kernel lab
stage trunk-suite bash test/vm/run-trunk-suite.sh   # VLAN trunks: natively if this kernel has 8021q/clsact/cls_bpf, else in a QEMU VM
stage leak-check bash test/leak-check.sh "$snap"

echo "=== run-all summary"
printf '  %s\n' "${summary[@]}"
exit $failed
