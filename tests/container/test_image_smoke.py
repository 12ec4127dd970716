"""Every library the README promises, used for real inside the sandbox of the container image.

The image leaves out pythran and the packages' own test suites (see the Dockerfile); this shows
nothing a script needs went with them. Run by scripts/image-test.sh against the container it
started (PYEXEC_URL); see conftest.py.
"""
from helpers import post_execute

SCRIPT = r"""
import io
import numpy as np, pandas as pd, requests
import scipy.optimize, scipy.stats, scipy.linalg, scipy.sparse, scipy.signal, scipy.interpolate
import sklearn.linear_model, sklearn.ensemble, sklearn.cluster, sklearn.model_selection
import matplotlib
import matplotlib.pyplot as plt
import seaborn as sns

def main():
    x = np.linspace(0, 1, 50)
    y = 3 * x + 1
    fit = sklearn.linear_model.LinearRegression().fit(x.reshape(-1, 1), y)
    forest = sklearn.ensemble.RandomForestClassifier(n_estimators=5, random_state=0).fit(
        np.c_[x, x ** 2], (x > 0.5).astype(int))
    labels = sklearn.cluster.KMeans(n_clusters=2, n_init=2, random_state=0).fit_predict(np.c_[x, y])
    root = scipy.optimize.brentq(lambda t: t * t - 2, 0, 2)
    df = pd.DataFrame({"x": x, "y": y})
    fig, ax = plt.subplots()
    sns.lineplot(data=df, x="x", y="y", ax=ax)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return {
        "slope": round(float(fit.coef_[0]), 6),
        "forest": int(forest.predict([[0.9, 0.81]])[0]),
        "clusters": len(set(labels.tolist())),
        "root": round(root, 6),
        "norm": round(float(scipy.stats.norm.cdf(0)), 6),
        "det": round(float(scipy.linalg.det(np.eye(3) * 2)), 6),
        "png": buf.getvalue()[:4] == b"\x89PNG",
        "backend": matplotlib.get_backend().lower(),
        "requests": requests.__name__,
        "mean": float(df["y"].mean()),
    }
"""

# What SCRIPT returns when every library works: exact, as each value is rounded or discrete.
WANT = {"slope": 3.0, "forest": 1, "clusters": 2, "root": 1.414214, "norm": 0.5, "det": 8.0, "png": True,
        "backend": "agg", "requests": "requests", "mean": 2.5}


def test_libraries_work_in_the_sandbox(image_url):
    """numpy, pandas, scipy, sklearn, matplotlib, seaborn, requests: imported and used — by the
    pool's largest warm interpreter, which in the least-privileged container imports without a
    /tmp of its own (no CAP_SYS_ADMIN: its caches go to a private directory instead)."""
    status, headers, body = post_execute(image_url, SCRIPT, timeout=60)
    assert status == 200, body
    assert body.get("result") == WANT, f"library smoke test: got {body}"
    for _ in range(3):  # the first request may come before the interpreter has imported
        if headers.get("x-pyexec-interpreter", "").startswith("warm:numpy pandas scipy"):
            break
        status, headers, body = post_execute(image_url, SCRIPT, timeout=60)
    assert headers.get("x-pyexec-interpreter") == "warm:numpy pandas scipy sklearn matplotlib seaborn requests", headers
