from django.conf import settings
from django.contrib import admin
from django.contrib.auth import urls as auth_urls
from django.urls import include, path

admin.autodiscover()  # here, not in every process: settings install SimpleAdminConfig (project/settings.py)
admin.site.site_header = "Workflows administration"  # the demo site's admin is all about workflows
admin.site.site_title = "Workflows admin"
admin.site.index_title = "Workflows, runs and their journal"

# Password reset sends mail: offered only when mail is configured (settings.PASSWORD_RESET), never via localhost:25
accounts = [p for p in auth_urls.urlpatterns if settings.PASSWORD_RESET or not p.name.startswith("password_reset")]

urlpatterns = [
    path("accounts/", include(accounts)),
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("", include("workflows.urls")),
]

# Requests Django refuses to read (too large, too many form fields): a page, or JSON for the API
handler400 = "workflows.web.errors.bad_request"
# The dashboard's own error pages for the whole site (the app's pages use them whatever the project sets)
handler403 = "workflows.web.errors.permission_denied"
handler404 = "workflows.web.errors.page_not_found"
handler500 = "workflows.web.errors.server_error"
