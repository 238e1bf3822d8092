"""Model versions on disk (files under models/) and in the model_versions table.

A version is one file, `vN.lgbm.json`: JSON with a format number, LightGBM's own model text, the feature
names, the calibration and the thresholds. Nothing in it is code, and nothing in it is read before the
file's sha256 matches its row: a swapped or edited file is refused before it is parsed.

Versions saved before this format are `vN.skops` files. They still load, after the same hash check, with
skops and an explicit list of trusted types, where skops and scikit-learn are installed (they are not
needed otherwise); elsewhere loading one fails with a ModelError that says to train a new version.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import logging
import math
from pathlib import Path
from typing import Any

from .detector import Detector
from .store import Store, StoreError, models

log = logging.getLogger(__name__)

FORMAT = 1  # of the .lgbm.json files; a reader refuses any other
SUFFIX = ".lgbm.json"
# Types outside skops' default trust that the old .skops files contain. Nothing else is ever loaded from them.
TRUSTED_TYPES = ["collections.OrderedDict", "lightgbm.basic.Booster", "lightgbm.sklearn.LGBMClassifier"]
# What decides whether a saved version reads and scores the same: the model text's reader, the code that
# computes features and calibrates, and the engine that computes the features.
LIBRARIES = ("fraud-app", "lightgbm", "numpy", "duckdb")


class ModelError(StoreError):
    """A model cannot be used; the message says which and why."""


def library_versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def dumps(detector: Detector) -> bytes:
    """The detector as the bytes of a .lgbm.json file."""
    return json.dumps({"format": FORMAT, "features": list(detector.features),
                       "calibration": [float(x) for x in detector.calibration],
                       "thresholds": {k: float(v) for k, v in detector.thresholds.items()},
                       "model": detector.model.model_to_string()}).encode()


def save(store: Store, models_dir: Path, detector: Detector, *, train_start: dt.date, train_end: dt.date,
         params: dict, metrics: dict, actor: str | None = None) -> str:
    """Write the detector as a new version and record it. Returns the version name."""
    version = models.next_version(store)
    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / f"{version}{SUFFIX}"
    tmp = path.with_name(path.name + ".tmp")
    data = dumps(detector)
    tmp.write_bytes(data)
    tmp.replace(path)  # a crash mid-write never leaves a half file under the real name
    models.add_version(store, {
        "version": version, "created_at": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
        "train_start": train_start, "train_end": train_end, "params": params, "features": detector.features,
        "metrics": metrics, "thresholds": detector.thresholds, "library_versions": library_versions(),
        "sha256": hashlib.sha256(data).hexdigest(), "path": path.name}, actor)  # relative: the home folder may move
    log.info("saved model %s to %s", version, path)
    return version


def _parse(data: bytes) -> dict:
    """The state of a .lgbm.json file's bytes; ValueError saying what is wrong."""
    import lightgbm

    state = json.loads(data)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else None
        raise ValueError(f"format {found!r} is not {FORMAT}, the one this version of fraud-app reads")
    features, calibration, thresholds = state.get("features"), state.get("calibration"), state.get("thresholds")
    if not (isinstance(features, list) and features and all(isinstance(f, str) for f in features)):
        raise ValueError("features must be a list of names")
    if not (isinstance(calibration, list) and len(calibration) == 2
            and all(isinstance(x, (int, float)) and math.isfinite(x) for x in calibration)):
        raise ValueError("calibration must be a slope and an intercept")
    if not (isinstance(thresholds, dict) and {"review", "decline"} <= thresholds.keys()
            and all(isinstance(x, (int, float)) for x in thresholds.values())):
        raise ValueError("thresholds must give review and decline")
    if not isinstance(state.get("model"), str):
        raise ValueError("model must be LightGBM's model text")
    try:
        booster = lightgbm.Booster(model_str=state["model"])
    except lightgbm.basic.LightGBMError as exc:
        raise ValueError(f"LightGBM cannot read its model: {exc}") from None
    if booster.num_feature() != len(features):
        raise ValueError(f"the model takes {booster.num_feature()} features, the file names {len(features)}")
    return {"model": booster, "features": features, "calibration": calibration, "thresholds": thresholds}


def _parse_skops(version: str, path: Path, data: bytes) -> dict:
    """The state of an old .skops file's bytes."""
    try:
        import skops.io as sio

        state = sio.loads(data, trusted=TRUSTED_TYPES)
    except ImportError:
        raise ModelError(f"model {version}: {path} is in the older skops format, which needs the skops and "
                         "scikit-learn packages, and they are not installed here; train a new version "
                         "(`fraud-app train`) and put it in use instead") from None
    except Exception as exc:  # skops raises several kinds; none may reach the user as a traceback
        raise ModelError(f"model {version}: cannot load {path}: {exc}") from None
    state["model"] = getattr(state["model"], "booster_", state["model"])  # it held the scikit-learn wrapper
    return state


def load(store: Store, models_dir: Path, version: str | None = None) -> tuple[str, Detector]:
    """The named version, or the one in use. Raises ModelError if it is missing, fails its hash check or
    cannot be read."""
    row = models.get_version(store, version) if version else models.active_version(store)
    if row is None:
        raise ModelError(f"no model version {version!r}" if version else
                         "no model in use yet: run `fraud-app train` first")
    path = Path(models_dir) / row["path"]
    if not path.exists() and (Path(models_dir).parent / row["path"]).exists():
        path = Path(models_dir).parent / row["path"]  # saved before each database had its own folder
    if not path.exists():
        raise ModelError(f"model {row['version']}: file {path} is missing")
    data = path.read_bytes()  # hashed and parsed from the same bytes: a file swapped in between is never read
    actual = hashlib.sha256(data).hexdigest()
    if actual != row["sha256"]:
        raise ModelError(f"model {row['version']}: file {path} does not match its recorded sha256 "
                         f"({actual[:12]}... instead of {row['sha256'][:12]}...); refusing to load it")
    if path.suffix == ".skops":
        state = _parse_skops(row["version"], path, data)
    else:
        try:
            state = _parse(data)
        except ValueError as exc:  # json's errors are ValueErrors too
            raise ModelError(f"model {row['version']}: cannot load {path}: {exc}") from None
    detector = Detector.from_state(state)
    if row["thresholds"]:  # the row's, which an analyst may have changed since training (and the audit says so)
        detector.thresholds = dict(row["thresholds"])
    return row["version"], detector


def promote(store: Store, models_dir: Path, version: str, actor: str | None = None) -> str | None:
    """Put a version in use. Returns the version it replaced: the version itself if it already was in use, and
    then nothing changes."""
    row = models.get_version(store, version)
    if row is None:
        raise ModelError(f"no model version {version!r}")
    if row["status"] == "active":
        return version
    load(store, models_dir, version)  # never promote a file that would not load
    return models.set_active(store, version, actor)


def rollback(store: Store, models_dir: Path, actor: str | None = None) -> str:
    """Go back to the version used before the current one. Returns the version now in use."""
    target = models.previously_active(store)
    if target is None:
        raise ModelError("no earlier model version to roll back to")
    load(store, models_dir, target)
    models.set_active(store, target, actor, action="rollback")
    return target


def set_thresholds(store: Store, version: str, review: float, decline: float, actor: str | None = None,
                   figures: dict[str, float] | None = None) -> int:
    """Save new thresholds for a version (the threshold simulator), with its metrics' figures at them when given.
    Returns how many stored decisions changed."""
    if not 0.0 <= review <= decline <= 1.0:
        raise ModelError(f"thresholds must satisfy 0 <= review <= decline <= 1, not {review} and {decline}")
    try:
        return models.set_thresholds(store, version, {"review": review, "decline": decline}, actor, figures)
    except KeyError:
        raise ModelError(f"no model version {version!r}") from None


def versions(store: Store) -> list[dict[str, Any]]:
    return models.list_versions(store)
