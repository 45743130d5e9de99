"""Building, training, validating and exporting CNNs on a lab's labelled images (needs torch)."""
