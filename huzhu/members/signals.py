"""Signals other apps listen to (they never call back into members' services)."""

from django.dispatch import Signal

#: Sent inside the transaction that records active medical-data consents; ``member_ids``.
consent_granted = Signal()
