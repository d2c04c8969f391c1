"""GPT-2 with a classification head, in one readable file (after nanoGPT and the book's ch. 6).

The 50,257-way LM head is replaced by a `num_classes` head. Attention is causal, so only the
last real token of a message has seen all of it: the head reads that token's hidden state.
Messages in a batch are right-padded; padding comes after the token we read, and causal
attention never lets a token see what follows it, so a message's logits do not depend on what
it is batched with and no attention mask is needed inside the blocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from spamkit.config import GPTConfig
from spamkit.runtime.batching import pad_batch

Pick = Callable[[torch.Tensor], torch.Tensor]  # [batch, seq, C] -> [batch, C]


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.dropout = cfg.dropout
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)  # q, k, v in one matmul
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, pick: Pick | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        if pick is not None:
            y = pick(y)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, pick: Pick | None = None) -> torch.Tensor:
        """With `pick`, only the picked token of each row leaves the block: attention still
        reads every position, but all that follows it acts on one token."""
        a = self.attn(self.ln_1(x), pick)
        x = (x if pick is None else pick(x)) + a
        return x + self.mlp(self.ln_2(x))


class GPTClassifier(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.context_length, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.h = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.num_classes)
        self.apply(self._init_weights)
        # GPT-2's scaled init for the projections that feed the residual stream.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)
        return self.drop(self.wte(input_ids) + self.wpe(pos))

    def token_index(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """Position of the token the head reads, per row."""
        if self.config.token == "first":
            return torch.zeros_like(attention_mask[:, 0])
        # ONNX Runtime has no int64 ArgMax, and with right padding the last real token sits at
        # length - 1 anyway.
        return (attention_mask.sum(dim=1) - 1).clamp(min=0)

    def trunk(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Hidden states entering the last block: [batch, seq, n_embd]."""
        x = self.embed(input_ids)
        for block in self.h[:-1]:
            x = block(x)
        return x

    def trunk_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters `trunk` computes with: embeddings and every block but the last."""
        for module in (self.wte, self.wpe, *self.h[:-1]):
            yield from module.parameters()

    def top(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Class logits from the trunk's hidden states."""
        rows = torch.arange(x.shape[0], device=x.device)
        index = self.token_index(attention_mask)
        # After the last attention everything acts per token, so computing it for the one token
        # the head reads is exact and spares the last block's MLP at every other position.
        x = self.h[-1](x, pick=lambda t: t[rows, index])
        return self.head(self.ln_f(x))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Class logits [batch, num_classes] for right-padded `input_ids` [batch, seq]."""
        return self.top(self.trunk(input_ids), attention_mask)


class Ensemble(nn.Module):
    """Classifiers of one shape that answer as one: the log of their mean probability. Its
    softmax is that mean, so the runtime, which applies softmax to whatever logits a graph
    returns, reads an ensemble's graph as it reads one model's."""

    def __init__(self, cfg: GPTConfig, members: int) -> None:
        super().__init__()
        self.config = cfg
        self.members = nn.ModuleList(GPTClassifier(cfg) for _ in range(members))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # In float32 (an fp16 export's members give fp16 logits), and as a log-sum-exp: a mean
        # of probabilities taken first could round to 0 and its log to -inf.
        log_p = torch.stack([m(input_ids, attention_mask).float().log_softmax(dim=-1)
                             for m in self.members])
        return torch.logsumexp(log_p, dim=0) - math.log(len(self.members))


@torch.no_grad()
def model_logits(model: GPTClassifier | Ensemble, ids: list[list[int]], pad_id: int,
                 batches: Iterable[list[int]]) -> np.ndarray:
    """The model's logits [len(ids), classes] of the messages `ids`, run in `batches` (lists of
    indices into `ids`) on the inputs an exported graph gets."""
    out = np.empty((len(ids), model.config.num_classes), dtype=np.float32)
    for rows in batches:
        input_ids, mask = pad_batch([ids[i] for i in rows], pad_id)
        out[rows] = model(torch.from_numpy(input_ids), torch.from_numpy(mask)).float().numpy()
    return out
