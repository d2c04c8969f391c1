"""Export a trained checkpoint to a self-contained ONNX bundle (fp32, int8 and fp16 graphs)."""
