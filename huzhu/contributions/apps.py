from django.apps import AppConfig


class ContributionsConfig(AppConfig):
    name = "huzhu.contributions"
    label = "contributions"
    verbose_name = "互助金缴费与电子票据"
