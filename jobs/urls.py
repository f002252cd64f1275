from django.urls import path

from . import views

app_name = "jobs"

urlpatterns = [
    path("", views.job_list, name="job_list"),
    path("jobs.csv", views.job_list_csv, name="job_list_csv"),
    path("jobs/<int:toq_id>/", views.job_detail, name="job_detail"),
    path("jobs/<int:toq_id>/g<int:generation>/", views.job_detail, name="job_detail_generation"),
    path("jobs/<int:toq_id>/g<int:generation>/notes/", views.job_note_add, name="job_note_add"),
    path("sync/", views.sync_runs, name="sync_runs"),
]
