from django.urls import include, path

from huzhu.api.main import api

urlpatterns = [
    path("", include("huzhu.web.urls")),
    path("orgs/", include("huzhu.orgs.urls")),
    path("members/", include("huzhu.members.urls")),
    path("plans/", include("huzhu.plans.urls")),
    path("audit/", include("huzhu.core.urls")),
    path("enrollment/", include("huzhu.enrollment.urls")),
    path("ledger/", include("huzhu.ledger.urls")),
    path("receipts/", include("huzhu.contributions.urls")),
    path("contributions/", include("huzhu.contributions.funding_urls")),
    path("portal/", include("huzhu.portal.urls")),
    path("claims/partners/", include("huzhu.claims.partner_urls")),
    path("claims/payments/", include("huzhu.claims.payment_urls")),
    path("claims/manual/", include("huzhu.claims.manual_urls")),
    path("claims/feed/", include("huzhu.claims.feed_urls")),
    path("claims/", include("huzhu.claims.urls")),
    path("api/v1/", api.urls),
]

handler400 = "huzhu.web.views.error_400"
handler403 = "huzhu.web.views.error_403"
handler404 = "huzhu.web.views.error_404"
handler500 = "huzhu.web.views.error_500"
