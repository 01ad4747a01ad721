#!/usr/bin/env bash
# The suite's last step: nothing a test made may outlive it. `--save` records the machine
# before the suite; the check then reports whatever is new: changes to the root namespace
# (links, addresses, routes, FDB), lab namespaces, lab temp dirs, peer processes.
set -uo pipefail
snapshot=${1:?usage: leak-check.sh SNAPSHOT_FILE [--save]}
state() {
  ip -br link | awk '{print "link", $1}'
  ip -br addr | awk '{$2=""; print "addr", $0}'
  ip route show table all | sed 's/^/route /'
  echo "fdb-count $(bridge fdb show 2>/dev/null | grep -vc ' permanent$')"
  ip netns list | awk '$1 ~ /^pl/ {print "netns", $1}'
  ls -d /tmp/podlegs-lab-* /tmp/podlegs-k8s-* 2>/dev/null | sed 's/^/tmpdir /'
  for n in keepalived bgpd zebra gobgpd iperf3 tcpdump conmon; do pgrep -x "$n"; done | sed 's/^/proc /'
  pgrep -f '^qemu-system-x86_64 ' | sed 's/^/proc /'
  pgrep -f 'podlegs (agent|bgp-sync)' | sed 's/^/proc /'
}
if [ "${2:-}" = --save ]; then state | sort > "$snapshot"; exit 0; fi
new=$(comm -13 "$snapshot" <(state | sort))
gone=$(comm -23 "$snapshot" <(state | sort) | grep -Ev '^(netns|tmpdir|proc) ')
if [ -z "$new$gone" ]; then
  echo "leak check: nothing left behind (root namespace unchanged; no new lab namespaces, temp dirs or processes)"
  exit 0
fi
echo "leak check FAILED:"
[ -n "$new" ] && echo "$new" | sed 's/^/  left: /'
[ -n "$gone" ] && echo "$gone" | sed 's/^/  changed (missing now): /'
for p in $(echo "$new" | awk '$1 == "proc" {print $2}'); do ps -o pid=,args= -p "$p"; done
exit 1
