"""Stored plan versions as engine plans (``huzhu.rules.plan.Plan``), cached by parameters hash.

The canonical parameters JSON is what the hash covers, so it is what the engine runs on; the hash is
checked when a version is first loaded in a process, so a row whose parameters were changed behind
the services' back (and the triggers') is refused rather than used to price a benefit.
"""

from __future__ import annotations

import json
import threading

from huzhu.plans.models import PlanVersion
from huzhu.rules.plan import Plan, PlanVersions, load_plan_text, parse_plan

_CACHE_SIZE = 256
_cache: dict[str, Plan] = {}
_lock = threading.Lock()


class PlanIntegrityError(Exception):
    """A stored version no longer matches its hash or no longer validates."""


def plan_for(version: PlanVersion) -> Plan:
    """The engine plan of a stored version (validated, hash-checked, cached by hash)."""
    key = version.parameters_hash
    plan = _cache.get(key)
    if plan is not None:
        return plan
    try:
        data = json.loads(version.parameters)
    except ValueError as exc:
        raise PlanIntegrityError(f"方案版本 {version.code} 的参数无法读取：{exc}") from None
    plan, errors = parse_plan(data)
    if plan is None:
        detail = "；".join(str(error) for error in errors)
        raise PlanIntegrityError(f"方案版本 {version.code} 的参数未通过校验：{detail}")
    if plan.parameters_hash() != key:
        raise PlanIntegrityError(f"方案版本 {version.code} 的参数与其哈希不一致（数据被改动）")
    with _lock:
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[key] = plan
    return plan


def plan_with_references(version: PlanVersion) -> Plan:
    """The plan read from the uploaded text, so that its ``reference:`` citations are kept (for
    display); falls back to the canonical parameters when the text does not give the same hash."""
    plan, _errors = load_plan_text(version.source_yaml)
    if plan is not None and plan.parameters_hash() == version.parameters_hash:
        return plan
    return plan_for(version)


def engine_versions(versions: list[PlanVersion]) -> PlanVersions | None:
    """``PlanVersions`` of the given stored versions (e.g. ``selectors.versions_for_year``), or
    None when there are none."""
    if not versions:
        return None
    return PlanVersions([plan_for(version) for version in versions])
