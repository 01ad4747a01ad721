#!/bin/bash
# Adopted unchanged (apart from this note) from ../shared/tools/kernel-vm/run-in-vm.sh, the
# shared kernel-VM tool of this workspace; the project keeps its own copy so that a test run on
# a fresh clone does not depend on that folder.
#
# run-in-vm.sh 'shell command string'
#
# Boots the installed Debian kernel (/boot/vmlinuz-*, e.g. linux-image-amd64)
# under qemu-system-x86_64 (TCG by default), with the host's / as the VM root:
# read-only 9p virtfs + tmpfs overlay, so the guest may write anywhere and the
# host is never modified. Runs the command string with bash inside the VM
# (cwd = caller's cwd, HOME=/root, stdin=/dev/null), streams its stdout+stderr
# to our stdout, powers the VM off and exits with the command's exit code.
#
# Needs (Debian): qemu-system-x86 linux-image-amd64 busybox-static kmod cpio xz-utils
# Env knobs:
#   VM_ACCEL=tcg|kvm  (default tcg; /dev/kvm here is kvm_pvm, a stock kernel hangs)
#   VM_MEM=1024 (MiB)  VM_SMP=1  VM_TIMEOUT=600 (s)  VM_KVER=<version under /boot>
#   VM_CACHE=/var/tmp/kernel-vm-cache (initramfs + extracted vmlinux, built on first use)
#   VM_PVH=1 (boot uncompressed vmlinux via PVH: ~2.5s faster; 0 = use bzImage)
#   VM_APPEND='extra kernel args'  VM_MACHINE=q35  VM_CPU=max  VM_QEMU_ARGS='...'
#   VM_TIME=1 (timings to stderr)  VM_KEEP_CONSOLE=1 (guest console log to stderr)
# Exit code: the command's; 255 = VM/boot failure (console log printed); 124 = timeout.
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 'shell command'" >&2; exit 2; }
CMD="$*"
now_ms() { date +%s%3N; }
T0=$(now_ms)

KVER=${VM_KVER:-$(ls /boot/vmlinuz-* 2>/dev/null | sed 's|^/boot/vmlinuz-||' | sort -V | tail -1)}
[ -n "$KVER" ] || { echo "run-in-vm: no /boot/vmlinuz-* (apt-get install linux-image-amd64)" >&2; exit 255; }
BZIMAGE=/boot/vmlinuz-$KVER
CACHE=${VM_CACHE:-/var/tmp/kernel-vm-cache}
INITRD=$CACHE/initramfs-$KVER.cpio.gz
VMLINUX=$CACHE/vmlinux-$KVER
ACCEL=${VM_ACCEL:-tcg}
QEMU=${VM_QEMU:-qemu-system-x86_64}
BUSYBOX=${VM_BUSYBOX:-/bin/busybox}
mkdir -p "$CACHE"
LOCK=$CACHE/.lock
exec 9>"$LOCK"

build_initramfs() {
    local d m
    d=$(mktemp -d)
    mkdir -p "$d"/{bin,dev,proc,sys,mods,lower,rw,newroot}
    cp "$BUSYBOX" "$d/bin/busybox"
    "$d/bin/busybox" true 2>/dev/null || { echo "run-in-vm: $BUSYBOX unusable" >&2; exit 255; }
    for a in sh mount insmod mkdir cp chroot switch_root poweroff cat echo stty sync ip hostname; do
        ln -s busybox "$d/bin/$a"
    done
    # dependency-ordered insmod list (deduplicated) for 9p-over-virtio-pci + overlayfs
    for m in virtio_pci 9pnet_virtio 9p overlay; do
        modprobe -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
    done | awk '!seen[$0]++' | while read -r m; do
        cp "$m" "$d/mods/"; basename "$m" >> "$d/modules.list"
    done
    cat > "$d/init" <<'EOF'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
die() { echo "vm-init: $*" > /dev/ttyS0; echo "vm-init: $*" > /dev/ttyS1; sync; poweroff -f; }
for m in $(cat /modules.list); do insmod /mods/$m || echo "vm-init: insmod $m failed"; done
O=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o $O,ro,cache=loose hostroot /lower || die "mount hostroot failed"
mount -t tmpfs -o mode=755 rw /rw && mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work vmroot /newroot || die "overlay failed"
R=/newroot
mount -t proc proc $R/proc; mount -t sysfs sys $R/sys; mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm
ln -sf /proc/self/fd $R/dev/fd; ln -sf /proc/self/fd/0 $R/dev/stdin; ln -sf /proc/self/fd/1 $R/dev/stdout; ln -sf /proc/self/fd/2 $R/dev/stderr
mount -t devpts -o ptmxmode=666 devpts $R/dev/pts; mount -t tmpfs shm $R/dev/shm
mount -t tmpfs -o mode=755 run $R/run; mkdir -p $R/run/vmxfer $R/run/vm
mount -t 9p -o $O xfer $R/run/vmxfer || die "mount xfer failed"
[ -d $R/sys/fs/cgroup ] && mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null
[ -d $R/sys/kernel/debug ] && mount -t debugfs debugfs $R/sys/kernel/debug 2>/dev/null
cp /bin/busybox $R/run/vm/busybox
cat > $R/run/vm/stage2 <<'EOS'
B=/run/vm/busybox
$B hostname vm; $B ip link set lo up
$B stty -F /dev/ttyS1 raw -echo 2>/dev/null
echo "vm-init: starting command" > /dev/ttyS0
/bin/sh /run/vmxfer/cmd.sh > /dev/ttyS1 2>&1 < /dev/null
echo $? > /run/vmxfer/rc
$B sync; $B poweroff -f
EOS
exec switch_root $R /run/vm/busybox sh /run/vm/stage2
die "switch_root failed"
EOF
    chmod +x "$d/init"
    (cd "$d" && find . | cpio -o -H newc --quiet | gzip -1) > "$INITRD.tmp.$$"
    mv "$INITRD.tmp.$$" "$INITRD"
    rm -rf "$d"
}

extract_vmlinux() {  # uncompressed ELF (has a PVH note) lets qemu skip real-mode setup + XZ decompression
    local off
    off=$(grep -abo $'\xfd7zXZ\x00' "$BZIMAGE" | head -1 | cut -d: -f1) || return 1
    [ -n "$off" ] || return 1
    tail -c +"$((off + 1))" "$BZIMAGE" | xz -dc 2>/dev/null > "$VMLINUX.tmp.$$" || true
    if readelf -n "$VMLINUX.tmp.$$" 2>/dev/null | grep -q 'Unknown note type: (0x00000012)' ||
       head -c 4 "$VMLINUX.tmp.$$" | grep -q ELF; then
        mv "$VMLINUX.tmp.$$" "$VMLINUX"
    else
        rm -f "$VMLINUX.tmp.$$"; return 1
    fi
}

flock 9
if [ ! -s "$INITRD" ] || [ "$0" -nt "$INITRD" ] || [ "$BZIMAGE" -nt "$INITRD" ]; then build_initramfs; fi
KERNEL=$BZIMAGE
if [ "${VM_PVH:-1}" = 1 ]; then
    if [ ! -s "$VMLINUX" ] || [ "$BZIMAGE" -nt "$VMLINUX" ]; then extract_vmlinux || true; fi
    [ -s "$VMLINUX" ] && KERNEL=$VMLINUX
fi
flock -u 9

BIOS=()
[ -f /usr/share/qemu/qboot.rom ] && [ "${VM_MACHINE:-q35}" != microvm ] && BIOS=(-bios /usr/share/qemu/qboot.rom)

XFER=$(mktemp -d /tmp/run-in-vm.XXXXXX)
cleanup() { rm -rf "$XFER"; }
trap cleanup EXIT
{
    echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb LANG=C.UTF-8'
    printf 'cd %q 2>/dev/null || cd /\n' "$PWD"
    printf 'exec /bin/bash -c %q\n' "$CMD"
} > "$XFER/cmd.sh"

T1=$(now_ms)
set +e
# shellcheck disable=SC2086
timeout -k 5 "${VM_TIMEOUT:-600}" "$QEMU" \
    -nodefaults -no-user-config -nographic -no-reboot "${BIOS[@]}" \
    -machine "${VM_MACHINE:-q35}" -accel "$ACCEL" -cpu "${VM_CPU:-max}" \
    -m "${VM_MEM:-1024}" -smp "${VM_SMP:-1}" \
    -kernel "$KERNEL" -initrd "$INITRD" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init cryptomgr.notests mitigations=off tsc=reliable no_timer_check ${VM_APPEND:-}" \
    -fsdev local,id=fsroot,path=/,security_model=passthrough,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=fsroot,mount_tag=hostroot \
    -fsdev local,id=fsx,path="$XFER",security_model=none \
    -device virtio-9p-pci,fsdev=fsx,mount_tag=xfer \
    -serial file:"$XFER/console.log" \
    -chardev stdio,id=out,signal=on -serial chardev:out \
    ${VM_QEMU_ARGS:-} < /dev/null
QRC=$?
set -e
T2=$(now_ms)

if [ -f "$XFER/rc" ]; then RC=$(cat "$XFER/rc"); else RC=255; fi
[ "$QRC" = 124 ] && { echo "run-in-vm: timeout after ${VM_TIMEOUT:-600}s" >&2; RC=124; }
if [ "$RC" = 255 ] || [ -n "${VM_KEEP_CONSOLE:-}" ]; then
    echo "run-in-vm: qemu rc=$QRC; guest console log:" >&2
    tail -n 40 "$XFER/console.log" >&2 || true
fi
[ -n "${VM_TIME:-}" ] && echo "run-in-vm: prep $((T1 - T0))ms, qemu start->exit $((T2 - T1))ms, kernel=$KERNEL accel=$ACCEL rc=$RC" >&2
exit "$RC"
