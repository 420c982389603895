"""What of the card's classifier a user may replace, checked before a run (one line per problem).

The ResNet50 bitstream holds the whole backbone (its int8 weights are in the xclbin: fixed) and
an FC layer whose weights the host loads into PLRAM at start: int8 (1000, 2048), rows = classes,
columns = the 2048 pooled features of that fixed backbone; the kernel returns the top-5 row
indices, no scores. So, on the card:

* can change: the FC weights (`backend.alveo.fc_weights`, any int8 values, exactly 1000 x 2048)
  and the names (`backend.alveo.labels`, 1..1000 of them, row order);
* fewer classes: name K rows and fill rows K..999 with -128: the pooled features are ReLU
  outputs (>= 0), so such a row scores lowest and never wins unless K < 5 (then it fills the
  top-5's tail, named `class N`);
* cannot change: the backbone, the input (224x224 BGR bytes), the 2048 features, the class count
  of the buffer (1000), top-5 ids as output (no scores: no `unknown` threshold on the card).

A head taught by `vidpipe model teach` sits on the cpu model's 1280 features, not the card's
2048: it runs on the cpu backend, not on the card.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidpipe.hw.base import FC_SHAPE
from vidpipe.hw.fcweights import load_fc_weights
from vidpipe.hw.imagenet import load_label_file
from vidpipe.hw.settings import AlveoSettings, BackendSettings
from vidpipe.pipeline.errors import BackendError

OFF = np.iinfo(np.int8).min  # a row of these never wins (see the module docstring)
_DEFAULTS = AlveoSettings()


def head_problems(settings: BackendSettings) -> list[str]:
    """Every problem with the configured FC weights and labels, one line each naming the key."""
    cfg = settings.alveo
    emulated = settings.name == "alveo-emu" or cfg.emulate
    problems: list[str] = []
    if settings.cpu.model:
        problems.append(f"backend.cpu.model ({settings.cpu.model}): a card runs the backbone in its xclbin (the "
                        "emulated one the bundled model); your own classes go on a card as fc_weights and labels, "
                        "a model of yours runs on the cpu backend")
    weights = None
    if not (emulated and cfg.fc_weights == _DEFAULTS.fc_weights):  # else the emulated card writes its own
        try:
            weights = load_fc_weights(Path(cfg.fc_weights).expanduser())
        except BackendError as exc:
            problems.append(f"backend.alveo.fc_weights: {exc}")
    names = None
    if cfg.labels:
        try:
            names = load_label_file(Path(cfg.labels).expanduser())
        except BackendError as exc:
            problems.append(f"backend.alveo.labels: {exc}")
    if weights is not None:
        problems.extend(rows_problems(weights, len(names) if names is not None else FC_SHAPE[0], cfg))
    return problems


def rows_problems(weights: np.ndarray, named: int, cfg: AlveoSettings) -> list[str]:
    """The FC rows against the names: the unnamed rows off (-128), no named row off."""
    off = (weights == OFF).all(axis=1)
    problems = []
    live = np.flatnonzero(~off[named:]) + named
    if live.size:
        problems.append(f"backend.alveo.fc_weights: rows {named}..{FC_SHAPE[0] - 1} have no name in "
                        f"{cfg.labels} ({named} names) but {live.size} of them are not all {OFF} (first: row "
                        f"{live[0]}): the card could answer with a class that has no name; fill them with {OFF}")
    dead = np.flatnonzero(off[:named])
    if dead.size:
        problems.append(f"backend.alveo.fc_weights: {dead.size} named row(s) are all {OFF} (first: row {dead[0]}), "
                        "so those classes can never win: the weights and labels do not match")
    return problems
