from django.urls import path

from huzhu.web import auth_views, views

app_name = "web"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", auth_views.login_view, name="login"),
    path("login/otp/", auth_views.login_otp, name="login_otp"),
    path("login/otp/enrol/", auth_views.otp_enrol, name="otp_enrol"),
    path("password/", auth_views.password_change, name="password_change"),
    path("logout/", auth_views.logout_view, name="logout"),
]
