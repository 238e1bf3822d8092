"""Hostile text in a real browser: ids, categories, file names, notes, user names and error texts that carry
HTML, Markdown or TeX must show as the text they are, and never run or insert anything."""
import csv
import datetime as dt
import json
import urllib.parse
from pathlib import Path

import pytest
import requests

from conftest import CASE_ROWS, QUEUE_ROWS, note_box, Server, copy_of, run_cli
from fraud_app import registry
from fraud_app.store import Store

# Each payload sets window.__xss, or opens a dialog, if it ever runs; none may. Quoted attributes: Markdown takes
# `<img src=x onerror=window.__xss=1>` for text (an unquoted value may not hold "="), but this for HTML.
HOSTILE = ['<img src=x onerror="window.__xss=1">', "<script>window.__xss=2</script>", '"><svg onload="window.__xss=3">',
           "[x](javascript:window.__xss=4)", "*a* _b_ `c` $$d$$ \\(e\\) &amp; # f", "<img src=x onerror=alert(7)>"]
NOTE = '<img src=x onerror="window.__xss=5"> card stolen'
UNKNOWN = '<img src=x onerror="window.__xss=6"> nowhere'
PER_CARD = 150  # more alerts than any generated card or terminal has in a month: the Overview's tops list them

# What ran or was inserted, looking inside every shadow root (Panel renders each component in one).
INJECTED = """() => {
  const found = [];
  const walk = root => root.querySelectorAll('*').forEach(e => {
    const tag = e.localName;
    if ((tag === 'img' && e.getAttribute('src') === 'x') || (tag === 'svg' && e.hasAttribute('onload'))
        || (tag === 'script' && e.textContent.includes('__xss'))
        || [...e.attributes].some(a => (a.name.startsWith('on') && /__xss|alert/.test(a.value))
                                      || /^\\s*javascript:/i.test(a.value)))
      found.push(e.outerHTML.slice(0, 200));
    if (e.shadowRoot) walk(e.shadowRoot);
  });
  walk(document);
  return {ran: window.__xss === undefined ? null : String(window.__xss), found};
}"""


def inert(page, dialogs: list) -> None:
    assert page.evaluate(INJECTED) == {"ran": None, "found": []}
    assert dialogs == []


def shows(page, text: str, timeout: float = 30_000) -> None:
    """`text` is on screen as text (Playwright's text locators look inside shadow roots; views out of sight and
    hidden columns hold text too)."""
    page.get_by_text(text, exact=False).filter(visible=True).first.wait_for(timeout=timeout)


@pytest.fixture
def guarded(page):
    """The page, with every dialog (dismissed) and every console or page error collected."""
    dialogs, errors = [], []

    def dialog(d):
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, dialogs, errors


def _payments(last: dt.datetime) -> list[dict]:
    rows = []
    for i, text in enumerate(HOSTILE):
        for k in range(PER_CARD):
            rows.append({"transaction_id": text if k == 0 else f"{text} {k}",
                         "timestamp": (last - dt.timedelta(minutes=k + 1)).isoformat(),
                         "customer_id": text, "terminal_id": text, "merchant_category": text, "channel": "online",
                         # the first of each card tops the queue sorted by amount
                         "amount": 900_000 + i if k == 0 else 10 + k})
    return rows


@pytest.fixture(scope="module")
def app(trained, tmp_path_factory):
    """A served app holding hostile payments (posted through the API), every payment an alert."""
    tmp = tmp_path_factory.mktemp("hostile")
    db = copy_of(trained, tmp)
    assert run_cli(tmp, "--db", str(db), "score").returncode == 0
    with Store(db) as store:
        registry.set_thresholds(store, "v1", 0.0, 1.0, "test")
        last = store.cursor().execute("SELECT max(timestamp) FROM transactions").fetchone()[0]
    (tmp / "tmp").mkdir()
    srv = Server(tmp, db, TMPDIR=str(tmp / "tmp"))
    srv.temp = tmp / "tmp"
    try:
        srv.wait("api/v1/health")
        posted = requests.post(srv.url + "api/v1/score", json={"transactions": _payments(last)}, timeout=300)
        assert posted.status_code == 200, posted.text
        labelled = requests.post(srv.url + "api/v1/labels", timeout=30,
                                 json={"transaction_id": HOSTILE[1], "is_fraud": True, "source": HOSTILE[4]})
        assert labelled.status_code in (200, 201), labelled.text
        yield srv
    finally:
        srv.stop()


def _view(page, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click()


def _investigate(page, transaction_id: str) -> None:
    box = page.get_by_placeholder("id, then Enter")
    box.fill(transaction_id)
    box.press("Enter")


@pytest.mark.browser
def test_hostile_payments_are_text_in_every_view(app, guarded):
    page, dialogs, errors = guarded
    page.goto(app.url)
    shows(page, "Cards with the most alerts")
    for text in HOSTILE:  # the hostile cards and terminals top the Overview's tables
        shows(page, text)
    inert(page, dialogs)

    _view(page, "Review queue")
    page.get_by_text("Page 1 of").wait_for(timeout=60_000)
    page.get_by_label("Sort").select_option(label="amount at risk")
    first = page.locator(QUEUE_ROWS).first.locator("[tabulator-field=Card]")
    first.filter(has_text=HOSTILE[-1]).wait_for(timeout=60_000)  # the most at risk
    for text in HOSTILE:
        shows(page, text)
    inert(page, dialogs)
    page.locator(QUEUE_ROWS).filter(has=page.locator("[tabulator-field=Card]", has_text=HOSTILE[0])).first.click()
    shows(page, f"card {HOSTILE[0]}")
    row = page.locator(CASE_ROWS).filter(
        has=page.locator("[tabulator-field=Transaction]").get_by_text(HOSTILE[0], exact=True)).first
    row.locator("input[type=checkbox]").check(timeout=60_000)
    note_box(page).fill(NOTE)
    page.get_by_role("button", name="Confirm fraud").click()
    page.get_by_text("1 alert marked confirmed fraud.").wait_for(timeout=60_000)
    shows(page, NOTE)  # on the case's thread
    inert(page, dialogs)

    # A click on an alert's id opens it in Investigate.
    row.locator("[tabulator-field=Transaction]").click()
    shows(page, f"Transaction {HOSTILE[0]}")
    shows(page, f"Card {HOSTILE[0]}: payments, newest first")
    inert(page, dialogs)
    for text in HOSTILE[:3] + HOSTILE[4:]:
        _investigate(page, text)
        shows(page, f"Transaction {text}")
        shows(page, f"Card {text}: payments, newest first")
        inert(page, dialogs)
    _investigate(page, HOSTILE[0])
    shows(page, NOTE)  # the case's note, and the label the decision implies
    _investigate(page, HOSTILE[1])
    shows(page, f"fraud by {HOSTILE[4]}")  # a label posted with a hostile source
    _investigate(page, UNKNOWN)
    shows(page, f"No transaction with id {UNKNOWN}")
    inert(page, dialogs)

    _view(page, "Model")
    page.get_by_text("Threshold simulator").first.wait_for(timeout=30_000)
    inert(page, dialogs)
    _view(page, "Monitoring")
    page.get_by_text("Score PSI").first.wait_for(timeout=120_000)  # drift computes in the background
    inert(page, dialogs)
    _view(page, "Data")
    page.get_by_text("Labelled fraud").first.wait_for(timeout=30_000)
    inert(page, dialogs)
    assert errors == []


def _csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["transaction_id", "timestamp", "customer_id", "terminal_id", "amount",
                                  "merchant_category"], *rows])
    return path


def _upload(page, path: Path) -> None:
    page.locator("input[type=file]").set_input_files(str(path))
    page.get_by_role("button", name="Import", exact=True).click()


@pytest.mark.browser
def test_hostile_file_names_and_cells_in_the_data_view(app, guarded, tmp_path):
    page, dialogs, errors = guarded
    refused = _csv(tmp_path / '<img src=x onerror="window.__xss=7">.csv',
                   [["h-1", "2018-06-15 10:00:00", "C1", "T1", '<svg onload="window.__xss=8">', "grocery"]])
    good = _csv(tmp_path / '"><svg onload="window.__xss=9">.csv',
                [[f"h-{i}", f"2018-06-15 10:0{i}:00", text, text, "5", text] for i, text in enumerate(HOSTILE)])
    page.goto(app.url)
    _view(page, "Data")
    page.get_by_text("Labelled fraud").first.wait_for(timeout=30_000)
    _upload(page, refused)
    shows(page, f"nothing imported from {refused.name}", timeout=60_000)
    shows(page, '''(got '<svg onload="window.__xss=8">')''')  # the refused cell, in the job's error
    inert(page, dialogs)
    _upload(page, good)
    shows(page, f"Importing {good.name} finished", timeout=60_000)
    shows(page, good.name)  # in the load history
    inert(page, dialogs)
    assert errors == []
    assert not [p for p in app.temp.iterdir() if p.name.startswith("fraud_app-import-")]


@pytest.mark.browser
def test_a_file_over_the_upload_limit_is_refused_and_the_session_goes_on(app, guarded, tmp_path):
    page, dialogs, errors = guarded
    big = tmp_path / "big.csv"
    with open(big, "w") as f:  # 16 MB: past the limit, and past what one websocket message may carry
        f.write("transaction_id,timestamp,customer_id,terminal_id,amount\n")
        line = "b-{:09d},2018-06-15 10:00:00,C1,T1,5.00" + " " * 40 + "\n"
        f.writelines(line.format(i) for i in range(16_000_000 // len(line.format(0))))
    small = _csv(tmp_path / "small.csv", [["s-1", "2018-06-15 11:00:00", "C1", "T1", "7", "grocery"]])
    page.goto(app.url)
    _view(page, "Data")
    page.get_by_text("Labelled fraud").first.wait_for(timeout=30_000)
    page.locator("input[type=file]").set_input_files(str(big))
    shows(page, "big.csv is 16 MB, over the 10 MB limit for files imported here")
    shows(page, "Import it on the server with the command fraud-app import FILE")
    _upload(page, small)  # the same session imports a file within the limit
    shows(page, "Importing small.csv finished", timeout=60_000)
    shows(page, "1 rows imported")
    inert(page, dialogs)
    assert errors == []


HOSTILE_USER = '<img src=x onerror="window.__xss=10">'


@pytest.fixture(scope="module")
def signed(trained, tmp_path_factory):
    """A served app behind Panel's login, with a user whose name is hostile, taking uploads up to 50 kB."""
    tmp = tmp_path_factory.mktemp("signed")
    users = tmp / "users.json"
    users.write_text(json.dumps({HOSTILE_USER: "pw-1", "ana": "s3cret"}))
    (tmp / "tmp").mkdir()
    srv = Server(tmp, copy_of(trained, tmp), FRAUD_APP_UI_USERS=str(users), TMPDIR=str(tmp / "tmp"),
                 FRAUD_APP_UPLOAD_MAX_BYTES="50000")
    srv.temp = tmp / "tmp"
    try:
        srv.wait("login")
        yield srv
    finally:
        srv.stop()


def _sign_in(page, url: str, user: str, password: str) -> None:
    page.goto(url)
    page.get_by_placeholder("user name").fill(user)
    page.get_by_placeholder("password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.browser
def test_the_login_page_shows_only_its_own_messages(signed, guarded):
    page, dialogs, errors = guarded
    for given in (HOSTILE[0], "Your account is locked: call +1 555 0100 now"):
        page.goto(signed.url + "login?error=" + urllib.parse.quote(given))
        page.get_by_role("button", name="Sign in").wait_for()
        assert page.locator(".error").inner_text().strip() == ""
        assert page.get_by_text(given.split()[0], exact=False).count() == 0
        inert(page, dialogs)
    _sign_in(page, signed.url, "ana", "wrong")
    page.get_by_text("Wrong user name or password.").wait_for(timeout=30_000)
    _sign_in(page, signed.url, "ana", "again wrong")  # a second failure: still the one message
    assert page.locator(".error").inner_text().strip() == "Wrong user name or password."
    inert(page, dialogs)
    assert errors == []


@pytest.mark.browser
def test_a_hostile_user_name_in_the_job_line_and_an_import_refused_while_busy(signed, guarded, tmp_path):
    page, dialogs, errors = guarded
    good = _csv(tmp_path / "later.csv", [["l-1", "2018-06-15 11:00:00", "C1", "T1", "7", "grocery"]])
    _sign_in(page, signed.url, HOSTILE_USER, "pw-1")
    shows(page, f"Signed in as {HOSTILE_USER}")
    inert(page, dialogs)
    _view(page, "Data")
    page.get_by_text("Labelled fraud").first.wait_for(timeout=30_000)
    page.locator("input[type=file]").set_input_files(str(good))
    import_button = page.get_by_role("button", name="Import", exact=True)
    _view(page, "Model")
    page.get_by_role("button", name="Train new version").click()
    shows(page, f"({HOSTILE_USER}):")  # the job line names who started it
    inert(page, dialogs)
    _view(page, "Data")
    import_button.click()
    shows(page, "Cannot import now: Training on")
    shows(page, f"started by {HOSTILE_USER}")
    inert(page, dialogs)
    assert not [p for p in signed.temp.iterdir() if p.name.startswith("fraud_app-import-")]
    _view(page, "Model")
    page.get_by_text("finished in").first.wait_for(timeout=240_000)
    inert(page, dialogs)
    assert errors == []


@pytest.mark.browser
def test_the_upload_limit_is_a_setting(signed, guarded, tmp_path):
    page, dialogs, errors = guarded
    over = tmp_path / "over.csv"
    over.write_text("transaction_id,timestamp,customer_id,terminal_id,amount\n"
                    + "".join(f"o-{i:05d},2018-06-15 10:00:00,C1,T1,5\n" for i in range(2_000)))  # 72,056 bytes
    _sign_in(page, signed.url, "ana", "s3cret")
    _view(page, "Data")
    shows(page, "file of up to 50 kB")
    page.locator("input[type=file]").set_input_files(str(over))
    shows(page, "over.csv is 72.1 kB, over the 50 kB limit for files imported here")
    assert page.get_by_role("button", name="Import", exact=True).is_disabled()
    inert(page, dialogs)
    assert errors == []
