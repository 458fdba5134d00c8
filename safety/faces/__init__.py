"""Faces: detection, identity descriptors, perceived age and gender; the checks built on them
(minors, real people, protected identities, likeness) and the protected-identity registry."""

from ._analysis import Face, FaceAnalysis, FaceAnalyzer, descriptor_distance, face_analyzer
from ._checks import LikenessCheck, MinorsFaceCheck, ProtectedIdentityCheck, RealPersonCheck
from ._registry import EnrolledIdentity, Enrollment, FaceRegistry, IdentityMatch

__all__ = [
    "EnrolledIdentity",
    "Enrollment",
    "Face",
    "FaceAnalysis",
    "FaceAnalyzer",
    "FaceRegistry",
    "IdentityMatch",
    "LikenessCheck",
    "MinorsFaceCheck",
    "ProtectedIdentityCheck",
    "RealPersonCheck",
    "descriptor_distance",
    "face_analyzer",
]
