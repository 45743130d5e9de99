"""The monitor's domain check: which frames are analysed, and when the lab is told.

Every frame first passes the cheap quality check (:func:`stemwatch.core.quality.check_quality`):
a blank, saturated or all-NaN frame is recorded with its reason and never scored. Every other
frame is scored by the model and, when the model carries a description of its training domain
(:mod:`stemwatch.core.domain`), against that description; an out-of-domain image keeps its
prediction in the database but stays out of the well's series, so it cannot drive onset
detection.

One out-of-domain image means little (the threshold lets about 1 % of in-domain images
through by design); a plate whose images keep falling outside means the model does not apply
to them. :func:`domain_alert` is that rule: among the newest ``alert_window`` domain-scored
images of a plate, at least ``alert_fraction`` (and at least ``alert_min_images``) outside
begins an episode with one instrument alert; it ends once at most ``clear_fraction`` are
outside, and a later relapse alerts again.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from stemwatch import store
from stemwatch.core.config import StrictModel
from stemwatch.core.quality import QualityConfig

HOW_TO = "docs/domain-check.md#train-a-model-on-your-own-images"


class DomainCheckConfig(StrictModel):
    """Image quality and training-domain checks, and when they alert."""

    quality: QualityConfig = Field(
        default_factory=QualityConfig,
        description="Blank, saturated and all-NaN frames are marked and never scored.",
    )
    alert_window: int = Field(
        20, ge=1, description="The domain alert looks at a plate's newest this many images."
    )
    alert_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Alert once at least this share of them lie outside the model's domain.",
    )
    alert_min_images: int = Field(
        5, ge=1, description="...and at least this many (no alert on the first odd image)."
    )
    clear_fraction: float = Field(
        0.2,
        ge=0,
        le=1,
        description="The episode ends once at most this share lie outside; a relapse alerts\n"
        "again.",
    )
    how_to: str = Field(
        HOW_TO,
        description="Where the alert sends the lab to learn how to train a model on its own\n"
        "images (a path or a URL, e.g. your facility's wiki).",
    )

    @model_validator(mode="after")
    def _clear_below_alert(self) -> DomainCheckConfig:
        if self.clear_fraction >= self.alert_fraction:
            raise ValueError(
                f"clear_fraction ({self.clear_fraction}) must be below alert_fraction "
                f"({self.alert_fraction}); lower clear_fraction"
            )
        return self


def domain_alert(
    window: store.DomainWindow, config: DomainCheckConfig, *, plate: str, model_name: str
) -> tuple[str | None, bool]:
    """``(message, recovered)`` for a plate's newest domain scores (pure): a message when the
    plate looks out of the model's domain; ``recovered`` when an episode may end."""
    n, out = window.n_scored, window.n_out_of_domain
    if n and out >= config.alert_min_images and out / n >= config.alert_fraction:
        typical = (
            ""
            if window.median_out_score is None
            else f"; their median domain score is {window.median_out_score:.1f}, where 1 is the "
            "edge"
        )
        return (
            f"Images from plate {plate} do not look like model {model_name}'s training data "
            f"({out} of its last {n} images lie outside the model's training domain{typical}): "
            f"its predictions there mean little and those images are kept out of onset "
            f"detection. Train a model on your own images: {config.how_to}",
            False,
        )
    return None, out <= config.clear_fraction * n
