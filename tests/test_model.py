"""The classifier reads the last real token, so padding and batch-mates cannot change a result."""

import torch

from spamkit.config import preset_config
from spamkit.training.model import GPTClassifier
from spamkit.training.train import collate


def _model(**kw) -> GPTClassifier:
    torch.manual_seed(0)
    return GPTClassifier(preset_config("tiny", **kw)).eval()


def test_logits_alone_equal_logits_batched_with_longer_messages():
    model = _model()
    short = [15496, 11, 995, 0]
    batch = [short, list(range(100, 140)), list(range(500, 517))]
    with torch.no_grad():
        alone = model(*collate([short], pad_id=50256))
        together = model(*collate(batch, pad_id=50256))
    torch.testing.assert_close(together[0:1], alone, atol=1e-5, rtol=0)


def test_pad_value_does_not_matter():
    model = _model()
    batch = [[1, 2, 3], list(range(10, 30))]
    with torch.no_grad():
        a = model(*collate(batch, pad_id=50256))
        b = model(*collate(batch, pad_id=7))
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_first_token_mode_reads_position_zero():
    model = _model(token="first")
    with torch.no_grad():
        a = model(*collate([[42, 1, 2, 3]], pad_id=50256))
        b = model(*collate([[42, 9, 9]], pad_id=50256))
    # Causal attention: position 0 sees only itself, so the rest of the message is invisible.
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_presets_have_gpt2_shapes():
    gpt2 = GPTClassifier(preset_config("gpt2"))
    non_embedding = sum(p.numel() for n, p in gpt2.named_parameters() if not n.startswith("w"))
    assert round(non_embedding / 1e6) == 85  # GPT-2 small: 124M with embeddings, 85M without
    assert gpt2.head.out_features == 2


def test_logits_are_the_head_on_the_last_real_tokens_hidden_state():
    """forward() runs the last block's MLP on the read token only; that must be exact."""
    model = _model()
    batch = [[1, 2, 3], list(range(10, 30)), [7]]
    input_ids, mask = collate(batch, pad_id=50256)
    with torch.no_grad():
        hidden = model.h[-1](model.trunk(input_ids))[torch.arange(3), mask.sum(dim=1) - 1]
        torch.testing.assert_close(model(input_ids, mask), model.head(model.ln_f(hidden)),
                                   atol=1e-6, rtol=0)
