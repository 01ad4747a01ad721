#!/usr/bin/env bash
# Installs everything the tests, demo and benchmarks need on a fresh Debian 12
# (as root): Debian packages, npm packages, and the native netns addon.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(
  iproute2 iputils-ping procps psmisc util-linux mount # namespaces: ip/bridge/tc, ping, pgrep/ps/sysctl, nsenter/unshare/flock, mount
  curl                                                 # lab: HTTP through the legs
  containernetworking-plugins                          # ptp/bridge/host-local/static
  keepalived tcpdump arping iperf3 socat python3       # real peers in the lab
  podman runc busybox-static                           # a real CNI runtime; its containers' rootfs
  build-essential python3                              # native addon
  frr gobgpd                                           # BGP: FRR in pods/router, gobgpd as node speaker
  qemu-system-x86 linux-image-amd64 busybox-static kmod cpio xz-utils binutils  # trunk suite: Debian kernel in a VM (test/vm)
)
missing=()
for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# kubectl for the manifest checks (client-side dry run): Debian 12 ships it as
# kubernetes-client (1.20). Any kubectl already on PATH will do (another package
# owning /usr/bin/kubectl would conflict with it).
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# npm 11 does not run dependencies' install scripts: netlink ships prebuilds that
# load without one; our own addon is built below (and by this package's install script).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
# Rebuild when missing or older than its C source (a fresh clone, or a pull that changed native/).
if [ ! -f build/Release/podlegs_netns.node ] || [ native/netns.c -nt build/Release/podlegs_netns.node ] || [ binding.gyp -nt build/Release/podlegs_netns.node ]; then
  npm run --silent install   # npm puts its bundled node-gyp on PATH; npx would need it as a dependency
fi
node -e "require('./build/Release/podlegs_netns.node'); require('netlink').createRtNetlink().socket.socket.close()" \
  || { echo "setup: native pieces do not load" >&2; exit 1; }
