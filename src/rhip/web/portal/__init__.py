"""The web portal (门户): server-rendered pages (Jinja2 + htmx, charts with plotly) for clinicians,
residents and operators, Chinese first with an English switch, every read through the security layer."""

from rhip.web.portal.routes import portal_routes

__all__ = ["portal_routes"]
