from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "huzhu.portal"
    label = "portal"
    verbose_name = "会员服务"
