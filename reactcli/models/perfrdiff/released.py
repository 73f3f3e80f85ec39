"""PerFRDiff's released checkpoints (xk0720/PerFRDiff, the ``checkpoints/`` folder) as a reactcli run.

The authors release, under ``checkpoints/``, one ``torch.save`` dict per network whose
``state_dict`` their code loads (``utils/util.py``). Their generation (``evaluate_diffusion.py``,
``evaluate_rewrite_weight.py`` at commit :data:`AUTHORS_COMMIT`) reads:

====================================================  =========================================
``diffusion_model/TransformerDenoiser/checkpoint.pth``  the decoder (GAFRG), generic generation
``embedder_latent/checkpoint.pth``                      ``AutoencoderRNN_VAE_v2``: only its encoder
                                                        GRU is used, to summarise the speaker's
                                                        emotion window into one memory token
``person_specific/checkpoint.pth``                      the PSSL style encoder
``rewrite_weight/ModifierNetwork/checkpoint.pth``       the PWSG editor (full rank)
``rewrite_weight/TransformerDenoiser/checkpoint.pth``   the decoder the editor shifts (their
                                                        personalised evaluation reads it there)
====================================================  =========================================

Each becomes a reactcli network through config options that reproduce the released
architecture (post-norm decoder layers, diffusers-style time embedding, the ``concat`` memory
layout with zero-token null conditions and scaled audio, the GRU state as the emotion token, a
post-norm ReLU PSSL with an MLP head and interleaved positions, a ReLU full-rank editor whose
cross-attention branches cover q, k and v at once), and their sampler through
:class:`~.diffusion.DiffusionConfig` (x0 clamped to [-1, 1] every step, last step to alpha_bar of
step 0, no clipping after).

Files the released generation does not need are not read: the diffusion prior
(``*/DiffusionPriorNetwork``), whose output the released decoder config always drops
(``l_latent_embed_drop_prob: 1.0``), and ``embedder_3dmm`` (``encode_3dmm: False``: the decoder
reads raw 3DMM). Two decoder tensors are read but unused for the same reason: the projections of
the speaker-emotion sequence and the past listener emotion, both always dropped (``1.0``).

Everything the state dicts do not hold comes from :class:`ReleasedSettings`, whose defaults are
the released configs' values (``configs/diffusion_model.yaml``, ``configs/rewrite_weight.yaml``).

Entry points that take the authors' inputs, to repeat the comparison with their code:
:func:`load_denoiser` (``forward`` / ``forward_with_cond_scale`` as their ``TransformerDenoiser``),
:func:`load_pssl` (``forward`` -> (feature, style) as their ``Transformer``), :func:`load_editor`
(``forward`` -> the list of weight shifts of their ``ModifierNetwork``). :func:`import_released`
writes the run (:func:`write_run` is the one writer).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import reactcli
from reactcli.errors import ConfigError, InputError
from reactcli.io import atomic_directory, write_json
from reactcli.models.checkpoint import save_checkpoint

from .diffusion import DiffusionConfig
from .gafrg import FUSED_CROSS, GAFRG, GAFRGConfig
from .pssl import PSSLConfig, PSSLEncoder
from .pwsg import PWSG, PWSGConfig

__all__ = [
    "AUTHORS_COMMIT",
    "RELEASED_FILES",
    "ReleasedDenoiser",
    "ReleasedEditor",
    "ReleasedPSSL",
    "ReleasedSettings",
    "convert_denoiser",
    "convert_editor",
    "convert_pssl",
    "import_released",
    "load_denoiser",
    "load_editor",
    "load_pssl",
    "read_state_dict",
    "write_run",
]

AUTHORS_COMMIT = "8f08853a34910b6f9679a91914d721d7489ce668"
"""The xk0720/PerFRDiff commit whose code defines the released layout read here."""

RELEASED_FILES = {
    "decoder": "diffusion_model/TransformerDenoiser/checkpoint.pth",
    "embedder": "embedder_latent/checkpoint.pth",
    "pssl": "person_specific/checkpoint.pth",
    "editor": "rewrite_weight/ModifierNetwork/checkpoint.pth",
    "editor_decoder": "rewrite_weight/TransformerDenoiser/checkpoint.pth",
}
"""Role -> path inside the released ``checkpoints/`` folder."""

RELEASED_EDIT_LAYERS = (
    "diffusion_decoder.model.decoder.layers.4.multihead_attn",
    "diffusion_decoder.model.decoder.layers.6.multihead_attn",
    "diffusion_decoder.model.to_emotion_feat",
)


@dataclass
class ReleasedSettings:
    """What the released state dicts do not hold; defaults: the released configs' values."""

    decoder_heads: int = 4
    """Attention heads of the decoder (``diffusion_decoder.args.num_heads``)."""
    pssl_heads: int = 4
    """Attention heads of the PSSL encoder (``person_specific.args.num_heads``)."""
    window: int = 50
    """Frames per window (``diffusion_decoder.args.window_size``)."""
    audio_scale: float | None = None
    """Factor on the audio tokens (``s_audio_scale``); None: the authors' default when the config
    omits it, as the released one does: ``latent_dim ** -0.5``."""
    edit_layers: tuple[str, ...] = RELEASED_EDIT_LAYERS
    """The editor's ``main_model.args.modified_layers`` (the branches hold only flattened shapes)."""
    guidance_scale: float = 7.5
    """Classifier-free guidance scale (``diffusion_decoder.args.guidance_scale``)."""
    inference_steps: int = 50
    """DDIM steps (``scheduler.num_inference_timesteps``, ``leading`` spacing)."""
    time_flip_sin_to_cos: bool = True
    """``flip_sin_to_cos`` of the decoder's time embedding."""
    time_freq_shift: float = 0.0
    """``freq_shift`` of the decoder's time embedding."""

    def __post_init__(self) -> None:
        self.edit_layers = tuple(self.edit_layers)
        for name in ("decoder_heads", "pssl_heads", "window", "inference_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"released settings: {name} must be >= 1, got {getattr(self, name)}")
        if self.audio_scale is not None and not self.audio_scale > 0:
            raise ConfigError(f"released settings: audio_scale must be > 0, got {self.audio_scale}")


# ------------------------------------------------------------------------------------ reading
def read_state_dict(path: str | os.PathLike, what: str) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a released file, loaded with ``weights_only=True``; any other content
    is a one-line :class:`InputError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: missing released {what} checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # every unpickling failure means "not a checkpoint" here
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(f"{path}: not a released {what} checkpoint (torch.load with weights_only=True: {first})") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
        found = sorted(map(str, payload))[:8] if isinstance(payload, dict) else type(payload).__name__
        raise InputError(f"{path}: not a released {what} checkpoint (expected a dict with a 'state_dict', found {found})")
    sd = payload["state_dict"]
    bad = [k for k, v in sd.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise InputError(f"{path}: the state_dict of the {what} holds non-tensor entries {bad[:5]}")
    return {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}


Shape = tuple[int | None, ...]


def _check(path: Path, what: str, sd: dict[str, torch.Tensor], expected: dict[str, Shape],
           optional: dict[str, Shape] | None = None) -> None:
    """Exact key set (``optional`` keys may be absent) and shapes (None = any size on that axis)."""
    optional = optional or {}
    missing = sorted(set(expected) - set(sd))
    extra = sorted(set(sd) - set(expected) - set(optional))
    if missing or extra:
        parts = [f"{len(missing)} missing tensor(s) {_few(missing)}" if missing else "",
                 f"{len(extra)} unexpected tensor(s) {_few(extra)}" if extra else ""]
        raise InputError(f"{path}: not the released {what}: " + "; ".join(p for p in parts if p))
    for key, want in {**expected, **{k: v for k, v in optional.items() if k in sd}}.items():
        got = tuple(sd[key].shape)
        if len(got) != len(want) or any(w is not None and g != w for g, w in zip(got, want)):
            shown = "(" + ", ".join("*" if w is None else str(w) for w in want) + ("," if len(want) == 1 else "") + ")"
            raise InputError(f"{path}: tensor {key} of the {what} has shape {got}, expected {shown}")


def _few(keys: list[str]) -> str:
    return "[" + ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "") + "]"


def _dim(path: Path, what: str, sd: dict[str, torch.Tensor], key: str, axis: int, ndim: int = 2) -> int:
    """One size read from a tensor the architecture must have (missing or wrong rank: InputError)."""
    if key not in sd:
        raise InputError(f"{path}: not the released {what}: missing tensor {key}")
    if sd[key].dim() != ndim:
        raise InputError(f"{path}: tensor {key} of the {what} has shape {tuple(sd[key].shape)}, expected {ndim} dims")
    return int(sd[key].shape[axis])


def _count(sd: dict[str, torch.Tensor], prefix: str) -> int:
    """How many numbered children ``prefix.<i>.`` the state dict has (max index + 1)."""
    pat = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    found = [int(m.group(1)) for k in sd if (m := pat.match(k))]
    return max(found) + 1 if found else 0


def _linear(name: str, out_f: int | None, in_f: int | None) -> dict[str, Shape]:
    return {f"{name}.weight": (out_f, in_f), f"{name}.bias": (out_f,)}


def _norm(name: str, d: int) -> dict[str, Shape]:
    return {f"{name}.weight": (d,), f"{name}.bias": (d,)}


def _mha(name: str, d: int) -> dict[str, Shape]:
    return {f"{name}.in_proj_weight": (3 * d, d), f"{name}.in_proj_bias": (3 * d,), **_linear(f"{name}.out_proj", d, d)}


# ------------------------------------------------------------------------------------ decoder
def _embedder_expected(path: Path, sd: dict[str, torch.Tensor]) -> tuple[dict[str, Shape], int, int]:
    """Key -> shape of ``AutoencoderRNN_VAE_v2`` (GRU), its hidden size and its emotion width."""
    what = "latent embedder (AutoencoderRNN_VAE_v2)"
    h = _dim(path, what, sd, "x_rnn.rnn_f.weight_hh", 1)
    e = _dim(path, what, sd, "x_rnn.rnn_f.weight_ih", 1)
    z = _dim(path, what, sd, "fc_mu_enc.weight", 0)
    n_mlp = _count(sd, "d_mlp.affine_layers")
    exp: dict[str, Shape] = {}
    for rnn, width in (("x_rnn", e), ("d_rnn", e + h)):
        exp.update({f"{rnn}.rnn_f.weight_ih": (3 * h, width), f"{rnn}.rnn_f.weight_hh": (3 * h, h),
                    f"{rnn}.rnn_f.bias_ih": (3 * h,), f"{rnn}.rnn_f.bias_hh": (3 * h,)})
    exp.update({**_linear("fc_mu_enc", z, h), **_linear("fc_logvar_enc", z, h), **_linear("fc_z_dec", h, z)})
    last = h
    for i in range(n_mlp):
        out_i = _dim(path, what, sd, f"d_mlp.affine_layers.{i}.weight", 0)
        exp.update(_linear(f"d_mlp.affine_layers.{i}", out_i, last))
        last = out_i
    exp.update({**_linear("d_out", e, last), **_linear("coeff_reg.0", h, e), **_linear("coeff_reg.2", None, h)})
    _check(path, what, sd, exp)
    return exp, h, e


def convert_denoiser(decoder_path: str | os.PathLike, embedder_path: str | os.PathLike,
                     settings: ReleasedSettings | None = None) -> tuple[GAFRGConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """The released decoder + latent embedder -> (GAFRG config, GAFRG state dict, record).

    The embedder's encoder GRU becomes GAFRG's emotion GRU; the rest of the embedder (its VAE
    decoder) is checked but not used, as in the authors' generation."""
    st = settings or ReleasedSettings()
    path, epath = Path(decoder_path), Path(embedder_path)
    what = "diffusion decoder (TransformerDenoiser)"
    sd = read_state_dict(path, what)
    esd = read_state_dict(epath, "latent embedder (AutoencoderRNN_VAE_v2)")
    _, hidden, emo = _embedder_expected(epath, esd)
    d = _dim(path, what, sd, "to_emotion_embed.weight", 0)
    nf = _dim(path, what, sd, "to_emotion_embed.weight", 1)
    channels = _dim(path, what, sd, "time_embedding.linear_1.weight", 1)
    audio = _dim(path, what, sd, "speaker_audio_proj.weight", 1)
    tdmm = _dim(path, what, sd, "speaker_3dmm_proj.weight", 1)
    s_emo = _dim(path, what, sd, "speaker_emotion_proj.weight", 1)
    ffn = _dim(path, what, sd, "decoder.layers.0.linear1.weight", 0)
    layers = _count(sd, "decoder.layers")
    if d % st.decoder_heads:
        raise ConfigError(f"{path}: decoder width {d} is not divisible by decoder_heads={st.decoder_heads}")
    w = st.window
    memory = 1 + 2 * w + 1  # time, audio, 3DMM, emotion token
    exp: dict[str, Shape] = {
        **_linear("to_emotion_embed", d, nf), **_linear("to_emotion_feat", nf, d),
        **_linear("time_embedding.linear_1", d, channels), **_linear("time_embedding.linear_2", d, d),
        **_linear("speaker_audio_proj", d, audio), **_linear("speaker_3dmm_proj", d, tdmm),
        **_linear("speaker_emotion_proj", d, s_emo), **_linear("listener_emotion_proj", d, nf),
        "query_pos.pe": (None, 1, d), "mem_pos.pe": (None, 1, d), **_norm("decoder.norm", d),
    }
    for i in range(layers):
        p = f"decoder.layers.{i}"
        exp.update({**_mha(f"{p}.self_attn", d), **_mha(f"{p}.multihead_attn", d), **_linear(f"{p}.linear1", ffn, d),
                    **_linear(f"{p}.linear2", d, ffn), **_norm(f"{p}.norm1", d), **_norm(f"{p}.norm2", d),
                    **_norm(f"{p}.norm3", d)})
    # present only when the embedding widths differ from the decoder width (Identity otherwise)
    optional = {**_linear("speaker_latent_proj.1", d, hidden), **_linear("listener_latent_proj.1", d, None),
                **_linear("listener_personal_proj", d, None)}
    _check(path, what, sd, exp, optional)
    for key, need in (("query_pos.pe", w), ("mem_pos.pe", memory)):
        if sd[key].shape[0] < need:
            raise InputError(f"{path}: tensor {key} of the {what} has {sd[key].shape[0]} positions, needs {need}")
    relu_linear = "speaker_latent_proj.1.weight" in sd
    if not relu_linear and hidden != d:
        raise InputError(f"{epath}: the latent embedder's GRU has {hidden} units but the decoder is {d} wide "
                         f"and has no speaker_latent_proj ({path})")
    cfg = GAFRGConfig(
        reaction_dim=nf, audio_dim=audio, emotion_dim=emo, tdmm_dim=tdmm, window=w, speaker_lag=w, d_model=d,
        num_layers=layers, num_heads=st.decoder_heads, ffn_dim=ffn, dropout=0.1, emotion_hidden=hidden,
        norm_first=False, time_embedding="diffusers", time_channels=channels,
        time_flip_sin_to_cos=st.time_flip_sin_to_cos, time_freq_shift=st.time_freq_shift, memory_layout="concat",
        audio_scale=st.audio_scale if st.audio_scale is not None else d ** -0.5,
        emotion_proj="relu_linear" if relu_linear else "identity")
    out = {
        "in_proj.weight": sd["to_emotion_embed.weight"], "in_proj.bias": sd["to_emotion_embed.bias"],
        "pos": sd["query_pos.pe"][:w, 0], "mem_pos": sd["mem_pos.pe"][:memory, 0],
        "time_mlp.0.weight": sd["time_embedding.linear_1.weight"], "time_mlp.0.bias": sd["time_embedding.linear_1.bias"],
        "time_mlp.2.weight": sd["time_embedding.linear_2.weight"], "time_mlp.2.bias": sd["time_embedding.linear_2.bias"],
        "audio_proj.weight": sd["speaker_audio_proj.weight"], "audio_proj.bias": sd["speaker_audio_proj.bias"],
        "tdmm_proj.weight": sd["speaker_3dmm_proj.weight"], "tdmm_proj.bias": sd["speaker_3dmm_proj.bias"],
        "final_norm.weight": sd["decoder.norm.weight"], "final_norm.bias": sd["decoder.norm.bias"],
        "output.weight": sd["to_emotion_feat.weight"], "output.bias": sd["to_emotion_feat.bias"],
    }
    for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        out[f"emotion_rnn.{kind}_l0"] = esd[f"x_rnn.rnn_f.{kind}"]
    if relu_linear:
        out["emotion_proj.1.weight"] = sd["speaker_latent_proj.1.weight"]
        out["emotion_proj.1.bias"] = sd["speaker_latent_proj.1.bias"]
    for i in range(layers):
        src, dst = f"decoder.layers.{i}", f"layers.{i}"
        cross_w, cross_b = sd[f"{src}.multihead_attn.in_proj_weight"], sd[f"{src}.multihead_attn.in_proj_bias"]
        out.update({
            f"{dst}.self_qkv.weight": sd[f"{src}.self_attn.in_proj_weight"],
            f"{dst}.self_qkv.bias": sd[f"{src}.self_attn.in_proj_bias"],
            f"{dst}.self_out.weight": sd[f"{src}.self_attn.out_proj.weight"],
            f"{dst}.self_out.bias": sd[f"{src}.self_attn.out_proj.bias"],
            f"{dst}.cross_q.weight": cross_w[:d], f"{dst}.cross_q.bias": cross_b[:d],
            f"{dst}.cross_kv.weight": cross_w[d:], f"{dst}.cross_kv.bias": cross_b[d:],
            f"{dst}.cross_out.weight": sd[f"{src}.multihead_attn.out_proj.weight"],
            f"{dst}.cross_out.bias": sd[f"{src}.multihead_attn.out_proj.bias"],
        })
        for a, b in (("linear1", "ffn1"), ("linear2", "ffn2"), ("norm1", "norm1"), ("norm2", "norm2"), ("norm3", "norm3")):
            out[f"{dst}.{b}.weight"], out[f"{dst}.{b}.bias"] = sd[f"{src}.{a}.weight"], sd[f"{src}.{a}.bias"]
    record = {"unused": sorted(k for k in sd if k.startswith(("speaker_emotion_proj", "listener_")))
              + ["embedder: everything but x_rnn (the VAE's decoder)"],
              "positions_kept": {"query_pos.pe": w, "mem_pos.pe": memory}}
    return cfg, {k: v.clone().contiguous() for k, v in out.items()}, record


# ------------------------------------------------------------------------------------ PSSL
def convert_pssl(path: str | os.PathLike, settings: ReleasedSettings | None = None
                 ) -> tuple[PSSLConfig, dict[str, torch.Tensor]]:
    """The released PSSL (``model/person_specific`` ``Transformer``) -> (PSSL config, state dict)."""
    st = settings or ReleasedSettings()
    path = Path(path)
    what = "PSSL encoder (person_specific Transformer)"
    sd = read_state_dict(path, what)
    d = _dim(path, what, sd, "embed_layer.weight", 0)
    n_in = _dim(path, what, sd, "embed_layer.weight", 1)
    ffn = _dim(path, what, sd, "transformer.layers.0.linear1.weight", 0)
    layers = _count(sd, "transformer.layers")
    mlp = "proj_head.0.weight" in sd
    style = _dim(path, what, sd, "proj_head.2.weight" if mlp else "proj_head.weight", 0)
    if n_in != 58:
        raise InputError(f"{path}: the {what} reads {n_in}-d frames, expected the 58-d 3DMM history")
    if d % st.pssl_heads:
        raise ConfigError(f"{path}: PSSL width {d} is not divisible by pssl_heads={st.pssl_heads}")
    exp: dict[str, Shape] = {**_linear("embed_layer", d, n_in), "cls_token": (1, 1, d)}
    exp.update({**_linear("proj_head.0", d, d), **_linear("proj_head.2", style, d)} if mlp else _linear("proj_head", style, d))
    for i in range(layers):
        p = f"transformer.layers.{i}"
        exp.update({**_mha(f"{p}.self_attn", d), **_linear(f"{p}.linear1", ffn, d), **_linear(f"{p}.linear2", d, ffn),
                    **_norm(f"{p}.norm1", d), **_norm(f"{p}.norm2", d)})
    _check(path, what, sd, exp)
    cfg = PSSLConfig(input_dim=58, d_model=d, num_layers=layers, num_heads=st.pssl_heads, ffn_dim=ffn, dropout=0.1,
                     style_dim=style, norm_first=False, activation="relu", final_norm=False,
                     proj_head="mlp" if mlp else "linear", positions="interleave")
    out = {"in_proj.weight": sd["embed_layer.weight"], "in_proj.bias": sd["embed_layer.bias"], "cls": sd["cls_token"]}
    for key, value in sd.items():
        if key.startswith("transformer.layers."):
            out["encoder.layers." + key[len("transformer.layers."):]] = value
        elif key.startswith("proj_head"):
            out["proj" + key[len("proj_head"):]] = value
    return cfg, {k: v.clone().contiguous() for k, v in out.items()}


# ------------------------------------------------------------------------------------ PWSG
_LAYER_RE = re.compile(r"^decoder\.layers\.(\d+)\.(self_attn|multihead_attn|linear1|linear2)$")
_IN_LAYER = {"self_attn": (0, "self_qkv"), "multihead_attn": (1, FUSED_CROSS), "linear1": (2, "ffn1"),
             "linear2": (3, "ffn2")}


def _edit_target(name: str) -> tuple[tuple[int, ...], str]:
    """An authors' modified-layer name -> (its module registration order, the reactcli edit target)."""
    short = name.removeprefix("diffusion_decoder.model.")
    if short == "to_emotion_feat":
        return (0, 1), "output"
    m = _LAYER_RE.match(short)
    if m is None:
        raise ConfigError(f"edit layer {name!r}: reactcli edits decoder.layers.<i>.(self_attn|multihead_attn|"
                          "linear1|linear2) and to_emotion_feat of the released decoder")
    order, target = _IN_LAYER[m.group(2)]
    return (1, int(m.group(1)), order), f"layers.{m.group(1)}.{target}"


def convert_editor(path: str | os.PathLike, gafrg: GAFRG, style_dim: int, settings: ReleasedSettings | None = None
                   ) -> tuple[PWSGConfig, dict[str, torch.Tensor], list[str]]:
    """The released ``ModifierNetwork`` -> (PWSG config, state dict, the authors' layer names in
    branch order) for the converted decoder ``gafrg``.

    The authors' branches follow the order in which ``named_modules()`` meets the edited layers
    (``to_emotion_feat`` before the decoder layers, layers by index), not the config's list order."""
    st = settings or ReleasedSettings()
    path = Path(path)
    what = "PWSG editor (ModifierNetwork)"
    sd = read_state_dict(path, what)
    ordered = sorted({_edit_target(n) + (n,) for n in st.edit_layers})
    names = [n for _, _, n in ordered]
    targets = [t for _, t, _ in ordered]
    shapes = gafrg.edit_targets()
    for t, n in zip(targets, names):
        if t not in shapes:
            raise ConfigError(f"edit layer {n!r}: the released decoder has {gafrg.config.num_layers} layers")
    shared = _count(sd, "shared_layers")
    if shared != 2:
        raise InputError(f"{path}: the {what} has {shared} shared layers; reactcli's PWSG has 2 (num_shared_layers: 2)")
    h1 = _dim(path, what, sd, "shared_layers.0.weight", 0)
    h2 = _dim(path, what, sd, "shared_layers.1.weight", 0)
    n_branch = _count(sd, "branches")
    if n_branch != len(targets):
        raise InputError(f"{path}: the {what} has {n_branch} branches, the edit layers are {len(targets)} ({names})")
    exp: dict[str, Shape] = {**_linear("shared_layers.0", h1, style_dim), **_linear("shared_layers.1", h2, h1)}
    for j, t in enumerate(targets):
        exp.update(_linear(f"branches.{j}", math.prod(shapes[t]), h2))
    _check(path, what, sd, exp)
    cfg = PWSGConfig(style_dim=style_dim, hidden=(h1, h2), layers=tuple(targets), rank=None, activation="relu")
    out = {"trunk.0.weight": sd["shared_layers.0.weight"], "trunk.0.bias": sd["shared_layers.0.bias"],
           "trunk.2.weight": sd["shared_layers.1.weight"], "trunk.2.bias": sd["shared_layers.1.bias"]}
    for j, t in enumerate(targets):
        key = t.replace(".", "__")
        out[f"branches.{key}.weight"], out[f"branches.{key}.bias"] = sd[f"branches.{j}.weight"], sd[f"branches.{j}.bias"]
    return cfg, {k: v.clone().contiguous() for k, v in out.items()}, names


# ------------------------------------------------------------------------------------ entry points
def released_diffusion(settings: ReleasedSettings | None = None) -> DiffusionConfig:
    """The authors' decoder sampler: cosine, 1000 steps, x0 prediction, DDIM ``leading``, eta 0,
    x0 clamped to [-1, 1] each step, the last step to alpha_bar of step 0, no clipping after."""
    st = settings or ReleasedSettings()
    return DiffusionConfig(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="sample",
                           num_inference_steps=st.inference_steps, eta=0.0, guidance_scale=st.guidance_scale,
                           timestep_spacing="leading", clip_sample=True, clip_sample_range=1.0,
                           set_alpha_to_one=False, clamp_emotion=False)


class ReleasedDenoiser(nn.Module):
    """An imported decoder with the call of the authors' ``TransformerDenoiser``.

    ``model_kwargs`` as their ``DecoderLatentMatcher`` builds it: ``speaker_audio_encodings``
    (N, w, 78), ``speaker_3dmm_encodings`` (N, w, 58) and the speaker-emotion token
    ``speaker_latent_embed`` (N, 1, H) from their latent embedder, or, instead of the token, the
    raw window ``speaker_emotion_encodings`` (N, w, 25), which the imported embedder GRU then
    summarises (:meth:`emotion_token`). Other keys are ignored, as the released config drops them."""

    def __init__(self, gafrg: GAFRG, guidance_scale: float = 7.5):
        super().__init__()
        self.gafrg = gafrg.eval()
        self.guidance_scale = guidance_scale

    def emotion_token(self, emotion: torch.Tensor) -> torch.Tensor:
        """(N, w, 25) -> (N, 1, H): what ``latent_embedder.encode(emotion).unsqueeze(1)`` returns."""
        return self.gafrg.emotion_rnn(emotion)[1][-1][:, None, :]

    def _memory(self, model_kwargs: dict[str, torch.Tensor], keep: torch.Tensor | None) -> torch.Tensor:
        token = model_kwargs.get("speaker_latent_embed")
        emotion = None if token is not None else model_kwargs["speaker_emotion_encodings"]
        return self.gafrg.encode_speaker(model_kwargs["speaker_audio_encodings"], emotion,
                                         model_kwargs["speaker_3dmm_encodings"], keep=keep, summary=token)

    def forward(self, sample: torch.Tensor, timesteps: torch.Tensor, model_kwargs: dict[str, torch.Tensor],
                shifts: dict | None = None) -> torch.Tensor:
        """The conditional prediction of x0 for noisy windows ``sample`` (N, w, 25) at ``timesteps`` (N,)."""
        kv = self.gafrg.static_kv(self._memory(model_kwargs, None), shifts)
        return self.gafrg(sample, timesteps, kv, 1, shifts)

    def forward_with_cond_scale(self, sample: torch.Tensor, timesteps: torch.Tensor,
                                model_kwargs: dict[str, torch.Tensor], shifts: dict | None = None) -> torch.Tensor:
        """uncond + guidance_scale * (cond - uncond), the null condition being zero tokens."""
        n = sample.shape[0]
        cond = self.forward(sample, timesteps, model_kwargs, shifts)
        null = self.gafrg.static_kv(self._memory(model_kwargs, torch.zeros(n, 3, device=sample.device)), shifts)
        uncond = self.gafrg(sample, timesteps, null, 1, shifts)
        return uncond + self.guidance_scale * (cond - uncond)


class ReleasedPSSL(nn.Module):
    """An imported PSSL with the call of the authors' ``Transformer``: history -> (feature, style)."""

    def __init__(self, pssl: PSSLEncoder):
        super().__init__()
        self.pssl = pssl.eval()

    def forward(self, history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pssl.cls_feature(history), self.pssl(history)


class ReleasedEditor(nn.Module):
    """An imported editor with the call of the authors' ``ModifierNetwork``: style (G, S) -> the
    weight shifts of their edited layers, in their order and shapes ((out, in) for G = 1, as
    theirs; (G, out, in) otherwise), a cross-attention shift being the (3 d, d) ``in_proj_weight``
    shift. ``layers`` names them; ``editor`` is the reactcli PWSG the run uses."""

    def __init__(self, editor: PWSG, layers: list[str]):
        super().__init__()
        self.editor = editor.eval()
        self.layers = layers

    def forward(self, style: torch.Tensor) -> list[torch.Tensor]:
        shifts = self.editor(style)
        out = []
        for target in self.editor.config.layers:
            if target.endswith("." + FUSED_CROSS):
                prefix = target[: -len(FUSED_CROSS)]
                full = torch.cat([shifts[prefix + "cross_q"].full, shifts[prefix + "cross_kv"].full], dim=1)
            else:
                full = shifts[target].full
            out.append(full[0] if full.shape[0] == 1 else full)
        return out


def _gafrg(cfg: GAFRGConfig, state: dict[str, torch.Tensor]) -> GAFRG:
    model = GAFRG(cfg)
    model.load_state_dict(state)
    return model.eval()


def load_denoiser(decoder_path: str | os.PathLike, embedder_path: str | os.PathLike,
                  settings: ReleasedSettings | None = None) -> ReleasedDenoiser:
    """The released decoder (+ its latent embedder) as a :class:`ReleasedDenoiser`."""
    st = settings or ReleasedSettings()
    cfg, state, _ = convert_denoiser(decoder_path, embedder_path, st)
    return ReleasedDenoiser(_gafrg(cfg, state), st.guidance_scale)


def load_pssl(path: str | os.PathLike, settings: ReleasedSettings | None = None) -> ReleasedPSSL:
    """The released PSSL as a :class:`ReleasedPSSL`."""
    cfg, state = convert_pssl(path, settings)
    model = PSSLEncoder(cfg)
    model.load_state_dict(state)
    return ReleasedPSSL(model)


def load_editor(path: str | os.PathLike, gafrg: GAFRG, style_dim: int,
                settings: ReleasedSettings | None = None) -> ReleasedEditor:
    """The released editor for the imported decoder ``gafrg`` as a :class:`ReleasedEditor`."""
    cfg, state, names = convert_editor(path, gafrg, style_dim, settings)
    editor = PWSG(cfg, gafrg.edit_targets())
    editor.load_state_dict(state)
    return ReleasedEditor(editor, names)


# ------------------------------------------------------------------------------------ import
@dataclass
class _Part:
    """One checkpoint of the run: file name, payload (without paths) and its sources."""

    name: str
    payload: dict[str, Any]
    sources: list[Path] = field(default_factory=list)


def _sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _target(reaction_dim: int) -> str:
    targets = {25: "emotion", 58: "tdmm", 83: "both"}
    if reaction_dim not in targets:
        raise InputError(f"the released decoder generates {reaction_dim}-d frames; reactcli generates 25 (emotion), "
                         "58 (3DMM) or 83 (both)")
    return targets[reaction_dim]


def _gafrg_part(name: str, decoder: Path, embedder: Path, st: ReleasedSettings) -> tuple[_Part, GAFRG]:
    cfg, state, record = convert_denoiser(decoder, embedder, st)
    model = _gafrg(cfg, state)
    audio = {78: "mfcc", 1536: "wav2vec2"}.get(cfg.audio_dim)
    if audio is None:
        raise InputError(f"{decoder}: the decoder reads {cfg.audio_dim}-d audio; reactcli stores 78-d MFCC or 1536-d wav2vec2")
    payload = {"model": "perfrdiff-gafrg", "config": cfg.to_dict(),
               "state_dict": model.state_dict(), "diffusion": released_diffusion(st).to_dict(),
               "data_config": {"audio": audio}, "recipe": {"step": {"target": _target(cfg.reaction_dim)}},
               "released": record}
    return _Part(name, payload, [decoder, embedder]), model


def import_released(source: str | os.PathLike, work: str | os.PathLike, run: str,
                    settings: ReleasedSettings | None = None, overwrite: bool = False) -> Path:
    """Convert the released ``checkpoints/`` folder ``source`` into ``<work>/runs/<run>/``.

    Writes ``gafrg.pt`` (generic GAFRG), and when the folder has them ``pssl.pt``, ``pwsg.pt``
    (the editor, naming its base GAFRG and PSSL) and ``gafrg-rewrite.pt`` (the decoder of
    ``rewrite_weight/``, the editor's base when present, else ``gafrg.pt``), plus ``import.json``.
    Every file is read and checked before anything is written; the run folder appears whole or
    not at all. Returns the run folder."""
    st = settings or ReleasedSettings()
    src = Path(source)
    if not src.is_dir():
        raise InputError(f"{src}: not a folder (expected the released PerFRDiff checkpoints/ folder)")
    if not (src / RELEASED_FILES["decoder"]).exists() and (src / "checkpoints").is_dir():
        src = src / "checkpoints"  # the authors' repository root, with the folder unzipped in it
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", run):
        raise ConfigError(f"--run {run!r}: use letters, digits, '.', '_' and '-'")
    files = {role: src / rel for role, rel in RELEASED_FILES.items()}
    parts: list[_Part] = []
    generic, gafrg = _gafrg_part("gafrg.pt", files["decoder"], files["embedder"], st)
    parts.append(generic)
    has_editor = files["editor"].exists()
    if has_editor or files["pssl"].exists():
        pcfg, pstate = convert_pssl(files["pssl"], st)
        pssl = PSSLEncoder(pcfg)
        pssl.load_state_dict(pstate)
        parts.append(_Part("pssl.pt", {"model": "perfrdiff-pssl", "config": pcfg.to_dict(),
                                       "state_dict": pssl.state_dict()}, [files["pssl"]]))
    base_name = "gafrg.pt"
    if has_editor:
        base = gafrg
        if files["editor_decoder"].exists():
            part, base = _gafrg_part("gafrg-rewrite.pt", files["editor_decoder"], files["embedder"], st)
            parts.append(part)
            base_name = part.name
        wcfg, wstate, names = convert_editor(files["editor"], base, pcfg.style_dim, st)
        editor = PWSG(wcfg, base.edit_targets())
        editor.load_state_dict(wstate)
        parts.append(_Part("pwsg.pt", {"model": "perfrdiff-pwsg", "config": wcfg.to_dict(),
                                       "state_dict": editor.state_dict(),
                                       "layer_shapes": {k: list(v) for k, v in editor.layer_shapes.items()},
                                       "released": {"edit_layers": names}},
                           [files["editor"]]))
    record = {"source": str(src.resolve()), "authors_commit": AUTHORS_COMMIT, "settings": asdict(st),
              "files": {p.name: {str(s.relative_to(src)): _sha1(s) for s in p.sources} for p in parts},
              "editor_base": base_name if has_editor else None,
              "not_read": ["*/DiffusionPriorNetwork (its output is dropped by the released decoder config)",
                           "embedder_3dmm (encode_3dmm: false)"],
              "reactcli_version": reactcli.__version__}
    return write_run(Path(work) / "runs" / run, parts, record, overwrite)


def write_run(run_dir: Path, parts: list[_Part], record: dict[str, Any], overwrite: bool) -> Path:
    """The one writer of an imported run: every checkpoint (:func:`reactcli.models.checkpoint.
    save_checkpoint`) and ``import.json`` go to a temporary folder beside ``run_dir`` that is then
    renamed into place, so a failure leaves no trace. The PWSG checkpoint names its GAFRG and PSSL
    by their final paths."""
    with atomic_directory(run_dir, overwrite) as tmp:
        for part in parts:
            payload = dict(part.payload, source=record["files"][part.name], authors_commit=AUTHORS_COMMIT)
            if part.payload["model"] == "perfrdiff-pwsg":
                base = record["editor_base"]
                payload.update(gafrg_checkpoint=str(run_dir / base), pssl_checkpoint=str(run_dir / "pssl.pt"))
            save_checkpoint(tmp / part.name, payload)
        write_json(tmp / "import.json", record)
    return run_dir
