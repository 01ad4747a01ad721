#!/usr/bin/env bash
# podlegs demo: a 3-node namespace lab, CNI chain [ptp (stand-in for Cilium), podlegs], a
# keepalived VRRP pair on two nodes and a client on the third; the master crashes, the demo
# prints the measured failover and the client's recovery, then removes everything it built.
#
#   ./run demo                      (installs what is needed, builds, runs this script)
#   bash test/lab/demo.sh           (as root, after `npm run build`)
#   DEMO_CRASH=keepalived bash test/lab/demo.sh   kill -9 keepalived only (the pod survives)
#
# Everything happens in network namespaces the demo creates (TEST-NET-1 underlay, 10.x in
# pods); nothing is added to the root namespace. Cleanup runs on exit, Ctrl-C and TERM.
set -euo pipefail
cd "$(dirname "$0")/../.."

[ "$(id -u)" = 0 ] || { echo "the demo builds network namespaces: run it as root" >&2; exit 1; }
[ -x dist/podlegs ] || { echo "dist/podlegs is missing: run 'npm run build' first (or use ./run demo)" >&2; exit 1; }
for tool in keepalived ip bridge nsenter node; do
  command -v "$tool" >/dev/null || { echo "missing $tool (./run setup installs it)" >&2; exit 1; }
done
[ -x "${CNI_PATH:-/usr/lib/cni}/ptp" ] || { echo "missing the ptp CNI plugin in ${CNI_PATH:-/usr/lib/cni} (Debian: containernetworking-plugins)" >&2; exit 1; }

work=$(mktemp -d /tmp/podlegs-demo-XXXXXX)
child=

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null || true   # the demo removes its lab on TERM
    wait "$child" 2>/dev/null || true
  fi
  # Last resort, should the demo itself have died hard: its lab's namespaces and temp dir.
  if [ -s "$work/prefix" ]; then
    prefix=$(cat "$work/prefix")
    for ns in $(ip netns list | awk '{print $1}' | grep "^${prefix}-" || true); do
      echo "removing leftover netns $ns" >&2
      ip netns del "$ns" || true
    done
    rm -rf /tmp/podlegs-lab-"${prefix}"-*
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The demo is TypeScript that drives the same lab harness as the tests: bundle it with esbuild.
node scripts/build.mjs --entry test/lab/demo/demo.ts --out "$work/demo.js"
PODLEGS_BIN="$PWD/dist/podlegs" DEMO_PREFIX_FILE="$work/prefix" node "$work/demo.js" &
child=$!
wait "$child"
