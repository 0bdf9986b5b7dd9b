"""Explanations of benefit results: a JSON-able trace and its rendering as Chinese sentences.

RULES.md §4: every result carries an explanation — the base and how it was formed, the deductible
used, each band's amount, the hardship adjustment, the cap effect and a reason code when the
benefit is zero. Amounts in the trace are yuan texts ("1234.50"); a band's exact amount keeps every
decimal it has ("2500.0025") because the schedule is summed exactly and rounded once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from huzhu.core.money import format_fen, format_rate
from huzhu.rules.pricing import RATE_SCALE, Terms, band_lines
from huzhu.rules.reasons import Reason

if TYPE_CHECKING:
    from huzhu.rules.engine import Amounts

__all__ = ["cancelled", "exact_yuan", "priced", "rejected", "render_explanation"]

EXPLANATION_FORMAT = 1

_PRODUCT_LABELS = {
    "inpatient": "住院互助保障",
    "special_outpatient": "门诊慢特病",
    "family_inpatient": "家庭成员住院互助",
    "critical_illness": "重大疾病关爱",
    "maternity": "生育补助",
}


def exact_yuan(units: int) -> str:
    """An amount in 1/10000 fen as exact yuan text with at least two decimals."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 100 * RATE_SCALE)
    digits = f"{frac:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}{whole}.{digits}"


def _rate_text(units: int) -> str:
    from fractions import Fraction

    return format_rate(Fraction(units, RATE_SCALE))


def _percent(units: int) -> str:
    """Rate units as a percentage text: 5000 → "50%", 1234 → "12.34%"."""
    whole, frac = divmod(units, 100)
    return f"{whole}%" if frac == 0 else f"{whole}.{frac:02d}".rstrip("0") + "%"


def _base_block(base: int, amounts: Amounts | None) -> dict[str, Any]:
    block: dict[str, Any] = {"amount": format_fen(base)}
    if amounts is not None:
        block.update(
            {
                "inscp_scp_amt": format_fen(amounts.inscp_scp_amt),
                "fund_pay_sumamt": format_fen(amounts.fund_pay_sumamt),
                "hosp_part_amt": format_fen(amounts.hosp_part_amt),
                "other_reimbursed": format_fen(amounts.other_reimbursed),
                # Never in the base (RULES.md §3): shown so the member sees why.
                "excluded": {
                    "fulamt_ownpay_amt": format_fen(amounts.fulamt_ownpay_amt),
                    "overlmt_selfpay": format_fen(amounts.overlmt_selfpay),
                    "preselfpay_amt": format_fen(amounts.preselfpay_amt),
                },
            }
        )
    return block


def _schedule_block(terms: Terms, x: int) -> dict[str, Any]:
    lines = band_lines(terms, x)
    units = terms.schedule_units(x)
    return {
        "mode": terms.band_mode,
        "amount": format_fen(max(0, x)),
        "bands": [
            {
                "from": format_fen(line.lower),
                "to": format_fen(line.upper) if line.upper is not None else None,
                "rate": _rate_text(line.rate_units),
                "portion": format_fen(line.portion),
                "amount_exact": exact_yuan(line.amount_units),
            }
            for line in lines
        ],
        "total_exact": exact_yuan(units),
        "total_rounded": format_fen(terms.schedule(x)),
    }


def _reason_block(reason: Reason | None) -> dict[str, str] | None:
    if reason is None:
        return None
    return {"code": reason.value, "label": reason.label, "text": reason.text}


def rejected(
    reason: Reason,
    *,
    setl_id: str,
    record_type: str,
    base: int = 0,
    amounts: Amounts | None = None,
    plan_code: str | None = None,
    product: str | None = None,
    cumulative: int = 0,
    threshold: int | None = None,
) -> dict[str, Any]:
    """A record that pays nothing before any pricing (not counted in the year)."""
    data: dict[str, Any] = {
        "format": EXPLANATION_FORMAT,
        "record_type": record_type,
        "setl_id": setl_id,
        "plan_code": plan_code,
        "product": product,
        "counted": False,
        "base": _base_block(base, amounts),
        "benefit": "0.00",
        "cumulative_benefit": format_fen(cumulative),
        "reason": _reason_block(reason),
    }
    if threshold is not None:
        data["threshold"] = format_fen(threshold)
    return data


def priced(
    terms: Terms,
    *,
    setl_id: str,
    base: int,
    amounts: Amounts | None,
    running_base: int,
    entitled: int,
    price: int,
    reason: Reason | None,
    year: int,
) -> dict[str, Any]:
    """A counted settle record: how its price was formed (RULES.md §4)."""
    deductible = terms.deductible
    data: dict[str, Any] = {
        "format": EXPLANATION_FORMAT,
        "record_type": "settle",
        "setl_id": setl_id,
        "plan_code": terms.plan_code,
        "product": terms.product,
        "coverage_year": year,
        "counted": True,
        "base": _base_block(base, amounts),
        "threshold": format_fen(terms.threshold),
        "hardship": {
            "applies": terms.hardship,
            "rate_bonus": format_rate(terms.rate_bonus),
            "cap_multiplier": format_rate(terms.cap_multiplier),
            "plan_rates": [_rate_text(units) for units in terms.plan_rate_units],
            "rates": [_rate_text(units) for units in terms.rate_units],
        },
    }
    if terms.scope == "year":
        after = running_base + base
        used_before = min(running_base, deductible)
        used_after = min(after, deductible)
        data["deductible"] = {
            "scope": "year",
            "amount": format_fen(deductible),
            "running_base_before": format_fen(running_base),
            "running_base_after": format_fen(after),
            "used_by_this_record": format_fen(used_after - used_before),
        }
        price_after = terms.year_price(after)
        price_before = terms.year_price(running_base)
        data["schedule"] = _schedule_block(terms, after - deductible)
        data["schedule_before"] = _schedule_block(terms, running_base - deductible)
        data["year_price_after"] = format_fen(price_after)
        data["year_price_before"] = format_fen(price_before)
        raw = price_after - price_before
        raw_unlimited = terms.schedule(after - deductible) - terms.schedule(
            running_base - deductible
        )
    else:
        data["deductible"] = {
            "scope": "admission",
            "amount": format_fen(deductible),
            "used_by_this_record": format_fen(min(base, deductible)),
        }
        data["schedule"] = _schedule_block(terms, base - deductible)
        raw = terms.schedule(base - deductible)
        raw_unlimited = raw
    room = terms.cap - entitled
    data["cap"] = {
        "annual_cap": format_fen(terms.annual_cap),
        "cap": format_fen(terms.cap),
        "entitled_before": format_fen(entitled),
        "room": format_fen(max(0, room)),
        "amount_before_cap": format_fen(max(0, raw_unlimited)),
        "limited": price < max(0, raw_unlimited),
    }
    data["benefit"] = format_fen(price)
    data["cumulative_benefit"] = format_fen(entitled + price)
    data["reason"] = _reason_block(reason)
    return data


def cancelled(
    *,
    setl_id: str,
    product: str | None,
    year: int | None,
    base: int,
    before: int,
    after: int,
    repriced: list[tuple[str, int, int]],
    counted: bool,
) -> dict[str, Any]:
    """A cancellation: the change of the year's entitlement, with the records re-priced."""
    return {
        "format": EXPLANATION_FORMAT,
        "record_type": "cancel",
        "setl_id": setl_id,
        "product": product,
        "coverage_year": year,
        "counted": counted,
        "base": {"amount": format_fen(base)},
        "entitled_before": format_fen(before),
        "entitled_after": format_fen(after),
        "benefit": format_fen(after - before),
        "cumulative_benefit": format_fen(after),
        "repriced": [
            {"setl_id": sid, "price_before": format_fen(old), "price_after": format_fen(new)}
            for sid, old, new in repriced
        ],
        "reason": _reason_block(Reason.CANCELLED),
    }


# ---------------------------------------------------------------------------------------------
# Rendering


def _band_sentence(band: dict[str, Any]) -> str:
    rate = band["rate"]
    percent = _percent(int(round_units(rate)))
    if band["to"] is None:
        span = f"{band['from']} 元以上部分"
    else:
        span = f"{band['from']}–{band['to']} 元部分"
    return f"{span} {band['portion']} 元 × {percent} = {band['amount_exact']} 元"


def round_units(rate_text: str) -> int:
    """ "0.65" → 6500 (rate texts of an explanation are exact, at most four decimals)."""
    whole, _, frac = rate_text.partition(".")
    return int(whole) * RATE_SCALE + int(frac.ljust(4, "0"))


def _schedule_sentence(schedule: dict[str, Any], label: str) -> str:
    bands = schedule["bands"]
    if not bands:
        return f"{label}为 0.00 元，按分段比例计算为 0.00 元"
    if schedule["mode"] == "whole":
        band = bands[0]
        percent = _percent(round_units(band["rate"]))
        return (
            f"{label} {schedule['amount']} 元全额按所在分段比例 {percent} 计算："
            f"{band['amount_exact']} 元，四舍五入为 {schedule['total_rounded']} 元"
        )
    parts = "；".join(_band_sentence(band) for band in bands)
    return (
        f"{label} {schedule['amount']} 元按分段比例累进计算：{parts}；"
        f"合计 {schedule['total_exact']} 元，四舍五入为 {schedule['total_rounded']} 元"
    )


def render_explanation(data: dict[str, Any]) -> str:
    """The explanation as plain Chinese sentences, for the member, the clerk and the reviewer."""
    sentences: list[str] = []
    product = data.get("product")
    product_label = _PRODUCT_LABELS.get(product or "", product or "")
    reason = data.get("reason")
    if data.get("record_type") == "cancel":
        sentences.append(f"撤销结算 {data['setl_id']}（{product_label or '无适用保障项目'}）。")
        if data.get("counted"):
            sentences.append(
                f"剔除该次结算（可补助基数 {data['base']['amount']} 元）后，本年度应得补助由 "
                f"{data['entitled_before']} 元重新计算为 {data['entitled_after']} 元，"
                f"本次调整 {data['benefit']} 元。"
            )
            for item in data.get("repriced", []):
                sentences.append(
                    f"其后的结算 {item['setl_id']} 补助由 {item['price_before']} 元重新计算为 "
                    f"{item['price_after']} 元。"
                )
        else:
            sentences.append("该次结算未计入年度累计，撤销不改变应得补助。")
        sentences.append(f"本年度累计补助 {data['cumulative_benefit']} 元。")
        return "".join(sentences)

    base = data.get("base", {})
    if "inscp_scp_amt" in base:
        sentences.append(
            f"可补助基数 {base['amount']} 元 = 政策范围内费用 {base['inscp_scp_amt']} 元"
            f" − 基金支付 {base['fund_pay_sumamt']} 元 − 医院负担 {base['hosp_part_amt']} 元"
            f" − 其他已报销 {base['other_reimbursed']} 元"
            "（不低于 0；全自费、超限价自费和乙类先行自付不计入）。"
        )
    elif base:
        sentences.append(f"可补助基数 {base['amount']} 元。")
    if not data.get("counted"):
        if product_label:
            sentences.append(f"保障项目：{product_label}。")
        if reason is not None:
            sentences.append(f"本次补助 0.00 元：{reason['text']}")
            if reason["code"] == Reason.BELOW_THRESHOLD.value and "threshold" in data:
                sentences.append(f"（门槛 {data['threshold']} 元）")
        return "".join(sentences)

    sentences.append(f"保障项目：{product_label}（计划 {data['plan_code']}）。")
    hardship = data["hardship"]
    if hardship["applies"]:
        sentences.append(
            f"入院时为困难职工：各段比例上浮 {hardship['rate_bonus']}（最高 100%），"
            f"由 {'、'.join(hardship['plan_rates'])} 调整为 {'、'.join(hardship['rates'])}；"
            f"年度封顶线 {data['cap']['annual_cap']} 元 × {hardship['cap_multiplier']}"
            f" = {data['cap']['cap']} 元。"
        )
    deductible = data["deductible"]
    if deductible["scope"] == "year":
        sentences.append(
            f"起付线 {deductible['amount']} 元按年度计算一次：本年度累计基数由 "
            f"{deductible['running_base_before']} 元增至 {deductible['running_base_after']} 元，"
            f"本次用去起付线 {deductible['used_by_this_record']} 元。"
        )
        sentences.append(_schedule_sentence(data["schedule"], "累计基数扣除起付线后") + "。")
        sentences.append(
            f"本年度累计应得 {data['year_price_after']} 元，"
            f"此前累计应得 {data['year_price_before']} 元"
            f"（均以年度封顶线 {data['cap']['cap']} 元为限），差额即本次应得。"
        )
    else:
        sentences.append(
            f"起付线 {deductible['amount']} 元按次计算，"
            f"本次扣除 {deductible['used_by_this_record']} 元。"
        )
        sentences.append(_schedule_sentence(data["schedule"], "扣除起付线后") + "。")
    cap = data["cap"]
    if cap["limited"]:
        sentences.append(
            f"年度封顶线 {cap['cap']} 元，此前已得 {cap['entitled_before']} 元，剩余额度 "
            f"{cap['room']} 元，本次补助受封顶线限制。"
        )
    sentences.append(
        f"本次补助 {data['benefit']} 元，本年度累计补助 {data['cumulative_benefit']} 元。"
    )
    if reason is not None:
        sentences.append(reason["text"])
    return "".join(sentences)
