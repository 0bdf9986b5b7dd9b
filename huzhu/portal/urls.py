"""Mounted at ``/portal/``: the member pages, and under ``staff/`` the union clerks' pages."""

from django.urls import path

from huzhu.portal import staff_views, views

app_name = "portal"
urlpatterns = [
    # Public: login, activation with the code of the printed letter, logout.
    path("login/", views.login_view, name="login"),
    path("activate/", views.activate_view, name="activate"),
    path("logout/", views.logout_view, name="logout"),
    # Member pages (member session only).
    path("", views.home, name="home"),
    path("receipts/", views.receipts, name="receipts"),
    path("claims/", views.claims, name="claims"),
    path("receipts/<int:receipt_id>/pdf", views.receipt_pdf, name="receipt_pdf"),
    path("receipts/<int:receipt_id>/xml", views.receipt_xml, name="receipt_xml"),
    path("me/", views.profile, name="profile"),
    path("me/download/", views.data_download, name="data_download"),
    path("corrections/", views.corrections, name="corrections"),
    path("consent/", views.consent, name="consent"),
    path("consent/grant/", views.consent_grant, name="consent_grant"),
    path("consent/withdraw/", views.consent_withdraw, name="consent_withdraw"),
    # Staff pages (staff session only).
    path(
        "staff/members/<int:member_id>/activation/",
        staff_views.issue_activation,
        name="issue_activation",
    ),
    path("staff/corrections/", staff_views.correction_list, name="staff_corrections"),
    path("staff/corrections/<int:pk>/", staff_views.correction_detail, name="staff_correction"),
    path(
        "staff/corrections/<int:pk>/reveal/",
        staff_views.correction_reveal,
        name="staff_correction_reveal",
    ),
]
