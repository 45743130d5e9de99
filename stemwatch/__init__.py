"""stemwatch: label-free detection of stem cell differentiation beside the microscope.

This package is the shared home of trainer/, monitor/ and dashboard/: the image reader,
the plate-metadata resolver, the model-metadata contract, configuration loading and the
command line. It never imports torch.
"""

__version__ = "0.1.0"
