"""The demo site's Content-Security-Policy (Django 5.2 has none of its own): scripts and everything else from the
site itself only, so that an injected ``<script>`` or ``onclick=`` does not run. Inline ``style=`` attributes stay
allowed (progress bars set their width). ``settings.CONTENT_SECURITY_POLICY`` replaces it; empty turns it off."""

from django.conf import settings

DEFAULT_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", DEFAULT_POLICY)
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response
