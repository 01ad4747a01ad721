#!/usr/bin/env bash
# The VLAN-trunk suite (jest project "vm", test/vm/*.test.ts). Trunk legs need 802.1Q devices,
# the tc clsact qdisc and the tc BPF classifier. When this machine's kernel can make them
# (tried in a throw-away netns) the suite runs natively; otherwise it runs inside a QEMU VM
# booted with Debian's own kernel (test/vm/run-in-vm.sh: the host's / read-only + tmpfs
# overlay, so the VM sees this checkout, node, dist/podlegs and the Debian tools).
#
#   PODLEGS_TRUNK_SUITE=auto|native|vm   (default auto)   extra args go to jest
#   VM_MEM / VM_SMP / VM_TIMEOUT         passed to run-in-vm.sh (defaults here: 2048, 2, 1500)
#
# Prints the suite's figures (PODLEGS-TRUNK-FIGURES line) and its wall time.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "the trunk suite builds network namespaces: run it as root" >&2; exit 1; }

# A private build of the plugin for this run (lab.ts takes PODLEGS_BIN): dist/ may be rebuilt
# while the suite runs, and the VM reads the host's files live.
bin_dir=$(mktemp -d /tmp/podlegs-trunk-bin.XXXXXX)
trap 'rm -rf "$bin_dir"' EXIT
if [ -n "${PODLEGS_BIN:-}" ]; then
  cp -a "$(dirname "$PODLEGS_BIN")/." "$bin_dir/" && export PODLEGS_BIN="$bin_dir/$(basename "$PODLEGS_BIN")"
else
  node scripts/build.mjs --out "$bin_dir/podlegs" >/dev/null || { echo "trunk suite: build failed" >&2; exit 1; }
  export PODLEGS_BIN="$bin_dir/podlegs"
fi

kernel_has_trunk_features() {
  local ns=pltk$$ rc
  ip netns add "$ns" 2>/dev/null || return 1
  ip -n "$ns" link add plva type veth peer name plvb &&
    ip -n "$ns" link add link plva name plva.5 type vlan id 5 &&
    tc -n "$ns" qdisc add dev plva clsact &&
    tc -n "$ns" filter add dev plva ingress bpf da bytecode '1,6 0 0 0'
  rc=$?
  ip netns del "$ns"
  return $rc
}

# One long-lived jest process (every process start costs ~0.1 s under TCG); jest itself, not npx.
# Its exit code alone proves nothing (the suite skips itself on a kernel without the features):
# check-results.mjs reads its --json results and fails unless every test ran and passed.
JEST=(node node_modules/jest/bin/jest.js --ci --runInBand --selectProjects vm "$@")
filtered=; [ $# -gt 0 ] && filtered=--filtered   # extra jest args may deselect tests on purpose
mode=${PODLEGS_TRUNK_SUITE:-auto}
if [ "$mode" = auto ]; then
  if kernel_has_trunk_features 2>/dev/null; then mode=native; else mode=vm; fi
fi
start=$(date +%s%3N)
case "$mode" in
  native)
    echo "trunk suite: kernel $(uname -r) has 8021q, clsact and cls_bpf: running natively"
    results="$bin_dir/results.json"
    "${JEST[@]}" --json --outputFile="$results"
    rc=$?
    node test/vm/check-results.mjs "$results" $filtered || rc=1
    ;;
  vm)
    echo "trunk suite: kernel $(uname -r) lacks 8021q/clsact/cls_bpf: running it under Debian's kernel in QEMU"
    ls /boot/vmlinuz-* >/dev/null 2>&1 && command -v qemu-system-x86_64 >/dev/null ||
      { echo "trunk suite: needs qemu-system-x86 and linux-image-amd64 (bash test/setup.sh installs them)" >&2; exit 1; }
    # Warm ts-jest's cache on the host (the suite skips itself here); the VM reads /tmp from the host.
    "${JEST[@]}" >/dev/null 2>&1
    VM_MEM=${VM_MEM:-2048} VM_SMP=${VM_SMP:-2} VM_TIMEOUT=${VM_TIMEOUT:-1500} \
      test/vm/run-in-vm.sh "modprobe -a 8021q sch_ingress cls_bpf && PODLEGS_BIN=$(printf %q "$PODLEGS_BIN") PODLEGS_BENCH_RUNS=${PODLEGS_BENCH_RUNS:-7} $(printf '%q ' "${JEST[@]}") --json --outputFile=$(printf %q "$bin_dir/results.json"); rc=\$?; node test/vm/check-results.mjs $(printf %q "$bin_dir/results.json") $filtered || rc=1; exit \$rc"
    rc=$?
    ;;
  *) echo "PODLEGS_TRUNK_SUITE must be auto, native or vm" >&2; exit 2 ;;
esac
echo "trunk suite ($mode): exit $rc, wall time $(( $(date +%s%3N) - start )) ms"
exit $rc
