from django.urls import path

from huzhu.claims import views

app_name = "claims"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("policy/", views.policy, name="policy"),
    path("members/<int:member_id>/", views.member_history, name="member_history"),
    path("<int:claim_id>/", views.detail, name="detail"),
    path("<int:claim_id>/start/", views.start_review, name="start_review"),
    path("<int:claim_id>/approve/", views.approve, name="approve"),
    path("<int:claim_id>/second-approve/", views.second_approve, name="second_approve"),
    path("<int:claim_id>/send-back/", views.send_back, name="send_back"),
    path("<int:claim_id>/reject/", views.reject, name="reject"),
    path("<int:claim_id>/appeal/", views.appeal, name="appeal"),
    path("<int:claim_id>/diagnoses/", views.diagnoses, name="diagnoses"),
]
