"""Importing while the app runs (the Data view's path): all or nothing, scored at once, and history for
live scoring."""
from conftest import app_of, count, write
from fraud_app.features import FEATURE_NAMES
from fraud_app.importer import parse_record
from fraud_app.store import Store

HEADER = "transaction_id,timestamp,customer_id,terminal_id,amount\n"


def test_an_import_is_scored_and_becomes_live_history(trained, tmp_path):
    app = app_of(trained, tmp_path)
    app.start()
    store, live = app.store, app.live
    try:
        probe = parse_record({"transaction_id": "probe", "timestamp": "2018-06-15T12:00:00",
                              "customer_id": "C-NEW", "terminal_id": "T00001", "amount": 10}, "EUR")
        before = dict(zip(FEATURE_NAMES, live.engine.compute(probe)))["cust_count_1h"]
        rows = "".join(f"imp-{i},2018-06-15 11:{10 + i:02d}:00,C-NEW,T00001,{20 + i}\n" for i in range(6))
        steps = []
        report = app.import_file(write(tmp_path / "new.csv", HEADER + rows), actor="ana",
                                 progress=lambda f, m: steps.append(f))
        after = dict(zip(FEATURE_NAMES, live.engine.compute(probe)))["cust_count_1h"]
        [again] = live.score([parse_record({"transaction_id": "imp-0", "timestamp": "2018-06-15T11:10:00",
                                            "customer_id": "C-NEW", "terminal_id": "T00001", "amount": 20},
                                           "EUR")])
        scored = store.cursor().execute("SELECT count(*) FROM scores WHERE transaction_id LIKE 'imp-%' "
                                        "AND model_version = 'v1'").fetchone()[0]
        n = count(store)
    finally:
        app.close()
    assert report.imported == 6 and before == 0 and after == 6
    assert scored == 6 and steps == sorted(steps) and steps[-1] == 1.0
    assert again["model_version"] == "v1" and n == trained_count(trained) + 6  # a repeat is not stored again


def trained_count(trained) -> int:
    with Store(trained[1]) as store:
        return count(store)


def test_a_file_with_one_bad_row_imports_nothing_and_names_it(trained, tmp_path):
    rows = "ok-1,2018-06-15 11:00:00,C1,T1,5\nok-2,2018-06-15 11:01:00,C1,T1,-3\n"
    app = app_of(trained, tmp_path)
    with app.store as store:
        before = count(store)
        report = app.import_file(write(tmp_path / "bad.csv", HEADER + rows))
        assert count(store) == before
    assert report.imported == 0 and report.rejected == 1
    assert report.lines()[0].startswith("line 3: amount")


def test_the_loads_name_an_uploaded_file_and_list_a_refused_one_with_why(trained, tmp_path):
    from fraud_app.store import queries

    upload = tmp_path / "fraud_app-import-x1y2"  # where the Data view puts a file while it imports it
    upload.mkdir()
    good = write(upload / "june.csv", HEADER + "up-1,2018-06-15 11:00:00,C1,T1,5\n")
    bad = write(upload / "july.csv", HEADER + "up-2,2018-06-15 11:00:00,C1,T1,five\n")
    app = app_of(trained, tmp_path)
    try:
        assert app.import_file(good, actor="ana", source="june.csv").imported == 1
        assert app.import_file(bad, actor="ana", source="july.csv").rejected == 1
        newest = queries.imports(app.store)[:2]
    finally:
        app.close()
    assert [row[2:] for row in newest] == [
        ("july.csv", "ana", "refused", 0, 1, "1 of 1 rows are invalid: line 2: amount: is not a number (got 'five')"),
        ("june.csv", "ana", "imported", 1, 0, None)]
