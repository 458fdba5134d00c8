"""The composition root: every part the sealed-generation service runs on, built from settings.

``build_parts(settings)`` opens the database once (one engine, one connection pool, shared by
every store), loads the policy files, and makes the signer, watermarkers, stores and checks.
``SealedGenerationService(settings, parts)`` takes them; a test hands in real parts or a double
at one of the seams named below, never by assigning attributes afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gen._backend import ImageBackend
from gen._backend_diffusers import DiffusersBackend
from gen._reviews import ReviewStore
from gen._sealer import Sealer
from gen._signing import build_signer, configured_identity
from gen._verification import configured_watermarker, other_watermarkers
from genseal.db import Database
from genseal.settings import Settings
from provenance import ManifestSigner, ManifestStore, SigningIdentity, Watermarker
from safety import (
    AttributeEstimator,
    BiasMonitor,
    ClipConceptCheck,
    FaceRegistry,
    ImageCheck,
    LikenessCheck,
    MinorsFaceCheck,
    NudeNetCheck,
    OpenNsfwCheck,
    Policy,
    PolicyReloader,
    ProtectedIdentityCheck,
    RealPersonCheck,
    Screener,
    default_policy_path,
    face_analyzer,
    prompt_checks_for,
)

__all__ = ["BackendLoader", "ScreenerFactory", "ServiceParts", "build_parts"]

BackendLoader = Callable[[str], ImageBackend]
"""Loads a model backend by its spec (``tiny``, a hub id, a local path)."""

ScreenerFactory = Callable[[Policy], Screener]
"""Builds the screener for a base policy; called again when a reload changes the policy."""

EstimatorFactory = Callable[[], AttributeEstimator]


@dataclass(frozen=True)
class ServiceParts:
    """What the service runs on. Build with ``build_parts``; the fields are its seams."""

    database: Database
    policies: PolicyReloader
    screener_for: ScreenerFactory
    face_registry: FaceRegistry
    reviews: ReviewStore
    store: ManifestStore
    identity: SigningIdentity
    watermarker: Watermarker
    sealer: Sealer
    bias_monitor: BiasMonitor
    backend_loader: BackendLoader
    bias_estimator: EstimatorFactory = field(default=lambda: AttributeEstimator(face_analyzer()))


def build_parts(
    settings: Settings,
    *,
    backend_loader: BackendLoader | None = None,
    screener_for: ScreenerFactory | None = None,
    signer: ManifestSigner | None = None,
    watermarkers: Sequence[Watermarker] | None = None,
    bias_estimator: EstimatorFactory | None = None,
    on_identity_created: Callable[[SigningIdentity], None] | None = None,
) -> ServiceParts:
    """Every part from ``settings``; a keyword replaces the part made at that seam
    (``watermarkers``: the primary first, then its fallbacks)."""
    # First, before any component opens a table: a database behind this genseal is migrated,
    # or (auto-upgrade off, at scale) refused with what to run.
    database = Database(
        settings.store_url, auto_upgrade=settings.database_auto_upgrade, what="genseal database"
    )
    try:
        # A malformed policy is an error here, at start-up, never a silent allow later.
        policies = PolicyReloader(
            settings.policy or default_policy_path(), settings.policy_tenants_dir
        )
        face_registry = FaceRegistry(database)
        reviews = ReviewStore(database)
        reviews.import_directory(settings.home / "reviews")
        settings.home.mkdir(parents=True, exist_ok=True)
        identity, remote = configured_identity(settings)
        if identity.created and on_identity_created is not None:
            on_identity_created(identity)
        if watermarkers is None:
            watermarkers = [configured_watermarker(settings), *other_watermarkers(settings)]
        store = ManifestStore(database)
        sealer = Sealer(
            watermarkers[0],
            signer or build_signer(settings, identity, remote),
            store,
            fallbacks=list(watermarkers[1:]),
        )
        bias_monitor = BiasMonitor(
            database, drift_tvd=settings.bias_drift_tvd, min_images=settings.bias_min_images
        )
    except BaseException:
        database.close()
        raise
    return ServiceParts(
        database=database,
        policies=policies,
        screener_for=screener_for or _default_screener(settings, face_registry),
        face_registry=face_registry,
        reviews=reviews,
        store=store,
        identity=identity,
        watermarker=watermarkers[0],
        sealer=sealer,
        bias_monitor=bias_monitor,
        backend_loader=backend_loader or _default_backend_loader(settings),
        **({"bias_estimator": bias_estimator} if bias_estimator is not None else {}),
    )


def _default_backend_loader(settings: Settings) -> BackendLoader:
    def load(spec: str) -> ImageBackend:
        return DiffusersBackend.load(spec, device=settings.device, offline=settings.offline)

    return load


def _default_screener(settings: Settings, registry: FaceRegistry) -> ScreenerFactory:
    def screener_for(policy: Policy) -> Screener:
        """The checks every request goes through. CLIP and NudeNet join only when configured:
        a sexual-content check that cannot run reports not_checked, and the fail-closed rules
        block an output on that."""
        image_checks: list[ImageCheck] = [
            OpenNsfwCheck.from_policy(policy),
            MinorsFaceCheck.from_policy(policy),
            RealPersonCheck.from_policy(policy),
            ProtectedIdentityCheck.from_policy(policy, registry),
            LikenessCheck.from_policy(policy),
        ]
        if settings.clip_weights is not None:
            image_checks.append(
                ClipConceptCheck.from_policy(
                    policy, model=settings.clip_model, weights=settings.clip_weights
                )
            )
        if settings.nudenet:
            image_checks.append(NudeNetCheck.from_policy(policy))
        return Screener(prompt_checks=prompt_checks_for(policy), image_checks=image_checks)

    return screener_for
