#!/usr/bin/env bash
# The suite's last step: nothing a test made may outlive it. Compares the root
# namespace with the snapshot taken before the suite, and looks for lab
# namespaces, temp dirs and peer processes left behind.
set -uo pipefail
snapshot=${1:?usage: leak-check.sh SNAPSHOT_FILE [--save]}
root_state() {
  { ip -br link | awk '{print "link", $1}'; ip -br addr | awk '{$2=""; print "addr", $0}'; ip route show table all | sed 's/^/route /';
    bridge fdb show 2>/dev/null | grep -v ' permanent$' | sed 's/^/fdb /' | grep -c . | sed 's/^/fdb-count /'; } | sort
}
if [ "${2:-}" = --save ]; then root_state > "$snapshot"; exit 0; fi
fail=0
diff <(cat "$snapshot") <(root_state) >/dev/null || { echo "leak: the root namespace changed:"; diff "$snapshot" <(root_state); fail=1; }
ns=$(ip netns list | awk '{print $1}' | grep -E '^pl[0-9a-z]{4,}-|^plb[a-z][0-9a-f]{4}' || true)
[ -z "$ns" ] || { echo "leak: namespaces left: $ns"; fail=1; }
tmp=$(ls -d /tmp/podlegs-lab-* /tmp/podlegs-k8s-* 2>/dev/null || true)
[ -z "$tmp" ] || { echo "leak: temp dirs left: $tmp"; fail=1; }
procs=$(pgrep -a -x 'keepalived|bgpd|zebra|gobgpd|iperf3|tcpdump|qemu-system-x86_64|conmon' || true)
agents=$(pgrep -af 'podlegs agent|podlegs bgp-sync' | grep -v pgrep || true)
[ -z "$procs$agents" ] || { echo "leak: processes left:"; echo "$procs$agents"; fail=1; }
[ $fail = 0 ] && echo "leak check: nothing left behind (namespaces, links, routes, temp dirs, processes)"
exit $fail
