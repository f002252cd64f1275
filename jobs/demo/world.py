"""The bigger demo world: about 200 jobs over the last 30 days, written as TOQ would have written them.

Deterministic (fixed seed; times relative to `now`). Every row is what TOQ's server stores after
the callbacks of reference §3.6–§3.9 (job status, `callback_body`, `last_error`, asset status and
metadata), so the real sync mirrors it and the real diagnosis rules recognise the failures from the
rows alone: FM-09, FM-10 (a group of a dozen jobs with the same HEAD 404), FM-11 (partial success),
FM-12, FM-13, FM-15, FM-19, FM-25 + FM-30 (+ FM-32), FM-33, plus FM-28 where TOQ's fail-safe
bulk-fails a listing. Ids: users 50+, listings 100+, assets 1000+, jobs 100+ (the incident keeps 36..39).
"""

from __future__ import annotations

import base64
import json
import random
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

SEED = 20260105
SM = "arn:aws:states:us-east-1:123456789012:execution:listing-media-processing-sm-staging:"
FIN_SM = "arn:aws:states:us-east-1:123456789012:execution:listing-media-finalization-sm-staging:"
PHOTO_SIZES = ("thumbnail", "small", "medium", "large")
HEAD_404 = (
    "failed to head object: operation error S3: HeadObject, https response error StatusCode: 404, "
    "RequestID: {rid}, api error NotFound: Not Found"
)
HEAD_403 = (
    "failed to head object: operation error S3: HeadObject, https response error StatusCode: 403, "
    "RequestID: {rid}, api error Forbidden: Forbidden"
)
RECONCILED = "reconciler marked failed after 30m0s without callback"

FIRST = ["Ana", "Bruno", "Carla", "Diego", "Elisa", "Fábio", "Gabriela", "Henrique", "Isabela", "João"]
FIRST += ["Karina", "Lucas", "Marina", "Nícolas", "Patrícia", "Rafael", "Sabrina", "Tiago", "Vanessa", "Wagner"]
LAST = ["Almeida", "Barbosa", "Cardoso", "Duarte", "Fernandes", "Gonçalves", "Lima", "Machado", "Nunes"]
LAST += ["Oliveira", "Pereira", "Ramos", "Santos", "Teixeira", "Vieira"]
NEIGHBOURHOODS = ["Centro", "Trindade", "Itacorubi", "Campeche", "Lagoa da Conceição", "Coqueiros", "Estreito"]
TITLES = [
    "Apartamento 2 dormitórios com sacada",
    "Casa térrea 3 quartos com piscina",
    "Studio mobiliado perto da UFSC",
    "Cobertura com vista para a lagoa",
    "Apartamento 3 suítes frente mar",
    "Sala comercial com duas vagas",
    "Terreno plano em condomínio fechado",
    "Casa sobrado com quintal e churrasqueira",
]


@dataclass
class Asset:
    id: int
    listing: int
    asset_type: str
    sequence: int
    filename: str
    size: int
    duration: int = 0  # seconds, videos only (client-supplied metadata)
    status: str = "PROCESSING"
    error_code: str = ""
    error: str = ""
    requested_by: int = 0

    @property
    def is_video(self) -> bool:
        return self.asset_type.startswith("VIDEO")

    @property
    def orientation(self) -> str:
        return self.asset_type.split("_", 1)[1].lower()

    @property
    def media(self) -> str:
        return "video" if self.is_video else "photo"

    @property
    def raw_key(self) -> str:
        return (
            f"{self.listing}/raw/{self.media}/{self.orientation}/{self.orientation}-{self.sequence:02d}-{self.filename}"
        )

    def derivative(self, size: str) -> str:
        return f"{self.listing}/processed/{self.media}/{self.orientation}/{size}/{self.orientation}-{self.sequence:02d}-{self.filename}"

    def outputs(self) -> dict[str, str]:
        sizes = ("thumbnail",) if self.is_video else PHOTO_SIZES
        return {f"{s}_{self.asset_type.lower()}": self.derivative(s) for s in sizes}

    @property
    def processed_key(self) -> str:
        return self.derivative("thumbnail" if self.is_video else "large")


@dataclass
class Listing:
    id: int
    user: int
    assets: list[Asset] = field(default_factory=list)


@dataclass
class Plan:
    """One job to write: when, on which listing, and how it ended (`render` fills the row)."""

    created: datetime
    listing: Listing
    render: Callable[[int, Plan], dict[str, Any]]
    assets: list[Asset] = field(default_factory=list)
    # AWS CLI exports of this job ({relative path: JSON}), from its rendered row
    exports: Callable[[dict[str, Any], Plan], dict[str, Any]] | None = None


def _ts(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _iso_ms(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _body(obj: dict[str, Any]) -> str:
    # The callback Lambda re-serialises with Go's encoding/json: keys sorted, no spaces.
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class World:
    def __init__(self, now: datetime, seed: int = SEED) -> None:
        self.now = now
        self.rng = random.Random(seed)
        self.users: list[int] = []
        self.listings: list[Listing] = []
        self.plans: list[Plan] = []
        self.next_listing = 100
        self.next_asset = 1000

    # --- building blocks ---------------------------------------------------------------------

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def rid(self) -> str:
        return "".join(self.rng.choice("0123456789ABCDEF") for _ in range(16))

    def when(self, *, max_days: float = 29.5, min_minutes: float = 90) -> datetime:
        seconds = self.rng.uniform(min_minutes * 60, max_days * 86400)
        at = self.now - timedelta(seconds=seconds)
        # uploads happen mostly in working hours (UTC-3)
        at = at.replace(hour=self.rng.choice([11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22]))
        while at > self.now - timedelta(minutes=min_minutes):
            at -= timedelta(days=1)
        return at

    def listing(self, created: datetime, *, photos: int, videos: int = 0) -> Listing:
        listing = Listing(self.next_listing, self.rng.choice(self.users))
        self.next_listing += 1
        shot = created - timedelta(minutes=self.rng.randint(20, 600))
        counts: dict[str, int] = {}
        for i in range(photos + videos):
            video = i >= photos
            orientation = self.rng.choice(["HORIZONTAL", "HORIZONTAL", "VERTICAL"])
            kind = f"{'VIDEO' if video else 'PHOTO'}_{orientation}"
            counts[kind] = counts.get(kind, 0) + 1
            shot += timedelta(seconds=self.rng.randint(8, 90))
            stamp = shot.strftime("%Y%m%d_%H%M%S")
            listing.assets.append(
                Asset(
                    id=self.next_asset,
                    listing=listing.id,
                    asset_type=kind,
                    sequence=counts[kind],
                    filename=f"{'VID' if video else 'IMG'}_{stamp}.{'mp4' if video else 'jpg'}",
                    size=self.rng.randint(18_000_000, 190_000_000) if video else self.rng.randint(1_800_000, 6_500_000),
                    duration=self.rng.randint(12, 150) if video else 0,
                    requested_by=listing.user,
                )
            )
            self.next_asset += 1
        self.listings.append(listing)
        return listing

    def add(
        self,
        created: datetime,
        listing: Listing,
        render: Callable[[int, Plan], dict[str, Any]],
        exports: Callable[[dict[str, Any], Plan], dict[str, Any]] | None = None,
    ) -> None:
        self.plans.append(Plan(created, listing, render, list(listing.assets), exports))

    # --- rows ----------------------------------------------------------------------------------

    def processing_row(
        self,
        job_id: int,
        plan: Plan,
        *,
        status: str,
        callback_status: str | None = None,
        results: list[dict[str, Any]] | None = None,
        error: dict[str, str] | None = None,
        failure_reason: str = "",
        seconds: tuple[int, int] = (5, 25),
    ) -> dict[str, Any]:
        started = plan.created + timedelta(milliseconds=self.rng.randint(300, 2500))
        arn = SM + self.uuid()
        body: dict[str, Any] = {
            "error": error,
            "executionArn": arn,
            "failureReason": failure_reason,
            "jobId": job_id,
            "listingIdentityId": plan.listing.id,
            "outputs": results if results is not None else [],
            "provider": "STEP_FUNCTIONS",
            "startedAt": _iso_ms(started),
            "status": callback_status or status,
        }
        if error is not None:
            body["traceparent"] = ""
        low, high = seconds
        if any(a.is_video for a in plan.assets):
            low, high = low + 30, high + 90
        fragments = []
        if error:
            fragments = [f"code={error['code'].upper()}", error["message"], failure_reason]
        return {
            "id": job_id,
            "listing_identity_id": plan.listing.id,
            "status": status,
            "provider": "STEP_FUNCTIONS",
            "external_id": arn,
            "retry_count": 0,
            "started_at": _ts(started),
            "completed_at": _ts(started + timedelta(seconds=self.rng.randint(low, high))),
            "last_error": " | ".join(f for f in fragments if f) or None,
            "callback_body": _body(body),
            "created_at": _ts(plan.created),
        }

    @staticmethod
    def result(asset: Asset, *, code: str = "", message: str = "", processed: bool = True) -> dict[str, Any]:
        ok = processed and not code
        return {
            "errorCode": code,
            "errorMessage": message,
            "outputs": asset.outputs() if ok else {},
            "processedKey": asset.processed_key if ok else "",
            "rawKey": asset.raw_key,
            "thumbnailKey": asset.derivative("thumbnail") if ok else "",
        }

    def finalization_row(
        self, job_id: int, plan: Plan, *, status: str, payload: Any = None, **extra: Any
    ) -> dict[str, Any]:
        started = plan.created
        return {
            "id": job_id,
            "listing_identity_id": plan.listing.id,
            "status": status,
            "provider": "STEP_FUNCTIONS_FINALIZATION",
            "external_id": f"{FIN_SM}finalization-{plan.listing.id}-{job_id}",
            "payload": json.dumps(payload) if payload is not None else None,
            "retry_count": 0,
            "started_at": _ts(started),
            "completed_at": None,
            "last_error": None,
            "callback_body": None,
            "created_at": _ts(plan.created),
            **extra,
        }

    @staticmethod
    def zip_payload(assets: list[Asset], zip_key: str | None, rng: random.Random) -> dict[str, Any]:
        unzipped = sum(a.size for a in assets) if zip_key else 0
        return {
            "assetsZipped": len(assets) if zip_key else 0,
            "errorCode": "",
            "errorMessage": "",
            "outputs": None,
            "processedKey": "",
            "rawKey": "",
            "thumbnailKey": "",
            "unzippedSizeBytes": unzipped,
            "zipBundles": [zip_key] if zip_key else [],
            "zipSizeBytes": int(unzipped * rng.uniform(0.93, 0.99)),
        }

    # --- scenarios -----------------------------------------------------------------------------

    def succeeded(self, created: datetime, *, photos: int, videos: int = 0, finalize: bool = True) -> None:
        listing = self.listing(created, photos=photos, videos=videos)
        for a in listing.assets:
            a.status = "PROCESSED"

        def render(job_id: int, plan: Plan) -> dict[str, Any]:
            results = [self.result(a) for a in plan.assets]
            self.rng.shuffle(results)  # map order (random) in consolidate
            return self.processing_row(job_id, plan, status="SUCCEEDED", results=results)

        self.add(created, listing, render)
        ready = created + timedelta(minutes=self.rng.randint(15, 2400))
        if finalize and ready < self.now - timedelta(minutes=45):
            self.finalized(ready, listing)

    def finalized(self, created: datetime, listing: Listing, *, empty: bool = False) -> None:
        def render(job_id: int, plan: Plan) -> dict[str, Any]:
            zip_key = None if empty else f"{listing.id}/processed/zip/listing-media.zip"
            payload = self.zip_payload(plan.assets, zip_key, self.rng)
            body = {
                "assetsZipped": payload["assetsZipped"],
                "jobId": job_id,
                "listingIdentityId": str(listing.id),
                "provider": "STEP_FUNCTIONS_FINALIZATION",
                "status": "SUCCEEDED",
                "traceparent": f"00-{self.rng.getrandbits(128):032x}-{self.rng.getrandbits(64):016x}-01",
                "unzippedSizeBytes": payload["unzippedSizeBytes"],
                "zipBundles": payload["zipBundles"],
                "zipSizeBytes": payload["zipSizeBytes"],
            }
            took = self.rng.randint(20, 240) if not empty else self.rng.randint(2, 6)
            return self.finalization_row(
                job_id,
                plan,
                status="SUCCEEDED",
                payload=payload,
                completed_at=_ts(plan.created + timedelta(seconds=took)),
                callback_body=_body(body),
            )

        self.add(created, listing, render)

    def validation_error(self, created: datetime, template: str, *, photos: int) -> None:
        """FM-10: a raw object gone (or denied) between /process and validate; job SUCCEEDED."""
        listing = self.listing(created, photos=photos)
        bad = self.rng.choice(listing.assets)
        message = template.format(rid=self.rid())
        for a in listing.assets:
            a.status = "PROCESSED"
        bad.status, bad.error_code, bad.error = "FAILED", "VALIDATION_ERROR", message

        def render(job_id: int, plan: Plan) -> dict[str, Any]:
            results = [self.result(a, code=a.error_code, message=a.error) for a in plan.assets]
            return self.processing_row(job_id, plan, status="SUCCEEDED", results=results)

        self.add(created, listing, render)

    def failed_without_outputs(
        self, created: datetime, callback_status: str, error: str, cause: str, *, photos: int, videos: int = 0
    ) -> None:
        """FM-09 / FM-13 / FM-15: ValidationFailed / ReportFailure → no outputs → bulk fail-safe (FM-28)."""
        listing = self.listing(created, photos=photos, videos=videos)
        for a in listing.assets:
            a.status = "FAILED"  # BulkUpdateAssetStatus: metadata untouched

        def render(job_id: int, plan: Plan) -> dict[str, Any]:
            return self.processing_row(
                job_id,
                plan,
                status="FAILED",
                callback_status=callback_status,
                error={"code": error, "message": cause},
                failure_reason=error,
                seconds=(60, 400),
            )

        self.add(created, listing, render)

    def branch_error(self, created: datetime, code: str, message: str, *, photos: int, videos: int = 0) -> None:
        """FM-11 / FM-12 at HEAD: PARTIAL_SUCCESS + DERIVATIVE_ERRORS_DETECTED, the asset FAILED with errorCode."""
        listing = self.listing(created, photos=photos, videos=videos)
        for a in listing.assets:
            a.status = "PROCESSED"
        pool = [a for a in listing.assets if a.is_video == (code == "VIDEO_THUMBNAIL_FAILED")]
        bad = self.rng.choice(pool)
        bad.status, bad.error_code, bad.error = "FAILED", code, message.format(key=bad.raw_key)

        def render(job_id: int, plan: Plan) -> dict[str, Any]:
            results = [self.result(a, code=a.error_code, message=a.error) for a in plan.assets]
            return self.processing_row(
                job_id,
                plan,
                status="PARTIAL_SUCCESS",
                results=results,
                error={
                    "code": "DERIVATIVE_ERRORS_DETECTED",
                    "message": "one or more derivative branches reported errors",
                },
                failure_reason="DERIVATIVE_ERRORS_DETECTED",
            )

        self.add(created, listing, render)

    def transcode_unnoticed(self, created: datetime, *, photos: int) -> None:
        """FM-17: everything SUCCEEDED for TOQ, but the MediaConvert job it submitted ended in ERROR."""
        listing = self.listing(created, photos=photos, videos=1)
        for a in listing.assets:
            a.status = "PROCESSED"
        stamp = int(created.timestamp() * 1000) + 1000
        mc_id = f"{stamp}-" + "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(6))

        def render(job_id: int, plan: Plan) -> dict[str, Any]:
            return self.processing_row(job_id, plan, status="SUCCEEDED", results=[self.result(a) for a in plan.assets])

        self.add(created, listing, render, lambda row, plan: transcode_exports(row, plan, mc_id, self.rng))

    def missing_processed_key(self, created: datetime, *, photos: int, videos: int) -> None:
        """FM-19: a video result with neither error nor processedKey (no video-thumbnail branch ran)."""
        listing = self.listing(created, photos=photos, videos=videos)
        for a in listing.assets:
            a.status = "PROCESSED"
            if a.is_video:
                a.status, a.error_code = "FAILED", "MISSING_PROCESSED_KEY"
                a.error = "processed asset returned without processedKey"

        def render(job_id: int, plan: Plan) -> dict[str, Any]:
            results = [self.result(a, processed=not a.is_video) for a in plan.assets]
            return self.processing_row(job_id, plan, status="SUCCEEDED", results=results)

        self.add(created, listing, render)

    def finalization_failed(self, created: datetime, *, reconciled: bool) -> None:
        """FM-32 → FINALIZATION_FAILED callback TOQ ignores (FM-25) → the reconciler fails the job (FM-30)."""
        listing = self.listing(created - timedelta(hours=2), photos=self.rng.randint(4, 9))
        for a in listing.assets:
            a.status = "PROCESSED"
        self.add(
            created - timedelta(hours=2),
            listing,
            lambda job_id, plan: self.processing_row(
                job_id, plan, status="SUCCEEDED", results=[self.result(a) for a in plan.assets]
            ),
        )
        gone = self.rng.choice(listing.assets)

        def render(job_id: int, plan: Plan) -> dict[str, Any]:
            cause = {
                "errorMessage": f"failed to download {gone.raw_key}: failed to download from s3: operation error S3: "
                "GetObject, https response error StatusCode: 404, api error NoSuchKey: The specified key does not exist.",
                "errorType": "wrapError",
            }
            body = {
                "error": {"Cause": json.dumps(cause, separators=(",", ":")), "Error": "wrapError"},
                "jobId": job_id,
                "listingIdentityId": str(listing.id),
                "status": "FINALIZATION_FAILED",
                "traceparent": f"00-{self.rng.getrandbits(128):032x}-{self.rng.getrandbits(64):016x}-01",
            }
            extra: dict[str, Any] = {"callback_body": _body(body)}
            if reconciled:
                extra |= {"last_error": RECONCILED, "completed_at": _ts(plan.created + timedelta(minutes=33))}
            return self.finalization_row(job_id, plan, status="FAILED" if reconciled else "RUNNING", **extra)

        self.add(created, listing, render)

    def reconciled_silent(self, created: datetime) -> None:
        """FM-30 with nothing else in the rows: no callback ever came (FM-20/FM-34 need the AWS side)."""
        listing = self.listing(created - timedelta(hours=1), photos=self.rng.randint(3, 6))
        for a in listing.assets:
            a.status = "PROCESSED"
        self.add(
            created - timedelta(hours=1),
            listing,
            lambda job_id, plan: self.processing_row(
                job_id, plan, status="SUCCEEDED", results=[self.result(a) for a in plan.assets]
            ),
        )
        self.add(
            created,
            listing,
            lambda job_id, plan: self.finalization_row(
                job_id,
                plan,
                status="FAILED",
                last_error=RECONCILED,
                completed_at=_ts(plan.created + timedelta(minutes=34)),
            ),
        )

    def in_flight(self, created: datetime, *, photos: int, videos: int = 0) -> None:
        """A processing job minutes old: PENDING until its callback (not stuck yet)."""
        listing = self.listing(created, photos=photos, videos=videos)
        self.add(
            created,
            listing,
            lambda job_id, plan: {
                "id": job_id,
                "listing_identity_id": plan.listing.id,
                "status": "PENDING",
                "provider": "STEP_FUNCTIONS",
                "retry_count": 0,
                "created_at": _ts(plan.created),
            },
        )


def build_world(now: datetime, seed: int = SEED) -> World:
    w = World(now, seed)
    w.users = list(range(50, 70))
    rng = w.rng
    # failures recognised from the rows alone
    for _ in range(12):  # one failure group: the same HEAD 404 (raw deleted after /process)
        w.validation_error(w.when(), HEAD_404, photos=rng.randint(3, 8))
    for _ in range(2):
        w.validation_error(w.when(), HEAD_403, photos=rng.randint(2, 5))
    w.failed_without_outputs(
        w.when(),
        "VALIDATION_FAILED",
        "Sandbox.Timedout",
        "Task timed out after 60.00 seconds",
        photos=rng.randint(12, 20),
    )
    w.failed_without_outputs(
        w.when(),
        "VALIDATION_FAILED",
        "Lambda.TooManyRequestsException",
        "Rate Exceeded. (Service: Lambda, Status Code: 429)",
        photos=rng.randint(3, 6),
    )
    w.failed_without_outputs(
        w.when(),
        "PROCESSING_FAILED",
        "Lambda.Unknown",
        "The cause could not be determined because Lambda did not return an error type. Returned payload: "
        '{"errorMessage":"RequestId: 1b6c3e1e-0b2f-4b8e-9d53-71a0c2f5e9aa Error: Runtime exited with error: signal: killed"}',
        photos=rng.randint(25, 40),
    )
    w.failed_without_outputs(
        w.when(),
        "PROCESSING_FAILED",
        "States.Timeout",
        "State timed out after 600 seconds",
        photos=2,
        videos=1,
    )
    w.failed_without_outputs(
        w.when(),
        "PROCESSING_FAILED",
        "MediaConvert.BadRequestException",
        "Unable to determine input file type for s3://toq-listing-medias/ (Service: MediaConvert, Status Code: 400)",
        photos=2,
        videos=1,
    )
    w.failed_without_outputs(
        w.when(),
        "PROCESSING_FAILED",
        "MediaConvert.ForbiddenException",
        "User is not authorized to perform: iam:PassRole on resource: "
        "arn:aws:iam::123456789012:role/toq-media-processing-mediaconvert-staging",
        photos=1,
        videos=1,
    )
    for _ in range(3):
        w.branch_error(
            w.when(),
            "THUMBNAIL_PROCESSING_FAILED",
            "failed to decode image: image: unknown format",
            photos=rng.randint(3, 7),
        )
    w.branch_error(
        w.when(),
        "VIDEO_THUMBNAIL_FAILED",
        "failed to write temp input file: write /tmp/input-{key}: no space left on device",
        photos=2,
        videos=1,
    )
    w.transcode_unnoticed(w.when(max_days=6), photos=rng.randint(3, 6))
    for _ in range(2):
        w.missing_processed_key(w.when(), photos=rng.randint(2, 4), videos=1)
    for _ in range(2):
        w.finalization_failed(w.when(max_days=25), reconciled=True)
    w.finalization_failed(w.now - timedelta(minutes=12), reconciled=False)
    w.reconciled_silent(w.when(max_days=20))
    for _ in range(2):
        listing = w.listing(w.when(), photos=rng.randint(2, 5))
        for a in listing.assets:
            a.status = "PROCESSED"
        w.finalized(w.when(max_days=1), listing, empty=True)
    # in flight right now
    w.in_flight(w.now - timedelta(minutes=4), photos=6)
    w.in_flight(w.now - timedelta(minutes=11), photos=3, videos=1)
    # the ordinary traffic: most jobs succeed; a listing is processed, then finalized (ZIP)
    while len(w.plans) < 196 - 1:
        videos = 1 if rng.random() < 0.3 else 0
        w.succeeded(w.when(), photos=rng.randint(1, 12), videos=videos, finalize=rng.random() < 0.8)
    while len(w.plans) < 196:
        w.succeeded(w.when(), photos=rng.randint(1, 12), finalize=False)
    return w


def write_world(
    db: sqlite3.Connection, now: datetime, insert: Callable[..., None], user_defaults: dict[str, Any]
) -> dict[str, Any]:
    """Insert the world's users, listings, assets and jobs (ids in creation order, from 100).

    Returns the world's AWS CLI exports, {relative path: JSON as the CLI prints it}."""
    w = build_world(now)
    rng = random.Random(SEED + 1)
    for uid in w.users:
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)} {rng.choice(LAST)}"
        insert(db, "users", {**user_defaults, "id": uid, "full_name": name})
    for listing in w.listings:
        code = 320000 + listing.id
        insert(
            db,
            "listing_identities",
            {
                "id": listing.id,
                "listing_uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "user_id": listing.user,
                "code": code,
                "active_version_id": listing.id,
            },
        )
        insert(
            db,
            "listing_versions",
            {
                "id": listing.id,
                "user_id": listing.user,
                "listing_identity_id": listing.id,
                "code": code,
                "version": 1,
                "status": 6,
                "title": rng.choice(TITLES),
                "zip_code": f"880{rng.randint(10, 99)}{rng.randint(100, 999)}",
                "number": str(rng.randint(10, 3000)),
                "neighborhood": rng.choice(NEIGHBOURHOODS),
                "city": "Florianópolis",
                "state": "SC",
                "type": 1,
                "deleted": 0,
            },
        )
        for a in listing.assets:
            meta: dict[str, str] = {
                "checksum": base64.b64encode(rng.getrandbits(256).to_bytes(32, "big")).decode(),
                "filename": a.filename,
                "size_bytes": str(a.size),
                "content_type": "video/mp4" if a.is_video else "image/jpeg",
                "requested_by": str(a.requested_by),
            }
            if a.is_video:
                meta["duration_seconds"] = str(a.duration)
            processed = a.status == "PROCESSED"
            if processed:
                meta |= a.outputs() | {"thumbnailKey": a.derivative("thumbnail")}
            if a.error_code:
                meta |= {"errorCode": a.error_code, "error": a.error}
            insert(
                db,
                "media_assets",
                {
                    "id": a.id,
                    "listing_identity_id": a.listing,
                    "asset_type": a.asset_type,
                    "sequence": a.sequence,
                    "status": a.status,
                    "s3_key_raw": a.raw_key,
                    "s3_key_processed": a.processed_key if processed else None,
                    "metadata": json.dumps(meta),
                },
            )
    exports: dict[str, Any] = {}
    for job_id, plan in enumerate(sorted(w.plans, key=lambda p: p.created), start=100):
        row = plan.render(job_id, plan)
        insert(db, "media_processing_jobs", row)
        if plan.exports is not None:
            exports |= plan.exports(row, plan)
    return exports


# --- AWS CLI exports of the world (written next to the source, imported through import_aws) -----

VIDEO_LAMBDA = "listing-media-video_thumbnails-staging"


def _epochless(dt: datetime) -> str:
    """Timestamps as `aws stepfunctions` prints them (ISO 8601 with microseconds and offset)."""
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


def video_lambda_fixed(bundled: dict[str, Any]) -> dict[str, Any]:
    """The video-thumbnail function after the incident's fix (ffmpeg layer + FFMPEG_PATH, 16:12):
    what `aws lambda get-function-configuration` prints for every job after 2026-01-05."""
    return {
        **bundled,
        "LastModified": "2026-01-05T16:12:08.914+0000",
        "CodeSha256": "m3Yh1T0tB8yq0cVJ9s0pXb8nJrWb5b2mG4rTq3k6Z1E=",
        "RevisionId": "9a1d2c4e-6f70-4b3a-8c5d-2e1f0a9b8c7d",
        "Role": "arn:aws:iam::123456789012:role/toq-media-processing-lambdas-staging",
        "Environment": {"Variables": {"FFMPEG_PATH": "/opt/bin/ffmpeg", "MEDIA_BUCKET": "toq-listing-medias"}},
        "Layers": [
            {
                "Arn": "arn:aws:lambda:us-east-1:123456789012:layer:ffmpeg-static:3",
                "CodeSize": 28734112,
            }
        ],
    }


def transcode_exports(row: dict[str, Any], plan: Plan, mc_id: str, rng: random.Random) -> dict[str, Any]:
    """describe-execution + get-execution-history of a SUCCEEDED processing execution whose
    ProcessVideos submitted a MediaConvert job, and that job's get-job with Status ERROR (FM-17)."""
    arn = row["external_id"]
    name = arn.rsplit(":", 1)[1]
    start = datetime.strptime(row["started_at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assets = [{"key": a.raw_key, "type": a.asset_type} for a in plan.assets]
    videos = [a for a in plan.assets if a.is_video]
    images = [a for a in plan.assets if not a.is_video]
    video = videos[0]
    base = {"jobId": row["id"], "listingIdentityId": plan.listing.id, "assets": assets, "traceparent": ""}
    validated = {
        **base,
        "executionArn": arn,
        "startedAt": _iso_ms(start),
        "assets": [
            {**x, "sourceKey": x["key"], "size": a.size, "etag": f'"{rng.getrandbits(128):032x}"'}
            for x, a in zip(assets, plan.assets, strict=True)
        ],
        "imageAssets": [{"key": a.raw_key, "type": a.asset_type} for a in images],
        "videoAssets": [{"key": a.raw_key, "type": a.asset_type} for a in videos],
        "hasImages": bool(images),
        "hasVideos": True,
        "videoInput": f"s3://toq-listing-medias/{video.raw_key}",
        "videoOutputPath": f"s3://toq-listing-medias/{plan.listing.id}/processed/video/{video.orientation}/original/",
    }
    mc_arn = f"arn:aws:mediaconvert:us-east-1:123456789012:jobs/{mc_id}"
    branch_image = {
        "body": {
            "status": "SUCCESS",
            "generatedAssets": [
                {"key": a.derivative(s), "type": a.asset_type, "sourceKey": a.raw_key}
                for a in images
                for s in PHOTO_SIZES
            ],
            "errors": [],
        }
    }
    branch_video = {
        "body": {
            "status": "SUCCESS",
            "generatedAssets": [
                {"key": video.derivative("thumbnail"), "type": "VIDEO_THUMBNAIL", "sourceKey": video.raw_key}
            ],
            "errors": [],
        }
    }
    created_job = {"Job": {"Id": mc_id, "Arn": mc_arn, "Status": "SUBMITTED", "Role": _MC_ROLE, "Queue": _MC_QUEUE}}
    callback = json.loads(row["callback_body"])
    events: list[dict[str, Any]] = []
    t = start

    def ev(kind: str, prev: int, details_key: str | None = None, details: Any = None, ms: int = 5) -> int:
        nonlocal t
        t += timedelta(milliseconds=ms)
        event: dict[str, Any] = {
            "timestamp": _epochless(t),
            "type": kind,
            "id": len(events) + 1,
            "previousEventId": prev,
        }
        if details_key:
            event[details_key] = details
        events.append(event)
        return len(events)

    def io(value: Any, key: str = "input") -> dict[str, Any]:
        return {key: json.dumps(value, separators=(",", ":")), f"{key}Details": {"truncated": False}}

    def lambda_task(state: str, prev: int, function: str, given: Any, output: Any, ms: int) -> int:
        entered = ev("TaskStateEntered", prev, "stateEnteredEventDetails", {"name": state, **io(given)})
        res = f"arn:aws:lambda:us-east-1:123456789012:function:listing-media-{function}-staging"
        sched = ev(
            "LambdaFunctionScheduled",
            entered,
            "lambdaFunctionScheduledEventDetails",
            {"resource": res, **io(given), "timeoutInSeconds": 300},
        )
        started = ev("LambdaFunctionStarted", sched)
        done = ev("LambdaFunctionSucceeded", started, "lambdaFunctionSucceededEventDetails", io(output, "output"), ms)
        return ev("TaskStateExited", done, "stateExitedEventDetails", {"name": state, **io(output, "output")})

    first = ev("ExecutionStarted", 0, "executionStartedEventDetails", {**io(base), "roleArn": _SFN_ROLE}, 0)
    after_validate = lambda_task("ValidateRawAssets", first, "validate", base, validated, 420)
    state = {**base, "validation": validated}
    par = ev(
        "ParallelStateEntered", after_validate, "stateEnteredEventDetails", {"name": "ParallelProcessing", **io(state)}
    )
    par_started = ev("ParallelStateStarted", par)
    img_exit = lambda_task("GenerateThumbnails", par_started, "thumbnails", state, branch_image, 3900)
    vid_exit = lambda_task("GenerateVideoThumbnails", par_started, "video_thumbnails", state, branch_video, 6100)
    pv = ev("TaskStateEntered", par_started, "stateEnteredEventDetails", {"name": "ProcessVideos", **io(state)})
    sched = ev(
        "TaskScheduled",
        pv,
        "taskScheduledEventDetails",
        {
            "resourceType": "mediaconvert",
            "resource": "createJob",
            "region": "us-east-1",
            "parameters": json.dumps({"Role": _MC_ROLE}),
        },
    )
    task_started = ev(
        "TaskStarted", sched, "taskStartedEventDetails", {"resourceType": "mediaconvert", "resource": "createJob"}
    )
    ok = ev(
        "TaskSucceeded",
        task_started,
        "taskSucceededEventDetails",
        {"resourceType": "mediaconvert", "resource": "createJob", **io(created_job, "output")},
        640,
    )
    mc_exit = ev(
        "TaskStateExited", ok, "stateExitedEventDetails", {"name": "ProcessVideos", **io(created_job, "output")}
    )
    results = [branch_image, branch_video, created_job]
    ev("ParallelStateSucceeded", max(img_exit, vid_exit, mc_exit))
    par_exit = ev(
        "ParallelStateExited",
        len(events),
        "stateExitedEventDetails",
        {"name": "ParallelProcessing", **io({**state, "parallelResults": results}, "output")},
    )
    consolidated = {"body": callback}
    cons_exit = lambda_task(
        "ConsolidateResults", par_exit, "consolidate", {**state, "parallelResults": results}, consolidated, 60
    )
    cb_exit = lambda_task(
        "FinalizeAndCallback", cons_exit, "callback-dispatch", {"statusCode": 200, **consolidated}, None, 180
    )
    succeed = ev(
        "SucceedStateEntered", cb_exit, "stateEnteredEventDetails", {"name": "ProcessingSucceeded", **io(None)}
    )
    exited = ev(
        "SucceedStateExited",
        succeed,
        "stateExitedEventDetails",
        {"name": "ProcessingSucceeded", **io(None, "output")},
        0,
    )
    ev("ExecutionSucceeded", exited, "executionSucceededEventDetails", io(None, "output"))
    describe = {
        "executionArn": arn,
        "stateMachineArn": SM.replace(":execution:", ":stateMachine:").rstrip(":"),
        "name": name,
        "status": "SUCCEEDED",
        "startDate": _epochless(start),
        "stopDate": events[-1]["timestamp"],
        "input": json.dumps(base, separators=(",", ":")),
        "inputDetails": {"included": True},
        "output": "null",
        "outputDetails": {"included": True},
        "redriveCount": 0,
        "redriveStatus": "NOT_REDRIVABLE",
        "redriveStatusReason": "Execution is SUCCEEDED and cannot be redriven",
    }
    submitted = start + timedelta(seconds=1)
    get_job = {
        "Job": {
            "AccelerationStatus": "NOT_APPLICABLE",
            "Arn": mc_arn,
            "BillingTagsSource": "JOB",
            "CreatedAt": submitted.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
            "ErrorCode": 1030,
            "ErrorMessage": "Video codec [hevc] with profile [main10] is not supported in the input. "
            f"Input: s3://toq-listing-medias/{video.raw_key}",
            "Id": mc_id,
            "Messages": {"Info": [], "Warning": []},
            "Priority": 0,
            "Queue": _MC_QUEUE,
            "RetryCount": 0,
            "Role": _MC_ROLE,
            "Settings": {
                "Inputs": [{"FileInput": f"s3://toq-listing-medias/{video.raw_key}"}],
                "OutputGroups": [
                    {
                        "OutputGroupSettings": {
                            "Type": "FILE_GROUP_SETTINGS",
                            "FileGroupSettings": {"Destination": validated["videoOutputPath"]},
                        }
                    }
                ],
            },
            "SimulateReservedQueue": "DISABLED",
            "Status": "ERROR",
            "StatusUpdateInterval": "SECONDS_60",
            "Timing": {
                "FinishTime": (submitted + timedelta(seconds=9)).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                "StartTime": (submitted + timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                "SubmitTime": submitted.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
            },
            "UserMetadata": {},
        }
    }
    return {
        f"stepfunctions/{name}.describe-execution.json": describe,
        f"stepfunctions/{name}.get-execution-history.json": {"events": events},
        f"mediaconvert/{mc_id}.get-job.json": get_job,
    }


_MC_ROLE = "arn:aws:iam::123456789012:role/toq-media-processing-mediaconvert-staging"
_MC_QUEUE = "arn:aws:mediaconvert:us-east-1:123456789012:queues/Default"
_SFN_ROLE = "arn:aws:iam::123456789012:role/toq-media-processing-sfn-staging"
