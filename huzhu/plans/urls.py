from django.urls import path

from huzhu.plans import views

app_name = "plans"
urlpatterns = [
    path("", views.plan_list, name="list"),
    path("upload/", views.plan_upload, name="upload"),
    path("compare/", views.plan_compare, name="compare"),
    path("<int:plan_id>/", views.plan_detail, name="detail"),
    path("<int:plan_id>/yaml/", views.plan_download, name="download"),
    path("<int:plan_id>/copy/", views.plan_copy, name="copy"),
    path("<int:plan_id>/edit/", views.plan_edit, name="edit"),
    path("<int:plan_id>/activate/", views.plan_activate, name="activate"),
    path("<int:plan_id>/retire/", views.plan_retire, name="retire"),
]
