from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from . import selectors


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = selectors.job_list()[:50]
    return render(request, "jobs/job_list.html", {"jobs": jobs, "sync_health": selectors.sync_health()})
