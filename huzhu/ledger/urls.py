from django.urls import path

from huzhu.ledger import views

app_name = "ledger"
urlpatterns = [
    path("", views.journal, name="journal"),
    path("entries/<int:pk>/", views.entry_detail, name="entry"),
    path("entries/<int:pk>/reverse/", views.entry_reverse, name="reverse"),
    path("balances/", views.balances, name="balances"),
    path("trial-balance/", views.trial_balance, name="trial_balance"),
    path("parties/", views.parties, name="parties"),
    path("periods/", views.periods, name="periods"),
    path("periods/close/", views.period_close, name="period_close"),
    path("spending/", views.spending, name="spending"),
    path("reserve/", views.reserve, name="reserve"),
    path("reserve/allocate/", views.reserve_allocate, name="reserve_allocate"),
]
