"""Every result says it was made by AI, in a way a machine can check (the EU AI Act's Article
50): signed Content Credentials (C2PA) naming the model, with the picture an edit, upscale or
animation started from as its ingredient; and, in pictures, the IPTC digital source type in XMP.

The signing certificate and key come from the environment (core.signing). Nothing of the
person goes in: the ingredient is the picture the job started from (already stripped of its
metadata when uploaded), named by a neutral title and without a thumbnail.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import c2pa
from django.conf import settings
from django.core.files.storage import default_storage

from core.signing import dev_signing_credentials, pem_value, private_key, signing_algorithm
from generation.models import AIModel, Job, Kind

# IPTC's digital source types (cv.iptc.org/newscodes/digitalsourcetype): made by a trained
# model, or a capture (a photo) combined with what one made.
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = (
    "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
)
GENERATOR = "Dream Pixel"
# The result itself is the picture: no thumbnails in the manifest (smaller files, and no copy of
# a person's photo inside the result they may share).
_BUILDER_SETTINGS = {"builder": {"thumbnail": {"enabled": False}}}


class SigningFailed(Exception):
    """The result could not be signed (a broken certificate or an unsupported file)."""


@dataclass(frozen=True)
class Provenance:
    """What a result's Content Credentials say about it."""

    model: str  # the catalog's name, as people saw it
    model_ref: str  # the provider's model ("black-forest-labs/flux-schnell"), or "preview renderer"
    # "c2pa.created" (from a prompt) or "c2pa.edited" (from a picture: edit, upscale, animation)
    action: str = "c2pa.created"
    source: bytes = b""  # the picture it started from
    source_type: str = ""  # its MIME type

    @property
    def digital_source_type(self) -> str:
        # An upscale or an animation of a picture is still all the model's pixels; an edit
        # mixes a photo with them.
        return COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA if self.source and self.is_edit else TRAINED_ALGORITHMIC_MEDIA

    @property
    def is_edit(self) -> bool:
        return self.action == "c2pa.edited"


def job_provenance(job: Job) -> Provenance:
    """The provenance of a job's results; reads the picture it started from (storage I/O)."""
    model = job.model
    model_ref = model.provider_ref if model.provider == AIModel.Provider.REPLICATE else "Dream Pixel preview renderer"
    upload = job.source
    if upload is None or not upload.file:
        return Provenance(model=model.name, model_ref=model_ref)
    with default_storage.open(upload.file.name) as file:
        source = file.read()
    action = _FROM_A_PICTURE.get(Kind(job.kind), "c2pa.edited")
    return Provenance(
        model=model.name, model_ref=model_ref, action=action, source=source, source_type=upload.content_type
    )


# What an upscale or animation did to its picture, in C2PA's words.
_FROM_A_PICTURE = {Kind.UPSCALE: "c2pa.resized", Kind.ANIMATE: "c2pa.edited"}


def xmp_packet(digital_source_type: str = TRAINED_ALGORITHMIC_MEDIA) -> bytes:
    """An XMP packet with the IPTC digital source type: what photo tools and search engines read."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
        ' xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        f' Iptc4xmpExt:DigitalSourceType="{digital_source_type}" xmp:CreatorTool="{GENERATOR}"/>'
        '</rdf:RDF></x:xmpmeta><?xpacket end="r"?>'
    ).encode()


def _manifest(provenance: Provenance, content_type: str) -> dict:
    agent = {"name": provenance.model, "identifier": provenance.model_ref}
    made = {
        "action": provenance.action,
        "digitalSourceType": provenance.digital_source_type,
        "softwareAgent": agent,
        "description": "Made by AI with Dream Pixel",
    }
    actions = [made]
    if provenance.source:
        # C2PA: a manifest with a parent ingredient starts by opening it.
        actions = [{"action": "c2pa.opened", "parameters": {"ingredientIds": ["source"]}}, made]
    return {
        "claim_generator_info": [{"name": GENERATOR}],
        "title": f"Dream Pixel result.{content_type.rsplit('/', 1)[-1]}",
        "format": content_type,
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": actions}}],
    }


def _credentials() -> tuple[bytes, bytes]:
    if settings.C2PA_SIGNING_CERT and settings.C2PA_SIGNING_KEY:
        return (
            pem_value(settings.C2PA_SIGNING_CERT, name="C2PA_SIGNING_CERT"),
            pem_value(settings.C2PA_SIGNING_KEY, name="C2PA_SIGNING_KEY"),
        )
    # Settings refuse to start production without a pair: this is development's.
    chain, key, _root = dev_signing_credentials()
    return chain, key


def _signer() -> c2pa.Signer:
    chain, key_pem = _credentials()
    algorithm = signing_algorithm(private_key(key_pem, name="C2PA_SIGNING_KEY"))
    info = c2pa.C2paSignerInfo(algorithm, chain, key_pem, settings.C2PA_TIMESTAMP_URL or None)
    return c2pa.Signer.from_info(info)


def content_credentials_sign(data: bytes, *, content_type: str, provenance: Provenance) -> bytes:
    """The file with its Content Credentials embedded (a PNG chunk, a JPEG APP11 segment, an MP4
    box, ...); the picture or video itself is unchanged."""
    try:
        context = c2pa.Context(settings=c2pa.Settings.from_dict(_BUILDER_SETTINGS))
        with c2pa.Builder(_manifest(provenance, content_type), context=context) as builder:
            if provenance.source:
                ingredient = {"title": "The picture it started from", "relationship": "parentOf", "label": "source"}
                builder.add_ingredient(ingredient, provenance.source_type, io.BytesIO(provenance.source))
            signed = io.BytesIO()
            with _signer() as signer:
                builder.sign(signer, content_type, io.BytesIO(data), signed)
    except c2pa.C2paError as error:
        raise SigningFailed(f"Content Credentials could not be signed: {error}") from error
    return signed.getvalue()


def content_credentials_read(data: bytes, *, content_type: str, trust_anchors: bytes = b"") -> dict | None:
    """The active manifest and its validation state ("Valid", or "Trusted" when the signing
    chain leads to one of `trust_anchors`), or None when the file carries none."""
    config: dict = {"verify": {"verify_trust": bool(trust_anchors)}}
    if trust_anchors:
        config["trust"] = {"trust_anchors": trust_anchors.decode()}
    context = c2pa.Context(settings=c2pa.Settings.from_dict(config))
    reader = c2pa.Reader.try_create(content_type, io.BytesIO(data), context=context)
    if reader is None:
        return None
    with reader:
        manifest = reader.get_active_manifest() or {}
        return {
            "manifest": manifest,
            "state": reader.get_validation_state(),
            "report": json.loads(reader.json()),
        }
