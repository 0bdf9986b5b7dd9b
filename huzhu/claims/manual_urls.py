"""Manual claim pages, mounted at ``/claims/manual/`` (namespace ``manual``)."""

from django.urls import path

from huzhu.claims import manual_views as views

app_name = "manual"
urlpatterns = [
    path("members/<int:member_id>/new/", views.new, name="new"),
    path("<int:claim_id>/filed/", views.filed, name="filed"),
    path("documents/<int:document_id>/", views.document, name="document"),
]
