from django.urls import path

from huzhu.claims import partner_views as views

app_name = "partners"
urlpatterns = [
    path("", views.partner_list, name="list"),
    path("new/", views.partner_create, name="create"),
    path("<int:pk>/", views.partner_detail, name="detail"),
    path("<int:pk>/edit/", views.partner_edit, name="edit"),
    path("<int:pk>/rotate-key/", views.partner_rotate, name="rotate"),
    path("<int:pk>/deactivate/", views.partner_deactivate, name="deactivate"),
    path("<int:pk>/activate/", views.partner_activate, name="activate"),
]
