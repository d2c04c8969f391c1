"""Jobs on a bundle or a checkpoint, run by the CLI: scoring files (locally or on Ray),
evaluation and calibration, and the benchmark of a bundle."""
