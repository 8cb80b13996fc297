"""Gate settings: which gate, its threshold and granularity (no torch: the command line reads them)."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, replace
from typing import Mapping

from ..errors import OptionError, require

GATE_KINDS = ("none", "input-norm", "output-norm", "delta", "learned", "uncertainty", "channel")
# Gates that compare a norm of the input change with epsilon (the others decide without it).
THRESHOLDED_KINDS = ("input-norm", "output-norm", "delta")
# relative: epsilon is a fraction of each layer's own activation scale (mean |x| of its input on the last
# dense frame), so one epsilon means the same in every layer and every model; absolute: epsilon as given.
THRESHOLD_MODES = ("relative", "absolute")
# Scene cuts: a step whose model input changed by more than this mean squared difference (RGB in [0, 1],
# the largest over the step's input frames) is computed densely. Chosen from the sample videos' per-frame
# figures (benchmarks/cut_energy.py): sample:bikes' hard cuts (30, 76, 137, 187, 242) are >= 0.067 and its fast
# transitions 72-76 and 97-103 >= 0.016; no frame of carphone (max 0.0042) or bigbuckbunny (0.0056) is.
DEFAULT_CUT_THRESHOLD = 0.0155
# What a trace recorded before a setting existed was traced with: not today's default. Old identities
# lack these keys, and reading them as the new defaults would call an old absolute trace "relative".
LEGACY_GATE_SETTINGS = {"threshold_mode": "absolute", "cut_threshold": 0.0}


@dataclass(frozen=True)
class GateConfig:
    # The defaults (accumulated deltas, relative epsilon 0.1) keep RIFE's interpolation within 0.16 dB of
    # the dense one against the real frames on every sample video, and stay bounded over a whole video,
    # where Skip-Conv gates drift (benchmarks/results/gate_sweep.md). Traces record kind and threshold in
    # their identity, so older traces (input-norm by default then) keep theirs.
    kind: str = "delta"
    threshold: float = 0.1      # epsilon; a location is computed where its norm reaches it (>=)
    block: int = 1              # b: decisions are unions over b x b output blocks
    reset_every: int = 0        # K: a dense frame every K frames; 0 = never
    checkpoint: str | None = None   # learned gates: the user's trained Gumbel gates (see load_learned_gates)
    keep: float = 0.35              # uncertainty: fraction of finest cells computed (sparsesim.uncertainty)
    masks: str | None = None        # uncertainty: a user's own per-step masks instead (.npz)
    prune: float = 0.0              # structured channel sparsity (SSL-style): fraction of channels pruned
    channel_scales: str | None = None   # a user's per-channel scale vectors instead of filter L1 norms
    threshold_mode: str = "relative"    # THRESHOLD_MODES
    cut_threshold: float = DEFAULT_CUT_THRESHOLD   # a scene cut forces a dense frame; 0 = never
    # (layer name, multiplier) pairs sorted by name: a layer's epsilon is threshold x its multiplier (1 for
    # the layers not named). Set by --per-layer's search (per_layer.py); with_multipliers builds it.
    layer_multipliers: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in GATE_KINDS:
            raise OptionError("gate.kind", f"unknown gate {self.kind!r} for {{gate.kind}}; choose from: {', '.join(GATE_KINDS)}")
        require(math.isfinite(self.threshold) and self.threshold >= 0, "gate.threshold",
                f"must be a finite number >= 0, got {self.threshold}")
        require(self.threshold_mode in THRESHOLD_MODES, "gate.threshold_mode",
                f"must be one of {', '.join(THRESHOLD_MODES)}, got {self.threshold_mode!r}")
        require(math.isfinite(self.cut_threshold) and self.cut_threshold >= 0, "gate.cut_threshold",
                f"must be a finite number >= 0 (0 = never), got {self.cut_threshold}")
        require(self.block >= 1, "gate.block", f"must be >= 1, got {self.block}")
        require(self.reset_every >= 0, "gate.reset_every", f"must be >= 0 (0 = never), got {self.reset_every}")
        require((self.kind == "learned") == (self.checkpoint is not None), ("gate.kind", "gate.checkpoint"),
                "{gate.kind} learned and {gate.checkpoint} PATH go together")
        require(0.0 <= self.keep <= 1.0, "gate.keep", f"must be in [0, 1], got {self.keep}")
        require(self.masks is None or self.kind == "uncertainty", ("gate.masks", "gate.kind"),
                "{gate.masks} goes with {gate.kind} uncertainty")
        require(0.0 <= self.prune < 1.0, "gate.prune", f"must be in [0, 1), got {self.prune}")
        require(not (self.kind == "channel" and self.prune == 0.0 and self.channel_scales is None),
                ("gate.kind", "gate.prune"), "{gate.kind} channel needs {gate.prune} P (the fraction of channels to prune)")
        names = [name for name, _ in self.layer_multipliers]
        require(all(isinstance(n, str) and n for n in names) and names == sorted(set(names)), "gate.layer_multipliers",
                "must name each layer once, sorted by name (GateConfig.with_multipliers)")
        require(all(math.isfinite(m) and m > 0 for _, m in self.layer_multipliers), "gate.layer_multipliers",
                "must be finite numbers > 0")
        require(not self.layer_multipliers or self.kind in THRESHOLDED_KINDS, ("gate.layer_multipliers", "gate.kind"),
                "{gate.layer_multipliers} scale a threshold: they need a thresholded gate, not {gate.kind} "
                f"{self.kind}")

    def with_multipliers(self, multipliers: Mapping[str, float]) -> "GateConfig":
        """This gate with these per-layer multipliers on epsilon (1s are dropped: they change nothing)."""
        pairs = tuple(sorted((name, float(m)) for name, m in multipliers.items() if m != 1))
        return replace(self, layer_multipliers=pairs)

    @property
    def multipliers(self) -> dict[str, float]:
        return dict(self.layer_multipliers)

    def multiplier(self, layer: str) -> float:
        """The factor on epsilon for this layer (1 unless the per-layer search raised it)."""
        return self.multipliers.get(layer, 1.0)

    def record(self) -> dict:
        """The settings as meta.json and the trace identity hold them: the multipliers as {layer: multiplier},
        and only when there are any, so traces without them keep the identity they always had."""
        gate = asdict(self)
        multipliers = gate.pop("layer_multipliers")
        return {**gate, "layer_multipliers": dict(multipliers)} if multipliers else gate

    @property
    def records_thresholds(self) -> bool:
        """Each layer's own threshold is worth recording (thresholds.parquet): relative, or per-layer multipliers."""
        return self.relative or bool(self.layer_multipliers)

    @property
    def semantics(self) -> str:
        """'delta': the reference is the input as last propagated (DeltaCNN); 'skip-conv': the previous
        frame's input (Habibian et al.), the seed's semantics, kept for every other gate."""
        return "delta" if self.kind == "delta" else "skip-conv"

    @property
    def relative(self) -> bool:
        return self.threshold_mode == "relative" and self.kind in THRESHOLDED_KINDS

    @property
    def label(self) -> str:
        """Short name used in default trace directory names, e.g. 'input-norm-e0.05-b4'."""
        suffix = f"-p{self.prune:g}" if self.prune and self.kind != "channel" else ""
        return self._label() + suffix

    def _label(self) -> str:
        if self.kind == "none":
            return "dense"
        if self.kind == "channel":
            return f"channel-p{self.prune:g}"
        if self.kind == "uncertainty":
            return "uncertainty-masks" if self.masks else f"uncertainty-k{self.keep:g}"
        # 'rel' marks relative thresholds; absolute ones keep the labels traces had before the mode existed
        parts = [self.kind] if self.kind == "learned" else [self.kind, *(["rel"] if self.relative else []),
                                                             f"e{self.threshold:g}"]
        if self.block > 1:
            parts.append(f"b{self.block}")
        if self.reset_every:
            parts.append(f"r{self.reset_every}")
        if self.layer_multipliers:   # which multipliers: a digest (the names would not fit a directory name)
            digest = hashlib.sha256(json.dumps(self.layer_multipliers).encode()).hexdigest()[:6]
            parts.append(f"pl{digest}")
        return "-".join(parts)

    def is_reset(self, step: int) -> bool:
        """Frame `step` is computed densely: the first one, and every K-th with a reset period."""
        return bool(self.reset_reason(step))

    def reset_reason(self, step: int) -> str:
        """Why frame `step` is computed densely by the schedule alone ('' when it is not): 'first',
        'stateless' (gates without temporal state) or 'periodic'. The tracer adds the reasons only a run
        knows ('cut', 'resume'): RESET_REASONS lists them all."""
        if step == 0:
            return "first"
        # uncertainty pruning decides per frame from the model's own estimate: no temporal state
        if self.kind in STATELESS_KINDS:
            return "stateless"
        return "periodic" if self.reset_every > 0 and step % self.reset_every == 0 else ""


STATELESS_KINDS = ("none", "uncertainty", "channel")   # every frame decided afresh: no cut can matter


def comparable_gate(recorded: dict) -> dict:
    """A recorded gate identity as it compares with another: keys it predates take their legacy values, and
    settings that change nothing for its kind (the threshold mode of a gate without a norm threshold, the
    cut threshold of a stateless gate) compare equal whatever they were, so re-running an old uncertainty
    trace still replaces it."""
    gate = {**GateConfig().record(), **LEGACY_GATE_SETTINGS, **recorded}
    if gate["kind"] not in THRESHOLDED_KINDS:
        gate["threshold_mode"] = LEGACY_GATE_SETTINGS["threshold_mode"]
    if gate["kind"] in STATELESS_KINDS:
        gate["cut_threshold"] = LEGACY_GATE_SETTINGS["cut_threshold"]
    return gate


# Why a frame was computed densely, as frames.parquet's `reset_reason` records it ('' = not a reset).
RESET_REASONS = ("first", "stateless", "periodic", "cut", "resume")
