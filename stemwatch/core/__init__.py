"""The shared core: the bottom floor every component builds on, and the trainer-monitor contract.

- :mod:`~stemwatch.core.imaging`: image reading (read once, check, decode) and the
  preprocessing recipe (tiling, normalisation) that training and inference share;
  :mod:`~stemwatch.core.tiff`: the one TIFF structure parser (is every page complete?);
  :mod:`~stemwatch.core.dib`: Cellomics .DIB/.C01 images; :mod:`~stemwatch.core.filekinds`:
  what a file is by its name (analysis outputs, formats not read);
- :mod:`~stemwatch.core.modelmeta`: the metadata inside an exported model, and its version
  policy; :mod:`~stemwatch.core.modelfile`: opening, checking and hashing a model file, and
  where the bundled model lives;
- :mod:`~stemwatch.core.domain`: the description of a model's training domain it carries, and
  an image's distance from it; :mod:`~stemwatch.core.quality`: blank, saturated and all-NaN
  frames, before inference;
- :mod:`~stemwatch.core.aggregate`: tiles to images, fields to wells and time points;
- :mod:`~stemwatch.core.wells`: well names and plate formats;
  :mod:`~stemwatch.core.platemeta`: plate, well, field, time, channel and z of each image,
  from the OME-XML, :mod:`~stemwatch.core.presets` (instrument file-name conventions) and a
  user regex;
  :mod:`~stemwatch.core.times`: what an image's time basis means for people;
- :mod:`~stemwatch.core.manifest`: the labelled-image manifest the trainer reads;
- :mod:`~stemwatch.core.optics`: the pixel size an image states, and the downsampling rule;
- :mod:`~stemwatch.core.intervals`: 95 % intervals by bootstrap over wells (every figure);
- :mod:`~stemwatch.core.config` (configuration loading), :mod:`~stemwatch.core.errors` and
  :mod:`~stemwatch.core.paths` (file names as storable, printable text).

Nothing here imports from the floors above (store, trainer, monitor, dashboard, synth, the
command line); ``tests/test_layers.py`` checks it.
"""
