"""The daemon beside the microscope: watch, read, infer, store, detect onset, alert.

Never imports torch or trainer code: the exported ONNX file is its whole interface to training.
"""
