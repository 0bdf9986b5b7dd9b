from django.urls import path

from huzhu.claims import feed_views as views

app_name = "feed"
urlpatterns = [
    path("", views.file_list, name="files"),
    path("upload/", views.upload, name="upload"),
    path("files/<int:pk>/", views.file_detail, name="file"),
    path("files/<int:pk>/progress/", views.file_progress, name="file_progress"),
    path("reconciliations/", views.report_list, name="reports"),
    path("reconciliations/new/", views.reconcile, name="reconcile"),
    path("reconciliations/<int:pk>/", views.report_detail, name="report"),
    path("settlements/", views.settlement_list, name="settlements"),
    path("quarantine/", views.quarantine, name="quarantine"),
]
