from django.apps import AppConfig


class MembersConfig(AppConfig):
    name = "huzhu.members"
    label = "members"
    verbose_name = "职工"
