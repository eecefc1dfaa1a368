from django.urls import path

from generation import views, webhooks

urlpatterns = [
    path("create/", views.create, name="create"),
    path("gallery/", views.gallery, name="gallery"),
    path("jobs/<uuid:job_id>/", views.job_detail, name="job_detail"),
    path("jobs/<uuid:job_id>/status/", views.job_status, name="job_status"),
    path("jobs/<uuid:job_id>/again/", views.job_again, name="job_again"),
    path("jobs/<uuid:job_id>/delete/", views.job_remove, name="job_delete"),
    path("files/<uuid:output_id>/", views.output_file, name="output_file"),
    path("files/<uuid:output_id>/thumbnail/", views.output_file, {"variant": "thumbnail"}, name="output_thumbnail"),
    path("webhooks/replicate/", webhooks.replicate_webhook, name="replicate_webhook"),
]
