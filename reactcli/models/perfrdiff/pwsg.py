"""PWSG: personalised weight shift generation, plus the loaders of PerFRDiff's checkpoints.

A hypernetwork maps a listener's style vector (PSSL, 512-d) to weight SHIFTS of chosen GAFRG
linears, W' = W + dW. Differences from the authors' code, on purpose:

* **Low-rank by default.** Each branch outputs A (r x in) and B (out x r), dW = B A. The
  full-rank editor (each branch outputs out*in numbers) is kept as ``rank=None``; with the
  default layers it has 1.627 B parameters, the count the supplementary reports (Table 11),
  while rank 8 has ~40x fewer (see :func:`editor_parameter_count`).
* **Functional, per sample.** Shifts are returned as :class:`~.gafrg.WeightShift` objects that
  GAFRG's :class:`~.gafrg.EditableLinear` layers add as ``x W^T + (x A^T) B^T`` per item, so a
  batch can mix listeners and the base weights are never touched (the authors swap module
  parameters globally and can only run batch size 1).
* **Zero-initialised B / dW.** At the start of training dW = 0, so the edited generator starts as
  the pre-trained generic GAFRG (the authors' released stage 2 started from an untrained one).

Training (paper): SGD lr 1e-3, momentum 0.9, weight decay 1e-4, GAFRG and PSSL frozen, GAFRG
really loaded from its stage-1 checkpoint (:func:`build_pwsg_training`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reactcli.config import NonNegativeInt, PositiveInt, from_mapping
from reactcli.errors import ConfigError, InputError
from reactcli.models.checkpoint import save_model
from reactcli.models.registry import load_model

from .diffusion import DiffusionConfig
from .gafrg import FUSED_CROSS, GAFRG, GAFRGConfig, WeightShift
from .pssl import PSSLEncoder

__all__ = [
    "PWSGConfig",
    "PWSG",
    "resolve_layer_names",
    "editor_parameter_count",
    "load_gafrg",
    "load_pssl",
    "load_pwsg",
    "save_pwsg",
    "pwsg_extra",
    "pwsg_from_checkpoint",
    "PWSGTraining",
    "build_pwsg_training",
]

DEFAULT_EDIT_LAYERS = ("layers.-2.ffn2", "layers.-1.ffn1", "layers.-1.ffn2", "output")
ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


@dataclass
class PWSGConfig:
    """The weight-shift hypernetwork."""

    style_dim: PositiveInt = 512
    """Width of the input style vector (PSSL output)."""
    hidden: tuple[PositiveInt, PositiveInt] = (1024, 1024)
    """Widths of the two shared fully-connected layers (512 -> 1024 -> 1024 in the paper)."""
    layers: tuple[str, ...] = DEFAULT_EDIT_LAYERS
    """GAFRG linears to edit (names from ``GAFRG.edit_targets()``; ``layers.-1`` = last decoder
    layer; ``layers.<i>.cross_qkv`` = the layer's cross-attention q, k and v projections as one
    matrix, as the authors' editor shifts them). The default (two FFN linears of the last layer,
    one of the layer before, the output head) gives exactly the 1.627 B full-rank parameters the
    supplementary reports at paper size (the authors' released choice, the cross-attention of
    layers 4 and 6 and the output head, gives the same count)."""
    rank: PositiveInt | None = 8
    """Rank r of dW = B @ A; ``None`` = full-rank dW (the authors' version, huge)."""
    edit_bias: bool = False
    """Also shift each edited layer's bias (db, ``out`` more outputs per branch). Not in the paper
    (which shifts weights only); on the output layer it is a per-listener level shift."""
    codes: NonNegativeInt = 0
    """Listener codes instead of a PSSL encoder (not in the paper): the editor learns one
    ``style_dim`` code per training identity together with its weights (an auto-decoder, trained
    on the edited GAFRG's diffusion loss, so a code keeps what makes that listener's reactions
    predictable). A new listener's style is the code whose edited GAFRG best explains their
    history clip (:func:`reactcli.training.perfrdiff_losses.code_scores`). 0 = style from PSSL.
    The trainer sets it to the number of identities of the training split."""

    activation: str = "gelu"
    """Activation after each shared layer: ``gelu`` or ``relu`` (the authors' ``ModifierNetwork``)."""

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"PWSG activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        self.hidden = tuple(self.hidden)  # type: ignore[assignment]
        self.layers = tuple(self.layers)
        if len(self.hidden) != 2:
            raise ConfigError(f"PWSG hidden must have two widths, got {self.hidden}")
        if self.rank is not None and self.rank < 1:
            raise ConfigError(f"PWSG rank must be >= 1 or None (full rank), got {self.rank}")
        if not self.layers:
            raise ConfigError("PWSG needs at least one layer to edit")
        if self.codes < 0:
            raise ConfigError(f"PWSG codes must be >= 0, got {self.codes}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for checkpoints; inverted by :meth:`from_dict`."""
        d = asdict(self)
        d["hidden"], d["layers"] = list(self.hidden), list(self.layers)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PWSGConfig":
        """Rebuild from :meth:`to_dict`; unknown keys are an error."""
        return from_mapping(cls, data, "PWSGConfig")


def resolve_layer_names(names: tuple[str, ...], gafrg_config: GAFRGConfig) -> list[str]:
    """Turn ``layers.-1.ffn1`` style names into absolute ones for a GAFRG with ``num_layers``."""
    out = []
    for name in names:
        parts = name.split(".")
        if parts[0] == "layers" and len(parts) == 3:
            i = int(parts[1])
            if not -gafrg_config.num_layers <= i < gafrg_config.num_layers:
                raise ConfigError(f"PWSG layer {name!r}: GAFRG has {gafrg_config.num_layers} layers")
            parts[1] = str(i % gafrg_config.num_layers)
        out.append(".".join(parts))
    return out


def _branch_width(shape: tuple[int, int], rank: int | None, edit_bias: bool = False) -> int:
    out_f, in_f = shape
    return (out_f * in_f if rank is None else rank * (in_f + out_f)) + (out_f if edit_bias else 0)


def editor_parameter_count(layer_shapes: dict[str, tuple[int, int]], rank: int | None,
                           style_dim: int = 512, hidden: tuple[int, int] = (1024, 1024),
                           edit_bias: bool = False) -> int:
    """Parameters of a PWSG editor, computed without building it (the full-rank one is ~6.5 GB)."""
    h1, h2 = hidden
    trunk = style_dim * h1 + h1 + h1 * h2 + h2
    return trunk + sum((h2 + 1) * _branch_width(s, rank, edit_bias) for s in layer_shapes.values())


class PWSG(nn.Module):
    """Style vector (G, style_dim) -> {layer name: WeightShift for G items}.

    With ``config.codes`` it also holds the listener codes (``codes``, (codes, style_dim)) and the
    identity each row belongs to (``code_identities``, stored in the checkpoint)."""

    def __init__(self, config: PWSGConfig, layer_shapes: dict[str, tuple[int, int]],
                 code_identities: list[str] | None = None):
        super().__init__()
        self.config = config
        self.codes: nn.Parameter | None = None
        self.code_identities: list[str] = list(code_identities or [])
        if config.codes:
            # unit expected norm, like the one-hot / unit-norm styles the editor was designed for
            self.codes = nn.Parameter(torch.randn(config.codes, config.style_dim) / config.style_dim ** 0.5)
            if self.code_identities and len(self.code_identities) != config.codes:
                raise ConfigError(f"PWSG has {config.codes} codes but {len(self.code_identities)} code identities")
        missing = [n for n in config.layers if n not in layer_shapes]
        if missing:
            raise ConfigError(f"PWSG layers {missing} are not editable GAFRG layers "
                              f"(known: {sorted(layer_shapes)[:6]}...)")
        self.layer_shapes = {n: tuple(layer_shapes[n]) for n in config.layers}
        edited = [part for n in config.layers for part in _parts(n, self.layer_shapes[n])]
        twice = sorted({name for name, _ in edited if sum(1 for other, _ in edited if other == name) > 1})
        if twice:
            raise ConfigError(f"PWSG edits {twice} twice (a fused cross_qkv and its own projection)")
        h1, h2 = config.hidden
        act = ACTIVATIONS[config.activation]
        self.trunk = nn.Sequential(nn.Linear(config.style_dim, h1), act(), nn.Linear(h1, h2), act())
        self.branches = nn.ModuleDict()
        for name, shape in self.layer_shapes.items():
            branch = nn.Linear(h2, _branch_width(shape, config.rank, config.edit_bias))
            with torch.no_grad():
                # zero the rows that produce dW (full rank) or B (so dW = B A = 0), and db:
                # an untrained editor leaves GAFRG exactly as it is
                n_a = 0 if config.rank is None else config.rank * shape[1]
                branch.weight[n_a:].zero_()
                branch.bias[n_a:].zero_()
            self.branches[name.replace(".", "__")] = branch

    @classmethod
    def for_gafrg(cls, gafrg: GAFRG, config: PWSGConfig | None = None,
                  code_identities: list[str] | None = None) -> "PWSG":
        """Build an editor for ``gafrg``'s layers (relative names resolved)."""
        cfg = config or PWSGConfig()
        cfg = replace(cfg, layers=tuple(resolve_layer_names(cfg.layers, gafrg.config)))
        return cls(cfg, gafrg.edit_targets(), code_identities)

    def forward(self, style: torch.Tensor) -> dict[str, WeightShift]:
        if style.dim() != 2 or style.shape[1] != self.config.style_dim:
            raise InputError(f"style must be (G, {self.config.style_dim}), got {tuple(style.shape)}")
        h = self.trunk(style)
        g = style.shape[0]
        r = self.config.rank
        shifts = {}
        for name, (out_f, in_f) in self.layer_shapes.items():
            o = self.branches[name.replace(".", "__")](h)
            db = None
            if self.config.edit_bias:
                o, db = o[:, :-out_f], o[:, -out_f:]
            if r is None:
                shift = WeightShift(full=o.view(g, out_f, in_f), bias=db)
            else:
                a, b = o.split([r * in_f, r * out_f], dim=1)
                shift = WeightShift(a=a.view(g, r, in_f), b=b.view(g, out_f, r), bias=db)
            shifts.update(_split_rows(shift, _parts(name, (out_f, in_f))))
        return shifts


def _parts(name: str, shape: tuple[int, int]) -> list[tuple[str, int]]:
    """The GAFRG linears an edit target covers, with their rows: itself, or for a fused
    ``layers.<i>.cross_qkv`` (3 d rows) its ``cross_q`` (d) and ``cross_kv`` (2 d) projections."""
    if not name.endswith("." + FUSED_CROSS):
        return [(name, shape[0])]
    prefix = name[: -len(FUSED_CROSS)]
    d = shape[0] // 3
    return [(prefix + "cross_q", d), (prefix + "cross_kv", shape[0] - d)]


def _split_rows(shift: WeightShift, parts: list[tuple[str, int]]) -> dict[str, WeightShift]:
    """One shift per covered linear: the rows of dW (of B for a low-rank shift, A is shared) and db."""
    if len(parts) == 1:
        return {parts[0][0]: shift}
    sizes = [rows for _, rows in parts]
    cut = lambda t, dim: [None] * len(parts) if t is None else t.split(sizes, dim=dim)  # noqa: E731
    fulls, bs, biases = cut(shift.full, 1), cut(shift.b, 1), cut(shift.bias, 1)
    return {name: WeightShift(a=shift.a, b=b, full=full, bias=bias)
            for (name, _), full, b, bias in zip(parts, fulls, bs, biases)}


# ---------------------------------------------------------------------------- checkpoints
# PerFRDiff's parts are stored in the one checkpoint format (reactcli.models.checkpoint) under the
# registry names perfrdiff-gafrg, perfrdiff-pssl and perfrdiff-pwsg; these helpers load each part.
def load_gafrg(path: str | Path | None, option: str = "--gafrg-checkpoint") -> tuple[GAFRG, DiffusionConfig]:
    """A trained GAFRG and the diffusion settings it was trained with (``diffusion`` in its checkpoint)."""
    model, ck = load_model(path, ("perfrdiff-gafrg",), asset="GAFRG checkpoint", option=option)
    return model, DiffusionConfig.from_dict(ck.get("diffusion", {}))


def load_pssl(path: str | Path | None, option: str = "--pssl-checkpoint") -> PSSLEncoder:
    """A trained PSSL style encoder."""
    return load_model(path, ("perfrdiff-pssl",), asset="PSSL checkpoint", option=option)[0]


def load_pwsg(path: str | Path | None, option: str = "--pwsg-checkpoint") -> PWSG:
    """A trained editor (its checkpoint stores the edited layers' shapes and the codes' identities)."""
    return load_model(path, ("perfrdiff-pwsg",), asset="PWSG checkpoint", option=option)[0]


def pwsg_from_checkpoint(config: PWSGConfig, checkpoint: dict[str, Any]) -> PWSG:
    """The registry's builder of a PWSG: its config plus what :func:`pwsg_extra` stored."""
    if "layer_shapes" not in checkpoint:
        raise InputError("PWSG checkpoint has no layer_shapes (the edited GAFRG layers)")
    shapes = {k: tuple(v) for k, v in checkpoint["layer_shapes"].items()}
    return PWSG(config, shapes, checkpoint.get("code_identities"))


def pwsg_extra(editor: PWSG) -> dict[str, Any]:
    """What a PWSG checkpoint stores beside the weights to rebuild ``editor``."""
    extra: dict[str, Any] = {"layer_shapes": {k: list(v) for k, v in editor.layer_shapes.items()}}
    if editor.codes is not None:
        extra["code_identities"] = list(editor.code_identities)
    return extra


def save_pwsg(path: str | Path, editor: PWSG) -> Path:
    """Save an editor with its config, layer shapes and (with codes) the codes' identities."""
    return save_model(path, "perfrdiff-pwsg", editor, editor.config.to_dict(), **pwsg_extra(editor))


@dataclass
class PWSGTraining:
    """Everything the stage-2 step needs; only ``editor`` has trainable parameters."""

    gafrg: GAFRG
    """Pre-trained generic generator, frozen (requires_grad False, eval mode)."""
    pssl: PSSLEncoder | None
    """Pre-trained style encoder, frozen; None for an editor with listener codes."""
    editor: PWSG
    """The hypernetwork being trained."""
    diffusion: DiffusionConfig
    """Diffusion settings GAFRG was trained with (prediction type, schedule)."""

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters for the optimiser (paper: SGD lr 1e-3, momentum 0.9, weight decay 1e-4)."""
        return [p for p in self.editor.parameters() if p.requires_grad]


def _freeze(model: nn.Module) -> None:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)


def build_pwsg_training(gafrg_checkpoint: str | Path | None, pssl_checkpoint: str | Path | None,
                        config: PWSGConfig | None = None, device: str | torch.device = "cpu",
                        code_identities: list[str] | None = None) -> PWSGTraining:
    """Stage 2 set-up: load GAFRG and PSSL from their stage-1 checkpoints (frozen) and build the editor.

    Missing checkpoints raise :class:`MissingAssetError` naming ``--gafrg-checkpoint`` /
    ``--pssl-checkpoint``: stage 2 never starts from an untrained backbone. An editor with
    listener codes (``config.codes``, one per entry of ``code_identities``) needs no PSSL.
    """
    cfg = config or PWSGConfig()
    gafrg, dcfg = load_gafrg(gafrg_checkpoint)
    _freeze(gafrg)
    pssl = None
    if cfg.codes:
        if pssl_checkpoint is not None:
            raise ConfigError("a PWSG with listener codes reads no PSSL: drop checkpoints.pssl (or set codes: 0)")
    else:
        pssl = load_pssl(pssl_checkpoint)
        if pssl.config.style_dim != cfg.style_dim:
            raise ConfigError(f"PSSL style_dim {pssl.config.style_dim} != PWSG style_dim {cfg.style_dim}")
        _freeze(pssl)
        pssl = pssl.to(device)
    editor = PWSG.for_gafrg(gafrg, cfg, code_identities)
    return PWSGTraining(gafrg.to(device), pssl, editor.to(device), dcfg)

