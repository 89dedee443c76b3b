"""The catalog of real MRI volumes that ship inside registry (PyPI) packages.

Nothing here downloads anything. A source is read either from an installed package (located with
:func:`importlib.util.find_spec`, without importing it) or straight out of the package's
distribution archive (a wheel is a zip file, an sdist a ``.tar.gz``) that the user fetched with
``pip download --no-deps NAME==VERSION -d DIR``; see :mod:`ressrdiff.data.prepare` for where
archives are looked for. Every file is pinned by the sha256 of the file itself (not of the
archive), so any archive or installation that holds the identical file is accepted.

The ``default`` data set has a **subject-level split**: the roles are fixed per volume, so no slice
of a validation or test volume is ever used for training. Its volumes:

==============  ==================  =====  ======================================  ======
id              package             role   what                                    grid
==============  ==================  =====  ======================================  ======
icbm152-2009a   nilearn 0.14.1      train  ICBM152 2009a sym template, brain only  1 mm
mni152-6thgen   nimare 0.22.1       train  MNI152 6th-gen template, whole head     1 mm
cat12-template  deepmriprep 0.3.0   train  CAT12 (IXI) template, brain only        0.5 mm
pydeface-mean   pydeface 2.1.0      val    mean of registered heads, whole head    ~1 mm
pycortex-s1     pycortex 1.4.0      test   one real subject (S1), whole head       1 mm
==============  ==================  =====  ======================================  ======

Training mixes skull-stripped and whole-head volumes (training on skull-stripped templates alone
was measured not to transfer to whole-head scans). The two MNI templates are built from the same
152 ICBM subjects, so both are in the training set; the validation head (pydeface's mean head)
and the test subject (pycortex's S1, a single real scan) come from other people. Templates are
averages: they are smoother than any single scan, which is why the test volume is a real one.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import asdict, dataclass

__all__ = [
    "ROLES",
    "Source",
    "SourceError",
    "SourceMissingError",
    "SourceHashError",
    "CATALOG",
    "DATASETS",
    "dataset_sources",
    "get_source",
    "canonical_name",
    "pip_download_command",
]

#: Roles of a subject in a split.
ROLES = ("train", "val", "test")


class SourceError(Exception):
    """A catalog source that cannot be used; the message is one line."""


class SourceMissingError(SourceError, FileNotFoundError):
    """A source is neither installed nor present as a downloaded archive."""


class SourceHashError(SourceError, ValueError):
    """A source file does not have the catalog's sha256 (corrupt, or another version)."""


@dataclass(frozen=True)
class Source:
    """One volume inside a registry package.

    ``member`` is the file's path inside the distribution: for a wheel (``dist="wheel"``) the path
    relative to ``site-packages`` (so the installed package is found too), for an sdist
    (``dist="sdist"``) the path below the archive's top folder. ``module`` is the top-level import
    name used to find an installed copy (``None``: look in archives only). ``sha256`` and
    ``size`` are those of the file itself. ``grid`` and ``orientation`` describe the file as
    shipped; ``kind`` is ``"template"`` (an average) or ``"subject"`` (one real scan); ``head``
    is ``"skull-stripped"`` or ``"whole-head"``.
    """

    id: str
    package: str
    version: str
    member: str
    sha256: str
    size: int
    dist: str
    module: str | None
    licence: str
    licence_note: str
    kind: str
    head: str
    grid: str
    orientation: str
    role: str
    description: str

    def as_dict(self) -> dict[str, object]:
        """Plain ``dict`` of the fields (for JSON provenance)."""
        return asdict(self)

    @property
    def requirement(self) -> str:
        """``package==version``."""
        return f"{self.package}=={self.version}"


CATALOG: tuple[Source, ...] = (
    Source(
        id="icbm152-2009a",
        package="nilearn",
        version="0.14.1",
        member="nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
        sha256="421a10e872fd6cadae7f61d358dffbcc1795a497d61ee76c5dda2503e1a1e9e6",
        size=1617531,
        dist="wheel",
        module="nilearn",
        licence="BSD-3-Clause (nilearn)",
        licence_note="ICBM 2009a template (c) McConnell Brain Imaging Centre, MNI; nilearn lists "
        "the template's licence as 'unknown'",
        kind="template",
        head="skull-stripped",
        grid="197x233x189 @ 1x1x1 mm, uint8",
        orientation="RAS",
        role="train",
        description="ICBM152 2009a symmetric T1 template (average of the 152 ICBM brains)",
    ),
    Source(
        id="mni152-6thgen",
        package="nimare",
        version="0.22.1",
        member="nimare/resources/templates/tpl-MNI152NLin6Asym_res-01_T1w.nii.gz",
        sha256="fbb6e77a6b090368db105d1cab2c13abd141815998b85c95a520d09771f0021c",
        size=10959795,
        dist="wheel",
        module="nimare",
        licence="MIT (nimare)",
        licence_note="MNI152 6th-generation template (FSL/TemplateFlow MNI152NLin6Asym), "
        "(c) McConnell Brain Imaging Centre, MNI",
        kind="template",
        head="whole-head",
        grid="182x218x182 @ 1x1x1 mm, int16",
        orientation="RAS",
        role="train",
        description="MNI152 6th-generation asymmetric T1 template with skull (same 152 ICBM "
        "subjects as the 2009a template)",
    ),
    Source(
        id="cat12-template",
        package="deepmriprep",
        version="0.3.0",
        member="deepmriprep/data/templates/Template_05mm_bet.nii.gz",
        sha256="7d96889867d29803021a276ba54c0225534266730c5f5348a1ea78ee2d6e62c1",
        size=11566353,
        dist="wheel",
        module="deepmriprep",
        licence="MIT (deepmriprep)",
        licence_note="CAT12 brain template (built from IXI subjects), shipped in deepmriprep",
        kind="template",
        head="skull-stripped",
        grid="339x411x339 @ 0.5x0.5x0.5 mm, float32 in [0, 1]",
        orientation="RAS",
        role="train",
        description="CAT12 T1 brain template at 0.5 mm (an average of IXI subjects)",
    ),
    Source(
        id="pydeface-mean",
        package="pydeface",
        version="2.1.0",
        member="pydeface/data/mean_reg2mean.nii.gz",
        sha256="fdc13571d66293f9919648cd8de9a7b3491b12175e09336353d2c9ce0466ecb6",
        size=8178557,
        dist="wheel",
        module="pydeface",
        licence="MIT (pydeface)",
        licence_note="mean head made by the pydeface authors, shipped in pydeface",
        kind="template",
        head="whole-head",
        grid="176x256x256 @ 1x0.977x0.977 mm, int16 (slightly oblique)",
        orientation="RAS",
        role="val",
        description="mean of registered T1 heads with face and neck (pydeface's reference head)",
    ),
    Source(
        id="pycortex-s1",
        package="pycortex",
        version="1.4.0",
        member="filestore/db/S1/anatomicals/raw.nii.gz",
        sha256="1a480d10e8c07fbca58e069efce2a11d477e180beb43f88bdad825b750055a28",
        size=4468912,
        dist="sdist",
        module=None,
        licence="BSD-2-Clause (pycortex)",
        licence_note="subject S1 of pycortex's example database, distributed in its sdist",
        kind="subject",
        head="whole-head",
        grid="256x256x256 @ 1x1x1 mm, uint8 (FreeSurfer-conformed)",
        orientation="LIA",
        role="test",
        description="one real subject's T1 scan with skull, face and neck (pycortex S1)",
    ),
)

#: Named data sets: their source ids, in order.
DATASETS: dict[str, tuple[str, ...]] = {
    "default": (
        "icbm152-2009a",
        "mni152-6thgen",
        "cat12-template",
        "pydeface-mean",
        "pycortex-s1",
    ),
}


def get_source(source_id: str) -> Source:
    """The catalog entry with id ``source_id``."""
    for s in CATALOG:
        if s.id == source_id:
            return s
    raise KeyError(f"no catalog source {source_id!r}; known: {', '.join(s.id for s in CATALOG)}")


def dataset_sources(name: str = "default") -> list[Source]:
    """The sources of the named data set (see :data:`DATASETS`)."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    return [get_source(i) for i in DATASETS[name]]


def canonical_name(name: str) -> str:
    """A distribution name as it appears in wheel/sdist file names (PEP 503/427 normalised)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def pip_download_command(sources: list[Source], dest: str) -> str:
    """The ``pip download`` command that fetches the archives of ``sources`` into ``dest``."""
    reqs = " ".join(dict.fromkeys(s.requirement for s in sources))
    return f"pip download --no-deps {reqs} -d {shlex.quote(str(dest))}"
