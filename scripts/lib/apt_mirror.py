#!/usr/bin/python3
"""apt_mirror.py SUITE — print the first Debian mirror apt uses for SUITE (bookworm,
bookworm-security, ...), from /etc/apt/sources.list, sources.list.d/*.list (one-line form) or
sources.list.d/*.sources (deb822 form); exit 1 when none has it.

scripts/lib/debian-base.sh debootstraps the image's base from it when no registry is reachable,
so the base comes from the same mirror as this machine's own packages.
"""
import glob
import re
import sys

SOURCES = "/etc/apt/sources.list"


def source_files():
    """The files apt reads, in apt's order: sources.list, then sources.list.d by name."""
    return [SOURCES] + sorted(glob.glob(SOURCES + ".d/*.list")) + sorted(glob.glob(SOURCES + ".d/*.sources"))


def deb822_mirror(text, suite):
    """The first URI of an enabled `Types: deb` stanza that lists the suite, or None."""
    for stanza in re.split(r"\n\s*\n", text):
        fields = {}
        for line in stanza.splitlines():
            if line.startswith(("#", " ", "\t")) or ":" not in line:
                continue  # comments and continuation lines: no field apt_mirror needs spans lines
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.split()
        if "deb" in fields.get("types", []) and suite in fields.get("suites", []) \
                and fields.get("enabled", ["yes"])[0] != "no" and fields.get("uris"):
            return fields["uris"][0]
    return None


def one_line_mirror(text, suite):
    """The URI of the first `deb URI SUITE ...` line (options in [...] dropped), or None."""
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
            return words[1]
    return None


def main(suite):
    for path in source_files():
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        mirror = (deb822_mirror if path.endswith(".sources") else one_line_mirror)(text, suite)
        if mirror:
            print(mirror)
            return 0
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
