"""The ground-truth stain mask: the values the synthetic microscope writes per pixel beside a
paired fluorescence image, and that ``stemwatch label`` reads to score its block labels.

One owner for the encoding, so the writer (:mod:`stemwatch.synth.fluorescence`) and the reader
(:mod:`trainer.label`) cannot drift apart.
"""

from __future__ import annotations

TRUTH_BACKGROUND = 0
"""No cell."""
TRUTH_UNSTAINED = 1
"""A cell without the marker."""
TRUTH_STAINED = 2
"""A cell with the marker."""
