"""The sign encoder and the classifier heads. All take (features [B, T, F], mask [B, T]).

Padding is handled with masks only (no pack_padded_sequence, which ONNX export cannot carry):
the backward GRU direction runs on each sequence reversed *within its valid length* (a gather),
so right padding never leaks into a real frame's state, and pooling ignores padded frames. A
sequence's embedding is therefore the same whatever padding its batch adds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_NEG = -1e4  # masked-softmax fill; finite so fp16 and ONNX stay happy


def reverse_within_length(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's first len_i frames, leave its padding where it is.

    Its own inverse, so the same call puts the backward GRU's outputs back in time order.
    """
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # [1, T]
    lengths = mask.sum(dim=1, keepdim=True).to(steps.dtype)  # [B, 1]
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)  # [B, T]
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))


class FrameProjector(nn.Module):
    def __init__(self, in_dim: int, hidden: int = 160, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(in_dim),
            nn.Linear(in_dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.GELU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MaskedBiGRU(nn.Module):
    """A stack of bidirectional GRU layers whose backward direction respects right padding."""

    def __init__(self, dim: int, hidden: int, layers: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        self.forward_layers = nn.ModuleList()
        self.backward_layers = nn.ModuleList()
        for i in range(layers):
            width = dim if i == 0 else 2 * hidden
            self.forward_layers.append(nn.GRU(width, hidden, batch_first=True))
            self.backward_layers.append(nn.GRU(width, hidden, batch_first=True))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for i, (fwd, bwd) in enumerate(zip(self.forward_layers, self.backward_layers, strict=True)):
            if i:
                x = self.dropout(x)
            out_f, _ = fwd(x)
            out_b, _ = bwd(reverse_within_length(x, mask))
            x = torch.cat([out_f, reverse_within_length(out_b, mask)], dim=-1)
        return x * mask.unsqueeze(-1)


class MotionAttentionPool(nn.Module):
    """Attention pooling whose scores blend a learned score with the frame's motion energy.

    Motion is normalised per sequence over its valid frames (zero mean, unit std), so the
    blend weight means the same for slow and fast signers; the weight itself is learned.
    """

    def __init__(self, dim: int, motion_column: int) -> None:
        super().__init__()
        self.motion_column = motion_column
        self.score = nn.Sequential(nn.Linear(dim, dim // 2), nn.Tanh(), nn.Linear(dim // 2, 1))
        self.motion_weight = nn.Parameter(torch.tensor(0.5))

    def forward(self, h: torch.Tensor, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        count = mask.sum(dim=1, keepdim=True).clamp(min=1.0)
        motion = features[..., self.motion_column] * mask
        mean = motion.sum(dim=1, keepdim=True) / count
        var = (((motion - mean) * mask) ** 2).sum(dim=1, keepdim=True) / count
        motion = (motion - mean) / torch.sqrt(var + 1e-5)
        logits = self.score(h).squeeze(-1) + self.motion_weight * motion
        logits = logits.masked_fill(mask < 0.5, _NEG)
        weights = torch.softmax(logits.float(), dim=1).to(h.dtype) * mask
        weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=1e-6)
        return torch.einsum("bt,btd->bd", weights, h)


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (h * mask.unsqueeze(-1)).sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1.0)


class SignEncoder(nn.Module):
    """features [B, T, F] (normalised), mask [B, T] -> embedding [B, D], L2-normalised."""

    def __init__(
        self, in_dim: int, motion_column: int, hidden: int = 160, embedding_dim: int = 256,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.projector = FrameProjector(in_dim, hidden, dropout)
        self.gru = MaskedBiGRU(hidden, hidden, layers=2, dropout=dropout)
        self.pool = MotionAttentionPool(2 * hidden, motion_column)
        self.head = nn.Sequential(
            nn.Linear(4 * hidden, 2 * hidden), nn.GELU(), nn.Linear(2 * hidden, embedding_dim)
        )

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.projector(features) * mask.unsqueeze(-1)
        h = self.gru(x, mask)
        pooled = torch.cat([self.pool(h, features, mask), masked_mean(h, mask)], dim=-1)
        return F.normalize(self.head(pooled), dim=-1)


# ---------------------------------------------------------------------------- classifiers


class MLPClassifier(nn.Module):
    """Static handshapes: per-frame MLP, masked mean over frames, linear head."""

    def __init__(self, in_dim: int, n_classes: int, hidden: int = 160, dropout: float = 0.1) -> None:
        super().__init__()
        self.frames = FrameProjector(in_dim, hidden, dropout)
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, n_classes))

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.frames(features) * mask.unsqueeze(-1)
        peak = h.masked_fill(mask.unsqueeze(-1) < 0.5, _NEG).amax(dim=1)
        return self.out(torch.cat([masked_mean(h, mask), peak], dim=-1))


class RecurrentClassifier(nn.Module):
    """LSTM / Bi-LSTM / GRU over projected frames, masked mean pooling, linear head."""

    def __init__(
        self, in_dim: int, n_classes: int, kind: str = "bilstm", hidden: int = 160, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.frames = FrameProjector(in_dim, hidden, dropout)
        cell = nn.GRU if kind == "gru" else nn.LSTM
        self.bidirectional = kind in ("bilstm", "gru")
        self.fwd = cell(hidden, hidden, batch_first=True)
        self.bwd = cell(hidden, hidden, batch_first=True) if self.bidirectional else None
        width = 2 * hidden if self.bidirectional else hidden
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, n_classes))

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.frames(features) * mask.unsqueeze(-1)
        h, _ = self.fwd(x)
        if self.bwd is not None:
            hb, _ = self.bwd(reverse_within_length(x, mask))
            h = torch.cat([h, reverse_within_length(hb, mask)], dim=-1)
        return self.out(masked_mean(h, mask))


class TCNClassifier(nn.Module):
    """Dilated causal 1-D convolutions (left padding only), masked mean pooling."""

    def __init__(
        self, in_dim: int, n_classes: int, hidden: int = 160, dropout: float = 0.1,
        dilations: tuple[int, ...] = (1, 2, 4, 8), kernel: int = 3,
    ) -> None:
        super().__init__()
        self.frames = FrameProjector(in_dim, hidden, dropout)
        self.convs = nn.ModuleList(nn.Conv1d(hidden, hidden, kernel, dilation=d) for d in dilations)
        self.pads = [(kernel - 1) * d for d in dilations]
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = (self.frames(features) * mask.unsqueeze(-1)).transpose(1, 2)  # [B, H, T]
        for conv, pad in zip(self.convs, self.pads, strict=True):
            x = x + self.dropout(F.gelu(conv(F.pad(x, (pad, 0)))))
        return self.out(masked_mean(x.transpose(1, 2), mask))


def build_classifier(kind: str, in_dim: int, n_classes: int, hidden: int = 160, dropout: float = 0.1) -> nn.Module:
    if kind == "mlp":
        return MLPClassifier(in_dim, n_classes, hidden, dropout)
    if kind in ("lstm", "bilstm", "gru"):
        return RecurrentClassifier(in_dim, n_classes, kind, hidden, dropout)
    if kind == "tcn":
        return TCNClassifier(in_dim, n_classes, hidden, dropout)
    raise ValueError(f"unknown classifier kind {kind!r}")


# ---------------------------------------------------------------------------- hybrid embedding


def segment_means(features: torch.Tensor, mask: torch.Tensor, n_segments: int) -> torch.Tensor:
    """[B, T, F] -> [B, n_segments * F]: the mean of each of n equal parts of the valid frames."""
    steps = torch.arange(features.shape[1], device=features.device).unsqueeze(0).to(features.dtype)
    lengths = mask.sum(dim=1, keepdim=True).clamp(min=1.0)
    segment = torch.clamp(torch.floor(steps * n_segments / lengths), max=n_segments - 1)  # [B, T]
    parts = []
    for s in range(n_segments):
        w = (segment == s).to(features.dtype) * mask
        parts.append((features * w.unsqueeze(-1)).sum(dim=1) / w.sum(dim=1, keepdim=True).clamp(min=1.0))
    return torch.cat(parts, dim=-1)


class HybridEncoder(nn.Module):
    """The learned embedding plus `mix` x a fixed (not trained) view of the input: a seeded random
    orthonormal projection of the (normalised) feature means over `n_segments` parts of the clip.

    Why: training on the seen signs collapses directions those signs do not need, and signs
    enrolled later (few-shot, class-disjoint) can differ exactly there, e.g. static handshapes.
    The fixed view keeps that information; cos(hybrid) ~ (cos(learned) + mix^2 cos(fixed)) / (1 + mix^2).
    `mix` is calibrated at export on seen labels; mix = 0 is the learned embedding alone.
    """

    def __init__(self, encoder: nn.Module, in_dim: int, mix: float, n_segments: int = 2, dim: int = 256,
                 seed: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        self.mix = float(mix)
        self.n_segments = int(n_segments)
        gen = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(n_segments * in_dim, dim, generator=gen))
        self.register_buffer("projection", q.contiguous())  # [n * F, dim], orthonormal columns

    def fixed(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(segment_means(features, mask, self.n_segments) @ self.projection, dim=-1)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        learned = self.encoder(features, mask)
        return F.normalize(learned + self.mix * self.fixed(features, mask), dim=-1)
