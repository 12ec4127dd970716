"""The /execute request field `figures` of issue 13, end to end in both modes (base_url):
every matplotlib figure still open when main() returns, as PNG or SVG, in figure-number order.
The budget (files_max_bytes, figures_truncated) is tested in test_api_files.py against a service
with a small one; the other fields are in test_api_fields.py."""

import base64
import re
import time

import pytest

from helpers import assert_refused, post_execute

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_ok(base_url, script, **fields):
    status, _, body = post_execute(base_url, script, **fields)
    assert status == 200, (status, str(body)[:2000])
    assert isinstance(body, dict) and "result" in body, str(body)[:3000]
    return body


# ============================================================ figures

def decode_figures(body, media_type):
    figs = body["figures"]
    assert isinstance(figs, list), figs
    out = []
    for f in figs:
        assert set(f) == {"media_type", "base64"}, f
        assert f["media_type"] == media_type, f
        out.append(base64.b64decode(f["base64"], validate=True))
    return out


def png_size(data):
    assert data[:8] == PNG_MAGIC, data[:16]
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def svg_size(data):
    assert b"<svg" in data, data[:200]
    m = re.search(rb'viewBox="0 0 ([\d.]+) ([\d.]+)"', data)
    assert m, data[:500]
    return float(m.group(1)), float(m.group(2))


ONE_FIG = ("import matplotlib.pyplot as plt\ndef main():\n    plt.plot([1, 2, 3], [1, 4, 9])\n"
           "    plt.title('one')\n    return 'drawn'\n")
# Figure 2 is made first; the answer still lists figure 1 first. Figure 1 is wide, 2 is tall.
TWO_FIGS = ("import matplotlib.pyplot as plt\ndef main():\n"
            "    plt.figure(2, figsize=(2, 4), dpi=50)\n    plt.plot([1, 2])\n"
            "    plt.figure(1, figsize=(4, 2), dpi=50)\n    plt.plot([2, 1])\n"
            "    return plt.get_fignums()\n")


def test_figures_png_one(base_url):
    body = run_ok(base_url, ONE_FIG, figures="png")
    assert list(body) == ["result", "stdout", "figures"], list(body)
    assert body["result"] == "drawn" and body["stdout"] == ""
    (data,) = decode_figures(body, "image/png")
    w, h = png_size(data)
    assert w > 10 and h > 10, (w, h)


def test_figures_svg_one(base_url):
    body = run_ok(base_url, ONE_FIG, figures="svg")
    (data,) = decode_figures(body, "image/svg+xml")
    assert data.lstrip().startswith((b"<?xml", b"<svg")), data[:100]
    svg_size(data)
    assert b"</svg>" in data


def test_figures_png_two_in_number_order(base_url):
    body = run_ok(base_url, TWO_FIGS, figures="png")
    assert body["result"] == [1, 2]
    first, second = decode_figures(body, "image/png")
    (w1, h1), (w2, h2) = png_size(first), png_size(second)
    assert w1 > h1 and w2 < h2, ((w1, h1), (w2, h2))


def test_figures_svg_two_in_number_order(base_url):
    body = run_ok(base_url, TWO_FIGS, figures="svg")
    first, second = decode_figures(body, "image/svg+xml")
    (w1, h1), (w2, h2) = svg_size(first), svg_size(second)
    assert w1 > h1 and w2 < h2, ((w1, h1), (w2, h2))


def test_figures_closed_ones_are_not_returned(base_url):
    script = ("import matplotlib.pyplot as plt\ndef main():\n"
              "    for i in range(3):\n        plt.figure(figsize=(2 + i, 1), dpi=50)\n        plt.plot([i])\n"
              "    plt.close(2)\n    return plt.get_fignums()\n")
    body = run_ok(base_url, script, figures="png")
    assert body["result"] == [1, 3]
    a, b = decode_figures(body, "image/png")
    assert png_size(a)[0] < png_size(b)[0]


def test_figures_module_level_figure_counts(base_url):
    script = "import matplotlib.pyplot as plt\nfig = plt.figure()\nplt.plot([1])\ndef main():\n    return 0\n"
    body = run_ok(base_url, script, figures="png")
    assert len(decode_figures(body, "image/png")) == 1


@pytest.mark.parametrize("script", [
    "def main():\n    return 1\n",
    "import json\ndef main():\n    return 1\n",
    "import matplotlib\ndef main():\n    return 1\n",
    "import matplotlib.pyplot as plt\ndef main():\n    return 1\n",
    "import matplotlib.pyplot as plt\ndef main():\n    plt.plot([1])\n    plt.close('all')\n    return 1\n",
], ids=["nothing", "json", "matplotlib_only", "pyplot_no_figure", "all_closed"])
@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_figures_empty(base_url, script, fmt):
    body = run_ok(base_url, script, figures=fmt)
    assert body == {"result": 1, "stdout": "", "figures": []}
    assert list(body) == ["result", "stdout", "figures"]


def test_figures_plt_show_is_harmless(base_url):
    script = ("import matplotlib\nimport matplotlib.pyplot as plt\ndef main():\n    plt.plot([1, 2])\n"
              "    plt.show()\n    plt.show(block=True)\n    print('after show')\n"
              "    return matplotlib.get_backend().lower()\n")
    t0 = time.monotonic()
    body = run_ok(base_url, script, figures="png")
    assert time.monotonic() - t0 < 30
    assert body["result"] == "agg" and body["stdout"] == "after show\n", body
    (data,) = decode_figures(body, "image/png")
    png_size(data)


def test_figures_without_field_adds_nothing(base_url):
    body = run_ok(base_url, ONE_FIG)
    assert body == {"result": "drawn", "stdout": ""}


@pytest.mark.parametrize("value", ["jpg", "PNG", "Svg", "pdf", "", 1, None, True, ["png"], {"format": "png"}],
                         ids=["jpg", "PNG", "Svg", "pdf", "empty", "number", "null", "true", "array", "object"])
def test_figures_invalid_refused(base_url, value):
    msg = assert_refused(base_url, "", figures=value)
    assert "figures" in msg, msg
