#!/usr/bin/env bash
# The whole suite: typecheck, build, unit, kernel (netns) and lab tests, the
# full-kernel VM suite, then a leak check against the root namespace as it was.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "the suite builds network namespaces: run it as root" >&2; exit 1; }
snap=$(mktemp)
trap 'rm -f "$snap"' EXIT
bash test/leak-check.sh "$snap" --save
npx tsc --noEmit -p .
npm run --silent build
npx jest --ci --runInBand --selectProjects unit kernel lab
bash test/vm/run-trunk-suite.sh   # VLAN trunks: natively if this kernel has 8021q/clsact/cls_bpf, else in a QEMU VM
bash test/leak-check.sh "$snap"
