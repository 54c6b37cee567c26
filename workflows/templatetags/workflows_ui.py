"""Small filters and tags for the dashboard templates (durations, percentages, status badges, JSON), and links
that follow the project's URLconf (``workflows.web.links``)::

    {% url_or_none 'logout' as logout_url %}{% if logout_url %}…{% endif %}   a link only where the view exists
    {% url_template 'workflows:run' '{id}' %}                                /wf/runs/{id}/, for the scripts
    {% queues_url as queues %}                                               django-rq's dashboard, or None
    {% live_url %}                                                           the websocket's path
"""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.utils.html import format_html

from ..web import links
from ..web.drawing import STATUS_ICONS

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """``0.42`` -> ``420 ms``, ``75`` -> ``1 min 15 s``; empty for None."""
    if seconds is None or seconds == "":
        return ""
    s = float(seconds)
    if s < 1:
        return f"{round(s * 1000)} ms"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"


@register.filter
def percent(fraction: float | None) -> str:
    if fraction is None or fraction == "":
        return "—"
    value = float(fraction) * 100
    return f"{value:.0f}%" if value in (0, 100) or value >= 10 else f"{value:.1f}%"


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@register.simple_tag
def status_badge(status: str | None, label: str = "") -> str:
    """A status pill: icon and word (never colour alone)."""
    status = status or "pending"
    return format_html(
        '<span class="badge status-{}" data-status="{}"><span class="badge-icon" aria-hidden="true">{}</span>'
        '<span class="badge-text">{}</span></span>',
        status,
        status,
        STATUS_ICONS.get(status, "•"),
        label or status,
    )


@register.filter
def progress_percent(fraction: float | None) -> int:
    return round((fraction or 0) * 100)


@register.simple_tag(takes_context=True)
def query_with(context: Any, **changes: Any) -> str:
    """The current page's query string with ``changes`` applied (a None or empty value removes the key)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.filter
def thousands(value: int | None) -> str:
    return f"{int(value or 0):,}"


# --- links -----------------------------------------------------------------------------------------------------


@register.simple_tag
def url_or_none(name: str, *args: Any, **kwargs: Any) -> str | None:
    """Like ``{% url %}``, but None (shown as nothing) where the project has no such view: use it with ``as``."""
    return links.url_or_none(name, *args, **kwargs)


@register.simple_tag
def url_template(name: str, *args: Any) -> str:
    return links.url_template(name, *args)


@register.simple_tag
def queues_url() -> str | None:
    return links.queues_url()


@register.simple_tag
def live_url() -> str:
    return links.live_url()
