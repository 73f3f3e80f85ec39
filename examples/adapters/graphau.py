"""Plug the real GraphAU (OpenGraphAU) + EmoNet into ``reactcli extract --features graphau``.

The challenge's 25-d emotion feature (:mod:`reactcli.features.graphau`) has two sources: 15
action-unit occurrences from GraphAU, then valence, arousal and 8 expression probabilities from
an emotion network (EmoNet's 8-class model gives exactly those, in the same order: Neutral,
Happy, Sad, Surprise, Fear, Disgust, Anger, Contempt). This wrapper runs both on the face crops
reactcli gives it (``(N, 3, 224, 224)`` RGB in [0, 1]) and returns ``(N, 25)``; reactcli then
thresholds the AU probabilities at 0.5 (``binarize_aus``).

* OpenGraphAU predicts 41 AU probabilities; its first 27 are AU1, 2, 4, 5, 6, 7, 9, 10, 11, 12,
  13, 14, 15, 16, 17, 18, 19, 20, 22, 23, 24, 25, 26, 27, 32, 38, 39, of which the challenge's 15
  are picked (:data:`CHALLENGE_AUS`). It expects ImageNet-normalised 224 px crops (its eval
  transform: Resize 256, CenterCrop 224, Normalize); give ``--face-crop center`` if your clips
  are 256 px face crops already, as the challenge's are.
* EmoNet expects 256 px crops in [0, 1] (its demo resizes to 256, no normalisation) and returns
  expression logits, valence and arousal.

Setup, once (neither is on PyPI; both weights come from their authors' pages):

1. clone https://github.com/CVI-SZU/ME-GraphAU and put its ``OpenGraphAU`` folder on
   ``PYTHONPATH`` (``from model.ANFL import MEFARG`` must work; its backbone may look for the
   ImageNet ResNet-50 in ``checkpoints/`` relative to the current directory);
2. ``pip install`` https://github.com/face-analysis/emonet (``from emonet.models import EmoNet``);
3. put ``OpenGprahAU-ResNet50_first_stage.pth`` (sic, the authors' spelling) and
   ``emonet_8.pth`` in one folder and extract::

       reactcli extract --work W --features graphau --device cuda \\
           --graphau-factory examples/adapters/graphau.py:build --graphau-path /models/graphau
"""

from __future__ import annotations

from pathlib import Path

import torch

#: indices of the challenge's AU1, 2, 4, 6, 7, 9, 10, 12, 14, 15, 17, 23, 24, 25, 26 among
#: OpenGraphAU's outputs (AU1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 22,
#: 23, 24, 25, 26, 27, 32, 38, 39, then 14 left/right AUs)
CHALLENGE_AUS = (0, 1, 2, 4, 5, 6, 7, 9, 11, 12, 14, 19, 20, 21, 22)
GRAPHAU_FILE = "OpenGprahAU-ResNet50_first_stage.pth"
EMONET_FILE = "emonet_8.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class GraphAUEmoNetWrapper(torch.nn.Module):
    """``(N, 3, S, S)`` crops in [0, 1] -> ``(N, 25)``: 15 AU probabilities, valence, arousal,
    8 expression probabilities."""

    def __init__(self, au_net: torch.nn.Module, emonet: torch.nn.Module) -> None:
        super().__init__()
        self.au_net = au_net
        self.emonet = emonet
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.register_buffer("aus", torch.tensor(CHALLENGE_AUS))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x224 = torch.nn.functional.interpolate(images, size=224, mode="bilinear", align_corners=False)
        au_probs = self.au_net((x224 - self.mean) / self.std)
        if isinstance(au_probs, (tuple, list)):  # some OpenGraphAU versions also return features
            au_probs = au_probs[0]
        x256 = torch.nn.functional.interpolate(images, size=256, mode="bilinear", align_corners=False)
        emo = self.emonet(x256)
        va = torch.stack([emo["valence"], emo["arousal"]], dim=1).reshape(-1, 2).clamp(-1, 1)
        expressions = torch.softmax(emo["expression"], dim=1)
        return torch.cat([au_probs.index_select(1, self.aus), va, expressions], dim=1)


def _state_dict(path: Path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=False)
    state = state.get("state_dict", state)
    return {k.removeprefix("module."): v for k, v in state.items()}


def build(path: str | None) -> torch.nn.Module:
    """The factory reactcli calls (``--graphau-factory examples/adapters/graphau.py:build``).

    ``path``: a folder with :data:`GRAPHAU_FILE` and :data:`EMONET_FILE`.
    """
    folder = Path(path or ".")
    missing = [f for f in (GRAPHAU_FILE, EMONET_FILE) if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {', '.join(missing)} (give --graphau-path the folder holding both)")
    from emonet.models import EmoNet  # ImportError: EmoNet not installed
    from model.ANFL import MEFARG  # ImportError: OpenGraphAU not on PYTHONPATH

    au_net = MEFARG(num_main_classes=27, num_sub_classes=14, backbone="resnet50", neighbor_num=4, metric="dots")
    au_net.load_state_dict(_state_dict(folder / GRAPHAU_FILE), strict=False)
    emonet = EmoNet(n_expression=8)
    emonet.load_state_dict(_state_dict(folder / EMONET_FILE), strict=False)
    return GraphAUEmoNetWrapper(au_net.eval(), emonet.eval())
