"""Generation: model backends, presets and the sealed-generation service."""

import lazy_loader

# Each name is imported on first use, so a command that needs one corner of the package (verify,
# screen) does not pay for importing all of it. The names and where they live: __init__.pyi.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
