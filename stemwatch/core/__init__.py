"""The shared core: the bottom floor every component builds on.

Image reading and the preprocessing recipe (:mod:`~stemwatch.core.imaging`), plate metadata
(:mod:`~stemwatch.core.platemeta`) and what its time bases mean for people
(:mod:`~stemwatch.core.times`), the trainer-monitor model contract
(:mod:`~stemwatch.core.modelmeta`), configuration loading (:mod:`~stemwatch.core.config`) and
the error types (:mod:`~stemwatch.core.errors`). Nothing here imports from the floors above
(store, trainer, monitor, dashboard, synth, the command line).
"""
