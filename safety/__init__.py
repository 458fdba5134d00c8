"""Screening: safety checks over prompts and images, and the policy that decides on them.

One concern per sub-package: `safety.policy` (rule files that decide on findings),
`safety.prompt` and `safety.image` (content checks), `safety.faces` (face analysis, the face
checks, the protected-identity registry) and `safety.bias` (bias probes and monitoring). Here:
the vocabulary every check shares, the `Screener` that runs them, and the names the rest of
genseal uses; each sub-package exports all of its own.
"""

import lazy_loader

# Each name is imported on first use, so a command that needs one corner of the package (verify,
# screen) does not pay for importing all of it. The names and where they live: __init__.pyi.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
