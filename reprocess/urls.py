from django.urls import path

from . import views, views_bulk

app_name = "reprocess"

urlpatterns = [
    path("jobs/<int:toq_id>/g<int:generation>/", views.reprocess_plan, name="reprocess_plan"),
    path("jobs/<int:toq_id>/g<int:generation>/run/", views.reprocess_run, name="reprocess_run"),
    path("jobs/<int:toq_id>/g<int:generation>/outcome/", views_bulk.job_outcome, name="job_outcome"),
    path("bulk/", views_bulk.bulk_preview, name="bulk_preview"),
    path("bulk/confirm/", views_bulk.bulk_confirm, name="bulk_confirm"),
    path("bulk/start/", views_bulk.bulk_start, name="bulk_start"),
    path("batches/", views_bulk.batch_list, name="batch_list"),
    path("batches/<int:batch_id>/", views_bulk.batch_detail, name="batch_detail"),
    path("batches/<int:batch_id>/pause/", views_bulk.batch_pause, name="batch_pause"),
    path("batches/<int:batch_id>/resume/", views_bulk.batch_resume, name="batch_resume"),
    path("batches/<int:batch_id>/abort/", views_bulk.batch_abort, name="batch_abort"),
]
