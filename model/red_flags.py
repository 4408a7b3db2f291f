"""Red flags: rules from the seed's "Important Clinical Pitfalls", independent of the model.

Each rule reads only the entered findings (and, for the quinine warning, where the
differential places idiopathic cramps); each message cites the seed's reference numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from model.case import Case

__all__ = ["RedFlag", "red_flags"]

URGENT, WARNING, ADVICE = "urgent", "warning", "advice"
ABI_CRITICAL = 0.4  # assumption: an ankle-brachial index below 0.4 marks critical ischemia

_DRUGS = {
    "med_iv_iron_sucrose": "intravenous iron sucrose",
    "med_conjugated_estrogens": "conjugated estrogens",
    "med_raloxifene": "raloxifene",
    "med_nsaid": "naproxen or another NSAID",
    "med_teriparatide": "teriparatide",
    "med_diuretic": "a diuretic",
}


@dataclass(frozen=True)
class RedFlag:
    """One alert: a stable id, its severity, the message (citing the seed) and its reasons."""

    id: str
    severity: str  # urgent > warning > advice
    title: str
    message: str
    because: tuple[str, ...]


def _present(case: Case, fid: str) -> bool:
    return case.values.get(fid) == "present"


def _critical_limb_ischemia(case: Case, ranking: Sequence[str]) -> RedFlag | None:
    signs = []
    if case.values.get("cramp_timing") == "constant_rest_pain":
        signs.append("ischemic rest pain")
    if _present(case, "nonhealing_wound"):
        signs.append("a nonhealing wound")
    if _present(case, "gangrene"):
        signs.append("gangrene")
    abi = case.values.get("ankle_brachial_index")
    if abi is not None and abi < ABI_CRITICAL:
        signs.append(f"ankle-brachial index {abi:.2f}")
    if not signs:
        return None
    return RedFlag(
        "critical_limb_ischemia", URGENT, "Possible critical limb ischemia",
        f"{', '.join(signs).capitalize()}: critical limb ischemia requires urgent vascular evaluation (seed:4).",
        tuple(signs))


def _no_quinine(case: Case, ranking: Sequence[str]) -> RedFlag | None:
    nocturnal = case.values.get("cramp_timing") == "nocturnal_at_rest"
    idiopathic_high = "idiopathic_nocturnal" in ranking[:3]
    if not (nocturnal or idiopathic_high):
        return None
    because = ["nocturnal cramps"] if nocturnal else []
    because += ["idiopathic nocturnal cramps rank high"] if idiopathic_high else []
    return RedFlag(
        "no_quinine", WARNING, "Do not prescribe quinine",
        "Do not prescribe quinine for nocturnal leg cramps: the FDA warns that serious hematologic reactions, "
        "including thrombocytopenia and HUS/TTP, outweigh any benefit (seed:9,2).",
        tuple(because))


def _exclude_vascular_disease(case: Case, ranking: Sequence[str]) -> RedFlag | None:
    if "pedal_pulses" in case or "ankle_brachial_index" in case:
        return None
    risks = []
    age = case.values.get("age")
    if age is not None and age >= 50:  # assumption: PAD screening age
        risks.append(f"age {age:.0f}")
    if case.values.get("smoking") in ("current", "former"):
        risks.append(f"{case.values['smoking']} smoker")
    if _present(case, "diabetes"):
        risks.append("diabetes")
    if _present(case, "metabolic_syndrome"):
        risks.append("metabolic syndrome")
    if not risks:
        return None
    return RedFlag(
        "exclude_vascular_disease", WARNING, "Exclude peripheral arterial disease",
        "Do not assume benign idiopathic cramps before examining pedal pulses and the ankle-brachial index: "
        "even asymptomatic PAD carries significant cardiovascular mortality risk (seed:6).",
        tuple(risks))


def _medication_review(case: Case, ranking: Sequence[str]) -> RedFlag | None:
    drugs = [name for fid, name in _DRUGS.items() if _present(case, fid)]
    if not drugs:
        return None
    diuretic = " Diuretics cause electrolyte-mediated cramping: check potassium, magnesium and sodium (seed:2,3)." if _present(case, "med_diuretic") else ""
    return RedFlag(
        "medication_review", ADVICE, "Review medications",
        f"{', '.join(drugs).capitalize()} {'is' if len(drugs) == 1 else 'are'} strongly associated with leg cramps (seed:2).{diuretic}",
        tuple(drugs))


def _diabetic_neuropathy(case: Case, ranking: Sequence[str]) -> RedFlag | None:
    symptoms = [name for fid, name in (("paresthesias", "tingling"), ("numbness", "numbness"), ("burning_feet", "burning feet")) if _present(case, fid)]
    if not (_present(case, "diabetes") and symptoms):
        return None
    return RedFlag(
        "diabetic_neuropathy", WARNING, "Do not miss diabetic neuropathy",
        "Diabetes with sensory symptoms: cramping may be the presenting symptom of diabetic neuropathy; examine "
        "pinprick, vibration, monofilament and ankle reflexes and review glycaemic control (seed:4).",
        ("diabetes", *symptoms))


RULES: tuple[Callable[[Case, Sequence[str]], RedFlag | None], ...] = (
    _critical_limb_ischemia,
    _exclude_vascular_disease,
    _diabetic_neuropathy,
    _no_quinine,
    _medication_review,
)
_ORDER = {URGENT: 0, WARNING: 1, ADVICE: 2}


def red_flags(case: Case, ranking: Sequence[str] = ()) -> list[RedFlag]:
    """All red flags that apply to ``case``, most severe first.

    Parameters
    ----------
    case : Case
        The validated findings.
    ranking : sequence of str
        Class ids of the differential, most probable first (used only by the quinine rule).
    """
    flags = [flag for rule in RULES if (flag := rule(case, ranking)) is not None]
    return sorted(flags, key=lambda flag: _ORDER[flag.severity])
