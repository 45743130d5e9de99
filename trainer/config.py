"""Configuration of training (one YAML file, validated).

``stemwatch config trainer --example`` prints this model with its descriptions as comments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from stemwatch.core.config import StrictModel
from stemwatch.core.imaging import NormalisationRecipe, TilingSpec
from stemwatch.core.optics import TARGET_PIXEL_UM

DEFAULT_CLASSES = ["undifferentiated", "differentiated"]
_SPEC = TilingSpec.model_fields


def known_architectures() -> list[str]:
    """Names in the architecture registry (empty when the registry cannot be imported)."""
    try:
        from trainer.architectures import list_architectures
    except ImportError:  # pragma: no cover - registry always ships with the trainer
        return []
    return list(list_architectures())


class TilingConfig(StrictModel):
    """The tiling of training: :class:`TilingSpec`, except that ``downsample`` may be
    ``auto`` (derived from the images' pixel size; see :mod:`stemwatch.core.optics`)."""

    downsample: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        default="auto",
        description=(
            "Block-mean factor before tiling. 'auto': round(data.target_pixel_size_um / pixel "
            "size), the pixel size taken from the images' metadata (OME PhysicalSizeX, TIFF "
            "resolution tags) or data.pixel_size_um; a run stops when neither says it. An "
            "integer is used as given."
        ),
    )
    tile_size: Annotated[int, _SPEC["tile_size"]] = _SPEC["tile_size"].default
    stride: Annotated[int | None, _SPEC["stride"]] = _SPEC["stride"].default
    min_foreground_std: Annotated[float, _SPEC["min_foreground_std"]] = _SPEC[
        "min_foreground_std"
    ].default
    dark_level: Annotated[float, _SPEC["dark_level"]] = _SPEC["dark_level"].default
    max_dark_fraction: Annotated[float, _SPEC["max_dark_fraction"]] = _SPEC[
        "max_dark_fraction"
    ].default
    max_tiles: Annotated[int, _SPEC["max_tiles"]] = _SPEC["max_tiles"].default

    def spec(self) -> TilingSpec:
        """The concrete :class:`TilingSpec` (the factor must have been resolved)."""
        if self.downsample == "auto":
            raise ValueError(
                "data.tiling.downsample is still 'auto'; resolve it from the pixel size "
                "first (trainer.optics.resolve_optics)"
            )
        return TilingSpec.model_validate(self.model_dump())


class DataSection(StrictModel):
    """Where the labelled images are and how they become tiles."""

    manifest: Path | None = Field(
        default=None,
        description=(
            "CSV with columns path,label and optional plate,well,field,experiment,"
            "hours_since_induction (paths relative to the CSV). Give this or `folder`."
        ),
    )
    folder: Path | None = Field(
        default=None,
        description="A folder with one sub-folder of images per class (used when no manifest).",
    )
    classes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CLASSES),
        min_length=2,
        description="Class names in output order; labels in the data must be among these.",
    )
    positive_class: str = Field(
        default="differentiated", description="The class whose probability the monitor tracks."
    )
    pixel_size_um: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Pixel size of the images in µm. None: read from their metadata (OME "
            "PhysicalSizeX, TIFF resolution tags). Set it when the images do not say, or say "
            "wrongly (it then wins over the metadata)."
        ),
    )
    target_pixel_size_um: float = Field(
        default=TARGET_PIXEL_UM,
        gt=0,
        description="Pixel size the automatic downsampling aims at (µm per downsampled pixel).",
    )
    tiling: TilingConfig = Field(
        default_factory=TilingConfig,
        description="Downsampling and tiling, exactly as the monitor will do it.",
    )
    normalisation: NormalisationRecipe = Field(
        default_factory=NormalisationRecipe, description="Percentile normalisation recipe."
    )
    cache: bool = Field(
        default=True, description="Keep prepared tiles in memory (decode each image once)."
    )
    page: int = Field(default=0, ge=0, description="Page of multi-page TIFFs to read.")
    max_unreadable_fraction: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description=(
            "Unreadable images are listed and skipped; above this fraction of the data the "
            "run stops."
        ),
    )
    io_workers: int = Field(
        default=2, ge=1, description="Threads decoding images while building the cache."
    )

    @model_validator(mode="after")
    def _positive_in_classes(self) -> DataSection:
        if self.positive_class not in self.classes:
            raise ValueError(
                f"data.positive_class {self.positive_class!r} is not one of data.classes "
                f"{self.classes}"
            )
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"data.classes has duplicates: {self.classes}")
        return self


class SplitSection(StrictModel):
    """How images are split into train / validation / test, always by group."""

    group_by: Literal["well", "plate", "experiment"] = Field(
        default="well",
        description=(
            "Grouping unit: all images (and tiles) of one group stay on one side of a split."
        ),
    )
    cross_validation: Literal["auto", "leave-one-experiment-out", "k-fold"] = Field(
        default="auto",
        description=(
            "`stemwatch train --cv` without K: 'auto' holds out one experiment per fold when "
            "the data has two or more experiments, else k_folds grouped folds."
        ),
    )
    k_folds: int = Field(
        default=5,
        ge=2,
        description="Folds of grouped K-fold cross-validation (`stemwatch train --cv K`).",
    )
    holdout_experiment: str | None = Field(
        default=None,
        description="Use this experiment as the test set (instead of a random group split).",
    )
    test_fraction: float = Field(
        default=0.25,
        ge=0,
        lt=1,
        description="Share of groups held out for testing (0: none); 0.25 of 40 wells per "
        "class holds out 10, the fewest for a stable figure.",
    )
    val_fraction: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="Share of training groups used for validation (early stopping, calibration).",
    )
    seed: int = Field(default=0, description="Seed of the split.")


class ModelSection(StrictModel):
    """Which network to train."""

    architecture: str = Field(
        default="fastnet_s",
        description="Registry name: lenet5, alexnet, resnet18, resnet34, resnet50, "
        "densenet121, fastnet, fastnet_s (fastnet at half width: the default, the one that "
        "fits the README's run in 10 minutes on 2 cores).",
    )
    kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Extra keyword arguments for the architecture."
    )
    init_weights: Path | None = Field(
        default=None,
        description="Start from these weights (a checkpoint or a state_dict file).",
    )

    @field_validator("architecture")
    @classmethod
    def _known(cls, value: str) -> str:
        names = known_architectures()
        if names and value not in names:
            raise ValueError(
                f"unknown architecture {value!r}; choose one of: {', '.join(sorted(names))}"
            )
        return value


class OptimSection(StrictModel):
    """Optimiser, schedule and class balance."""

    lr: float = Field(default=2e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(default=1e-4, ge=0, description="AdamW weight decay.")
    epochs: int = Field(default=20, ge=1, description="Maximum number of epochs.")
    batch_size: int = Field(default=64, ge=1, description="Tiles per batch (per process).")
    patience: int = Field(
        default=5, ge=1, description="Stop after this many epochs without a better val loss."
    )
    balance: Literal["weights", "sampler", "none"] = Field(
        default="weights",
        description=(
            "Counter class imbalance: 'weights' (class-weighted loss), 'sampler' (balanced "
            "sampling) or 'none'."
        ),
    )
    tiles_per_image: int | None = Field(
        default=8,
        ge=1,
        description=(
            "Train each epoch on at most this many tiles of each image, drawn afresh every "
            "epoch (None: all). Large images then cost what small ones do per epoch, while "
            "validation, test and the monitor still average all of an image's tiles."
        ),
    )
    max_minutes: float | None = Field(
        default=None,
        gt=0,
        description="Stop training (keeping the best epoch) once this much time has passed.",
    )
    label_smoothing: float = Field(default=0.0, ge=0, lt=1, description="Loss label smoothing.")


class AugmentSection(StrictModel):
    """Augmentations suited to label-free microscopy, applied on batches in torch."""

    enabled: bool = Field(default=True, description="Master switch.")
    flips: bool = Field(default=True, description="Random horizontal and vertical flips.")
    rot90: bool = Field(default=True, description="Random 90-degree rotations.")
    brightness: float = Field(default=0.1, ge=0, description="Max additive brightness shift.")
    contrast: float = Field(default=0.2, ge=0, description="Max relative contrast change.")
    gamma: float = Field(default=0.2, ge=0, description="Max relative gamma change.")
    blur_prob: float = Field(default=0.2, ge=0, le=1, description="Chance of a 3x3 blur.")
    noise_std: float = Field(default=0.02, ge=0, description="Max std of Gaussian noise.")


class RuntimeSection(StrictModel):
    """Where and how the run executes."""

    threads: int | None = Field(
        default=None, ge=1, description="torch.set_num_threads; None keeps torch's default."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="'auto' uses CUDA when present."
    )
    amp: bool = Field(default=True, description="Mixed precision on CUDA (never used on CPU).")
    seed: int = Field(default=0, description="Seed of weights, sampling and augmentation.")
    out_dir: Path = Field(default=Path("runs/latest"), description="Run directory.")
    calibrate: bool = Field(
        default=True, description="Fit temperature scaling on the validation set."
    )
    progress: bool = Field(
        default=True, description="Show a progress bar (only when stderr is a terminal)."
    )


class TrainerConfig(StrictModel):
    """Everything one training run needs."""

    config_component: ClassVar[str | None] = "trainer"

    data: DataSection = Field(default_factory=DataSection, description="Input data.")
    split: SplitSection = Field(default_factory=SplitSection, description="Grouped splits.")
    model: ModelSection = Field(default_factory=ModelSection, description="Network.")
    optim: OptimSection = Field(default_factory=OptimSection, description="Optimisation.")
    augment: AugmentSection = Field(default_factory=AugmentSection, description="Augmentation.")
    runtime: RuntimeSection = Field(default_factory=RuntimeSection, description="Runtime.")
