"""`{% link 'name' %}`: `{% url 'name' %}` for a URL without arguments, reversed once.

The layout's header and footer show about ten such links on every page, and reversing them
for every request was a large part of rendering the layout. A name's path only changes with
the URL prefix or URLconf, so each is reversed once per process for those.
"""

from __future__ import annotations

import functools

from django import template
from django.urls import get_script_prefix, get_urlconf, reverse

register = template.Library()


@functools.cache
def _path(name: str, prefix: str, urlconf: str | None) -> str:
    return reverse(name, urlconf=urlconf)


@register.simple_tag
def link(name: str) -> str:
    return _path(name, get_script_prefix(), get_urlconf())
