"""``hrl submission``: a trained bundle -> a self-contained SCML Standard submission folder and zip.

:func:`build_submission` writes, under ``out``::

    <package>/                 the submission (a Python package; the zip's only top-level entry)
        __init__.py, agent.py  the agent class <Name>: LitaAgentHRL loading weights/bundle.pt
        _hrl/                  the minimal copy of hrl it plays with (hrl.submission.vendor)
        weights/bundle.pt      the bundle, copied byte for byte
        requirements.txt       scml, negmas, numpy, a CPU build of torch, pinned
        README.md              how to run it, the weights' provenance, the league checks
        MANIFEST.json          the same as data (bundle metadata, sha256, versions, checks)
    <package>.zip

Everything is built in a temporary folder beside ``out`` and renamed into place only when every
league rule passes (:mod:`hrl.submission.rules`), so a failure leaves nothing partial behind.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
import scml
import torch

from hrl.errors import SubmissionError
from hrl.submission.rules import RuleCheck, check_folder
from hrl.submission.vendor import MODULES, vendor
from hrl.train.bundle import BUNDLE_KIND, load_bundle
from hrl.train.checkpoint import load_checkpoint

__all__ = ["LIB", "TORCH_CPU_INDEX", "Submission", "build_submission", "package_name", "requirements"]

LIB = "_hrl"
"""Name of the vendored copy of hrl inside the submission package."""

TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
"""The index of PyTorch's CPU-only wheels (``requirements.txt`` points pip at it)."""

_TEMPLATES = Path(__file__).with_name("templates")


@dataclass(frozen=True)
class Submission:
    """What :func:`build_submission` wrote: the package folder, the zip, the class path
    (``package.ClassName``) and the league checks."""

    folder: Path
    zip_path: Path
    class_path: str
    checks: tuple[RuleCheck, ...]


def package_name(name: str) -> str:
    """The submission's package name for agent class ``name``: snake case
    (``LitaAgentHRL`` -> ``lita_agent_hrl``). Raises :class:`SubmissionError` unless ``name`` is a
    Python class name starting with a capital letter."""
    if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name):
        raise SubmissionError(f"--name {name!r}: must be a class name like LitaAgentHRL (letters and digits)")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def requirements() -> str:
    """``requirements.txt``: the installed versions of scml, negmas and numpy, and torch's CPU
    wheel of the installed torch version (the extra index serves it; no CUDA libraries): the
    packages of :data:`hrl.submission.rules.ALLOWED`."""
    torch_version = str(torch.__version__).split("+")[0]
    pins = {
        "negmas": importlib.metadata.version("negmas"),
        "numpy": np.__version__,
        "scml": scml.__version__,
        "torch": f"{torch_version}+cpu",
    }
    lines = [
        "# The packages this submission needs to play (hrl submission); nothing compiled of its own.",
        "# torch: the CPU-only build, from PyTorch's index.",
        f"--extra-index-url {TORCH_CPU_INDEX}",
        *(f"{name}=={version}" for name, version in sorted(pins.items())),
    ]
    return "\n".join(lines) + "\n"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hrl_version() -> str:
    try:
        return importlib.metadata.version("hrl")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _provenance(bundle: Path) -> dict[str, Any]:
    """The bundle's metadata: layers, version, model configs, what trained it (``extra``), the
    package versions it was saved with, its file name and sha256."""
    payload = load_checkpoint(bundle, kind=BUNDLE_KIND)
    return {
        "file": str(bundle.resolve()),
        "sha256": _sha256(bundle),
        "bytes": bundle.stat().st_size,
        "bundle_version": payload.get("bundle_version", 1),
        "layers": sorted(payload["models"]),
        "model_configs": payload["model_configs"],
        "saved_with": payload["versions"],
        "extra": payload.get("extra") or {},
    }


def _provenance_text(prov: dict[str, Any]) -> str:
    extra = prov["extra"]
    lines = [
        f"- file: `{prov['file']}` ({prov['bytes']} bytes, sha256 `{prov['sha256']}`)",
        f"- bundle version {prov['bundle_version']}, layers {', '.join(prov['layers'])}",
        f"- source: {extra.get('source', 'unknown')}; trained layers: {extra.get('trained', [])}",
        f"- training data: {extra.get('data', 'not recorded')}",
        f"- saved with: {', '.join(f'{k} {v}' for k, v in sorted(prov['saved_with'].items()))}",
        "- per-layer metrics and the training configuration: `MANIFEST.json` (`weights.extra`)",
    ]
    return "\n".join(lines)


def _rules_text(checks: list[RuleCheck]) -> str:
    rows = ["| rule | result | detail | source |", "|---|---|---|---|"]
    rows += [f"| {c.rule} | {c.status} | {c.detail} | {c.source} |" for c in checks]
    return "\n".join(rows)


def _render(template: str, **values: Any) -> str:
    return Template((_TEMPLATES / template).read_text()).substitute(**values)


def _zip(folder: Path, zip_path: Path) -> None:
    """The folder as ``zip_path`` (deflated, entries in sorted order under ``folder.name/``)."""
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder.parent))


def _write_package(root: Path, bundle: Path, name: str, package: str) -> tuple[Path, dict[str, Any]]:
    """The package folder under ``root`` (everything but README.md and MANIFEST.json, which need
    the checks); returns it and the weights' provenance."""
    prov = _provenance(bundle)
    folder = root / package
    vendor(folder / LIB, f"{package}.{LIB}")
    (folder / "weights").mkdir()
    shutil.copyfile(bundle, folder / "weights" / "bundle.pt")
    values = {"name": name, "package": package, "lib": LIB, "hrl_version": _hrl_version()}
    (folder / "agent.py").write_text(_render("agent.py.tmpl", **values))
    (folder / "__init__.py").write_text(_render("package_init.py.tmpl", **values))
    (folder / "requirements.txt").write_text(requirements())
    return folder, prov


def build_submission(
    bundle: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    name: str = "LitaAgentHRL",
    force: bool = False,
) -> Submission:
    """Build the submission of ``bundle`` under ``out`` (see the module docs).

    Args:
        bundle: a bundle written by :func:`hrl.train.bundle.save_bundle` (version 2).
        out: the output folder; must not exist unless ``force``.
        name: the agent class name (its snake case names the package).
        force: replace an existing ``out``.

    Raises:
        SubmissionError: ``out`` exists without ``force``, a bad ``name``, or a league rule fails.
        CheckpointError: the bundle is missing, corrupt, not a bundle, or of another version.
    """
    bundle, out = Path(bundle), Path(out)
    package = package_name(name)
    if out.exists() and not force:
        raise SubmissionError(f"{out}: already exists; pass --force to replace it")
    load_bundle(bundle)  # the whole bundle must load (version, layers, weights) before anything is written
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        folder, prov = _write_package(staging, bundle, name, package)
        checks = check_folder(folder, package=package, name=name)
        failed = [c for c in checks if c.status == "fail"]
        if failed:
            raise SubmissionError(
                "league rule(s) failed: " + "; ".join(f"{c.rule}: {c.detail}" for c in failed)
            )
        created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        manifest = {
            "agent": f"{package}.{name}",
            "created": created,
            "hrl_version": _hrl_version(),
            "vendored_modules": list(MODULES),
            "weights": prov,
            "requirements": requirements().splitlines(),
            "checks": [c.to_json() for c in checks],
        }
        (folder / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        readme = _render(
            "README.md.tmpl",
            name=name,
            package=package,
            lib=LIB,
            hrl_version=_hrl_version(),
            created=created,
            n_modules=len(MODULES),
            sha256=prov["sha256"],
            provenance=_provenance_text(prov),
            rules=_rules_text(checks),
        )
        (folder / "README.md").write_text(readme)
        _zip(folder, staging / f"{package}.zip")
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Submission(out / package, out / f"{package}.zip", f"{package}.{name}", tuple(checks))


def _replace(staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``; an existing ``out`` is moved aside first and removed after."""
    if not out.exists():
        staging.rename(out)
        return
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    out.rename(old)
    try:
        staging.rename(out)
    except BaseException:
        old.rename(out)
        raise
    if old.is_dir():
        shutil.rmtree(old)
    else:
        old.unlink()
