"""Image content checks: open_nsfw, NudeNet (an optional extra) and CLIP concept similarity."""

from ._clip_concepts import ClipConceptCheck
from ._nsfw import OpenNsfwCheck
from ._nudenet import NudeNetCheck

__all__ = [
    "ClipConceptCheck",
    "NudeNetCheck",
    "OpenNsfwCheck",
]
