from django.urls import path

from huzhu.core import views

app_name = "core"
urlpatterns = [
    path("", views.audit_log, name="audit_log"),
    path("verify/", views.audit_verify, name="audit_verify"),
]
