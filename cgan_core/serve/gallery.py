"""The ``/gallery`` page: stored content per served model (image grid, text list, players)."""

from __future__ import annotations

import html
from pathlib import Path
from string import Template
from typing import Any, Iterable, Optional

from cgan_core.serve.storage import StoredItem

_TEMPLATE = Template((Path(__file__).with_name("gallery.html")).read_text(encoding="utf-8"))
MAX_TEXT_CHARS = 2000


def _caption(item: StoredItem) -> str:
    parts = [f"#{item.id}"]
    if item.seed is not None:
        parts.append(f"seed {item.seed}")
    if item.sample_index is not None:
        parts.append(f"[{item.sample_index}]")
    return html.escape(" ".join(parts))


def _read_text(item: StoredItem) -> str:
    try:
        text = item.path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(file missing)"
    return text[:MAX_TEXT_CHARS] + ("…" if len(text) > MAX_TEXT_CHARS else "")


def _items_html(items: list[StoredItem], url_of: Any) -> str:
    images = [i for i in items if i.media_type.startswith("image/")]
    media = [i for i in items if i.media_type.startswith(("video/", "audio/"))]
    texts = [i for i in items if i.media_type.startswith("text/")]
    other = [i for i in items if i not in images and i not in media and i not in texts]
    blocks = []
    if images:
        figures = "".join(
            f'<figure><img src="{html.escape(url_of(i))}" alt="{_caption(i)}" loading="lazy">'
            f"<figcaption>{_caption(i)}</figcaption></figure>" for i in images)
        blocks.append(f'<div class="grid images">{figures}</div>')
    if media:
        figures = "".join(
            f'<figure><{"video" if i.media_type.startswith("video/") else "audio"} controls preload="metadata" '
            f'src="{html.escape(url_of(i))}"></{"video" if i.media_type.startswith("video/") else "audio"}>'
            f"<figcaption>{_caption(i)}</figcaption></figure>" for i in media)
        blocks.append(f'<div class="grid media">{figures}</div>')
    if texts:  # text files hold one sample per line
        lines = "".join(f'<li title="{_caption(i)}">{html.escape(line)}</li>'
                        for i in texts for line in _read_text(i).splitlines() if line.strip())
        blocks.append(f'<ol class="texts">{lines}</ol>')
    if other:
        links = "".join(f'<li><a href="{html.escape(url_of(i))}">{_caption(i)} ({html.escape(i.media_type)})</a></li>'
                        for i in other)
        blocks.append(f"<ul>{links}</ul>")
    return "".join(blocks)


def render_gallery(models: Iterable[tuple[Any, list[StoredItem]]], url_of: Any, note: Optional[str] = None) -> str:
    """HTML of the gallery.

    Args:
        models: ``(ServedModel, newest stored items)`` pairs.
        url_of: ``url_of(item) -> str`` where the browser fetches an item.
        note: A line shown instead of items when the server has no content repository.
    """
    sections = []
    for model, items in models:
        info = model.describe()
        meta = " · ".join(html.escape(str(info[key])) for key in ("modality", "plugin", "checkpoint", "status")
                          if info.get(key) is not None)
        body = _items_html(items, url_of) if items else (
            f'<p class="empty">{html.escape(note or "nothing stored yet: POST /v1/models/" + model.name + "/generate with store: true")}</p>')
        sections.append(f'<section class="model" id="model-{html.escape(model.name)}">'
                        f"<h2>{html.escape(model.name)}</h2><p class=\"meta\">{meta} · {len(items)} item(s)</p>"
                        f"{body}</section>")
    if not sections:
        sections.append('<p class="empty">no models are served</p>')
    return _TEMPLATE.substitute(title="cgan gallery", sections="\n".join(sections))
