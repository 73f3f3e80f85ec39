"""The challenge's released BeLFusion checkpoints, read strictly into reactcli's modules.

Their layout (``train_belfusion.py``): a run folder per stage, ``<run>/config.yaml`` (the
resolved OmegaConf config, plain YAML) beside ``<run>/checkpoint_<epoch>.pth`` =
``{"epoch", "state_dict", "optimizer"}``:

* stage 1 (``AutoencoderRNN_VAE_v2``): the autoencoder's state dict, plus ``statistics``
  (``min``, ``max``, ``mean``, ``std``, ``var`` of the latents over the training set);
* stage 2 (``LatentMLPMatcher``): ONLY the MLP denoiser's state dict (their matcher overrides
  ``state_dict``); its ``config.yaml`` names the stage-1 checkpoint (``emb_emotion_path``).

Widths are read from the tensors; what tensors cannot tell (window, diffusion steps, online,
preprocessing, condition bias) from the ``config.yaml`` files when present, else the defaults of
the authors' shipped configs. Every tensor must be used and every reactcli tensor given, with
its shape: otherwise one :class:`~reactcli.errors.InputError` naming the file and the keys.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
import yaml

from reactcli.errors import ConfigError, InputError
from reactcli.models.checkpoint import tensor_mismatch

from .autoencoder import BehaviourAEConfig, BehaviourAutoencoder
from .model import STAT_KEYS, BeLFusion, BeLFusionConfig

__all__ = ["load_released_autoencoder", "load_released_belfusion", "read_released_checkpoint"]


def read_released_checkpoint(path: Path) -> dict[str, Any]:
    """A released ``.pth`` (read with ``weights_only``) as a dict with a ``state_dict`` of tensors."""
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise InputError(
            f"{path}: cannot read as a torch checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        ) from exc
    state = ck.get("state_dict") if isinstance(ck, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path}: not a released checkpoint (expected a dict with a 'state_dict' of tensors)")
    return ck


def _arch_args(folder: Path) -> dict[str, Any]:
    """``arch.args`` of the run's ``config.yaml`` ({} without one)."""
    path = folder / "config.yaml"
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML ({exc})") from exc
    args = (data.get("arch") or {}).get("args") if isinstance(data, dict) else None
    if not isinstance(args, dict):
        raise InputError(f"{path}: no arch.args mapping")
    return args


def _strict(
    state: dict[str, torch.Tensor],
    rename: dict[str, str],
    own: dict[str, torch.Tensor],
    where: str,
    what: str,
    aliases: dict[str, str] | None = None,
) -> dict[str, torch.Tensor]:
    """``state`` renamed by ``rename`` (exact keys) into ``own``'s names, strictly. ``aliases``:
    keys that must hold the same tensor as another key (read and checked, not loaded)."""
    out: dict[str, torch.Tensor] = {}
    unexpected, shapes = [], []
    for key, val in state.items():
        if aliases and key in aliases:
            twin = state.get(aliases[key])
            if twin is None or twin.shape != val.shape or not torch.equal(twin, val):
                shapes.append(f"{key} (differs from {aliases[key]})")
            continue
        new = rename.get(key)
        if new is None or new not in own:
            unexpected.append(key)
        elif tuple(val.shape) != tuple(own[new].shape):
            shapes.append(f"{key} {tuple(val.shape)} != {tuple(own[new].shape)}")
        else:
            out[new] = val
    missing = sorted(set(own) - set(out))
    problems = tensor_mismatch(missing, unexpected, shapes)
    if problems:
        raise InputError(f"{where}: not a released {what} checkpoint: " + problems)
    return out


# ---- stage 1 ---------------------------------------------------------------------------------


def _ae_names(state: dict[str, torch.Tensor]) -> dict[str, str]:
    names = {}
    for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        names[f"x_rnn.rnn_f.{p}"] = f"encoder.{p}_l0"
        names[f"d_rnn.rnn_f.{p}"] = f"decoder_cell.{p}"
    for old, new in (
        ("fc_mu_enc", "fc_mu"),
        ("fc_logvar_enc", "fc_logvar"),
        ("fc_z_dec", "fc_z"),
        ("d_out", "decoder_out"),
        ("coeff_reg.0", "coeff.0"),
        ("coeff_reg.2", "coeff.2"),
    ):
        for p in ("weight", "bias"):
            names[f"{old}.{p}"] = f"{new}.{p}"
    for key in state:
        m = re.fullmatch(r"d_mlp\.affine_layers\.(\d+)\.(weight|bias)", key)
        if m:
            names[key] = f"decoder_mlp.{2 * int(m.group(1))}.{m.group(2)}"
    return names


def _ae_config(state: dict[str, torch.Tensor], args: dict[str, Any], path: Path, **overrides: Any) -> BehaviourAEConfig:
    need = ("fc_mu_enc.weight", "d_out.weight")
    if any(k not in state for k in need):
        raise InputError(f"{path}: not a released BeLFusion autoencoder checkpoint (no {' / '.join(need)})")
    if str(args.get("rnn_type", "gru")).lower() != "gru":
        raise ConfigError(
            f"{path}: rnn_type {args.get('rnn_type')!r} is not supported (reactcli reads GRU autoencoders)"
        )
    mlp = [
        state[f"d_mlp.affine_layers.{i}.weight"].shape[0]
        for i in range(64)
        if f"d_mlp.affine_layers.{i}.weight" in state
    ]
    z, h = state["fc_mu_enc.weight"].shape
    return BehaviourAEConfig(
        window=int(args.get("window_size", 50)),
        hidden_dim=int(h),
        z_dim=int(z),
        mlp_dims=tuple(mlp),
        dropout=float(args.get("dropout", 0.0)),
        **overrides,
    )


def load_released_autoencoder(
    path: str | Path, **overrides: Any
) -> tuple[BehaviourAutoencoder, dict[str, torch.Tensor] | None]:
    """The released stage-1 ``AutoencoderRNN_VAE_v2`` and its latent ``statistics`` (None when the
    checkpoint has none). ``overrides``: :class:`BehaviourAEConfig` fields (loss weights, ...)."""
    path = Path(path)
    ck = read_released_checkpoint(path)
    state = ck["state_dict"]
    model = BehaviourAutoencoder(_ae_config(state, _arch_args(path.parent), path, **overrides))
    model.load_state_dict(_strict(state, _ae_names(state), model.state_dict(), str(path), "BeLFusion autoencoder"))
    stats = ck.get("statistics")
    if stats is not None and (not isinstance(stats, dict) or any(k not in stats for k in STAT_KEYS)):
        raise InputError(f"{path}: 'statistics' must hold {list(STAT_KEYS)}")
    return model, stats


# ---- stage 2 ---------------------------------------------------------------------------------


def _denoiser_names(state: dict[str, torch.Tensor]) -> tuple[dict[str, str], dict[str, str]]:
    names, aliases = {}, {}
    for key in state:
        m = re.fullmatch(r"(time|cond)_embed\.(\d+)\.(weight|bias)", key)
        if m:
            names[key] = f"denoiser.{m.group(1)}_mlp.{m.group(2)}.{m.group(3)}"
            continue
        m = re.fullmatch(r"layers\.(\d+)\.(linear|linear_emb|norm|cond_layers\.1)\.(weight|bias)", key)
        if m:
            i, part, p = m.groups()
            if part == "cond_layers.1":  # the same Linear as linear_emb, registered twice
                aliases[key] = f"layers.{i}.linear_emb.{p}"
            else:
                names[key] = f"denoiser.blocks.{i}.{'cond_proj' if part == 'linear_emb' else part}.{p}"
    return names, aliases


def _find_autoencoder(ldm: Path, args: dict[str, Any]) -> Path:
    given = args.get("emb_emotion_path")
    if not given:
        raise ConfigError(
            f"{ldm}: pass autoencoder_checkpoint (no config.yaml with arch.args.emb_emotion_path beside it)"
        )
    p = Path(given)
    candidates = [p] if p.is_absolute() else [ldm.parent / p, ldm.parent.parent / p, ldm.parent.parent.parent / p]
    for c in candidates:
        if c.is_file():
            return c
    raise InputError(
        f"{ldm}: its stage-1 checkpoint {given!r} (arch.args.emb_emotion_path) was not found next to it; "
        "pass autoencoder_checkpoint"
    )


def load_released_belfusion(
    ldm_checkpoint: str | Path,
    autoencoder_checkpoint: str | Path | None = None,
    *,
    online: bool | None = None,
    **overrides: Any,
) -> BeLFusion:
    """The released BeLFusion (stage-2 checkpoint + its stage-1 checkpoint) as one :class:`BeLFusion`.

    ``autoencoder_checkpoint`` defaults to the ``emb_emotion_path`` of the stage-2 ``config.yaml``
    (looked up beside the run folder). ``online`` overrides the config's (the weights are the same
    for both; the authors switch with ``arch.args.online``). ``overrides``: other
    :class:`BeLFusionConfig` fields (loss weights, ``k``, ...).
    """
    ldm = Path(ldm_checkpoint)
    ck = read_released_checkpoint(ldm)
    state = ck["state_dict"]
    args = _arch_args(ldm.parent)
    ae_path = Path(autoencoder_checkpoint) if autoencoder_checkpoint is not None else _find_autoencoder(ldm, args)
    autoencoder, stats = load_released_autoencoder(ae_path)
    if "time_embed.0.weight" not in state or "layers.0.linear.weight" not in state:
        raise InputError(f"{ldm}: not a released BeLFusion (LatentMLPMatcher) checkpoint (no time_embed.0 / layers.0)")
    if args.get("skip_layers", "all") != "all":
        raise ConfigError(
            f"{ldm}: skip_layers {args.get('skip_layers')!r} is not supported (reactcli skips into every layer)"
        )
    for key, want in (("activation", "silu"), ("last_act", "none")):
        got = args.get(key, want)
        if str(getattr(got, "value", got)).lower().split(".")[-1] != want:
            raise ConfigError(f"{ldm}: {key} {got!r} is not supported (only {want})")
    for key, want in (
        ("predict", "start_x"),
        ("noise_schedule", "cosine"),
        ("var_type", "fixed_large"),
        ("rescale_timesteps", False),
    ):
        if args.get(key, want) != want:
            raise ConfigError(f"{ldm}: {key} {args.get(key)!r} is not supported (only {want!r})")
    counted = 1 + max(int(m.group(1)) for k in state if (m := re.fullmatch(r"layers\.(\d+)\..*", k)))
    n_layers = int(args.get("num_layers", counted))  # the config's, so that a stray layer is named, not absorbed
    time_w = state["time_embed.0.weight"]
    channels = int(time_w.shape[0])
    if args.get("window_size") is not None and int(args["window_size"]) != autoencoder.config.window:
        raise InputError(
            f"{ldm}: window_size {args['window_size']} differs from the autoencoder's {autoencoder.config.window}"
        )
    if channels == autoencoder.config.hidden_dim:
        latent = "hidden"
    else:
        raise InputError(
            f"{ldm}: latent width {channels} is not the autoencoder's hidden width "
            f"{autoencoder.config.hidden_dim} (the authors diffuse the encoder state)"
        )
    cfg = BeLFusionConfig(
        autoencoder=autoencoder.config,
        latent=latent,
        preprocessing=str(args.get("emb_preprocessing", "normalize")).lower(),
        hidden_channels=int(args.get("num_hid_channels", state["layers.0.linear.weight"].shape[0])),
        num_layers=n_layers,
        time_channels=int(time_w.shape[1]),
        time_layers=sum(1 for k in state if re.fullmatch(r"time_embed\.\d+\.weight", k)),
        cond_layers=sum(1 for k in state if re.fullmatch(r"cond_embed\.\d+\.weight", k)),
        condition_bias=float(args.get("condition_bias", 1.0)),
        use_norm="layers.0.norm.weight" in state,
        dropout=float(args.get("dropout", 0.0)),
        diffusion_steps=int(args.get("diffusion_steps", 10)),
        online=bool(args.get("online", False)) if online is None else online,
        k=int(args.get("k", 10)),
        cond_dropout=float(args.get("cond_dropout", 0.0)),
        **overrides,
    )
    model = BeLFusion(cfg)
    names, aliases = _denoiser_names(state)
    own = {k: v for k, v in model.state_dict().items() if k.startswith("denoiser.")}
    model.load_state_dict({**model.state_dict(), **_strict(state, names, own, str(ldm), "BeLFusion denoiser", aliases)})
    model.autoencoder.load_state_dict(autoencoder.state_dict())
    if stats is not None:
        model.set_statistics(stats)
    elif cfg.preprocessing != "none":
        raise InputError(
            f"{ae_path}: no 'statistics' (the authors' stage 1 stores them); needed for "
            f"emb_preprocessing {cfg.preprocessing!r}"
        )
    return model
