#!/bin/sh
# vm-init.sh — PID 1 of the cgroup v2 test VM (tests/vm/run-in-vm.sh), busybox sh throughout.
#
# Stage 1 runs from the initramfs: it loads the 9p modules, mounts the host's / (shared
# read-only by qemu) on /newroot with tmpfs on /tmp and /run, and switch_root's into it. A
# switch_root, not a chroot: the sandbox pivot_root's, which fails under a chroot.
# Stage 2 runs as PID 1 in the host's tree: it makes what a booted Debian has (cgroup2 with the
# controllers enabled as systemd enables them, /dev/pts, /dev/shm, /dev/fd, lo, a hostname),
# runs the job (/job/cmd from the per-run initramfs part) with its output on ttyS1, and
# reports its exit status on the console (ttyS0) as "PYEXEC-VM-EXIT <code>", then powers off.
# Nothing may write to the host's tree, and nothing does: it is mounted read-only.
set -u
CONTROLLERS="+cpu +memory +pids"

fail() {
        echo "PYEXEC-VM-FAIL $*" >/dev/console
        poweroff -f
}

stage1() {
        /bin/busybox --install -s /bin
        export PATH=/bin
        mount -t proc proc /proc && mount -t sysfs sys /sys && mount -t devtmpfs dev /dev ||
                fail "stage1: mounting proc, sys or dev"
        for m in virtio_pci 9pnet_virtio 9p; do
                modprobe "$m" || fail "stage1: modprobe $m"
        done
        mkdir -p /newroot
        # cache=loose: the share is read-only and lives for one run, so caching is safe, and it
        # makes Python's many stat() and open() calls much cheaper.
        mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 hostroot /newroot ||
                fail "stage1: mounting the host's / over 9p"
        # A checkout under /tmp or /run (a CI may clone anywhere) would be hidden by the tmpfs
        # mounted there: a bind of it is kept aside and put back on top.
        here=$(cat /job/pwd)
        case "$here" in /tmp/* | /run/*)
                mkdir -p /keep && mount --bind "/newroot$here" /keep || fail "stage1: keeping $here" ;;
        esac
        mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /newroot/tmp &&
                mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /newroot/run || fail "stage1: tmpfs"
        case "$here" in /tmp/* | /run/*)
                mkdir -p "/newroot$here" && mount --move /keep "/newroot$here" || fail "stage1: restoring $here" ;;
        esac
        mkdir -p /newroot/run/pyexec-vm
        cp /bin/busybox /init /job/* /newroot/run/pyexec-vm/ || fail "stage1: copying to /run"
        for d in dev proc sys; do
                mount --move "/$d" "/newroot/$d" || fail "stage1: moving /$d"
        done
        exec switch_root /newroot /run/pyexec-vm/busybox sh /run/pyexec-vm/init stage2
}

# The cgroup2 tree as systemd leaves it: controllers enabled from the root down to the job's
# cgroup's parent, the job's own cgroup a leaf (no-internal-processes rule).
setup_cgroup() {
        mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || fail "stage2: mounting cgroup2"
        dir=/sys/fs/cgroup
        echo "$CONTROLLERS" >"$dir/cgroup.subtree_control" || fail "stage2: enabling $CONTROLLERS"
        rel=$(cat /run/pyexec-vm/cgroup)
        [ -n "$rel" ] || return 0
        for part in $(echo "$rel" | tr / ' '); do
                [ "$dir" = /sys/fs/cgroup ] || echo "$CONTROLLERS" >"$dir/cgroup.subtree_control" ||
                        fail "stage2: enabling $CONTROLLERS in $dir"
                dir="$dir/$part"
                mkdir -p "$dir" || fail "stage2: mkdir $dir"
        done
        echo $$ >"$dir/cgroup.procs" || fail "stage2: moving into $dir"
}

setup_dev() {
        mkdir -p /dev/pts /dev/shm
        mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts &&
                mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm || fail "stage2: /dev/pts, /dev/shm"
        # udev makes these on a booted system; bash's <(...) needs /dev/fd.
        ln -sf /proc/self/fd /dev/fd
        for i in 0:stdin 1:stdout 2:stderr; do ln -sf "/proc/self/fd/${i%%:*}" "/dev/${i#*:}"; done
}

stage2() {
        # Busybox's applets, not the host's tools, which may differ or be missing.
        /run/pyexec-vm/busybox mkdir /run/pyexec-vm/bin &&
                /run/pyexec-vm/busybox --install -s /run/pyexec-vm/bin
        export PATH=/run/pyexec-vm/bin
        setup_cgroup
        setup_dev
        hostname pyexec-vm
        ip link set lo up
        # Raw: the output passes through unchanged (no \r added), and nothing is echoed back.
        stty -F /dev/ttyS1 raw -echo
        echo "PYEXEC-VM-START kernel up $(cut -d' ' -f1 /proc/uptime)s at the job's start" >/dev/console
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
                TERM=dumb LANG=C.UTF-8 TMPDIR=/tmp PYTHONDONTWRITEBYTECODE=1 PYEXEC_VM=1 \
                /bin/bash /run/pyexec-vm/cmd </dev/null >/dev/ttyS1 2>&1
        rc=$?
        # stty waits for the output to drain (TCSADRAIN) before the power goes.
        stty -F /dev/ttyS1 raw -echo
        echo "PYEXEC-VM-EXIT $rc" >/dev/console
        sync
        poweroff -f
}

case "${1:-}" in
stage2) stage2 ;;
*) stage1 ;;
esac
