"""The FastAPI application of ``cgan serve``: routes, errors, access control and limits.

:func:`create_app` builds the app from :class:`~cgan_core.serve.settings.ServeSettings`;
:func:`create_app_from_env` is the factory uvicorn worker processes call.
"""


import asyncio
import base64
import logging
import secrets
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Optional

from fastapi import Body, Depends, FastAPI, HTTPException, Path, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from cgan_core.serve.auth import ApiKeys
from cgan_core.serve.gallery import render_gallery
from cgan_core.serve.generation import GenerationJob, GenerationResult, is_text_media
from cgan_core.serve.limits import BodySizeLimit
from cgan_core.serve.pool import FAILED, LOADING, ModelPool, ServedModel
from cgan_core.serve.schemas import (
    ErrorResponse,
    GenerateResponse,
    Health,
    ModelInfo,
    ModelList,
    Readiness,
    ValidationErrorResponse,
    generate_request_model,
)
from cgan_core.serve.settings import ServeSettings
from cgan_core.serve.storage import ContentBackend, StoredItem, within
from cgan_core.version import __version__

log = logging.getLogger("cgan.serve")

DESCRIPTION = """Generate content from trained cgan runs.

* `POST /v1/models/{name}/generate` returns PNG/MP4/WAV content base64-encoded, text as strings,
  or, with `store: true`, ids of content registered in the content repository.
* The same model, checkpoint and seed always give the same content, whether or not the request
  shared a generator call with others (request batching).
* When the server has API keys, send `Authorization: Bearer KEY`; `/healthz` and `/readyz` are open.
"""

_401 = {"model": ErrorResponse, "description": "Missing or invalid API key."}
_404 = {"model": ErrorResponse, "description": "Unknown model or content id."}
_413 = {"model": ErrorResponse, "description": "Request body too large."}
_422 = {"model": ValidationErrorResponse, "description": "Invalid input."}
_503 = {"model": ErrorResponse, "description": "The model is still loading, failed to load, or the content "
                                              "repository is unavailable."}
_504 = {"model": ErrorResponse, "description": "No result within the per-request timeout."}


def _json_error(model: type, description: str) -> dict[str, Any]:
    """An error response documented as JSON on a route whose success is not JSON (the gallery);
    the component is registered by the JSON routes that use ``model`` directly."""
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}


def _invalid(field: str, message: str) -> JSONResponse:
    """A 422 shaped like a validation error, for checks made after parsing."""
    issue = {"loc": ["body", field], "msg": message, "type": "value_error"}
    return JSONResponse(status_code=422, content={"message": f"body.{field}: {message}", "detail": [issue]})


def _content_items(result: GenerationResult, stored: Optional[list[StoredItem]]) -> list[dict[str, Any]]:
    """The ``items`` of a :class:`GenerateResponse`, as plain JSON values."""
    items = []
    for index, file in enumerate(result.files):
        item: dict[str, Any] = {"index": index, "filename": file.name, "media_type": file.media_type,
                                "sha256": file.sha256, "size": len(file.data), "data_base64": None, "text": None,
                                "texts": None, "id": None, "url": None}
        if stored is not None:
            item["id"] = stored[index].id
            item["url"] = f"/v1/content/{stored[index].id}"
        elif is_text_media(file.media_type):
            item["text"] = file.data.decode("utf-8", errors="replace")
            item["texts"] = item["text"].splitlines()  # text writers put one sample per line
        else:
            item["data_base64"] = base64.b64encode(file.data).decode("ascii")
        items.append(item)
    return items


def create_app(settings: ServeSettings, pool: Optional[ModelPool] = None, keys: Optional[ApiKeys] = None,
               backend: Optional[ContentBackend] = None, open_store: bool = True) -> FastAPI:
    """Build the REST app.

    Args:
        settings: Runs, limits, batching and access control.
        pool: The served models (default: a new pool over ``settings.runs``, loaded at startup).
        keys: Accepted API keys (default: ``$CGAN_API_KEYS`` and ``settings.api_keys_file``).
        backend: The content repository (default: opened from ``settings`` at startup).
        open_store: Open the content repository at startup when ``backend`` is not given.
    """
    pool = pool or ModelPool(settings)
    keys = keys if keys is not None else ApiKeys.load(settings.api_keys_file)
    state: dict[str, Any] = {"backend": backend, "backend_error": None if backend else "not opened yet",
                             "owned": False}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool.start_loading()
        if state["backend"] is None and open_store:
            from cgan_core.serve.storage import open_backend

            try:
                state["backend"] = await run_in_threadpool(open_backend, settings)
                state["backend_error"], state["owned"] = None, True
            except Exception as exc:  # generation still works; store/content/gallery say why not
                state["backend_error"] = f"{type(exc).__name__}: {exc}"
                log.warning("content repository unavailable: %s", state["backend_error"])
        yield
        await pool.close()
        if state["owned"]:
            state["backend"].close()

    query_names: dict[tuple[str, str], set[str]] = {}

    async def reject_unknown_query(request: Request) -> None:
        """A misspelt query parameter is an error, not silently ignored."""
        route = request.scope.get("route")
        if not query_names:
            for path, methods in app.openapi()["paths"].items():
                for method, operation in methods.items():
                    query_names[(path, method)] = {p["name"] for p in operation.get("parameters", [])
                                                   if p.get("in") == "query"}
        allowed = query_names.get((getattr(route, "path_format", ""), request.method.lower()))
        unknown = sorted(set(request.query_params) - allowed) if allowed is not None else []
        if unknown:
            valid = ", ".join(sorted(allowed)) or "none"
            raise RequestValidationError([{"loc": ("query", unknown[0]), "type": "extra_forbidden",
                                           "msg": f"unknown query parameter; valid: {valid}"}])

    app = FastAPI(title="cgan", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  dependencies=[Depends(reject_unknown_query)],
                  openapi_tags=[{"name": "generation", "description": "Models and content generation."},
                                {"name": "content", "description": "Stored content and the gallery."},
                                {"name": "health", "description": "Liveness and readiness (always open)."}])
    app.state.pool = pool
    app.state.settings = settings
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)

    bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer KEY`.")

    async def require_key(credentials: Optional[HTTPAuthorizationCredentials] = Security(bearer)) -> None:
        if not keys.verify(credentials.credentials if credentials else None):
            raise HTTPException(401, "missing or invalid API key; send 'Authorization: Bearer KEY'",
                                headers={"WWW-Authenticate": "Bearer"})

    protected = [Depends(require_key)] if keys.enabled else []
    browsable = [] if settings.public_gallery else protected
    auth_responses: dict[int | str, Any] = {401: _401} if keys.enabled else {}
    browse_responses: dict[int | str, Any] = {} if settings.public_gallery else auth_responses

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        issues = [{"loc": [part if isinstance(part, (int, str)) else str(part) for part in e.get("loc", ())],
                   "msg": str(e.get("msg", "invalid")), "type": str(e.get("type", "value_error"))}
                  for e in exc.errors()]
        message = "; ".join(f"{'.'.join(map(str, i['loc']))}: {i['msg']}" for i in issues) or "invalid request"
        return JSONResponse(status_code=422, content={"message": message, "detail": issues})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Any:
        if exc.status_code == 400:  # FastAPI's "error parsing the body" (e.g. not UTF-8) is invalid input
            issue = {"loc": ["body"], "msg": "the request body is not valid UTF-8 JSON", "type": "json_invalid"}
            return JSONResponse(status_code=422, content={"message": f"body: {issue['msg']}", "detail": [issue]})
        return await http_exception_handler(request, exc)

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed", exc_info=exc)
        return JSONResponse(status_code=500, content={"detail": f"internal error: {type(exc).__name__}: {exc}"})

    def served_model(name: str) -> ServedModel:
        model = pool.get(name)
        if model is None:
            served = ", ".join(sorted(pool.models)) or "(none)"
            raise HTTPException(404, f"unknown model '{name}'; served: {served}")
        if model.status == LOADING:
            raise HTTPException(503, f"model '{name}' is still loading; retry shortly", headers={"Retry-After": "2"})
        if model.status == FAILED:
            raise HTTPException(503, f"model '{name}' failed to load: {model.error}")
        return model

    def content_backend() -> ContentBackend:
        if state["backend"] is None:
            raise HTTPException(503, f"the content repository is unavailable: {state['backend_error']}")
        return state["backend"]

    # --- health -----------------------------------------------------------------------------
    @app.get("/healthz", response_model=Health, tags=["health"], summary="Liveness")
    async def healthz() -> Health:
        """Always 200 while the process serves requests."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Readiness, tags=["health"], summary="Readiness",
             responses={503: {"model": Readiness, "description": "Models are still loading or none loaded."}})
    async def readyz() -> Any:
        """200 once every model finished loading and at least one is ready, 503 before."""
        statuses = {name: model.status for name, model in pool.models.items()}
        if pool.ready:
            return Readiness(status="ready", models=statuses)
        overall = "loading" if LOADING in statuses.values() else "failed"
        return JSONResponse(status_code=503, content={"status": overall, "models": statuses})

    # --- models -----------------------------------------------------------------------------
    @app.get("/v1/models", response_model=ModelList, tags=["generation"], summary="List served models",
             dependencies=protected, responses=auth_responses)
    async def list_models() -> ModelList:
        """Name, modality, plugin, checkpoint, formats, batching and a config summary of each model."""
        return ModelList(models=[ModelInfo(**model.describe()) for model in pool.models.values()],
                         max_n=settings.max_n)

    @app.get("/v1/models/{name}", response_model=ModelInfo, tags=["generation"], summary="Describe a model",
             dependencies=protected, responses={**auth_responses, 404: _404})
    async def describe_model(name: str = Path(..., description="A served model name.", examples=["digits"])) -> ModelInfo:
        """What ``/v1/models`` says about one model."""
        model = pool.get(name)
        if model is None:
            raise HTTPException(404, f"unknown model '{name}'; served: {', '.join(sorted(pool.models)) or '(none)'}")
        return ModelInfo(**model.describe())

    GenerateRequest = generate_request_model(settings.max_n)

    @app.post("/v1/models/{name}/generate", response_model=GenerateResponse, tags=["generation"],
              summary="Generate content", dependencies=protected,
              responses={**auth_responses, 404: _404, 413: _413, 422: _422, 503: _503, 504: _504})
    async def generate(
        name: str = Path(..., description="A served model name.", examples=["digits"]),
        request: GenerateRequest = Body(..., openapi_examples={  # type: ignore[valid-type]
            "inline": {"summary": "4 samples, inline", "value": {"n": 4, "seed": 7}},
            "stored": {"summary": "store in the content repository", "value": {"n": 2, "seed": 1, "store": True}},
        }),
    ) -> Any:
        """Generate ``n`` samples; inline (base64 or text) or, with ``store: true``, as content ids."""
        model = served_model(name)
        fmt = request.format.lower() if request.format else (model.formats[0] if model.formats else None)
        if request.format and fmt not in model.formats:
            return _invalid("format", f"format '{request.format}' is not written by modality "
                                      f"'{model.describe().get('modality')}'; valid: {', '.join(model.formats)}")
        backend = content_backend() if request.store else None
        seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
        try:
            result = await asyncio.wait_for(model.generate(GenerationJob(request.n, seed, fmt)),
                                            settings.request_timeout_s)
        except asyncio.TimeoutError:
            raise HTTPException(504, f"no result within the per-request timeout of {settings.request_timeout_s:g} s; "
                                     "ask for fewer samples or retry") from None
        stored = None
        if backend is not None:
            stored = await run_in_threadpool(backend.store, model, seed, request.n, fmt, result.files)
        # Built as plain JSON (the documented GenerateResponse shape): validating our own output
        # again would cost more than generating a small sample.
        return JSONResponse({
            "model": name, "modality": model.loaded.resolved.config.modality, "checkpoint": model.loaded.checkpoint,
            "seed": seed, "n": request.n, "format": fmt, "stored": stored is not None,
            "items": _content_items(result, stored),
            "batch": {"requests": result.batch_requests, "samples": max(1, result.batch_samples),
                      "generate_ms": round(result.generate_ms, 3)},
        })

    # --- content ----------------------------------------------------------------------------
    @app.get("/v1/content/{content_id}", tags=["content"], summary="Fetch stored content",
             dependencies=browsable, response_class=FileResponse,
             responses={**browse_responses, 404: _404, 422: _422, 503: _503,
                        200: {"description": "The content file, with its media type.",
                              "content": {"image/png": {}, "video/mp4": {}, "audio/wav": {},
                                          "text/plain": {}, "application/octet-stream": {}}}})
    async def content(content_id: str = Path(..., pattern=r"^[0-9]{1,18}$", description="A content id.",
                                             examples=["1"])) -> FileResponse:
        """The stored file; only files inside the content directory are ever served."""
        backend = content_backend()
        item = await run_in_threadpool(backend.get, str(content_id))
        if item is None:
            raise HTTPException(404, f"no content with id {content_id}")
        path = item.path.resolve()
        if not within(path, backend.roots) or not path.is_file():
            # a database row pointing elsewhere is never followed (rows can be edited by others)
            log.warning("content %s points outside the content directory or is missing: %s", content_id, path)
            raise HTTPException(404, f"content {content_id} is not available")
        return FileResponse(path, media_type=item.media_type)

    @app.get("/gallery", response_class=HTMLResponse, tags=["content"], summary="Gallery of stored content",
             dependencies=browsable,
             responses={**{code: _json_error(ErrorResponse, r["description"]) for code, r in browse_responses.items()},
                        404: _json_error(ErrorResponse, _404["description"]),
                        422: _json_error(ValidationErrorResponse, _422["description"])})
    async def gallery(
        model: Optional[str] = Query(None, description="Show only this model.", examples=["digits"]),
        limit: int = Query(settings.gallery_limit, ge=1, le=1000, description="Items per model."),
    ) -> HTMLResponse:
        """An HTML page: images in a grid, text as a list, videos and audio as players."""
        chosen = list(pool.models.values())
        if model is not None:
            if model not in pool.models:
                raise HTTPException(404, f"unknown model '{model}'; served: {', '.join(sorted(pool.models))}")
            chosen = [pool.models[model]]
        backend = state["backend"]

        def collect() -> list[tuple[ServedModel, list[StoredItem]]]:
            return [(m, backend.recent(m, limit) if backend is not None and m.loaded is not None else [])
                    for m in chosen]

        pairs = await run_in_threadpool(collect)
        note = None if backend is not None else f"content repository unavailable: {state['backend_error']}"
        return HTMLResponse(render_gallery(pairs, lambda item: f"/v1/content/{item.id}", note))

    return app


def create_app_from_env() -> FastAPI:
    """The app factory for uvicorn worker processes (settings from ``$CGAN_SERVE_SETTINGS``)."""
    return create_app(ServeSettings.from_env())
