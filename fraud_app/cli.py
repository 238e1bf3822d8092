"""`fraud-app [--db PATH] COMMAND`: see docs/cli.md."""
from __future__ import annotations

import argparse
import datetime as dt
import getpass
import ipaddress
import logging
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from . import __version__
from .config import ConfigError, Settings, load_settings, setup_logging

log = logging.getLogger("fraud_app.cli")
MIN_TOKEN_LENGTH = 32  # a token that can be guessed is no protection on an open network


class UsageError(ValueError):
    """Bad input on the command line; printed as one line."""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2018-04-01") from None


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{text} must be at least {least}")
    return value


def _positive(text: str) -> int:
    return _whole(text, 1)


def _non_negative(text: str) -> int:
    return _whole(text, 0)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (docs/cli.md), pointing at --help for the rest."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fraud-app", description="Payment fraud detection and case review.")
    parser.add_argument("--version", action="version", version=f"fraud-app {__version__}")
    parser.add_argument("--db", type=Path, help="DuckDB file (default: $FRAUD_APP_DB or data/fraud.duckdb)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="the analyst UI and the REST API on one server")
    p.add_argument("--address", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="TCP port (default 5006)")
    p.add_argument("--no-show", action="store_true", help="do not open a browser")
    p.add_argument("--allow-insecure", action="store_true",
                   help="allow a non-loopback address without an API token")
    p.add_argument("--prefix", help="URL path to serve under, e.g. /fraud behind a proxy (default: the root)")

    p = sub.add_parser("desktop", help="the app for one analyst: serve on this computer and open the browser")
    p.add_argument("--no-browser", action="store_true", help="only print the link to open")

    p = sub.add_parser("user", help="add a user who signs in to the UI, or change their password and role")
    users = p.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    p = users.add_parser("add", help="add NAME with a ROLE (viewer, analyst or lead); asks for the password")
    p.add_argument("name", help="the name they sign in with")
    p.add_argument("--role", required=True, choices=["viewer", "analyst", "lead"],
                   help="viewer: reads and downloads; analyst: also decides cases and labels payments; lead: also "
                        "imports, trains, promotes, sets thresholds, backs up and manages tokens")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--file", type=Path, help="the users file (default: $FRAUD_APP_UI_USERS, else users.json "
                                             "in the app's home)")

    p = sub.add_parser("generate", help="simulated card transactions with fraud labels")
    p.add_argument("--customers", type=_positive, default=5000, help="cards (default: %(default)s)")
    p.add_argument("--terminals", type=_positive, default=10000, help="terminals (default: %(default)s)")
    p.add_argument("--days", type=_positive, default=183, help="days simulated (default: %(default)s)")
    p.add_argument("--start", type=_date, default=dt.date(2018, 4, 1), help="first day (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed; the same seed gives the same data (default: %(default)s)")
    p.add_argument("--out", type=Path, help="write FILE.csv or FILE.parquet instead of loading the database")

    p = sub.add_parser("import", help="load a CSV or Parquet file, all-or-nothing")
    p.add_argument("file", type=Path, help="the CSV or Parquet file")
    p.add_argument("--map", nargs="+", action="extend", default=[], metavar="SOURCE=field",
                   help="map a file column to a transaction field, e.g. TX_AMOUNT=amount")
    p.add_argument("--skip-invalid", action="store_true", help="import the valid rows, report the rest")
    p.add_argument("--rejects", type=Path, metavar="FILE.csv", help="write every rejected row's reason here")

    p = sub.add_parser("train", help="train and backtest a model version; prints its test metrics as JSON")
    p.add_argument("--train-start", type=_date, help="first training day (default: 3 months before train-end)")
    p.add_argument("--train-end", type=_date, help="last training day (default: leaves room for the test)")
    p.add_argument("--delay-days", type=_non_negative, default=7, help="gap between training and test")
    p.add_argument("--test-days", type=_positive, default=7, help="days the test covers (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for sampling and the trees; the same data and seed give the same model "
                        "(default: %(default)s)")
    p.add_argument("--promote", action="store_true", help="make the new version the one in use")

    p = sub.add_parser("score", help="score stored transactions with the model in use")
    p.add_argument("--start", type=_date, help="first day (default: the first stored)")
    p.add_argument("--end", type=_date, help="last day, inclusive (default: the last stored)")
    p.add_argument("--out", type=Path, metavar="FILE.csv", help="write scores to a CSV instead of the database")

    p = sub.add_parser("export", help="the cases (score, decision, reasons, analyst, notes) as CSV")
    p.add_argument("--status", choices=["flagged", "fraud", "all"], default="flagged",
                   help="flagged: decision review or decline; fraud: labelled fraud; all: either, or decided by "
                        "an analyst (default: %(default)s)")
    p.add_argument("--start", type=_date, help="first day (default: the first stored)")
    p.add_argument("--end", type=_date, help="last day, inclusive (default: the last stored)")
    p.add_argument("--out", type=Path, metavar="FILE.csv", required=True, help="the CSV file to write")

    sub.add_parser("status", help="the database, its transactions, the model in use, the running job and server")

    p = sub.add_parser("token", help="named REST API tokens with scopes: create, list, revoke")
    tokens = p.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    t = tokens.add_parser("create", help="make a token; prints its secret, once, on stdout")
    t.add_argument("name", help="1 to 64 letters, digits, '.', '_' or '-'")
    # Checked by the app, not by argparse: an unknown scope is bad input (exit 1), as a bad name is.
    t.add_argument("--scope", action="append", required=True, metavar="SCOPE",
                   help="score, label or admin; repeat for more than one")
    tokens.add_parser("list", help="every token (never its secret): name, scopes, created, revoked")
    t = tokens.add_parser("revoke", help="refuse a token from now on")
    t.add_argument("name", help="the token's name")
    p = sub.add_parser("backup", help="back up the database and its model files into a new folder")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="the folder to put the backup in (default: $FRAUD_APP_BACKUP_DIR or <home>/backups)")

    p = sub.add_parser("restore", help="check a backup and rebuild the database and its model files from it")
    p.add_argument("backup", type=Path, metavar="BACKUP", help="the backup's folder (the one holding manifest.json)")
    # Here, as before the command: the database to create. SUPPRESS keeps a --db given before the command.
    p.add_argument("--db", type=Path, default=argparse.SUPPRESS, help="the database to create (default: as --db "
                   "before the command, $FRAUD_APP_DB or data/fraud.duckdb)")
    p.add_argument("--force", action="store_true", help="replace an existing database (kept as NAME.replaced-TIME)")
    return parser


@contextmanager
def console_progress(label: str) -> Iterator:
    """A progress bar on a terminal; plain log lines when output is piped."""
    from tqdm import tqdm

    bar = tqdm(total=100, desc=label, unit="%", disable=None, file=sys.stderr,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")
    last = [""]

    def update(fraction: float, message: str) -> None:
        bar.n = round(100 * min(max(fraction, 0.0), 1.0))
        bar.set_postfix_str(message)
        if message != last[0]:
            log.log(logging.INFO if bar.disable else logging.DEBUG, "%s: %3d%% %s", label, bar.n, message)
            last[0] = message

    try:
        yield update
    finally:
        bar.close()


def _actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def _beside(settings: Settings):
    """The running server that holds the database, when it published how a command reaches it; None otherwise,
    and the command opens the database itself (docs/one-process.md)."""
    from .local import find

    return find(settings.db_path, _actor())


def _day(day: dt.date | None, clamp: bool = False) -> str | None:
    """A date for the server. With `clamp`, a filter's date is brought within the dates a timestamp may have
    (store/limits.py), which selects the same transactions."""
    if day is None:
        return None
    if clamp:
        from .store import limits

        day = min(max(day, limits.EARLIEST.date()), limits.LATEST.date())
    return day.isoformat()


def _file_kind(path: Path) -> str:
    return "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"  # as write_table_file chooses


def _open_store(settings: Settings):
    from .store import Store, journal

    store = Store(settings.db_path)
    try:
        journal.replay(store)  # payments a stopped server answered and had not committed
    except BaseException:
        store.close()
        raise
    return store


def _open_app(settings: Settings):
    from .application import FraudApp

    return FraudApp(settings)


def cmd_generate(args, settings: Settings) -> int:
    import pyarrow.compute as pc

    from . import simulate
    from .store import insert_table, queries, write_table_file

    started = time.perf_counter()
    store = None
    if not args.out:  # check the target before spending time on generation
        store = _open_store(settings)
        if n := queries.transaction_count(store):
            raise UsageError(f"the database {settings.db_path} already holds {n:,} transactions; generate "
                             "loads only into an empty database (use --out FILE, or another --db)")
    with console_progress("generate") as progress:
        table = simulate.generate(customers=args.customers, terminals=args.terminals, days=args.days,
                                  start=args.start, seed=args.seed, progress=progress)
        if args.out:
            write_table_file(table, args.out)
        else:
            insert_table(store, table, source=f"generate --seed {args.seed}", actor=_actor())
    frauds = pc.sum(table.column("is_fraud")).as_py() or 0
    where = args.out or settings.db_path
    print(f"generated {table.num_rows:,} transactions ({frauds:,} fraud, "
          f"{100 * frauds / max(table.num_rows, 1):.2f}%) into {where} in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_import(args, settings: Settings) -> int:
    from .importer import parse_mapping

    mapping = parse_mapping(args.map)
    server = _beside(settings)
    app = None if server else _open_app(settings)
    with console_progress("import") as progress:
        if server:
            report = _import_through(server, args, mapping, progress)
        else:  # scoring is its own command here: `import` stays as fast as loading the file
            report = app.import_file(args.file, mapping, skip_invalid=args.skip_invalid, rejects_path=args.rejects,
                                     score=False, actor=_actor(), progress=progress)
    for line in report.lines():
        print(line, file=sys.stderr)
    if report.imported == 0 and report.rejected:
        print(f"error: nothing imported: {report.rejected:,} of {report.rows_read:,} rows are invalid "
              "(fix them, or use --skip-invalid)", file=sys.stderr)
        return 1
    print(f"imported {report.imported:,} rows from {args.file}; rejected {report.rejected:,}")
    return 0


def _import_through(server, args, mapping: dict[str, str], progress):
    """`import` through the running server, which reads the file from this host's disk."""
    from .importer import ImportReport
    from .local import ServerError
    from .store.ingest import Reject

    sent = str(args.file.absolute())  # the server does not share this command's working directory
    try:
        job = server.run("import", {"path": sent, "map": mapping, "skip_invalid": args.skip_invalid,
                                    "rejects": args.rejects is not None}, progress)
    except ServerError as exc:  # name the file as the user did
        raise ServerError(str(exc).replace(sent, str(args.file))) from None
    r = job["result"]
    written = args.rejects is not None and r["rejected"] > 0
    if written:
        server.download(job, args.rejects)
    return ImportReport(str(args.file), r["rows_read"], r["imported"], r["rejected"],
                        [Reject(**reject) for reject in r["sample"]], r["import_id"],
                        args.rejects if written else None, r["where"])


def cmd_train(args, settings: Settings) -> int:
    import json

    server = _beside(settings)
    app = None if server else _open_app(settings)
    with console_progress("train") as progress:
        if server:
            result = server.run("train", {
                "train_start": _day(args.train_start), "train_end": _day(args.train_end),
                "delay_days": args.delay_days, "test_days": args.test_days, "seed": args.seed,
                "promote": args.promote}, progress)["result"]
        else:
            result = app.train(train_start=args.train_start, train_end=args.train_end, delay_days=args.delay_days,
                               test_days=args.test_days, seed=args.seed, promote=args.promote, actor=_actor(),
                               progress=progress)
    print(json.dumps(result))
    return 0


def cmd_score(args, settings: Settings) -> int:
    if args.start and args.end and args.start > args.end:
        raise UsageError(f"--start {args.start} is after --end {args.end}")
    server = _beside(settings)
    app = None if server else _open_app(settings)
    with console_progress("score") as progress:
        if server:
            job = server.run("score", {"start": _day(args.start, clamp=True), "end": _day(args.end, clamp=True),
                                       "file": _file_kind(args.out) if args.out else None}, progress)
            if args.out:
                server.download(job, args.out)
            result = job["result"]
        else:
            result = app.score_stored(args.start, args.end, out=args.out, actor=_actor(), progress=progress)
    where = args.out or "the database"
    print(f"scored {result['scored']:,} transactions with {result['model_version']} "
          f"({result['flagged']:,} flagged) into {where} in {result['seconds']:.1f} s")
    return 0


def cmd_export(args, settings: Settings) -> int:
    if server := _beside(settings):
        job = server.run("export", {"status": args.status, "start": _day(args.start, clamp=True),
                                    "end": _day(args.end, clamp=True), "file": _file_kind(args.out)})
        server.download(job, args.out)
        n = job["result"]["rows"]
    else:
        n = _open_app(settings).export_cases(args.out, status=args.status, start=args.start, end=args.end)
    print(f"exported {n:,} {args.status} cases to {args.out}")
    return 0


def cmd_status(args, settings: Settings) -> int:
    server = _beside(settings)
    if server:
        status = server.status()
    else:
        app = _open_app(settings)
        try:
            status = app.status(actor=_actor())
        finally:
            app.close()
    job = status["job"]
    if job is None:
        doing = "none"
    else:
        state = (f"running, {100 * job['fraction']:.0f}% {job['message']}" if job["running"]
                 else f"failed: {job['error']}" if job["error"] else f"done in {_duration(job['seconds'])}")
        doing = f"{job['title']}, started by {job['actor']}: {state}"
    rows = [("database", status["database"]), ("transactions", f"{status['transactions']:,}"),
            ("model", status["model_version"] or "none in use"), ("job", doing),
            ("server", f"{server.url}, process {status['process']}, up {_duration(status['uptime_seconds'])}"
                       if server else "not running"), ("version", status["version"])]
    for name, value in rows:
        print(f"{name:<13} {value}")
    return 0


def _duration(seconds: float) -> str:
    """3 s, 4 min 05 s, 2 h 07 min, 3 d 4 h."""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def cmd_token(args, settings: Settings) -> int:
    app = _open_app(settings)
    try:
        if args.token_command == "create":
            secret = app.create_token(args.name, args.scope, actor=_actor())
            print(f"token {args.name} created; it is shown this once and stored only as a hash", file=sys.stderr)
            print(secret)
        elif args.token_command == "revoke":
            app.revoke_token(args.name, actor=_actor())
            print(f"token {args.name} revoked")
        else:
            _print_tokens(app.tokens(actor=_actor()))
    finally:
        app.close()
    return 0


def _print_tokens(rows: list[dict]) -> None:
    if not rows:
        print("no API tokens")
        return
    table = [("name", "scopes", "created", "by", "revoked")] + [
        (r["name"], ",".join(r["scopes"]), f"{r['created_at']:%Y-%m-%d %H:%M:%S}", r["created_by"] or "-",
         f"{r['revoked_at']:%Y-%m-%d %H:%M:%S}" if r["revoked_at"] else "-") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _named_tokens(settings: Settings) -> bool:
    """Whether a named API token was ever made in the database (revoked ones count: the API stays closed)."""
    from .store import tokens

    with _open_store(settings) as store:
        return bool(tokens.all_tokens(store))


def cmd_backup(args, settings: Settings) -> int:
    if server := _beside(settings):  # the server writes the backup, as its own OS user
        with console_progress("backup") as progress:
            done = server.run("backup", {"out": str(args.out.absolute()) if args.out else None}, progress)["result"]
        # The folder as the user named its parent, as without the server.
        folder = args.out / Path(done["folder"]).name if args.out else done["folder"]
        rows, models, size, missing = done["transactions"], done["model_files"], done["bytes"], done["missing_models"]
    else:
        app = _open_app(settings)
        try:
            with console_progress("backup") as progress:
                folder = app.backup(_actor(), dest=args.out, progress=progress)
        finally:
            app.close()
        from .backup import read_manifest

        manifest = read_manifest(folder) or {}
        rows, models = manifest.get("rows", {}).get("transactions", 0), len(manifest.get("models", []))
        size = sum(f["bytes"] for f in manifest.get("files", {}).values())
        missing = manifest.get("missing_models", [])
    print(f"backed up {settings.db_path} ({rows:,} transactions, {models} model files, {size / 1e6:,.1f} MB) "
          f"to {folder}")
    for name in missing:
        print(f"warning: model file {name} was missing, so it is not in the backup", file=sys.stderr)
    return 0


def cmd_restore(args, settings: Settings) -> int:
    from .backup import restore

    with console_progress("restore") as progress:
        done = restore(args.backup, settings.db_path, settings.models_root, force=args.force, actor=_actor(),
                       progress=progress)
    manifest = done["manifest"]
    print(f"restored {args.backup} (taken {manifest['created_at']}, {manifest['rows'].get('transactions', 0):,} "
          f"transactions) into {done['database']}, model files into {done['models_dir']}")
    if done["replaced"]:
        print(f"the database it replaced is kept as {done['replaced']}")
    return 0


def _check_bind(address: str, settings: Settings, allow_insecure: bool) -> None:
    try:
        loopback = address == "localhost" or ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = False
    # Named tokens are 256 random bits each and, once any exists, the API takes no request without a token;
    # a FRAUD_APP_API_TOKEN that is set must still be long, as it is a way in too.
    if settings.api_token:
        api_ok = len(settings.api_token) >= MIN_TOKEN_LENGTH
    else:
        api_ok = loopback or allow_insecure or _named_tokens(settings)  # the database is read only if it matters
    api_need = (f"FRAUD_APP_API_TOKEN of at least {MIN_TOKEN_LENGTH} characters"
                + ("" if settings.api_token else ", or a named token (fraud-app token create),") + " for the REST API")
    missing = [what for what, ok in ((api_need, api_ok),
                                     ("FRAUD_APP_UI_PASSWORD, FRAUD_APP_UI_USERS or FRAUD_APP_OIDC_ISSUER for the UI",
                                      settings.ui_password or settings.ui_users or settings.oidc_issuer)) if not ok]
    if not loopback and missing and not allow_insecure:
        raise UsageError(f"refusing to serve on {address} without authentication: set {' and '.join(missing)}, "
                         "or pass --allow-insecure if this network is trusted")


def cmd_serve(args, settings: Settings) -> int:
    _check_bind(settings.address, settings, args.allow_insecure)
    if settings.ui_users:
        from .users import UsersFileError, load

        try:
            load(settings.ui_users)  # no one could sign in with a missing or broken file: say so before starting
        except UsersFileError as exc:
            raise UsageError(f"FRAUD_APP_UI_USERS: {exc}") from None
    app = _open_app(settings)
    with console_progress("first start: demo data") as progress:
        app.ensure_demo_data(progress)
    with console_progress("first start: model") as progress:
        app.ensure_model(progress)
    app.start()
    from .ui.app import serve

    try:
        serve(app, show=not args.no_show)
    except KeyboardInterrupt:  # Ctrl-C: a stop like any other
        pass
    finally:
        app.close()  # what live scoring answered is committed, and the database let go
    return 0


def cmd_user(args, settings: Settings) -> int:
    from .users import UsersFileError, add

    path = args.file or settings.ui_users or settings.home / "users.json"
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise UsageError("the two passwords differ")
    try:
        new = add(path, args.name, password, args.role)
    except UsersFileError as exc:
        raise UsageError(str(exc)) from None
    print(f"{'added' if new else 'updated'} {args.name} ({args.role}) in {path}")
    if Path(path) != settings.ui_users:
        print(f"the UI uses it once FRAUD_APP_UI_USERS={path} is set", file=sys.stderr)
    return 0


def cmd_desktop(args, settings: Settings) -> int:
    from .desktop import main as desktop

    return desktop(settings, browser=not args.no_browser)


COMMANDS = {"user": cmd_user, "token": cmd_token, "desktop": cmd_desktop, "generate": cmd_generate,
            "import": cmd_import, "train": cmd_train, "score": cmd_score, "export": cmd_export, "serve": cmd_serve,
            "backup": cmd_backup, "restore": cmd_restore, "status": cmd_status}


def main(argv: Sequence[str] | None = None) -> int:
    from .importer import ImportFileError
    from .local import ServerError
    from .store import StoreError
    from .training import TrainingError

    args = build_parser().parse_args(argv)
    try:
        overrides = {"db": args.db, "address": getattr(args, "address", None), "port": getattr(args, "port", None),
                     "prefix": getattr(args, "prefix", None)}
        settings = load_settings(overrides)
        # One-shot commands print their own results; the console log is for the long-running server.
        setup_logging(settings, None if args.command in ("serve", "desktop") else "CRITICAL")
        return COMMANDS[args.command](args, settings)
    except (ConfigError, UsageError, ImportFileError, StoreError, TrainingError, ServerError, ValueError) as exc:
        log.debug("command failed", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: keep the traceback in the log, not on screen
        log.exception("unexpected failure in %s", args.command)
        print(f"error: unexpected {type(exc).__name__}: {exc} (details in the log)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
