from django.urls import path

from . import views, views_groups

app_name = "jobs"

urlpatterns = [
    path("", views.job_list, name="job_list"),
    path("jobs.csv", views.job_list_csv, name="job_list_csv"),
    path("jobs/<int:toq_id>/", views.job_detail, name="job_detail"),
    path("jobs/<int:toq_id>/g<int:generation>/", views.job_detail, name="job_detail_generation"),
    path("jobs/<int:toq_id>/g<int:generation>/notes/", views.job_note_add, name="job_note_add"),
    path("jobs/<int:toq_id>/g<int:generation>/diagnosis/", views.job_diagnosis_panel, name="job_diagnosis"),
    path("jobs/<int:toq_id>/g<int:generation>/timeline/", views.job_timeline_panel, name="job_timeline"),
    path("jobs/<int:toq_id>/g<int:generation>/logs/", views.job_logs_panel, name="job_logs"),
    path("jobs/<int:toq_id>/g<int:generation>/derivatives/", views.job_derivatives_panel, name="job_derivatives"),
    path("jobs/<int:toq_id>/g<int:generation>/history/", views.job_history_panel, name="job_history_raw"),
    path("jobs/<int:toq_id>/g<int:generation>/history.json", views.job_history_json, name="job_history_json"),
    path("jobs/<int:toq_id>/g<int:generation>/annotate/", views.job_annotate, name="job_annotate"),
    path("jobs/<int:toq_id>/g<int:generation>/report.md", views.job_incident_report, name="job_incident_report"),
    path("sync/", views.sync_runs, name="sync_runs"),
    path("groups/", views_groups.group_list, name="group_list"),
    path("groups/<int:group_id>/", views_groups.group_detail, name="group_detail"),
    path("groups/<int:group_id>/notes/", views_groups.group_note_add, name="group_note_add"),
    path("overview/", views_groups.overview, name="overview"),
]
