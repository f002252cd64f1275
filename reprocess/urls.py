from django.urls import path

from . import views

app_name = "reprocess"

urlpatterns = [
    path("jobs/<int:toq_id>/g<int:generation>/", views.reprocess_plan, name="reprocess_plan"),
    path("jobs/<int:toq_id>/g<int:generation>/run/", views.reprocess_run, name="reprocess_run"),
]
