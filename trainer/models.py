"""The sign encoder and the classifier heads. All take (features [B, T, F], mask [B, T]).

Padding is handled with masks only (no pack_padded_sequence, which ONNX export cannot carry):
the backward GRU direction runs on each sequence reversed *within its valid length* (a gather),
so right padding never leaks into a real frame's state, and pooling ignores padded frames. A
sequence's embedding is therefore the same whatever padding its batch adds.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from signseek.features import FeatureConfig, FeatureStats

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


class HandShapeDescriptor(nn.Module):
    """Per frame, what a hand's shape is regardless of how it is turned: log(1 + distance) between
    every pair of each hand's 21 landmarks (2 x 210 values; zero for an absent hand).

    Why: the signs a team enrols later are often static handshapes (letters), and the features'
    `shape` block holds them as wrist-relative coordinates, which change when the hand rolls. The
    distances do not: in-plane rotation, position and size leave them unchanged. It reads the
    *normalised* features the encoder receives, so it holds the training statistics of the
    columns it un-normalises, and its own (`fit` on training clips): the standardisation of its
    output and a PCA basis (`basis`, [420, 256]) used by `HybridEncoder`'s hand-shape view.
    """

    def __init__(self, fcfg: FeatureConfig, basis_dim: int = 256) -> None:
        super().__init__()
        if "shape" not in fcfg.blocks:
            raise ValueError("the hand-shape descriptor needs the features' shape block (hand_shape=True)")
        self.shape_cols = (fcfg.blocks["shape"].start, fcfg.blocks["shape"].stop)
        self.presence_cols = (fcfg.blocks["presence"].start, fcfg.blocks["presence"].stop)
        first, second = torch.triu_indices(21, 21, offset=1)
        self.register_buffer("first", first)
        self.register_buffer("second", second)
        n_shape, self.dim = 2 * 21 * 3, 2 * len(first)
        for name, size in (("shape", n_shape), ("presence", 2), ("out", self.dim)):
            self.register_buffer(f"{name}_mean", torch.zeros(size))
            self.register_buffer(f"{name}_std", torch.ones(size))
        self.register_buffer("basis", torch.eye(self.dim, basis_dim))

    def raw(self, features: torch.Tensor) -> torch.Tensor:
        """[B, T, F] normalised features -> [B, T, 420] log distances (not standardised)."""
        a, b = self.shape_cols
        shape = features[..., a:b] * self.shape_std + self.shape_mean
        shape = shape.reshape(*shape.shape[:-1], 2, 21, 3)
        diff = shape[..., self.first, :] - shape[..., self.second, :]  # [B, T, 2, 210, 3]
        dist = torch.log1p(torch.sqrt((diff * diff).sum(-1) + 1e-12))
        a, b = self.presence_cols
        present = (features[..., a:b] * self.presence_std + self.presence_mean) > 0.5  # [B, T, 2]
        return (dist * present.unsqueeze(-1).to(dist.dtype)).flatten(-2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return (self.raw(features) - self.out_mean) / self.out_std

    @torch.no_grad()
    def fit(self, stats: FeatureStats, normalised: list[np.ndarray]) -> None:
        """Set the input statistics from `stats`, then the output standardisation and the PCA
        basis from the (normalised) training sequences."""
        from sklearn.decomposition import PCA

        for name, (a, b) in (("shape", self.shape_cols), ("presence", self.presence_cols)):
            getattr(self, f"{name}_mean").copy_(torch.from_numpy(stats.mean[a:b]))
            getattr(self, f"{name}_std").copy_(torch.from_numpy(stats.std[a:b]))
        frames = self.raw(torch.from_numpy(np.concatenate(normalised)).unsqueeze(0))[0]
        self.out_mean.copy_(frames.mean(0))
        self.out_std.copy_(frames.std(0).clamp(min=1e-3))
        standardised = (frames - self.out_mean) / self.out_std  # = self(...) of every frame, computed once
        clip_means = torch.stack([clip.mean(0) for clip in torch.split(standardised, [len(s) for s in normalised])])
        pca = PCA(n_components=min(self.basis.shape[1], *clip_means.shape), svd_solver="full")
        pca.fit(clip_means.numpy())
        self.basis.zero_()
        self.basis[:, : pca.n_components_].copy_(torch.from_numpy(pca.components_.T.astype(np.float32)))


class SignEncoder(nn.Module):
    """features [B, T, F] (normalised), mask [B, T] -> embedding [B, D], L2-normalised.

    With a `HandShapeDescriptor` its 420 values join each frame's features before the projector.
    """

    def __init__(
        self, in_dim: int, motion_column: int, hidden: int = 160, embedding_dim: int = 256,
        dropout: float = 0.1, descriptor: HandShapeDescriptor | None = None,
    ) -> None:
        super().__init__()
        self.descriptor = descriptor
        self.projector = FrameProjector(in_dim + (descriptor.dim if descriptor else 0), hidden, dropout)
        self.gru = MaskedBiGRU(hidden, hidden, layers=2, dropout=dropout)
        self.pool = MotionAttentionPool(2 * hidden, motion_column)
        self.head = nn.Sequential(
            nn.Linear(4 * hidden, 2 * hidden), nn.GELU(), nn.Linear(2 * hidden, embedding_dim)
        )

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = features if self.descriptor is None else torch.cat([features, self.descriptor(features)], dim=-1)
        x = self.projector(x) * mask.unsqueeze(-1)
        h = self.gru(x, mask)
        pooled = torch.cat([self.pool(h, features, mask), masked_mean(h, mask)], dim=-1)
        return F.normalize(self.head(pooled), dim=-1)


# ---------------------------------------------------------------------------- classifiers


class MLPClassifier(nn.Module):
    """Static handshapes: per-frame MLP, masked mean over frames, linear head.

    With a `HandShapeDescriptor` its rotation-invariant distances join each frame's features, as
    in the encoder (a new signer holds the hand at another angle; the distances do not change).
    """

    def __init__(self, in_dim: int, n_classes: int, hidden: int = 160, dropout: float = 0.1,
                 descriptor: HandShapeDescriptor | None = None) -> None:
        super().__init__()
        self.descriptor = descriptor
        self.frames = FrameProjector(in_dim + (descriptor.dim if descriptor else 0), hidden, dropout)
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, n_classes))

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.descriptor is not None:
            features = torch.cat([features, self.descriptor(features)], dim=-1)
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


def build_classifier(kind: str, in_dim: int, n_classes: int, hidden: int = 160, dropout: float = 0.1,
                     descriptor: HandShapeDescriptor | None = None) -> nn.Module:
    if kind == "mlp":
        return MLPClassifier(in_dim, n_classes, hidden, dropout, descriptor)
    if descriptor is not None:
        raise ValueError(f"hand_descriptor is supported by the mlp classifier, not {kind!r}")
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
    """The learned embedding plus `mix` x a fixed (not trained) view of the input.

    view="features": a seeded random orthonormal projection of the (normalised) feature means
    over `n_segments` parts of the clip. view="handshape": the clip's mean hand-shape descriptor
    (`HandShapeDescriptor`, the encoder's own) projected on its PCA basis, which keeps > 99.99%
    of the descriptor's variance in 256 dimensions.

    Why: training on the seen signs collapses directions those signs do not need, and signs
    enrolled later (few-shot, class-disjoint) can differ exactly there, e.g. static handshapes.
    The fixed view keeps that information; cos(hybrid) ~ (cos(learned) + mix^2 cos(fixed)) / (1 + mix^2).
    `mix` is calibrated at export; mix = 0 is the learned embedding alone.
    """

    def __init__(self, encoder: nn.Module, in_dim: int, mix: float, n_segments: int = 2, dim: int = 256,
                 seed: int = 0, view: str = "features") -> None:
        super().__init__()
        if view not in ("features", "handshape"):
            raise ValueError(f"fixed view must be 'features' or 'handshape', got {view!r}")
        if view == "handshape" and getattr(encoder, "descriptor", None) is None:
            raise ValueError("the hand-shape view needs an encoder trained with hand_descriptor=true")
        self.encoder = encoder
        self.mix = float(mix)
        self.view = view
        self.n_segments = int(n_segments) if view == "features" else 1
        if view == "features":  # the hand-shape view projects on the descriptor's own basis
            gen = torch.Generator().manual_seed(seed)
            q, _ = torch.linalg.qr(torch.randn(n_segments * in_dim, dim, generator=gen))
            self.register_buffer("projection", q.contiguous())  # [n * F, dim], orthonormal columns

    def fixed(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.view == "handshape":
            descriptor = self.encoder.descriptor
            return F.normalize(masked_mean(descriptor(features), mask) @ descriptor.basis, dim=-1)
        return F.normalize(segment_means(features, mask, self.n_segments) @ self.projection, dim=-1)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        learned = self.encoder(features, mask)
        return F.normalize(learned + self.mix * self.fixed(features, mask), dim=-1)
