"""Request and response bodies of the REST API (pydantic models, with OpenAPI examples)."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

MAX_SEED = 2**63 - 1

_PNG_EXAMPLE = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==")


class ContentItem(BaseModel):
    """One generated content file."""

    index: int = Field(..., ge=0, description="Position of the sample in the request (0-based).",
                       examples=[0])
    filename: str = Field(..., description="File name the modality's writer gave it.",
                          examples=["seed7-sample-000000.png"])
    media_type: str = Field(..., description="HTTP media type of the content.", examples=["image/png"])
    sha256: str = Field(..., description="SHA-256 hex digest of the content bytes.",
                        examples=["4f1b0c7d6a0f3f4b0f8f3b6d4f3a2c1b0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b"])
    size: int = Field(..., ge=0, description="Size of the content in bytes.", examples=[71])
    data_base64: Optional[str] = Field(None, description="The content, base64-encoded (binary media, not stored).",
                                       examples=[_PNG_EXAMPLE])
    text: Optional[str] = Field(None, description="The content as a string (text media, not stored).",
                                examples=[None])
    texts: Optional[list[str]] = Field(None, description="The lines of ``text``: one sample each for the text "
                                                         "modality, whose files hold one sample per line.",
                                       examples=[None])
    id: Optional[str] = Field(None, description="Content id in the content repository (store: true).",
                              examples=[None])
    url: Optional[str] = Field(None, description="Where to fetch stored content (store: true).",
                               examples=[None])


class BatchInfo(BaseModel):
    """How the request was computed."""

    requests: int = Field(..., ge=1, description="Requests that shared the generator call.", examples=[4])
    samples: int = Field(..., ge=1, description="Samples in that generator call.", examples=[4])
    generate_ms: float = Field(..., ge=0, description="Milliseconds the generator call took.", examples=[3.2])


class GenerateResponse(BaseModel):
    """Content generated for one request."""

    model: str = Field(..., examples=["digits"])
    modality: str = Field(..., examples=["image"])
    checkpoint: str = Field(..., examples=["step-00000400"])
    seed: int = Field(..., ge=0, le=MAX_SEED, description="The seed used (chosen by the server when absent).",
                      examples=[7])
    n: int = Field(..., ge=1, examples=[1])
    format: Optional[str] = Field(None, examples=["png"])
    stored: bool = Field(..., description="Whether the items were registered in the content repository.",
                         examples=[False])
    items: list[ContentItem]
    batch: BatchInfo

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "model": "digits", "modality": "image", "checkpoint": "step-00000400", "seed": 7, "n": 1,
        "format": "png", "stored": False,
        "items": [{"index": 0, "filename": "seed7-sample-000000.png", "media_type": "image/png",
                   "sha256": "4f1b0c7d6a0f3f4b0f8f3b6d4f3a2c1b0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b",
                   "size": 71, "data_base64": _PNG_EXAMPLE, "text": None, "texts": None, "id": None,
                   "url": None}],
        "batch": {"requests": 4, "samples": 4, "generate_ms": 3.2},
    }]}, protected_namespaces=())


def generate_request_model(max_n: int) -> type[BaseModel]:
    """The ``POST /v1/models/{name}/generate`` body, with the server's ``max_n`` in its schema."""
    return create_model(
        "GenerateRequest",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [
            {"n": 4, "seed": 7}, {"n": 1, "seed": 0, "format": "png", "store": True}]}),
        __doc__="What to generate.",
        n=(int, Field(1, ge=1, le=max_n, description=f"Number of samples (1 to {max_n}).", examples=[4])),
        seed=(Optional[int], Field(None, ge=0, le=MAX_SEED,
                                   description="Seed; the same model, checkpoint and seed give the same content. "
                                               "Chosen at random (and returned) when absent.", examples=[7])),
        format=(Optional[str], Field(None, min_length=1, max_length=16, pattern=r"^[A-Za-z0-9]+$",
                                     description="Content format, one of the model's 'formats' "
                                                 "(default: the first).", examples=["png"])),
        store=(bool, Field(False, description="Register the content in the content repository and return ids "
                                              "instead of inline data.", examples=[False])),
    )


class ModelInfo(BaseModel):
    """A served model."""

    name: str = Field(..., examples=["digits"])
    status: str = Field(..., description="loading, ready or failed.", examples=["ready"])
    run: str = Field(..., description="Run directory.", examples=["runs/digits"])
    error: Optional[str] = Field(None, description="Why loading failed.", examples=[None])
    modality: Optional[str] = Field(None, examples=["image"])
    plugin: Optional[str] = Field(None, description="Model name (--plugin).", examples=["dcgan"])
    plugin_package: Optional[str] = Field(None, description="Plugin that registered the model.",
                                          examples=["image (cgan 0.1.0)"])
    dataset: Optional[str] = Field(None, examples=["digits"])
    checkpoint: Optional[str] = Field(None, examples=["step-00000400"])
    checkpoint_step: Optional[int] = Field(None, examples=[400])
    ema: Optional[bool] = Field(None, description="Whether EMA generator weights are served.", examples=[True])
    formats: list[str] = Field(default_factory=list, examples=[["png"]])
    batching: Optional[bool] = Field(None, description="Whether concurrent requests share generator calls.",
                                     examples=[True])
    batching_note: Optional[str] = Field(None, examples=["latents are concatenated; outputs are bit-identical "
                                                         "to single requests"])
    config: Optional[dict[str, Any]] = Field(None, description="Summary of the run's frozen config.",
                                             examples=[{"model": {"latent_dim": 100, "base_channels": 64},
                                                        "data": {"resolution": 32, "channels": 1}}])

    model_config = ConfigDict(protected_namespaces=())


class ModelList(BaseModel):
    """Every served model."""

    models: list[ModelInfo]
    max_n: int = Field(..., description="Largest n one request may ask for.", examples=[64])


class Health(BaseModel):
    """Liveness."""

    status: str = Field(..., examples=["ok"])


class Readiness(BaseModel):
    """Readiness: whether the models are loaded."""

    status: str = Field(..., description="ready, loading or failed.", examples=["ready"])
    models: dict[str, str] = Field(..., description="Model name -> status.", examples=[{"digits": "ready"}])


class ErrorResponse(BaseModel):
    """An error with one line saying what was wrong."""

    detail: str = Field(..., examples=["unknown model 'digitz'; served: digits"])


class ValidationIssue(BaseModel):
    """One invalid part of a request."""

    loc: list[Any] = Field(..., examples=[["body", "n"]])
    msg: str = Field(..., examples=["Input should be less than or equal to 64"])
    type: str = Field(..., examples=["less_than_equal"])


class ValidationErrorResponse(BaseModel):
    """Invalid input: one line in ``message``, each problem in ``detail``."""

    message: str = Field(..., examples=["body.n: Input should be less than or equal to 64"])
    detail: list[ValidationIssue]
