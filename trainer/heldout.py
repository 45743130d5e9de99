"""Which images an evaluation may score: a run's held-out split, never what it trained on.

A checkpoint carries its split image by image (:func:`trainer.splits.split_record`):
:func:`heldout_samples` gives back its test images, checked unchanged by content hash. Any
other data is checked against what the model saw (:func:`find_seen`): an image whose content
hash or path was in training or validation, or that comes from a training or validation
group (the same experiment/plate/well: its neighbours in time and space are not independent
of it), is *seen*. An exported ONNX model carries only the groups of its split, so only the
group check applies to it. ``stemwatch evaluate`` refuses seen images unless asked
(``--allow-seen``), and then :meth:`SeenImages.notice` heads every output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stemwatch.core.errors import StemwatchError
from trainer.data import DataError, Sample
from trainer.metric_intervals import UNIT_PLURAL

SEEN_PARTS = ("train", "val")


class LeakError(StemwatchError):
    """The evaluation data holds images (or groups) the model was trained or validated on."""


@dataclass(frozen=True)
class SeenRecord:
    """What a model saw in training and validation."""

    source: str
    group_by: str
    groups: frozenset[str]
    hashes: frozenset[str] = frozenset()
    paths: frozenset[str] = frozenset()
    data_hash: str | None = None

    @property
    def has_images(self) -> bool:
        """Whether the record lists images (a checkpoint's), not only groups (a model's)."""
        return bool(self.hashes)


def seen_from_split(split: dict[str, Any] | None, source: str) -> SeenRecord | None:
    """From a checkpoint's image-level split record (None when absent)."""
    if not split or not split.get("images"):
        return None
    seen = [im for im in split["images"] if im.get("part") in SEEN_PARTS]
    return SeenRecord(
        source=source,
        group_by=str(split.get("group_by") or "well"),
        groups=frozenset(str(im["group"]) for im in seen),
        hashes=frozenset(str(im["content_hash"]) for im in seen if im.get("content_hash")),
        paths=frozenset(str(im["path"]) for im in seen),
        data_hash=split.get("data_hash"),
    )


def seen_from_training(training: dict[str, Any] | None, source: str) -> SeenRecord | None:
    """From a training record's group-level split (``training["split"]``; what an exported
    model's metadata holds). None when it records no split."""
    split = (training or {}).get("split") or {}
    if not isinstance(split, dict) or "train" not in split:
        return None
    groups = {str(g) for part in SEEN_PARTS for g in (split.get(part) or {}).get("groups", [])}
    return SeenRecord(
        source=source,
        group_by=str(split.get("group_by") or "well"),
        groups=frozenset(groups),
        data_hash=split.get("data_hash") or (training or {}).get("data_hash"),
    )


def sample_from_record(im: dict[str, Any], class_names: Sequence[str]) -> Sample:
    """One image of a split record (as checkpoints and summaries store it) as a :class:`Sample`.

    Raises :class:`DataError` naming the image when its label is not one of ``class_names``."""
    label = str(im["label"])
    if label not in class_names:
        raise DataError(
            f"split record: label {label!r} of {im['path']} is not one of {list(class_names)}"
        )
    hours = im.get("hours_since_induction")
    return Sample(
        path=Path(im["path"]),
        label=list(class_names).index(label),
        plate=str(im.get("plate") or ""),
        well=str(im.get("well") or ""),
        field=str(im.get("field") or ""),
        experiment=str(im.get("experiment") or ""),
        hours=None if hours is None else float(hours),
        source=str(im.get("source") or ""),
    )


def heldout_samples(
    split: dict[str, Any] | None, class_names: Sequence[str], source: str
) -> tuple[list[Sample], dict[Path, str]]:
    """The test images of a checkpoint's split and their recorded content hashes.

    Raises :class:`DataError` when the checkpoint records no split, its split held out no
    test images, or test images are missing."""
    if not split or not split.get("images"):
        raise DataError(
            f"{source}: the checkpoint records no image-level split (written by an older "
            "stemwatch); give DATA: a test manifest or folder of wells the model never saw"
        )
    test = [im for im in split["images"] if im.get("part") == "test"]
    if not test:
        raise DataError(
            f"{source}: its run held out no test images (split.test_fraction 0); give DATA: a "
            "test manifest or folder of wells the model never saw"
        )
    missing = [im["path"] for im in test if not Path(im["path"]).is_file()]
    if missing:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise DataError(
            f"{source}: {len(missing)} of the {len(test)} held-out images are gone: "
            f"{', '.join(missing[:3])}{more}; restore them, or give DATA (e.g. the run's "
            "test_manifest.csv next to the moved images)"
        )
    samples = [sample_from_record(im, class_names) for im in test]
    hashes = {
        s.path: str(im.get("content_hash") or "") for s, im in zip(samples, test, strict=True)
    }
    return samples, hashes


def check_unchanged(
    samples: Sequence[Sample], recorded: dict[Path, str], hash_of: Callable[[Path], str]
) -> None:
    """Raise :class:`DataError` when a held-out image's bytes differ from those trained on."""
    changed = [
        s.path for s in samples if recorded.get(s.path) and hash_of(s.path) != recorded[s.path]
    ]
    if changed:
        raise DataError(
            f"{len(changed)} held-out images changed since training (content hash differs), "
            f"e.g. {changed[0]}; the split no longer describes them: evaluate on a test "
            "manifest you trust"
        )


@dataclass
class SeenImages:
    """Which evaluation images the model saw: the same files, or images of its groups."""

    n_total: int
    record: SeenRecord
    same_image: list[Path] = field(default_factory=list)
    same_group: list[Path] = field(default_factory=list)

    @property
    def n_seen(self) -> int:
        return len(self.same_image) + len(self.same_group)

    def describe(self) -> str:
        plural = UNIT_PLURAL.get(self.record.group_by, f"{self.record.group_by} groups")
        parts = []
        if self.same_image:
            parts.append(f"{len(self.same_image)} are images it was trained or validated on")
        if self.same_group:
            parts.append(
                f"{len(self.same_group)} more come from {plural} of its training or validation "
                f"data (same experiment/plate/{self.record.group_by} keys)"
            )
        return (
            f"{self.n_seen} of {self.n_total} images were seen by {self.record.source}: "
            f"{'; '.join(parts)}"
        )

    def notice(self) -> str:
        """The first line of every output of an evaluation that includes seen images."""
        return (
            f"NOT A HELD-OUT EVALUATION: {self.describe()}. These figures overstate how the "
            "model does on wells it has not seen."
        )

    def refusal(self) -> str:
        examples = [*self.same_image[:2], *self.same_group[:2]][:3]
        return (
            f"{self.describe()}, e.g. {', '.join(map(str, examples))}. Scoring them would "
            "overstate the model. Evaluate the run's held-out split (leave DATA out with a "
            "checkpoint), a test manifest of other wells, or pass --allow-seen to score them "
            "anyway (every output then says so in its first line). If these are different "
            "wells that share names with training ones, give them distinct plate or "
            "experiment values."
        )


def find_seen(
    samples: Sequence[Sample],
    record: SeenRecord,
    hash_of: Callable[[Path], str] | None = None,
) -> SeenImages:
    """Which ``samples`` the model saw: by resolved path and (with ``hash_of``, for a record
    that lists images) content hash first, then by group."""
    out = SeenImages(len(samples), record)
    for s in samples:
        same = str(Path(s.path).resolve()) in record.paths or (
            hash_of is not None and record.has_images and hash_of(s.path) in record.hashes
        )
        if same:
            out.same_image.append(s.path)
        elif s.group(record.group_by) in record.groups:
            out.same_group.append(s.path)
    return out
