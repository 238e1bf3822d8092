"""Model versions on disk (skops files under models/) and in the model_versions table.

A file is loaded only if its sha256 matches its row, and then only with an explicit list of trusted
types: a swapped or edited file is refused before any of it is deserialised.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import logging
from pathlib import Path
from typing import Any

from .detector import Detector
from .store import Store, StoreError, models

log = logging.getLogger(__name__)

# Types outside skops' default trust that our own models contain. Nothing else is ever loaded.
TRUSTED_TYPES = ["collections.OrderedDict", "lightgbm.basic.Booster", "lightgbm.sklearn.LGBMClassifier"]
LIBRARIES = ("fraud-app", "scikit-learn", "lightgbm", "skops", "numpy", "duckdb")


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


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save(store: Store, models_dir: Path, detector: Detector, *, train_start: dt.date, train_end: dt.date,
         params: dict, metrics: dict, actor: str | None = None) -> str:
    """Write the detector as a new version and record it. Returns the version name."""
    import skops.io as sio

    version = models.next_version(store)
    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / f"{version}.skops"
    tmp = path.with_suffix(".tmp")
    sio.dump(detector.state(), tmp)
    tmp.replace(path)  # a crash mid-write never leaves a half file under the real name
    models.add_version(store, {
        "version": version, "created_at": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
        "train_start": train_start, "train_end": train_end, "params": params, "features": detector.features,
        "metrics": metrics, "thresholds": detector.thresholds, "library_versions": library_versions(),
        "sha256": sha256(path), "path": path.name}, actor)  # relative: the home folder may move
    log.info("saved model %s to %s", version, path)
    return version


def load(store: Store, models_dir: Path, version: str | None = None) -> tuple[str, Detector]:
    """The named version, or the one in use. Raises ModelError if it is missing or fails its hash check."""
    import skops.io as sio

    row = models.get_version(store, version) if version else models.active_version(store)
    if row is None:
        raise ModelError(f"no model version {version!r}" if version else
                         "no model in use yet: run `fraud-app train` first")
    path = Path(models_dir) / row["path"]
    if not path.exists() and (Path(models_dir).parent / row["path"]).exists():
        path = Path(models_dir).parent / row["path"]  # saved before each database had its own folder
    if not path.exists():
        raise ModelError(f"model {row['version']}: file {path} is missing")
    actual = sha256(path)
    if actual != row["sha256"]:
        raise ModelError(f"model {row['version']}: file {path} does not match its recorded sha256 "
                         f"({actual[:12]}... instead of {row['sha256'][:12]}...); refusing to load it")
    try:
        state = sio.load(path, trusted=TRUSTED_TYPES)
    except Exception as exc:  # skops raises several kinds; none may reach the user as a traceback
        raise ModelError(f"model {row['version']}: cannot load {path}: {exc}") from None
    detector = Detector.from_state(state)
    if row["thresholds"]:  # the row's, which an analyst may have changed since training (and the audit says so)
        detector.thresholds = dict(row["thresholds"])
    return row["version"], detector


def promote(store: Store, models_dir: Path, version: str, actor: str | None = None) -> str | None:
    if models.get_version(store, version) is None:
        raise ModelError(f"no model version {version!r}")
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


def set_thresholds(store: Store, version: str, review: float, decline: float, actor: str | None = None) -> int:
    """Save new thresholds for a version (the threshold simulator). Returns how many stored decisions changed."""
    if not 0.0 <= review <= decline <= 1.0:
        raise ModelError(f"thresholds must satisfy 0 <= review <= decline <= 1, not {review} and {decline}")
    try:
        return models.set_thresholds(store, version, {"review": review, "decline": decline}, actor)
    except KeyError:
        raise ModelError(f"no model version {version!r}") from None


def versions(store: Store) -> list[dict[str, Any]]:
    return models.list_versions(store)
