"""The synthetic microscope: label-free colony images with ground truth, and live acquisition.

- :mod:`~stemwatch.synth.spec`: :class:`~stemwatch.synth.spec.PlateSpec`, what a plate is
  (layout, conditions, time line, optics, file format), taken by everything below;
- :mod:`~stemwatch.synth.biology`: colonies, growth and differentiation kinetics per well;
- :mod:`~stemwatch.synth.render`: colonies to brightfield-like pixels, with imaging nuisances;
- :mod:`~stemwatch.synth.plate`: plate plans, OME-TIFF time-lapses, ground truth;
- :mod:`~stemwatch.synth.dataset`: labelled training / validation sets with a manifest;
- :mod:`~stemwatch.synth.acquire`: writing a plate live, the way instruments write;
- :mod:`~stemwatch.synth.ome`, :mod:`~stemwatch.synth.difficulty`,
  :mod:`~stemwatch.synth.contact` (contact sheet PNG).

See ``docs/synthetic-microscope.md``.
"""
