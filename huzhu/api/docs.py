"""The interactive API documentation (/api/v1/docs) with Swagger UI served by this application.

django-ninja ships the Swagger UI files but loads them from a CDN unless ``ninja`` is an installed
app; union intranets have no internet access, so the page links to the files through three
unauthenticated routes of the API itself (/api/v1/docs/swagger-ui.css, …). The page has no inline
script (the settings travel in a JSON data block), so it works under the site's CSP.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import ninja
from django.http import FileResponse, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html, json_script
from ninja.openapi.docs import DocsBase

if TYPE_CHECKING:
    from ninja import NinjaAPI

SWAGGER_DIR = Path(ninja.__file__).resolve().parent / "static" / "ninja"
ASSETS: dict[str, tuple[str, str]] = {
    # url name: (file name, content type)
    "docs-css": ("swagger-ui.css", "text/css; charset=utf-8"),
    "docs-bundle": ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "docs-init": ("swagger-ui-init.js", "text/javascript; charset=utf-8"),
}
ASSET_MAX_AGE = 24 * 3600

_PAGE = """<!DOCTYPE html>
<html lang="zh-hans">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{css}">
</head>
<body>
{settings}
<div id="swagger-ui"></div>
<script src="{bundle}"></script>
<script src="{init}"></script>
</body>
</html>
"""


class LocalSwagger(DocsBase):
    settings: dict[str, Any] = {"layout": "BaseLayout", "deepLinking": True}

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        namespace = api.urls_namespace
        settings = dict(self.settings, url=self.get_openapi_url(api, kwargs))
        html = format_html(
            _PAGE,
            title=api.title,
            css=reverse(f"{namespace}:docs-css"),
            bundle=reverse(f"{namespace}:docs-bundle"),
            init=reverse(f"{namespace}:docs-init"),
            settings=json_script(settings, "swagger-settings"),
        )
        return HttpResponse(html)


def _asset_view(file_name: str, content_type: str) -> Any:
    def view(request: HttpRequest) -> FileResponse:
        response = FileResponse((SWAGGER_DIR / file_name).open("rb"), content_type=content_type)
        response.headers["Cache-Control"] = f"public, max-age={ASSET_MAX_AGE}"
        return response

    view.__name__ = f"swagger_{file_name.replace('-', '_').replace('.', '_')}"
    return view


def install(api: NinjaAPI) -> None:
    for url_name, (file_name, content_type) in ASSETS.items():
        api.get(f"/docs/{file_name}", auth=None, include_in_schema=False, url_name=url_name)(
            _asset_view(file_name, content_type)
        )
