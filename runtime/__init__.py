"""Classify text with a spamkit bundle through ONNX Runtime. Never imports torch."""
