"""The append-only, hash-chained audit log (S8)."""

from __future__ import annotations

from django.db import models


class AuditChain(models.Model):
    """The head of one of the ``HUZHU_AUDIT_CHAINS`` hash chains (``id`` is the chain number):
    locked by the transaction appending to that chain until it ends, so each chain is linear while
    transactions on different chains run side by side (ADR 0002).

    ``last_seq``/``last_hash`` also make deleting the chain's newest event detectable.
    """

    id = models.PositiveSmallIntegerField(primary_key=True)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)

    class Meta:
        verbose_name = "审计链"


class AuditEvent(models.Model):
    """One audited action; ``seq``, ``prev_hash`` and ``hash`` link it into its chain only."""

    chain = models.PositiveSmallIntegerField(default=0)  # the AuditChain it belongs to
    seq = models.BigIntegerField()  # 1, 2, 3 … within its chain
    occurred_at = models.DateTimeField(db_index=True)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_username = models.CharField(max_length=150, blank=True)
    actor_role = models.CharField(max_length=200, blank=True)
    organisation_id = models.BigIntegerField(null=True, blank=True)
    organisation_path = models.CharField(max_length=255, blank=True)
    ip = models.CharField(max_length=64, blank=True)
    channel = models.CharField(max_length=16, blank=True)
    event = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(max_length=16, default="success")
    detail = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = "审计事件"
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq"], name="audit_chain_seq_unique"),
        ]
        indexes = [models.Index(fields=["object_type", "object_id"])]
