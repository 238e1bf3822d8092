"""The app in Chromium with payments stored at the very edges of the accepted dates."""
import pytest
import requests

from conftest import Server, copy_of, run_cli

pytestmark = pytest.mark.browser
EDGES = ("1970-01-01T00:00:00", "2099-12-31T23:59:59")


def test_investigate_opens_with_payments_at_the_edges_of_time(trained, tmp_path, watched):
    from fraud_app.store import Store

    page, errors = watched
    db = copy_of(trained, tmp_path)
    assert run_cli(tmp_path, "--db", str(db), "score").returncode == 0
    with Store(db) as store:
        tid, card, terminal = store.cursor().execute(
            "SELECT transaction_id, customer_id, terminal_id FROM transactions ORDER BY timestamp DESC LIMIT 1"
        ).fetchone()
    srv = Server(tmp_path, db)
    try:
        srv.wait()
        for i, when in enumerate(EDGES):  # scored and stored, so the all-transactions view holds them
            edge = {"transaction_id": f"edge-{i}", "timestamp": when, "customer_id": card, "terminal_id": terminal,
                    "amount": 75.0}
            assert requests.post(srv.url + "api/v1/score", json=edge, timeout=30).status_code == 200
        for _ in range(2):  # a second session too: a failed view must not have been cached for everyone
            page.goto(srv.url)
            page.get_by_role("button", name="Investigate").click()
            search = page.get_by_placeholder("id, then Enter")
            search.fill(tid)
            search.press("Enter")
            page.get_by_text(f"Transaction {tid}").first.wait_for(timeout=30_000)
            page.get_by_text("payments, newest first").first.wait_for(timeout=30_000)
            # Reasons, card, terminal and the all-transactions raster: each a Bokeh canvas.
            page.wait_for_function("() => { let n = 0; const walk = root => root.querySelectorAll('*').forEach("
                                   "e => { if (e.tagName === 'CANVAS') n++; if (e.shadowRoot) walk(e.shadowRoot); });"
                                   " walk(document); return n >= 4; }", timeout=30_000)
            search.fill("edge-1")  # the far-off payment itself opens too
            search.press("Enter")
            page.get_by_text("Transaction edge-1").first.wait_for(timeout=30_000)
            page.get_by_text("2099-12-31 23:59:59").first.wait_for(timeout=30_000)
    finally:
        log = srv.stop()
    assert "Traceback" not in log and "Supplied Image bounds" not in log, log[-3000:]
    assert errors == []
