"""Mounted at ``/receipts/``. Receipt pages are in ``receipt_views``; payments will add theirs."""

from django.urls import path

from huzhu.contributions import receipt_upload_views, receipt_views

app_name = "contributions"
urlpatterns = [
    path("", receipt_views.receipt_list, name="receipt_list"),
    path("<int:receipt_id>/", receipt_views.receipt_detail, name="receipt_detail"),
    path("<int:receipt_id>/pdf", receipt_views.receipt_pdf, name="receipt_pdf"),
    path("<int:receipt_id>/xml", receipt_views.receipt_xml, name="receipt_xml"),
    path("<int:receipt_id>/void/", receipt_views.receipt_void, name="receipt_void"),
    path("<int:receipt_id>/reissue/", receipt_views.receipt_reissue, name="receipt_reissue"),
    path("ranges/", receipt_views.range_list, name="range_list"),
    # Uploads to the finance department's platform (finance: receipt.issue).
    path("uploads/", receipt_upload_views.upload_list, name="upload_list"),
    path("uploads/<int:upload_id>/retry/", receipt_upload_views.upload_retry, name="upload_retry"),
    # Public, no login: the verification page (QR codes link here) and the signing key.
    path("verify/", receipt_views.verify, name="verify"),
    path("public-key", receipt_views.public_key, name="public_key"),
]
