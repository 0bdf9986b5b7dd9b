from django.urls import path

from huzhu.members import views

app_name = "members"
urlpatterns = [
    path("", views.member_list, name="list"),
    path("new/", views.member_create, name="create"),
    path("unit-field/", views.unit_field, name="unit_field"),
    path("<int:pk>/", views.member_detail, name="detail"),
    path("<int:pk>/edit/", views.member_edit, name="edit"),
    path("<int:pk>/reveal/<str:field>/", views.reveal, name="reveal"),
    path("<int:pk>/hardship/", views.hardship_add, name="hardship_add"),
    path("<int:pk>/family/", views.family_add, name="family_add"),
    path("<int:pk>/consent/grant/", views.consent_grant, name="consent_grant"),
    path("<int:pk>/consent/withdraw/", views.consent_withdraw, name="consent_withdraw"),
]
