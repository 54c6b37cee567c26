"""Dashboard pages. Every page requires login; users see only the runs they may see."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from . import registry
from .models import Run


@login_required
def home(request):
    runs = Run.objects.visible_to(request.user).select_related("workflow")[:20]
    return render(request, "workflows/home.html", {"workflows": registry.all_workflows(), "runs": runs})
