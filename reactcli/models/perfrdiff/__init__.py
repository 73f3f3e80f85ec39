"""PerFRDiff: personalised diffusion for multiple appropriate facial reaction generation.

Three parts, trained in two stages (see ``reactcli.training.perfrdiff_losses``):

* :mod:`.gafrg` - GAFRG, the generic transformer-decoder denoiser over 50-frame windows;
* :mod:`.pssl` - PSSL, the listener style encoder trained with a supervised contrastive loss;
* :mod:`.pwsg` - PWSG, the hypernetwork that shifts chosen GAFRG weights per listener
  (low-rank, functional, per sample), and the loaders of the three parts' checkpoints;
* :mod:`.diffusion` - the DDIM schedule (diffusers), guidance and the batched sampler
  :func:`generate` (K samples x all windows x cond/uncond in one batch);
* :mod:`.released` - the authors' released checkpoints (xk0720/PerFRDiff ``checkpoints/``) read
  strictly and converted into a reactcli run (``reactcli import perfrdiff``).
"""

from .diffusion import DiffusionConfig, as_generator, generate, guided, make_scheduler
from .gafrg import GAFRG, EditableLinear, GAFRGConfig, WeightShift
from .pssl import PSSLConfig, PSSLEncoder, supcon_loss
from .pwsg import (
    PWSG,
    PWSGConfig,
    PWSGTraining,
    build_pwsg_training,
    editor_parameter_count,
    load_gafrg,
    load_pssl,
    load_pwsg,
    pwsg_extra,
    save_pwsg,
)

__all__ = [
    "DiffusionConfig", "as_generator", "generate", "guided", "make_scheduler",
    "GAFRG", "EditableLinear", "GAFRGConfig", "WeightShift",
    "PSSLConfig", "PSSLEncoder", "supcon_loss",
    "PWSG", "PWSGConfig", "PWSGTraining", "build_pwsg_training", "editor_parameter_count",
    "load_gafrg", "load_pssl", "load_pwsg", "pwsg_extra", "save_pwsg",
]
