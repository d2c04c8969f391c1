"""Export a trained checkpoint to a self-contained ONNX bundle (fp32 and int8)."""
