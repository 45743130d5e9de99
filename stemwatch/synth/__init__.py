"""The synthetic microscope: label-free colony images with ground truth, and live acquisition."""
