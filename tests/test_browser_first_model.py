"""A server that starts without a model (too little data to train one) gets its first model from the UI, and
the REST API uses it at once: the application object tells live scoring, with no restart."""
import csv
import re

import pytest
import requests

from conftest import Server, run_cli

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _split(source, early, late, first_days: int) -> None:
    """The first `first_days` days of a generated file into `early`, the rest into `late`."""
    with open(source, newline="") as f:
        rows = list(csv.DictReader(f))
    start = min(r["timestamp"][:10] for r in rows)
    import datetime as dt

    cut = str(dt.date.fromisoformat(start) + dt.timedelta(days=first_days))
    for path, part in ((early, [r for r in rows if r["timestamp"][:10] < cut]),
                       (late, [r for r in rows if r["timestamp"][:10] >= cut])):
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(part)


def test_a_first_model_trained_in_the_ui_is_used_by_the_api_at_once(tmp_path, page):
    generated = tmp_path / "all.csv"
    size = ["--customers", "400", "--terminals", "800", "--days", "70", "--seed", "3"]
    assert run_cli(tmp_path, "generate", *size, "--out", str(generated)).returncode == 0
    early, late = tmp_path / "early.csv", tmp_path / "late.csv"
    _split(generated, early, late, first_days=10)
    db = tmp_path / "f.duckdb"
    assert run_cli(tmp_path, "--db", str(db), "import", str(early)).returncode == 0
    srv = Server(tmp_path, db)
    payment = {"transaction_id": "first-model-1", "timestamp": "2018-06-05T12:00:00", "customer_id": "C00011",
               "terminal_id": "T00100", "amount": 42.0}
    try:
        assert srv.wait("api/v1/health").status_code == 503  # ten days cannot train a model
        assert requests.post(srv.url + "api/v1/score", json=payment, timeout=30).status_code == 503
        page.goto(srv.url)
        page.get_by_role("button", name="Data").click()
        page.locator("input[type=file]").set_input_files(str(late))
        page.get_by_role("button", name="Import", exact=True).click()
        page.get_by_text("rows imported").wait_for(timeout=180_000)
        page.get_by_role("button", name="Model").click()
        page.get_by_role("button", name="Train new version").click()
        # The Data view, hidden now but still on the page, says its import "finished in" too.
        page.get_by_text(re.compile(r"^Training on .* finished in")).wait_for(timeout=300_000)
        scored = requests.post(srv.url + "api/v1/score", json=payment, timeout=30)
        health = requests.get(srv.url + "api/v1/health", timeout=30).json()
    finally:
        log = srv.stop()
    assert scored.status_code == 200, scored.text + log[-2000:]
    assert scored.json()["model_version"] == "v1" and health["model_version"] == "v1"
