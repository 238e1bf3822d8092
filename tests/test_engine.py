"""Training, backtest, registry and bulk scoring, through the real CLI and a real DuckDB file."""
import csv
import hashlib
import json

import numpy as np
import pytest

from conftest import add_skops_version, copy_of, models_of, one_line_error, run_cli
from fraud_app import registry, training
from fraud_app.features import FEATURE_NAMES
from fraud_app.store import Store, models

CONTRACT_METRICS = {"auc_roc", "average_precision", "card_precision_at_100", "recall_at_1pct_fpr"}


def test_train_prints_the_contract_json(trained):
    _, _, out = trained
    assert out["model_version"] == "v1" and out["promoted"] is True
    assert CONTRACT_METRICS <= out.keys()
    assert out["test_end"] > out["test_start"] > out["train_end"] > out["train_start"]
    assert 0.8 < out["auc_roc"] <= 1 and 0.3 < out["average_precision"] <= 1
    assert 0 <= out["card_precision_at_100"] <= 1 and 0 < out["recall_at_1pct_fpr"] <= 1
    assert out["thresholds"]["decline"] >= out["thresholds"]["review"]
    assert out["cost"] >= out["missed_fraud_amount"]


def test_score_out_writes_the_contract_csv(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    out = tmp_path / "scores.csv"
    result = run_cli(tmp_path, "--db", str(db), "score", "--start", "2018-05-20", "--end", "2018-05-26",
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    with Store(db) as s:
        expected = s.cursor().execute("SELECT count(*) FROM transactions WHERE timestamp >= '2018-05-20' "
                                      "AND timestamp < '2018-05-27'").fetchone()[0]
        assert s.cursor().execute("SELECT count(*) FROM scores").fetchone()[0] == 0  # --out stores nothing
    assert len(rows) == expected > 1000
    assert {"transaction_id", "fraud_probability", "risk_level", "decision", "reasons"} <= rows[0].keys()
    p = np.array([float(r["fraud_probability"]) for r in rows])
    assert ((0 <= p) & (p <= 1)).all() and p.max() > 0.5
    assert {r["risk_level"] for r in rows} <= {"low", "medium", "high"}
    assert {r["decision"] for r in rows} <= {"approve", "review", "decline"}
    flagged = [r for r in rows if r["decision"] != "approve"]
    assert flagged and all(r["reasons"].count(";") == 2 for r in flagged)
    # Fraud ranks high: the flagged rows hold far more fraud than the rest.
    with Store(db) as s:
        labels = dict(s.cursor().execute("SELECT transaction_id, is_fraud FROM transactions").fetchall())
    assert "is_fraud" not in rows[0]  # a score file never carries the label it is judged against
    fraud = np.array([labels[r["transaction_id"]] for r in rows])
    assert fraud[p >= np.quantile(p, 0.99)].mean() > 10 * fraud.mean()


def test_score_stores_every_transaction_with_reasons(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    result = run_cli(tmp_path, "--db", str(db), "score")
    assert result.returncode == 0, result.stderr
    with Store(db) as s:
        n, scored, versions = s.cursor().execute(
            "SELECT (SELECT count(*) FROM transactions), count(DISTINCT transaction_id), "
            "list(DISTINCT model_version) FROM scores").fetchone()
        flagged = [json.loads(r[0]) for r in s.cursor().execute(
            "SELECT reasons FROM scores WHERE decision <> 'approve'").fetchall()]
    assert n == scored and versions == ["v1"]
    # Flagged scores carry their top 3 reasons, strongest first; approvals are explained when opened.
    assert len(flagged) > 50
    assert all(len(r) == 3 and all(x["feature"] in FEATURE_NAMES for x in r) for r in flagged)
    assert all(r[0]["contribution"] >= r[1]["contribution"] >= r[2]["contribution"] for r in flagged)
    again = run_cli(tmp_path, "--db", str(db), "score")  # rescoring replaces, never duplicates
    with Store(db) as s:
        assert s.cursor().execute("SELECT count(*) FROM scores").fetchone()[0] == n
    assert again.returncode == 0


def test_tampered_model_file_is_refused(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    model_file = models_of(tmp_path, db) / "v1.lgbm.json"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    with Store(db) as s, pytest.raises(registry.ModelError, match="does not match its recorded sha256"):
        registry.load(s, model_file.parent)
    result = run_cli(tmp_path, "--db", str(db), "score")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "refusing to load it" in result.stderr


@pytest.mark.slow
def test_promote_and_rollback(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    second = run_cli(tmp_path, "--db", str(db), "train", "--seed", "2")
    assert second.returncode == 0 and json.loads(second.stdout)["promoted"] is False
    folder = models_of(tmp_path, db)
    with Store(db) as s:
        assert models.active_version(s)["version"] == "v1"
        registry.promote(s, folder, "v2", "tester")
        assert models.active_version(s)["version"] == "v2"
        assert registry.rollback(s, folder, "tester") == "v1"
        assert [v["status"] for v in registry.versions(s)] == ["active", "rolled_back"]
        with pytest.raises(registry.ModelError, match="no earlier model version"):
            registry.rollback(s, folder, "tester")
        row = models.get_version(s, "v2")
        assert row["sha256"] and row["metrics"]["average_precision"] > 0
        assert row["library_versions"]["lightgbm"] and row["features"] == FEATURE_NAMES


@pytest.mark.slow
def test_same_seed_same_model_metrics(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    again = run_cli(tmp_path, "--db", str(db), "train", "--seed", "1")
    first = trained[2]
    second = json.loads(again.stdout)
    assert {k: second[k] for k in CONTRACT_METRICS} == {k: first[k] for k in CONTRACT_METRICS}


def test_train_errors_are_one_line(tmp_path):
    result = run_cli(tmp_path, "--db", str(tmp_path / "none.duckdb"), "train")
    assert result.returncode == 1 and "holds no transactions" in result.stderr and "Traceback" not in result.stderr
    result = run_cli(tmp_path, "--db", str(tmp_path / "none.duckdb"), "score")
    assert result.returncode == 1 and "no model in use yet" in result.stderr


def test_card_precision_leaves_out_cards_caught_earlier():
    day = np.array(["d1"] * 3 + ["d2"] * 3)
    card = np.array(["a", "b", "c", "a", "b", "c"])
    y = np.array([1, 0, 0, 1, 1, 0])
    p = np.array([0.9, 0.1, 0.2, 0.9, 0.8, 0.1])
    # Day 1: top-1 is card a (fraud) -> 1.0. Day 2: a was caught, so top-1 is b (fraud) -> 1.0.
    assert training.card_precision_at_k(day, card, y, p, k=1) == 1.0
    # With k=2 on day 1: a (fraud), c (genuine) -> 0.5; day 2: b, c -> 0.5.
    assert training.card_precision_at_k(day, card, y, p, k=2) == 0.5
    assert training.recall_at_fpr(np.array([0, 0, 1, 1]), np.array([0.1, 0.9, 0.8, 0.95]), 0.0) == 0.5


def test_export_writes_the_cases_with_reasons_and_decisions(trained, tmp_path):
    from fraud_app.store import cases as store_cases

    db = copy_of(trained, tmp_path)
    result = run_cli(tmp_path, "--db", str(db), "export", "--out", str(tmp_path / "none.csv"))
    assert result.returncode == 0 and "exported 0 flagged cases" in result.stdout  # a model, but no scores yet
    assert run_cli(tmp_path, "--db", str(db), "score").returncode == 0
    with Store(db) as s:
        flagged_id = s.cursor().execute("SELECT transaction_id FROM scores WHERE decision <> 'approve' "
                                        "ORDER BY fraud_probability DESC LIMIT 1").fetchone()[0]
        store_cases.decide(s, [flagged_id], "confirmed_fraud", "ana", "matches the skimmer list")
        n_flagged = s.cursor().execute("SELECT count(*) FROM scores WHERE decision <> 'approve'").fetchone()[0]
    out = tmp_path / "cases.csv"
    result = run_cli(tmp_path, "--db", str(db), "export", "--status", "flagged", "--out", str(out))
    assert result.returncode == 0 and f"exported {n_flagged:,} flagged cases" in result.stdout
    rows = {r["transaction_id"]: r for r in csv.DictReader(out.open())}
    assert len(rows) == n_flagged
    decided = rows[flagged_id]
    assert decided["case_status"] == "confirmed_fraud" and decided["analyst"] == "ana"
    assert decided["note"] == "matches the skimmer list" and decided["reasons"].count(";") == 2
    assert {"fraud_probability", "decision", "reasons", "analyst", "note"} <= decided.keys()
    bad = run_cli(tmp_path, "--db", str(db), "export", "--status", "maybe", "--out", str(out))
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


@pytest.mark.slow
def test_two_databases_under_one_home_keep_their_own_model_files(trained, tmp_path):
    first = copy_of(trained, tmp_path)
    second = tmp_path / "other.duckdb"
    size = ["--customers", "300", "--terminals", "600", "--days", "60", "--seed", "5"]
    assert run_cli(tmp_path, "--db", str(second), "generate", *size).returncode == 0
    trained_second = run_cli(tmp_path, "--db", str(second), "train")
    assert trained_second.returncode == 0, trained_second.stderr
    assert json.loads(trained_second.stdout)["model_version"] == "v1"  # the same name as the first's v1
    assert models_of(tmp_path, first) != models_of(tmp_path, second)
    for db in (first, second):  # each still loads its own v1: neither file was overwritten
        result = run_cli(tmp_path, "--db", str(db), "score")
        assert result.returncode == 0, result.stderr


def test_a_model_saved_before_per_database_folders_still_loads(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    folder = models_of(tmp_path, db)
    (folder / "v1.lgbm.json").rename(tmp_path / "models" / "v1.lgbm.json")
    with Store(db) as s:
        assert registry.load(s, folder)[0] == "v1"


def test_a_model_file_is_json_with_lightgbm_text_and_round_trips(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    folder = models_of(tmp_path, db)
    saved = json.loads((folder / "v1.lgbm.json").read_text())
    assert saved["format"] == registry.FORMAT and saved["features"] == FEATURE_NAMES
    assert saved["model"].startswith("tree\n") and len(saved["calibration"]) == 2
    assert sorted(p.name for p in folder.iterdir()) == ["v1.lgbm.json"]  # no temporary file left behind
    with Store(db) as s:
        row = models.get_version(s, "v1")
        assert row["path"] == "v1.lgbm.json" and set(row["library_versions"]) == set(registry.LIBRARIES)
        _, detector = registry.load(s, folder, "v1")
    assert registry.dumps(detector) == (folder / "v1.lgbm.json").read_bytes()  # what it read is what was saved


def test_a_tampered_model_file_is_refused_before_it_is_parsed(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    model_file = models_of(tmp_path, db) / "v1.lgbm.json"
    saved = json.loads(model_file.read_text())
    with Store(db) as s:
        # Not JSON at all: parsing it first would fail with a JSON error instead.
        model_file.write_bytes(b"\x00{not json")
        with pytest.raises(registry.ModelError, match="does not match its recorded sha256") as refused:
            registry.load(s, model_file.parent, "v1")
        assert "JSON" not in str(refused.value) and "Expecting" not in str(refused.value)
        # Valid, loadable and plausible, but not what was recorded: a forged calibration.
        model_file.write_text(json.dumps(saved | {"calibration": [1.0, 5.0]}))
        with pytest.raises(registry.ModelError, match="v1: file .* does not match its recorded sha256"):
            registry.load(s, model_file.parent, "v1")


def test_a_model_file_this_version_cannot_read_is_a_clear_error(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    model_file = models_of(tmp_path, db) / "v1.lgbm.json"
    saved = json.loads(model_file.read_text())
    for change, message in [({"format": 2}, "format 2 is not 1"), ({"model": "tree\nnonsense"}, "LightGBM"),
                            ({"features": FEATURE_NAMES[:3]}, "takes 45 features, the file names 3")]:
        model_file.write_text(json.dumps(saved | change))
        with Store(db) as s:  # recorded as it is now, so the hash check passes and the content is judged
            s.cursor().execute("UPDATE model_versions SET sha256 = ? WHERE version = 'v1'",
                               [hashlib.sha256(model_file.read_bytes()).hexdigest()])
            with pytest.raises(registry.ModelError, match=f"model v1: cannot load .*{message}"):
                registry.load(s, model_file.parent, "v1")
    result = run_cli(tmp_path, "--db", str(db), "score")
    assert "cannot load" in one_line_error(result) and "takes 45 features" in result.stderr


def test_an_old_skops_model_still_loads_and_scores(trained, tmp_path):
    import lightgbm
    import skops.io as sio

    db = copy_of(trained, tmp_path)
    folder = models_of(tmp_path, db)
    with Store(db) as s:
        version = add_skops_version(s, folder)
        name, detector = registry.load(s, folder, version)
        registry.promote(s, folder, version, "tester")
    assert name == "v2" and isinstance(detector.model, lightgbm.Booster)
    assert detector.calibration == (0.9, -0.2) and detector.thresholds == {"review": 0.3, "decline": 0.8}
    classifier = sio.load(folder / "v2.skops", trusted=registry.TRUSTED_TYPES)["model"]
    X = np.random.default_rng(0).normal(size=(200, len(FEATURE_NAMES)))
    raw = classifier.predict(X, raw_score=True)
    np.testing.assert_allclose(detector.predict_proba(X), 1 / (1 + np.exp(-(0.9 * raw - 0.2))), rtol=1e-12)
    out = tmp_path / "old.csv"
    result = run_cli(tmp_path, "--db", str(db), "score", "--start", "2018-05-20", "--end", "2018-05-21",
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) > 100 and {r["model_version"] for r in rows} == {"v2"}
    assert all(r["reasons"].count(";") == 2 for r in rows)  # --out explains every row
