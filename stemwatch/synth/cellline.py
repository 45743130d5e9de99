"""Cell lines of the synthetic microscope: what the colonies of a line look like and how they
grow, from the undifferentiated state (``d = 0``) to the differentiated one (``d = 1``).

A :class:`CellLine` is one frozen pair: :class:`~stemwatch.synth.biology.Growth` (seeding,
growth, time course) and :class:`~stemwatch.synth.render.Look` (the specimen's appearance at
both ends of the state). Every line follows the same state machinery (``d`` in [0, 1] per
colony, :mod:`stemwatch.synth.biology`), so labels, ground truth, trainer and monitor work
unchanged whatever the line.

- ``hipsc`` (default): human iPSC in maintenance medium, differentiating into large, flat
  cells (Thomson et al. 1998; the look the realism gauge tunes).
- ``mesc``: mouse ESC in 2i+LIF (ground state), induced to epiblast-like cells (EpiLC) with
  FGF2 + Activin A in KSR (Hayashi et al. 2011, Cell 146:519; Waisman et al. 2019, Stem Cell
  Reports 12:845). 2i colonies are many, small, round, dome-shaped (3-D) and tightly packed,
  with a smooth, steep, phase-bright border and cells that cannot be told apart; within hours
  of induction they flatten into epithelial monolayer colonies with irregular, less defined
  borders and visible cell borders, a few cells spreading away; mESC double in ~12-14 h.

See ``docs/synthetic-microscope.md`` ("Mouse ESC -> EpiLC") for what is and is not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from stemwatch.synth.biology import HIPSC_GROWTH, Growth
from stemwatch.synth.difficulty import SynthError
from stemwatch.synth.render import LOOK, Look

CELL_LINES: tuple[str, ...] = ("hipsc", "mesc")
"""Names :func:`get_cell_line` knows (the CLI's ``--cell-line`` choices)."""


@dataclass(frozen=True)
class CellLine:
    """A cell line: its name (recorded in manifests), growth and look."""

    name: str
    growth: Growth
    look: Look
    description: str = ""


MESC_GROWTH = Growth(
    # many small colonies (mESC are passaged as single cells and grow clonal domes)
    colonies_per_mm2=40.0,
    r_median_um=22.0,
    # cells double every ~13 h in 2i+LIF (vs ~16-20 h for hPSC); a dome's footprint grows
    # as its cell count to the 2/3 power, so its area doubles every ~1.5 x 13 h
    area_doubling_h=19.5,
    # a dome flattening into a monolayer covers more dish: area x 2.2 at d = 1
    spread=1.2,
    # 2i colonies are round
    aspect_max=1.2,
    shape_scale=0.35,
    # EpiLC induction changes morphology within hours and is done by ~24-48 h
    # (half-way at ~8 h with the default difficulty's 16 h)
    clock=0.5,
    # the 2i ground state is homogeneous: little spontaneous differentiation
    spontaneous_scale=0.25,
)


def _mesc_look(base: Look) -> Look:
    """mESC 2i -> EpiLC on the same microscope as ``base`` (background, optics, camera)."""
    return replace(
        base,
        # 2i: small cells so tightly packed in 3-D that no cell border shows ...
        cell_um=6.0,
        gap=0.1,
        nucleolus=0.1,
        nucleolus_fraction=0.3,
        dead_fraction=0.015,
        cell_scale=0.3,
        # ... in a thick dome with a smooth, steep border (the bright, refractile halo)
        ragged_um=0.5,
        edge_ramp_um=3.0,
        plateau=3.0,
        dome=1.0,
        # EpiLC: a flat epithelial monolayer of larger cells with visible borders and an
        # irregular edge; fewer cells leave the colony than in hiPSC differentiation
        diff_cell_um=11.0,
        diff_ragged_um=4.0,
        diff_edge_ramp_um=10.0,
        diff_plateau=0.6,
        diff_gap=2.2,
        spindles=0.5,
    )


def get_cell_line(spec: str | CellLine, *, look: Look = LOOK) -> CellLine:
    """A line by name (:data:`CELL_LINES`) or a :class:`CellLine` as is; ``look`` is the
    microscope the named lines are drawn on (hiPSC: exactly that look)."""
    if isinstance(spec, CellLine):
        return spec
    if spec == "hipsc":
        return CellLine(
            "hipsc", HIPSC_GROWTH, look, "human iPSC: maintenance vs spontaneous/induced"
        )
    if spec == "mesc":
        return CellLine(
            "mesc", MESC_GROWTH, _mesc_look(look), "mouse ESC: 2i+LIF vs EpiLC (Waisman 2019)"
        )
    raise SynthError(f"cell_line {spec!r} is unknown; use one of {', '.join(CELL_LINES)}")
