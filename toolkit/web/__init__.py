"""`spamkit web`: a static site that classifies messages in the browser (onnxruntime-web)."""
