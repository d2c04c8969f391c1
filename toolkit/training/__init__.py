"""Training: the GPT classifier, its loop, checkpoints and resumable state, pretrained GPT-2
weights, LoRA, and running as several processes. Needs torch (`spamkit[train]`)."""
