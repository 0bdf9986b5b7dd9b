"""Every read of organisations and units, scoped to the actor's subtree (S5, R16, R17)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from huzhu.orgs.models import Union, Unit, User, subtree_q


def scope_path(actor: User) -> str | None:
    """The actor's subtree path, or None when the actor sees nothing."""
    if not actor.is_authenticated or actor.organisation_id is None:
        return None
    return actor.organisation.path  # type: ignore[union-attr]


def unions_for(actor: User) -> QuerySet[Union]:
    path = scope_path(actor)
    if path is None:
        return Union.objects.none()
    return Union.objects.filter(subtree_q(path))


def units_for(actor: User) -> QuerySet[Unit]:
    path = scope_path(actor)
    if path is None:
        return Unit.objects.none()
    return Unit.objects.filter(subtree_q(path, "union_path"))


def children_of(actor: User, union: Union) -> QuerySet[Union]:
    return unions_for(actor).filter(parent=union).order_by("kind", "name")


def ancestors_of(union: Union) -> list[Union]:
    """The chain from the root down to ``union`` (one query)."""
    parts = [p for p in union.path.split("/") if p]
    prefixes = ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]
    by_path = {u.path: u for u in Union.objects.filter(path__in=prefixes)}
    return [by_path[p] for p in prefixes if p in by_path]


def enrolling_unions_for(actor: User) -> QuerySet[Union]:
    return unions_for(actor).filter(kind__in=["grassroots", "federation"])


def tree_children(actor: User, union: Union) -> QuerySet[Union]:
    """Direct children for the organisation tree, each flagged with whether it has children
    (one query; the tree loads a node's children only when it is opened)."""
    return children_of(actor, union).annotate(
        has_children=Exists(Union.objects.filter(parent=OuterRef("pk")))
    )


def units_within(actor: User, union: Union) -> QuerySet[Unit]:
    """The actor's units that belong to ``union`` or an organisation below it."""
    return units_for(actor).filter(subtree_q(union.path, "union_path"))
