"""Invisible watermarks: the `Watermarker` seam, what a reading reports, the backends
(DWT-DCT-SVD, RivaGAN, the optional TrustMark) and choosing one by name.

A payload is 8 hex characters (32 bits): a reading is a lead for recovery, never proof.
"""

import lazy_loader

# A backend is imported on first use: each brings its own numerical stack.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
