"""Real photographs for tests (scikit-image ships them)."""

from __future__ import annotations

import io

from PIL import Image


def photo(name: str = "astronaut", size: int | None = 256, fmt: str = "PNG") -> bytes:
    """A real photograph from scikit-image, encoded."""
    from skimage import data

    image = Image.fromarray(getattr(data, name)()).convert("RGB")
    if size is not None:
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()
