"""Milestones of a long ``hrl run``: its resumable state, small enough to commit.

A full run takes hours and may span several working stretches on different machines. The
collected logs and samples are large and reproducible (their stages are seeded); what is not
cheap to redo is training. A milestone folder holds, mirrored from the run folder:

- ``stages.json``: which stages are done (and the preset they ran under);
- ``pretrain/bundle.pt``, ``pretrain/metrics.json``: the BC bundle and its metrics;
- ``finetune/``: the fine-tuning checkpoint (``last.pt``), its config, summary, learner rows,
  failures, best and final bundles, own snapshots (opponents of later updates), the validation
  manifest (``validation/plays.json``) and TensorBoard events; not the per-update
  ``policy.pt`` / ``validation_policy.pt`` the run rewrites anyway.

:func:`save_milestone` mirrors a run into the folder (each file atomically; unchanged files are
not rewritten), :func:`restore_milestone` copies into a run folder every milestone file it lacks,
so ``hrl run --milestones DIR`` on a fresh clone continues from the last mirrored state (the
pipeline re-collects the data only if a stage that needs it has not finished).
"""

from __future__ import annotations

import filecmp
import os
from collections.abc import Iterator
from pathlib import Path

from hrl.io import atomic_write_bytes

__all__ = ["SKIPPED", "milestone_files", "restore_milestone", "save_milestone"]

SKIPPED = frozenset({"policy.pt", "validation_policy.pt"})
"""File names never mirrored (rewritten by the run at every update or validation)."""


def milestone_files(run: Path) -> Iterator[Path]:
    """The files of ``run`` a milestone holds, relative to ``run``."""
    if (run / "stages.json").is_file():
        yield Path("stages.json")
    for name in ("bundle.pt", "metrics.json"):
        if (run / "pretrain" / name).is_file():
            yield Path("pretrain") / name
    finetune = run / "finetune"
    if finetune.is_dir():
        for path in sorted(finetune.rglob("*")):
            if path.is_file() and path.name not in SKIPPED and not path.name.endswith(".tmp"):
                yield path.relative_to(run)


def save_milestone(run: str | os.PathLike[str], milestone: str | os.PathLike[str]) -> list[Path]:
    """Mirror ``run``'s resumable state into ``milestone``; returns the files written (relative)."""
    run, milestone = Path(run), Path(milestone)
    written = []
    for rel in milestone_files(run):
        source, target = run / rel, milestone / rel
        if target.is_file() and filecmp.cmp(source, target, shallow=False):
            continue
        atomic_write_bytes(target, source.read_bytes())
        written.append(rel)
    return written


def restore_milestone(milestone: str | os.PathLike[str], run: str | os.PathLike[str]) -> list[Path]:
    """Copy into ``run`` every file of ``milestone`` that ``run`` lacks; returns them (relative).
    Files ``run`` already has are never overwritten (the run folder is newer or the same)."""
    milestone, run = Path(milestone), Path(run)
    if not milestone.is_dir():
        return []
    copied = []
    for rel in milestone_files(milestone):
        target = run / rel
        if target.exists():
            continue
        atomic_write_bytes(target, (milestone / rel).read_bytes())
        copied.append(rel)
    return copied
