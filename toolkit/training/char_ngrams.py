"""Token embeddings that learn through the tokens' spelling (fastText's subword vectors).

Trained from random weights on a thousand messages, a token that never occurs in training keeps
its random embedding, and a message full of such tokens (a new phone number, a new brand) reads
as noise. Here each token's embedding is its own vector plus learned vectors of the character
1..n-grams of its text, both lowercased and as a shape (digits -> 9, letters -> a), hashed into
a fixed number of buckets: a token unseen in training still gets what tokens spelled like it
taught the shared n-grams. The n-gram vectors start at zero, so training starts from exactly
the plain model, and `folded()` writes their sums into an ordinary embedding table: the
checkpoint, its export and the runtime are those of any other GPT-2 classifier.
"""

from __future__ import annotations

import zlib

import tiktoken
import torch
from torch import nn

from spamkit.errors import SpamkitError

BUCKETS = 32768


def _shape(text: str) -> str:
    return "".join("9" if c.isdigit() else "a" if c.isalpha() else c for c in text)


def ngram_index(encoding: tiktoken.Encoding, n_max: int, buckets: int) -> torch.Tensor:
    """[vocab, K] bucket ids (1..buckets) of each token's n-grams, right-padded with 0."""
    rows = []
    for token in range(encoding.n_vocab):
        text = encoding.decode_single_token_bytes(token).decode("utf-8", "replace")
        grams = set()
        for kind, word in (("l", text.lower()), ("s", _shape(text))):
            word = f"<{word}>"  # the boundaries tell a prefix or a suffix from a middle
            for n in range(1, n_max + 1):
                grams.update(kind + word[i : i + n] for i in range(len(word) - n + 1))
        # crc32, not hash(): Python salts str hashes per process, and the buckets must not move.
        rows.append(sorted(zlib.crc32(g.encode()) % buckets + 1 for g in grams))
    index = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.int32)
    for token, row in enumerate(rows):
        index[token, : len(row)] = torch.tensor(row, dtype=torch.int32)
    return index


class CharNgramEmbedding(nn.Module):
    """Drop-in for the token embedding `wte` while training."""

    def __init__(self, wte: nn.Embedding, encoding: tiktoken.Encoding, n_max: int,
                 buckets: int = BUCKETS) -> None:
        super().__init__()
        if wte.num_embeddings != encoding.n_vocab:
            raise SpamkitError(f"--char-ngrams needs the tokenizer's {encoding.n_vocab} tokens, "
                               f"and the model has {wte.num_embeddings}")
        self.token = wte
        index = ngram_index(encoding, n_max, buckets)
        self.register_buffer("index", index, persistent=False)
        # Sums scaled by 1/sqrt(count): long tokens have more n-grams, not louder vectors.
        scale = (index > 0).sum(dim=1, keepdim=True).float().rsqrt()
        self.register_buffer("scale", scale, persistent=False)
        self.ngrams = nn.Embedding(buckets + 1, wte.embedding_dim, padding_idx=0)
        nn.init.zeros_(self.ngrams.weight)

    def spelled(self, ids: torch.Tensor) -> torch.Tensor:
        return self.ngrams(self.index[ids]).sum(dim=-2) * self.scale[ids]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.token(ids) + self.spelled(ids)

    @torch.no_grad()
    def folded(self) -> nn.Embedding:
        """The plain embedding table this module computes, for the checkpoint."""
        table = self.token.weight.detach().clone()
        for start in range(0, len(table), 4096):
            ids = torch.arange(start, min(start + 4096, len(table)), device=table.device)
            table[ids] += self.spelled(ids)
        return nn.Embedding.from_pretrained(table, freeze=False)


def fold_embeddings(model: nn.Module) -> None:
    """Put a plain embedding table back in `model`, the n-grams folded in (a no-op without them)."""
    if isinstance(model.wte, CharNgramEmbedding):
        model.wte = model.wte.folded()
