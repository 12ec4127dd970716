/* inventory.c — what a script finds installed: the Python version and the versions of the
 * packages it may import, as seen from inside a sandbox (GET /runtime publishes them).
 *
 * Asked of a sandbox rather than of the host's Python because that is the only view that
 * counts: the sandbox binds /usr/lib read-only but not /usr/local, and runs python3 -I, so a
 * package installed by pip on the host, or a different interpreter, must not be announced. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "sandbox.h"

/* Distribution name -> module name, for the libraries the README promises and what they
 * bring along that a script is likely to import itself. Distributions that are not installed
 * are left out of the answer. Debian ships a few with "0.0.0" as their metadata's version
 * (kiwisolver, mpmath in bookworm); for those the module's own __version__ is asked, which is
 * why the module names are here at all. */
static const char inventory_script[] =
        "import importlib, platform\n"
        "from importlib import metadata\n"
        "NAMES = {\n"
        "    'numpy': 'numpy', 'pandas': 'pandas', 'scipy': 'scipy', 'scikit-learn': 'sklearn',\n"
        "    'matplotlib': 'matplotlib', 'seaborn': 'seaborn', 'requests': 'requests',\n"
        "    'joblib': 'joblib', 'threadpoolctl': 'threadpoolctl', 'python-dateutil': 'dateutil',\n"
        "    'pytz': 'pytz', 'Pillow': 'PIL', 'contourpy': 'contourpy', 'cycler': 'cycler',\n"
        "    'fonttools': 'fontTools', 'kiwisolver': 'kiwisolver', 'pyparsing': 'pyparsing',\n"
        "    'packaging': 'packaging', 'urllib3': 'urllib3', 'certifi': 'certifi', 'idna': 'idna',\n"
        "    'charset-normalizer': 'charset_normalizer', 'chardet': 'chardet', 'PyYAML': 'yaml',\n"
        "    'sympy': 'sympy', 'mpmath': 'mpmath', 'six': 'six',\n"
        "}\n"
        "def version(dist, module):\n"
        "    v = metadata.version(dist)\n"
        "    if v == '0.0.0':\n"
        "        try:\n"
        "            v = str(getattr(importlib.import_module(module), '__version__', v))\n"
        "        except Exception:\n"
        "            pass\n"
        "    return v\n"
        "def main():\n"
        "    packages = {}\n"
        "    for dist in sorted(NAMES, key=str.lower):\n"
        "        try:\n"
        "            packages[dist.lower()] = version(dist, NAMES[dist])\n"
        "        except metadata.PackageNotFoundError:\n"
        "            pass\n"
        "    return {'python': platform.python_version(), 'packages': packages}\n";

int sb_inventory(const struct sb_config *cfg, struct sbuf *json, char *err, size_t errlen)
{
        /* Cold, as sb_probe(): the master that calls this starts no interpreters of its own. */
        struct sb_outcome out;
        struct sb_job job = { .script = inventory_script, .script_len = sizeof(inventory_script) - 1 };
        int r = sb_run_cold_once(cfg, &job, &out, err, errlen);
        if (r < 0)
                return r;
        if (out.status != SB_OK) {
                snprintf(err, errlen, "the inventory script failed: %s: %.200s", sb_status_kind(out.status),
                         out.message.data ? out.message.data : "");
                r = -EIO;
        } else if (sbuf_append(json, out.result.data, out.result.len) < 0) {
                snprintf(err, errlen, "out of memory");
                r = -ENOMEM;
        }
        sb_outcome_free(&out);
        return r;
}
