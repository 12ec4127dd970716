#!/bin/bash
# prepare.sh — makes what tests/vm/run-in-vm.sh boots, once, and prints "KERNEL INITRAMFS".
#
# Installs qemu-system-x86 and busybox-static when missing, unpacks Debian's generic kernel
# (linux-image-amd64) into the cache with `apt-get download` + `dpkg-deb -x`, and builds a
# small initramfs: busybox, tests/vm/vm-init.sh as /init, and the modules that mounting the
# host's / over virtio-9p needs. Everything lands in $PYEXEC_VM_CACHE (/var/cache/pyexec-vm);
# a later run finds it there and does nothing. `rm -rf` of that directory undoes it all.
#
# Why the generic kernel and not linux-image-cloud-amd64: the cloud kernel is built without
# 9p (CONFIG_NET_9P is not set), so it cannot mount the shared root. Why not installed: a
# kernel package installs into the host's /boot and runs update-initramfs and the boot-loader
# hooks, on a machine whose /boot is not ours; unpacked, it touches nothing outside the cache.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${PYEXEC_VM_CACHE:-/var/cache/pyexec-vm}
# The root modules; their dependencies are found from each module's .modinfo.
ROOT_MODULES="virtio_pci 9pnet_virtio 9p"

log() { echo "prepare: $*" >&2; }
die() { echo "prepare: $*" >&2; exit 1; }

install_packages() {
        local missing="" p
        for p in qemu-system-x86 busybox-static; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
                        missing="$missing $p"
        done
        [ -z "$missing" ] && return 0
        [ "$(id -u)" = 0 ] || die "missing Debian packages:$missing (run as root to install them)"
        log "installing$missing"
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2 ||
                { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive \
                        apt-get install -y -q --no-install-recommends $missing >&2; }
}

# The versioned package that linux-image-amd64 stands for (linux-image-6.1.0-57-amd64), or,
# when apt knows none, the one already in the cache.
kernel_package() {
        local pkg
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
        [ -n "$pkg" ] || pkg=$(ls -d "$CACHE"/linux-image-*/ 2>/dev/null | tail -n 1 | xargs -r basename)
        [ -n "$pkg" ] || die "apt knows no linux-image-amd64 (try apt-get update)"
        echo "$pkg"
}

# Unpacks the kernel into $CACHE/$pkg, keeping only vmlinuz and the modules the initramfs
# needs (the package unpacks to 400 MB). Atomic: a half-done unpack is never reused.
fetch_kernel() {
        local pkg=$1 dir=$CACHE/$1 tmp ver f mods
        [ -f "$dir/version" ] && return 0  # written last
        log "fetching $pkg into $dir"
        rm -rf "$CACHE"/.fetch.*  # what an interrupted fetch left (we hold the lock)
        tmp=$(mktemp -d "$CACHE/.fetch.XXXXXX")
        # apt downloads as the _apt user, which must be able to write here.
        chown _apt "$tmp" 2>/dev/null || true
        (cd "$tmp" && apt-get download -q "$pkg" >&2) ||
                (cd "$tmp" && apt-get update -q >&2 && apt-get download -q "$pkg" >&2) ||
                { rm -rf "$tmp"; die "apt-get download $pkg failed"; }
        dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/x"
        ver=$(ls "$tmp/x/lib/modules")
        mkdir -p "$tmp/k/$ver"
        mv "$tmp"/x/boot/vmlinuz-* "$tmp/k/vmlinuz"
        mods=$(module_closure "$tmp/x/lib/modules/$ver/kernel")
        for f in $mods; do
                mkdir -p "$tmp/k/$ver/kernel/$(dirname "$f")"
                mv "$tmp/x/lib/modules/$ver/kernel/$f" "$tmp/k/$ver/kernel/$f"
        done
        echo "$ver" >"$tmp/k/version"
        rm -rf "$dir" && mv "$tmp/k" "$dir" && rm -rf "$tmp"
}

# Prints the .ko paths (relative to the modules' kernel/ directory) of the root modules and
# everything they depend on.
module_closure() {
        local kdir=$1 queue=$ROOT_MODULES seen=" " m f deps
        while [ -n "${queue// /}" ]; do
                # shellcheck disable=SC2086 # split the queue into words
                set -- $queue; m=$1; shift; queue="$*"
                case "$seen" in *" $m "*) continue ;; esac
                seen="$seen$m "
                f=$(cd "$kdir" && find . \( -name "$m.ko" -o -name "${m//_/-}.ko" \) -print -quit)
                [ -n "$f" ] || die "module $m not found (built in, or compressed?)"
                echo "${f#./}"
                deps=$(tr '\0' '\n' <"$kdir/$f" | sed -n 's/^depends=//p' | tr ',' ' ')
                queue="$queue $deps"
        done
}

build_initramfs() {
        local pkg=$1 out=$2 stage ver
        stage=$(mktemp -d)
        ver=$(cat "$CACHE/$pkg/version")
        mkdir -p "$stage"/{bin,dev,proc,sys,job,lib/modules}
        cp /bin/busybox "$stage/bin/busybox"
        ln -s busybox "$stage/bin/sh"
        cp "$HERE/vm-init.sh" "$stage/init"
        chmod 755 "$stage/init"
        cp -r "$CACHE/$pkg/$ver" "$stage/lib/modules/$ver"
        busybox depmod -b "$stage" "$ver"
        (cd "$stage" && find . | busybox cpio -o -H newc -R 0:0 2>/dev/null | gzip -1) >"$out.tmp"
        mv "$out.tmp" "$out"  # atomic: a failed build leaves no initramfs to be reused
        rm -rf "$stage"
}

main() {
        install_packages
        mkdir -p "$CACHE"
        # Runs at once (two test sessions) would replace each other's files mid-boot.
        exec 9>"$CACHE/.lock"
        flock 9
        local pkg key initrd
        pkg=$(kernel_package)
        fetch_kernel "$pkg"
        # Rebuilt whenever the init script, busybox or the kernel changes.
        key=$(cat "$HERE/vm-init.sh" "$0" /bin/busybox | sha256sum | cut -c1-16)
        initrd=$CACHE/initramfs-$pkg-$key.cpio.gz
        if [ ! -f "$initrd" ]; then
                log "building $initrd"
                # Old ones are kept a while: other checkouts sharing the cache may boot them.
                find "$CACHE" -maxdepth 1 -name 'initramfs-*.cpio.gz' -mtime +7 -delete
                build_initramfs "$pkg" "$initrd"
        fi
        touch "$initrd"  # in use: not old
        echo "$CACHE/$pkg/vmlinuz $initrd"
}

main "$@"
