"""spamkit: GPT-2 text classifiers from fine-tuning to a torch-free ONNX runtime.

This package must stay importable without torch: `spamkit.runtime` lives under it.
"""

__version__ = "0.1.0"
