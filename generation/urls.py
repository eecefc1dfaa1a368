from django.urls import path

from generation import views, webhooks

urlpatterns = [
    path("create/", views.create, name="create"),
    path("create/edit/", views.create, {"kind": "edit"}, name="create_edit"),
    path("create/video/", views.create, {"kind": "video"}, name="create_video"),
    path("batches/", views.batch_list, name="batch_list"),
    path("batches/new/", views.batch_new, name="batch_new"),
    path("batches/<uuid:batch_id>/", views.batch_detail, name="batch_detail"),
    path("batches/<uuid:batch_id>/status/", views.batch_status, name="batch_status"),
    path("batches/<uuid:batch_id>/download/", views.batch_download, name="batch_download"),
    path("gallery/", views.gallery, name="gallery"),
    path("gallery/download/", views.gallery_download, name="gallery_download"),
    path("gallery/delete/", views.gallery_delete, name="gallery_delete"),
    path("jobs/<uuid:job_id>/", views.job_detail, name="job_detail"),
    path("jobs/<uuid:job_id>/status/", views.job_status, name="job_status"),
    path("jobs/<uuid:job_id>/again/", views.job_again, name="job_again"),
    path("jobs/<uuid:job_id>/cancel/", views.job_cancel, name="job_cancel"),
    path("jobs/<uuid:job_id>/delete/", views.job_delete, name="job_delete"),
    path("jobs/<uuid:job_id>/share/", views.job_share, name="job_share"),
    path("jobs/<uuid:job_id>/favourite/", views.job_favourite, name="job_favourite"),
    path("jobs/<uuid:job_id>/report/", views.job_report, name="job_report"),
    path("files/<uuid:output_id>/", views.output_file, name="output_file"),
    path("files/<uuid:output_id>/thumbnail/", views.output_file, {"variant": "thumbnail"}, name="output_thumbnail"),
    path("uploads/<uuid:upload_id>/", views.upload_file, name="upload_file"),
    path("s/<str:token>/", views.shared, name="shared"),
    path("s/<str:token>/media/", views.shared_media, name="shared_media"),
    path("s/<str:token>/poster/", views.shared_media, {"variant": "poster"}, name="shared_poster"),
    path("s/<str:token>/before/", views.shared_media, {"variant": "before"}, name="shared_before"),
    path("webhooks/replicate/", webhooks.replicate_webhook, name="replicate_webhook"),
]
