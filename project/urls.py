from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Workflows administration"  # the demo site's admin is all about workflows
admin.site.site_title = "Workflows admin"
admin.site.index_title = "Workflows, runs and their journal"

urlpatterns = [
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("", include("workflows.urls")),
]

# Requests Django refuses to read (too large, too many form fields): a page, or JSON for the API
handler400 = "workflows.web.errors.bad_request"
