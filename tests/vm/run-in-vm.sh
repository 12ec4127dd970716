#!/bin/bash
# run-in-vm.sh — runs one command on a real cgroup v2 kernel and exits with its status.
#
#   tests/vm/run-in-vm.sh [--timeout S] [--cgroup PATH] [--console] -- COMMAND...
#
# Boots Debian's kernel under qemu with software emulation (TCG: no KVM needed) with 2 vCPUs
# and 2 GiB. The VM's root is the host's / shared read-only over virtio-9p, so the command
# sees this machine's Python, libraries and build/ (run `make all` first); /tmp, /run (but a checkout below them, which is put back) and
# /dev/shm are fresh tmpfs, /sys/fs/cgroup is cgroup2 with cpu, memory and pids enabled in the
# root's subtree_control. The command runs as root with cwd = the current directory, in the
# root cgroup or, with --cgroup PATH (e.g. system.slice/pyexec.service), in a leaf cgroup
# below controllers enabled down to it, as systemd's Delegate=yes leaves a service.
# Its output (stdout and stderr together) streams here through a second serial port; the
# kernel's console goes to a log, printed with --console or when the VM fails.
# Exit status: the command's; 124 on timeout; 125 when the VM failed to boot or to set up.
# The kernel and initramfs are made once by prepare.sh, in /var/cache/pyexec-vm.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

usage() {
        echo "usage: $0 [--timeout S] [--cgroup PATH] [--console] -- COMMAND..." >&2
        exit 2
}

timeout=600 cgroup="" show_console=0
while [ $# -gt 0 ]; do
        case "$1" in
        --timeout) [ $# -ge 2 ] || usage; timeout=$2; shift 2 ;;
        --cgroup) [ $# -ge 2 ] || usage; cgroup=${2#/}; shift 2 ;;
        --console) show_console=1; shift ;;
        --) shift; break ;;
        *) usage ;;
        esac
done
[ $# -ge 1 ] || usage
case "$PWD" in
/tmp | /run) echo "run-in-vm: $PWD is the VM's own tmpfs; run from a directory below it or elsewhere" >&2; exit 2 ;;
esac

read -r kernel initrd < <("$HERE/prepare.sh")
[ -f "$kernel" ] && [ -f "$initrd" ] || { echo "run-in-vm: prepare.sh failed" >&2; exit 125; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The per-run part of the initramfs: the command as a bash script, and the cgroup to run it
# in. The kernel unpacks concatenated archives in order, so it is simply appended.
write_job() {
        mkdir "$work/job"
        { printf 'cd -- %q || exit 125\nexec' "$PWD"; printf ' %q' "$@"; echo; } >"$work/job/cmd"
        echo "$cgroup" >"$work/job/cgroup"
        echo "$PWD" >"$work/job/pwd"
        (cd "$work" && find job | busybox cpio -o -H newc -R 0:0 2>/dev/null | gzip -1) >"$work/job.cpio.gz"
        cat "$initrd" "$work/job.cpio.gz" >"$work/initrd"
}

# -cpu max: the vector extensions numpy's kernels look for. panic=-1 with -no-reboot: a
# kernel panic (init dying included) ends qemu at once instead of hanging until the timeout.
boot() {
        timeout -k 10 "$timeout" qemu-system-x86_64 \
                -accel tcg -M pc -cpu max -smp 2 -m 2048 \
                -nodefaults -no-user-config -display none -monitor none -no-reboot \
                -kernel "$kernel" -initrd "$work/initrd" \
                -append "console=ttyS0 loglevel=4 panic=-1 random.trust_cpu=on" \
                -serial "file:$work/console.log" -serial stdio \
                -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
                </dev/null
}

console_tail() {
        echo "run-in-vm: the VM's console (last lines):" >&2
        tail -n "${1:-40}" "$work/console.log" >&2 2>/dev/null || true
}

write_job "$@"
start=$(date +%s%N)
qemu_rc=0
boot || qemu_rc=$?
took=$((($(date +%s%N) - start) / 1000000))
[ "$show_console" = 1 ] && console_tail 100000
if [ "$qemu_rc" = 124 ]; then
        echo "run-in-vm: timed out after ${timeout}s" >&2
        console_tail
        exit 124
fi
rc=$(sed -n 's/^PYEXEC-VM-EXIT \([0-9]*\).*/\1/p' "$work/console.log" | tail -n 1)
if [ -z "$rc" ]; then
        grep -a '^PYEXEC-VM-FAIL' "$work/console.log" >&2 ||
                echo "run-in-vm: the VM stopped without reporting a status (qemu exit $qemu_rc)" >&2
        console_tail
        exit 125
fi
echo "run-in-vm: exit $rc after $((took / 1000)).$((took % 1000 / 100))s ($(sed -n 's/^PYEXEC-VM-START //p' "$work/console.log"))" >&2
exit "$rc"
