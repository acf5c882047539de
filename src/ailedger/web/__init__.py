"""Server-rendered web explorer (Jinja2 templates, autoescaped), mounted by the HTTP API."""
