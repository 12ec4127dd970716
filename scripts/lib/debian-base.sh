# shellcheck shell=bash
# scripts/lib/debian-base.sh — sourced by scripts/image-test.sh: `ensure_base IMAGE CACHE_DIR`.
#
# The Dockerfile builds FROM debian:bookworm-slim. podman's copy (pulled or loaded) is used as
# it is; with no registry reachable, an equivalent base is made with debootstrap from this
# machine's Debian mirror (scripts/lib/apt_mirror.py), cached as a tarball in CACHE_DIR and
# imported under that name. Needs debootstrap and podman, and say() from the caller.

# ensure_base IMAGE CACHE_DIR: IMAGE exists in podman afterwards (or the caller exits).
ensure_base() {
        podman image exists "$1" && return 0
        local tarball="$2/debian-bookworm-slim.tar"
        [ -s "$tarball" ] || debootstrap_base "$1" "$tarball"
        say "importing $tarball as $1"
        podman import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
                --change 'CMD ["bash"]' "$tarball" "$1" >/dev/null
}

# debootstrap_base IMAGE TARBALL: a minbase bookworm trimmed as the official slim image is,
# written atomically to TARBALL (an interrupted run leaves no half tarball to import later).
debootstrap_base() {
        local mirror security dir lib
        lib=$(dirname "${BASH_SOURCE[0]}")
        mirror=$(python3 "$lib/apt_mirror.py" bookworm) || { say "no bookworm mirror in /etc/apt/sources.list*"; exit 1; }
        security=$(python3 "$lib/apt_mirror.py" bookworm-security || true)
        dir=$(mktemp -d /var/tmp/pyexec-base.XXXXXX)
        say "no $1 in podman: debootstrap --variant=minbase bookworm from $mirror"
        debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.log" 2>&1 ||
                { tail -n 30 "$dir.log" >&2; say "debootstrap failed (log: $dir.log)"; exit 1; }
        slim_config "$dir"
        {
                echo "deb $mirror bookworm main"
                echo "deb $mirror bookworm-updates main"
                [ -n "$security" ] && echo "deb $security bookworm-security main"
        } > "$dir/etc/apt/sources.list"
        slim_trim "$dir"
        mkdir -p "$(dirname "$2")"
        tar --numeric-owner -C "$dir" -cf "$2.tmp" .
        mv "$2.tmp" "$2"
        rm -rf "$dir" "$dir.log"
}

# slim_config ROOT: what makes the official image "slim" for packages installed later too: no
# documentation, manual pages or translations; no apt caches.
slim_config() {
        cat > "$1/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
        cat > "$1/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
CFG
}

# slim_trim ROOT: the same for what debootstrap installed already, plus this machine's traces
# (logs, package lists, resolv.conf, hostname).
slim_trim() {
        local dir=$1
        find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
        find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
        rm -rf "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/groff/* \
               "$dir"/usr/share/lintian/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
               "$dir"/var/lib/apt/lists/* "$dir"/var/log/*.log "$dir"/var/log/apt/*
        find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
        : > "$dir/etc/resolv.conf"
        rm -f "$dir/etc/hostname"
}
