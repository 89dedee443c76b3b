"""Run configuration: one YAML/JSON file describes method, schedule, network, data and training.

Every section is a dataclass; unknown keys and wrong values are rejected with a one-line error
naming the file and the key. Named configs ship in ``ressrdiff/configs/*.yaml``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .fieldtypes import check_field_types
from .schedule import PRESETS, Schedule, preset

__all__ = [
    "ConfigError",
    "PLANE_NAMES",
    "ScheduleConfig",
    "LossConfig",
    "DataConfig",
    "TrainConfig",
    "RunConfig",
    "load_config",
    "named_configs",
]


class ConfigError(ValueError):
    """A configuration file or value is invalid."""


def _build(cls, d: dict | None, where: str):
    d = dict(d or {})
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(names)}")
    for f in fields(cls):
        v, kind = d.get(f.name), str(f.type)
        numeric = ("float" in kind or "int" in kind) and "str" not in kind and "dict" not in kind
        if numeric and isinstance(v, str):  # YAML reads 1e-4 (no dot) as a string
            try:
                d[f.name] = float(v) if "float" in kind else int(v)
            except ValueError:
                raise ConfigError(f"{where}.{f.name}: expected a number, got {v!r}") from None
    wrong = check_field_types(cls, d, f"{where}." if ": " in where else f"{where}: ")
    if wrong:
        raise ConfigError(wrong)
    return cls(**d)


@dataclass
class ScheduleConfig:
    """Eq (14) parameters. ``preset`` fills the defaults; explicit values override them."""

    preset: str | None = "paper"
    T: int | None = None
    gamma: float | None = None
    sqrt_beta_1: float | None = None
    sqrt_beta_T: float | None = None
    p: float | None = None
    sample_steps: int | None = None

    def resolved(self) -> dict[str, Any]:
        if self.preset is not None and self.preset not in PRESETS:
            raise ConfigError(f"schedule.preset {self.preset!r} unknown; choose {sorted(PRESETS)}")
        base = dict(PRESETS[self.preset]) if self.preset else {}
        for k in ("T", "gamma", "sqrt_beta_1", "sqrt_beta_T", "p", "sample_steps"):
            v = getattr(self, k)
            if v is not None:
                base[k] = v
        missing = [k for k in ("T", "gamma", "sqrt_beta_1", "sqrt_beta_T", "p") if k not in base]
        if missing:
            raise ConfigError(f"schedule: missing {missing} (or set a preset)")
        base.setdefault("sample_steps", base["T"])
        return base

    def build(self) -> Schedule:
        r = self.resolved()
        if self.preset and all(
            getattr(self, k) is None for k in ("T", "gamma", "sqrt_beta_1", "sqrt_beta_T", "p")
        ):
            return preset(self.preset)
        return Schedule.from_eq14(r["T"], r["gamma"], r["sqrt_beta_1"], r["sqrt_beta_T"], r["p"])


@dataclass
class LossConfig:
    """Eq (13): ``lambda_mse * MSE + LPIPS``. ``lpips``: 'auto' (use it when the AlexNet weights
    are present, else warn and train on MSE alone), 'off', or 'required' (fail without it)."""

    lambda_mse: float | None = None  # None: the schedule preset's lambda (10 paper, 4 authors)
    lpips: str = "auto"

    def __post_init__(self) -> None:
        if self.lpips not in ("auto", "off", "required"):
            raise ConfigError(f"loss.lpips must be auto|off|required, got {self.lpips!r}")


#: The keys of :data:`ressrdiff.data.degrade.DEGRADATIONS` (a test keeps them equal; spelled out
#: here so that the config does not import the data package).
DEGRADATION_NAMES = ("resample", "acquisition", "acquisition-kspace")


@dataclass
class DataConfig:
    """Training data. ``source``:

    * 'default': the prepared default data set (``ressrdiff data prepare``), training subjects;
    * 'manifest': ``path`` is a folder of volumes or a CSV manifest (subject-level split);
    * 'demo': slices of the single ICBM152 template (ressrdiff.data.sources.demo_pairs);
    * 'npz': a file with aligned arrays ``hr`` and ``lr`` (N, H, W) already in [-1, 1].

    ``normalisation`` ('robust-volume' or 'minmax-slice') is recorded so that inference maps
    intensities as training did; None means the source's own ('robust-volume' for volumes,
    'minmax-slice' for demo and npz). ``degradation`` names how LR is simulated from HR (ignored
    for 'npz'): 'resample', the paper's point-sampling ``SimpleITK.Resample`` (the default), or
    'acquisition', the physical model in which the large voxel averages what it covers
    (:data:`ressrdiff.data.degrade.DEGRADATIONS`). ``antialias: true`` is the older spelling of
    'acquisition' and is read as such. ``degradation`` is left out of :meth:`RunConfig.to_dict`
    while 'resample', so that the configs of runs and checkpoints made before it existed still
    compare equal. ``intensity``: the intensity augmentation of training pairs (bias field,
    gamma, LR noise; :class:`ressrdiff.data.augment.IntensityAugment`): false/null (off, the
    default, left out of :meth:`RunConfig.to_dict`), true (its defaults) or a mapping of its
    fields."""

    source: str = "demo"
    path: str | None = None
    normalisation: str | None = None
    preset: str = "brain-4x"
    regrid: str = "nearest"
    axis: int = 2
    patch: int = 64
    samples_per_epoch: int | None = None
    augment: bool = True
    degradation: str = "resample"
    antialias: bool = False  # legacy spelling of degradation: acquisition
    intensity: Any = None

    def __post_init__(self) -> None:
        from .data.augment import IntensityAugment

        try:
            aug = IntensityAugment.from_config(self.intensity)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        self.intensity = None if aug is None else aug.to_dict()
        if not isinstance(self.antialias, bool):
            raise ConfigError(f"data.antialias must be true or false, got {self.antialias!r}")
        if self.degradation not in DEGRADATION_NAMES:
            raise ConfigError(
                f"data.degradation must be {'|'.join(DEGRADATION_NAMES)}, got {self.degradation!r}"
            )
        if self.antialias:
            self.degradation = "acquisition"
        self.antialias = self.degradation == "acquisition"  # kept in step for old callers
        if self.source not in ("default", "manifest", "demo", "npz"):
            raise ConfigError(f"data.source {self.source!r} unknown; use default|manifest|demo|npz")
        if self.normalisation not in (None, "robust-volume", "minmax-slice"):
            raise ConfigError(f"data.normalisation {self.normalisation!r} unknown")

    @property
    def resolved_normalisation(self) -> str:
        if self.normalisation:
            return self.normalisation
        return "robust-volume" if self.source in ("default", "manifest") else "minmax-slice"


@dataclass
class TrainConfig:
    """Optimisation (Algorithm 1). RAdam, linear warm-up then cosine decay to ``min_lr``."""

    steps: int = 1000
    batch_size: int = 8
    lr: float = 5e-5
    min_lr: float = 0.0
    warmup_steps: int = 100
    weight_decay: float = 1e-5
    grad_clip: float | None = 1.0
    ema_decay: float | None = 0.999
    log_every: int = 10
    ckpt_every: int = 200
    keep_every: int = 0  # also keep step_NNNNNN.pt every this many steps (0: only last.pt)
    device: str = "auto"
    bf16: bool = True  # used on CUDA only; CPU trains in fp32
    channels_last: bool = True  # CUDA only

    def __post_init__(self) -> None:
        for k in ("steps", "batch_size", "log_every", "ckpt_every"):
            if int(getattr(self, k)) < 1:
                raise ConfigError(f"train.{k} must be >= 1, got {getattr(self, k)}")
        if int(self.ckpt_every) % int(self.log_every):
            raise ConfigError(
                f"train.ckpt_every ({self.ckpt_every}) must be a multiple of train.log_every "
                f"({self.log_every}), so that a resumed run logs exactly what an unbroken one does"
            )
        if int(self.keep_every) < 0 or (self.keep_every and self.keep_every % self.ckpt_every):
            raise ConfigError(
                f"train.keep_every ({self.keep_every}) must be 0 or a multiple of "
                f"train.ckpt_every ({self.ckpt_every})"
            )
        if self.warmup_steps < 0 or self.lr <= 0:
            raise ConfigError("train: warmup_steps must be >= 0 and lr > 0")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in (0, 1) or null, got {self.ema_decay}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"train.device must be auto, cpu or cuda, got {self.device!r}")


#: anatomical plane names ``infer.planes`` accepts (:data:`ressrdiff.fusion.PLANES` maps each to
#: its physical axis)
PLANE_NAMES = ("sagittal", "coronal", "axial")


@dataclass
class InferConfig:
    """How the network is evaluated at inference (:mod:`ressrdiff.tiling`). ``window``: None
    (whole slices, the default and what every model made before this field was evaluated with),
    ``"auto"`` (the training patch ``data.patch`` when the slice is larger) or a size in pixels;
    ``overlap`` and ``sw_batch_size`` as in :class:`ressrdiff.tiling.WindowSpec`.
    ``stochasticity``: how much fresh noise each of Res-SRDiff's reverse steps draws
    (:func:`ressrdiff.diffusion.reverse_step`; 1, the default, is Algorithm 2 as published, 0 a
    deterministic chain); ``temperature`` scales every noise draw of the sampler, x_T's
    included (1, the default, is Algorithm 2; 0 starts at x_LR and draws no noise).
    ``planes``: the anatomical planes a whole volume is super-resolved across and averaged over
    by default (:mod:`ressrdiff.fusion`; e.g. ``[axial, coronal, sagittal]``; None, the default:
    one plane, the training axis). Left out of :meth:`RunConfig.to_dict` while all defaults
    (``stochasticity`` and ``temperature`` while 1, ``planes`` while None), so older configs
    still compare equal."""

    window: int | str | None = None
    overlap: float = 0.5
    sw_batch_size: int = 8
    stochasticity: float = 1.0
    temperature: float = 1.0
    planes: list[str] | None = None

    def __post_init__(self) -> None:
        w = self.window
        if not (w is None or w == "auto" or (isinstance(w, int) and not isinstance(w, bool))):
            raise ConfigError(f"infer.window must be null, auto or a size in pixels, got {w!r}")
        if isinstance(w, int) and w < 8:
            raise ConfigError(f"infer.window must be >= 8 pixels, got {w}")
        if not isinstance(self.overlap, (int, float)) or not 0.0 <= self.overlap < 1.0:
            raise ConfigError(f"infer.overlap must be in [0, 1), got {self.overlap!r}")
        if not isinstance(self.sw_batch_size, int) or self.sw_batch_size < 1:
            raise ConfigError(
                f"infer.sw_batch_size must be an integer >= 1, got {self.sw_batch_size!r}"
            )
        for name in ("stochasticity", "temperature"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ConfigError(f"infer.{name} must be in [0, 1], got {v!r}")
            setattr(self, name, float(v))
        if self.planes is not None:
            ok = isinstance(self.planes, (list, tuple)) and self.planes
            if not ok or any(p not in PLANE_NAMES for p in self.planes):
                raise ConfigError(
                    f"infer.planes must be null or a list of {', '.join(PLANE_NAMES)}, "
                    f"got {self.planes!r}"
                )
            if len(set(self.planes)) != len(self.planes):
                raise ConfigError(f"infer.planes names a plane twice: {self.planes!r}")
            self.planes = list(self.planes)


@dataclass
class RunConfig:
    """A whole run."""

    name: str = "run"
    method: str = "res-srdiff"
    seed: int = 0
    scale_input: bool = True
    model: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # method-specific hyper-parameters
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    infer: InferConfig = field(default_factory=InferConfig)

    @classmethod
    def from_dict(cls, d: dict, where: str = "config") -> RunConfig:
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: expected a mapping at top level")
        d = dict(d)
        sub = {
            "schedule": ScheduleConfig,
            "loss": LossConfig,
            "data": DataConfig,
            "train": TrainConfig,
            "infer": InferConfig,
        }
        try:
            built = {k: _build(c, d.pop(k, None), f"{where}: {k}") for k, c in sub.items()}
            cfg = _build(cls, {**d, **built}, where)
            cfg.schedule.resolved()
        except ConfigError as e:
            msg = str(e)
            raise ConfigError(msg if msg.startswith(where) else f"{where}: {msg}") from None
        except TypeError as e:
            raise ConfigError(f"{where}: {e}") from None
        return cfg

    def to_dict(self) -> dict:
        """A plain dict; ``data.degradation`` appears only when not 'resample' (see
        :class:`DataConfig`), ``infer`` only when not all defaults, and the legacy
        ``data.antialias`` never."""
        d = asdict(self)
        del d["data"]["antialias"]
        if d["data"]["degradation"] == "resample":
            del d["data"]["degradation"]
        if d["data"]["intensity"] is None:
            del d["data"]["intensity"]
        sampler = ("stochasticity", "temperature")  # omitted at 1, as before they existed
        for k in sampler:
            if d["infer"][k] == 1.0:
                del d["infer"][k]
        if d["infer"]["planes"] is None:  # omitted while None, as before it existed
            del d["infer"]["planes"]
        later = (*sampler, "planes")
        if d["infer"] == {k: v for k, v in asdict(InferConfig()).items() if k not in later}:
            del d["infer"]
        return d

    def replace(self, **overrides: Any) -> RunConfig:
        """Apply dotted overrides such as ``{"train.steps": 20}``."""
        d = self.to_dict()
        d.setdefault("infer", asdict(self.infer))
        for key, value in overrides.items():
            node = d
            *parents, leaf = key.split(".")
            for p in parents:
                if not isinstance(node.get(p), dict):
                    raise ConfigError(f"override {key}: no section {p!r}")
                node = node[p]
            node[leaf] = value
        return RunConfig.from_dict(d, where="overrides")

    @property
    def lambda_mse(self) -> float:
        if self.loss.lambda_mse is not None:
            return float(self.loss.lambda_mse)
        return float(PRESETS[self.schedule.preset]["lambda_mse"]) if self.schedule.preset else 10.0


def named_configs() -> list[str]:
    """Names of the configs shipped with the package."""
    return sorted(
        p.name.removesuffix(".yaml")
        for p in resources.files("ressrdiff.configs").iterdir()
        if p.name.endswith(".yaml")
    )


def load_config(path_or_name: str | Path) -> RunConfig:
    """Load a run config from a YAML/JSON file, or a shipped one by name (e.g. 'tiny-cpu')."""
    p = Path(path_or_name)
    if not p.exists() and p.suffix == "" and str(path_or_name) in named_configs():
        text = (
            resources.files("ressrdiff.configs")
            .joinpath(f"{path_or_name}.yaml")
            .read_text(encoding="utf-8")
        )
        where = f"{path_or_name} (shipped config)"
    elif not p.is_file():
        raise ConfigError(
            f"{p}: no such config file (shipped configs: {', '.join(named_configs())})"
        )
    else:
        text, where = p.read_text(encoding="utf-8"), str(p)
    try:
        d = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        first = str(e).strip().splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML/JSON ({first})") from None
    return RunConfig.from_dict(d or {}, where=where)
