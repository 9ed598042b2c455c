"""What an HTML page (or a dashboard template) holds that a strict Content-Security-Policy would block, or that
loads from another origin: inline scripts, event-handler attributes, `javascript:` URLs, inline styles, and every
URL it loads, for tests/security/test_content_security.py and tests/api/test_graphiql.py."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

JINJA = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.DOTALL)
URL_ATTRIBUTES = {"src", "href", "srcset", "action", "formaction", "data", "poster"}
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass
class Audit:
    scripts: list[str] = field(default_factory=list)  # every <script>: its src, or "inline"
    inline_scripts: list[str] = field(default_factory=list)  # the code of each <script> with a body
    handlers: list[str] = field(default_factory=list)  # on*= attributes, as "tag onclick"
    script_urls: list[str] = field(default_factory=list)  # javascript: URLs
    inline_styles: list[str] = field(default_factory=list)  # style= attributes and <style> elements
    urls: list[str] = field(default_factory=list)  # every URL the page loads or posts to (not <a href> links)

    def blocked_inline(self) -> list[str]:
        """Everything inline that a policy without 'unsafe-inline' refuses."""
        return [*self.inline_scripts, *self.handlers, *self.script_urls, *self.inline_styles]

    def other_origins(self) -> list[str]:
        """The URLs that are not on this origin (with a scheme, or protocol-relative)."""
        return [url for url in self.urls if SCHEME.match(url) or url.startswith("//")]


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.audit = Audit()
        self._open: str | None = None  # "script" or "style" while inside one
        self._body: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            value = (value or "").strip()
            if name.startswith("on"):
                self.audit.handlers.append(f"{tag} {name}")
            if name == "style":
                self.audit.inline_styles.append(f'{tag} style="{value}"')
            if name in URL_ATTRIBUTES and value:
                if re.sub(r"\s", "", value).lower().startswith("javascript:"):
                    self.audit.script_urls.append(f"{tag} {name}={value}")
                elif not (tag == "a" and name == "href"):  # a link loads nothing
                    self.audit.urls.append(value)
        if tag == "script":
            self.audit.scripts.append(dict(attrs).get("src") or "inline")
        if tag in ("script", "style"):
            self._open, self._body = tag, []

    def handle_data(self, data: str) -> None:
        if self._open:
            self._body.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == self._open:
            body = "".join(self._body).strip()
            if body and tag == "script":
                self.audit.inline_scripts.append(body)
            if tag == "style":
                self.audit.inline_styles.append(f"<style>{body}</style>")
            self._open = None


def audit_html(text: str, *, template: bool = False) -> Audit:
    """The audit of a page; with `template`, Jinja's tags, expressions and comments are taken out first."""
    parser = _Parser()
    parser.feed(JINJA.sub(" ", text) if template else text)
    parser.close()
    return parser.audit
