"""Benefit payment pages, mounted at ``/claims/payments/`` (namespace ``payments``)."""

from django.urls import path

from huzhu.claims import payment_views as views

app_name = "payments"
urlpatterns = [
    path("", views.batch_list, name="list"),
    path("new/", views.batch_create, name="create"),
    path("<int:payment_batch_id>/", views.batch_detail, name="detail"),
    path("<int:payment_batch_id>/export/", views.batch_export, name="export"),
    path("<int:payment_batch_id>/results/upload/", views.results_upload, name="results_upload"),
    path("<int:payment_batch_id>/results/", views.results_manual, name="results_manual"),
    path("<int:payment_batch_id>/cancel/", views.batch_cancel, name="cancel"),
]
