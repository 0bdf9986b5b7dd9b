from django.urls import path

from huzhu.enrollment import views

app_name = "enrollment"
urlpatterns = [
    path("", views.batch_list, name="list"),
    path("new/", views.batch_new, name="new"),
    path("template.xlsx", views.template_download, name="template"),
    path("renew/", views.renew, name="renew"),
    path("batches/<int:pk>/", views.batch_detail, name="batch"),
    path("batches/<int:pk>/upload/", views.batch_upload, name="upload"),
    path("batches/<int:pk>/errors.xlsx", views.batch_error_report, name="error_report"),
    path("batches/<int:pk>/confirm/", views.batch_confirm, name="confirm"),
    path("batches/<int:pk>/cancel/", views.batch_cancel, name="cancel"),
    path("enrollments/<int:pk>/withdraw/", views.enrollment_withdraw, name="withdraw"),
    path("jobs/<int:pk>/", views.job_detail, name="job"),
    path("jobs/<int:pk>/progress/", views.job_progress, name="job_progress"),
    path("members/<int:pk>/", views.member_coverage, name="member"),
    path("members/<int:pk>/left-unit/", views.member_left, name="member_left"),
    path("units/<int:pk>/", views.unit_coverage, name="unit"),
]
