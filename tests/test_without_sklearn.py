"""The app needs neither scikit-learn nor skops: with both made unimportable, it trains, scores, explains,
backtests and loads its models. Only a version saved in the older skops format cannot load then, and says so."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import add_skops_version, cli_env, copy_of, models_of, one_line_error, run_cli
from fraud_app.store import Store

BLOCK = 'import sys\nsys.modules["sklearn"] = None\nsys.modules["skops"] = None  # `import` of either now fails\n'

SCRIPT = BLOCK + '''
import json
from pathlib import Path

from fraud_app import backtest, registry, simulate
from fraud_app.application import FraudApp
from fraud_app.config import Settings
from fraud_app.importer import parse_record
from fraud_app.store import insert_table

home = Path(sys.argv[1])
app = FraudApp(Settings(home=home, db=home / "small.duckdb"))
insert_table(app.store, simulate.generate(customers=300, terminals=600, days=60, seed=5), "test")
trained = app.train(seed=1, actor="test")
scored = app.score_stored(actor="test")
flagged, approved = (app.store.cursor().execute(
    f"SELECT transaction_id FROM scores WHERE decision {op} 'approve' ORDER BY fraud_probability DESC").fetchone()[0]
    for op in ("<>", "="))
pr, roc = backtest.curves(app.backtest_scores("v1"))
app.start()  # live scoring loads the version in use from its file
[live] = app.score([parse_record({"transaction_id": "live-1", "timestamp": "2018-05-30T10:00:00",
                                  "customer_id": "C00007", "terminal_id": "T00042", "amount": 25.0}, "EUR")])
version, detector = registry.load(app.store, app.models_dir, "v1")
print(json.dumps({
    "trained": trained, "scored": scored["scored"], "explained": [app.explain(flagged), app.explain(approved)],
    "curves": [len(pr), len(roc)], "live": live, "loaded": version, "model": type(detector.model).__name__,
    "file": sorted(p.name for p in app.models_dir.iterdir()),
    "imported": sorted(m for m, v in sys.modules.items() if v is not None and m.split(".")[0] in ("sklearn", "skops")),
}, default=str))
app.close()
'''


def _blocked(tmp_path: Path) -> dict[str, str]:
    """cli_env's extras for a process in which scikit-learn and skops cannot be imported: a sitecustomize
    that blocks them, first on PYTHONPATH."""
    folder = tmp_path / "no-sklearn"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(BLOCK)
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)}


@pytest.mark.slow
def test_train_score_explain_and_load_without_scikit_learn_or_skops(tmp_path):
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                            timeout=300, env=cli_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["imported"] == []
    trained = out["trained"]
    assert trained["model_version"] == "v1" and trained["promoted"] is True
    assert 0.8 < trained["auc_roc"] <= 1 and 0.3 < trained["average_precision"] <= 1
    assert 0 < trained["recall_at_1pct_fpr"] <= 1
    assert trained["thresholds"]["decline"] >= trained["thresholds"]["review"]
    assert out["scored"] > 10000 and min(out["curves"]) >= 2
    for reasons in out["explained"]:  # a flagged and an approved payment, strongest reason first
        assert [r["contribution"] for r in reasons] == sorted((r["contribution"] for r in reasons), reverse=True)
        assert len(reasons) == 3 and all(r["text"] for r in reasons)
    assert out["live"]["model_version"] == "v1" and 0 <= out["live"]["fraud_probability"] <= 1
    assert out["loaded"] == "v1" and out["model"] == "Booster" and out["file"] == ["v1.lgbm.json"]


def test_an_old_skops_model_without_skops_says_to_train_a_new_version(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    folder = models_of(tmp_path, db)
    with Store(db) as s:
        add_skops_version(s, folder)
        s.cursor().execute("UPDATE model_versions SET status = CASE version WHEN 'v2' THEN 'active' ELSE 'retired' END")
    blocked = _blocked(tmp_path)
    check = subprocess.run([sys.executable, "-c", "import skops.io"], capture_output=True, text=True,
                           env=cli_env(tmp_path, **blocked))
    assert check.returncode == 1 and "No module named 'skops.io'" in check.stderr  # the blocking works
    error = one_line_error(run_cli(tmp_path, "--db", str(db), "score", **blocked))
    assert "model v2" in error and "skops format" in error and "train a new version" in error
    with Store(db) as s:  # back to the version in the new format: it loads and scores there
        s.cursor().execute("UPDATE model_versions SET status = CASE version WHEN 'v1' THEN 'active' ELSE 'retired' END")
    result = run_cli(tmp_path, "--db", str(db), "score", "--start", "2018-05-20", "--end", "2018-05-20", **blocked)
    assert result.returncode == 0, result.stderr
