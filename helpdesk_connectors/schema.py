"""OpenAPI description of the app session bearer token, for drf-spectacular."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class AppSessionAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "helpdesk_connectors.authentication.AppSessionAuthentication"
    name = "appSession"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "App session token minted by a verified helpdesk entry "
            "(POST /zendesk/sidebar/, POST /freshdesk/session/, or POST /demo/session/ in demo mode).",
        }
