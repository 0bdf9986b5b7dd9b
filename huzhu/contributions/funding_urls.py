"""Co-funding pages, mounted at ``/contributions/`` (namespace ``funding``)."""

from django.urls import path

from huzhu.contributions import funding_views as views

app_name = "funding"
urlpatterns = [
    path("", views.invoice_list, name="invoice_list"),
    path("batches/<int:batch_id>/invoice/", views.batch_invoice, name="batch_invoice"),
    path("batches/<int:batch_id>/invoice/create/", views.invoice_create, name="invoice_create"),
    path("invoices/<int:invoice_id>/", views.invoice_detail, name="invoice"),
    path("invoices/<int:invoice_id>/invoice.xlsx", views.invoice_download_xlsx, name="xlsx"),
    path("invoices/<int:invoice_id>/invoice.pdf", views.invoice_download_pdf, name="pdf"),
    path("invoices/<int:invoice_id>/payments/new/", views.payment_new, name="payment_new"),
    path(
        "invoices/<int:invoice_id>/withdrawals/settle/",
        views.withdrawals_settle,
        name="settle_withdrawals",
    ),
    path("splits/", views.split_overview, name="split_overview"),
    path("splits/units/<int:unit_id>/", views.unit_splits, name="unit_splits"),
    path("splits/units/<int:unit_id>/new/", views.unit_split_create, name="unit_split_create"),
    path("splits/unions/<int:union_id>/", views.union_splits, name="union_splits"),
    path("splits/unions/<int:union_id>/new/", views.union_split_create, name="union_split_create"),
]
