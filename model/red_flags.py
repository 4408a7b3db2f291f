"""Red flags: rules from the seed's "Important Clinical Pitfalls", independent of the model.

Each rule reads only the entered findings (only the quinine warning also looks at whether the
differential places idiopathic cramps among the top three); each message cites the seed's
reference numbers. Thresholds the seed does not state are labelled assumptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from crampdx.contract.case import Case
from crampdx.contract.schema import Interval

__all__ = ["RedFlag", "red_flags"]

URGENT, WARNING, ADVICE = "urgent", "warning", "advice"
ABI_CRITICAL = 0.4  # assumption: an ankle-brachial index below 0.4 marks critical ischemia
ABI_PAD = 0.9  # assumption: the usual diagnostic threshold of PAD, ABI <= 0.90

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

    def to_dict(self) -> dict:
        # field by field: dataclasses.asdict deep-copies every string, a large part of a flag's rendering
        return {"id": self.id, "severity": self.severity, "title": self.title, "message": self.message,
                "because": list(self.because)}


def _present(case: Case, fid: str) -> bool:
    return case.values.get(fid) == "present"


def _bounds(case: Case, fid: str) -> tuple[float, float] | None:
    """A numeric finding as (lowest, highest) possible value: equal for a number, the range
    for a result known only in words or as a bound; None when not entered."""
    value = case.values.get(fid)
    if value is None:
        return None
    if isinstance(value, Interval):
        return value.low, value.high
    return value, value


def _sentence(text: str) -> str:
    """Upper-case the first letter only (``str.capitalize`` would write "nsaid")."""
    return text[:1].upper() + text[1:]


def _abnormal_pulses(case: Case) -> str | None:
    pulses = case.values.get("pedal_pulses")
    return f"{pulses} pedal pulses" if pulses in ("diminished", "absent") else None


def _critical_limb_ischemia(case: Case, ranking: Sequence[str]) -> RedFlag | None:
    signs = []
    timing, pulses = case.values.get("cramp_timing"), _abnormal_pulses(case)
    if timing == "constant_rest_pain":
        signs.append("ischemic rest pain")
    elif timing == "nocturnal_at_rest" and case.values.get("cramp_location") == "foot" and pulses:
        # assumption: ischemic rest pain is typically worst at night in bed, in the foot,
        # so nocturnal foot pain with abnormal pulses is read as rest pain, not a cramp
        signs.append(f"night-time foot pain at rest with {pulses}")
    if _present(case, "nonhealing_wound"):
        signs.append("a nonhealing wound")
    if _present(case, "gangrene"):
        signs.append("gangrene")
    abi = _bounds(case, "ankle_brachial_index")
    if abi is not None and abi[1] < ABI_CRITICAL:
        signs.append(case.describe("ankle_brachial_index"))
    if not signs:
        return None
    return RedFlag(
        "critical_limb_ischemia", URGENT, "Possible critical limb ischemia",
        f"{_sentence(', '.join(signs))}: critical limb ischemia manifests as ischemic rest pain, nonhealing wounds "
        "or gangrene and requires urgent vascular evaluation (seed:4).",
        tuple(signs))


def _peripheral_arterial_disease(case: Case, ranking: Sequence[str]) -> RedFlag | None:
    if _critical_limb_ischemia(case, ranking) is not None:
        return None  # the urgent flag already sends the patient to vascular evaluation
    signs = [pulses] if (pulses := _abnormal_pulses(case)) else []
    abi = _bounds(case, "ankle_brachial_index")
    if abi is not None and abi[1] <= ABI_PAD:
        signs.append(case.describe("ankle_brachial_index"))
    if not signs:
        return None
    return RedFlag(
        "peripheral_arterial_disease", WARNING, "Signs of peripheral arterial disease",
        f"{_sentence(' and '.join(signs))} suggest a vascular cause (seed:6); even asymptomatic peripheral "
        "arterial disease carries significant cardiovascular mortality risk, so do not settle on idiopathic "
        "cramps (seed:6).",
        tuple(signs))


def _vascular_risks(case: Case) -> list[str]:
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
    return risks


def _exclude_vascular_disease(case: Case, ranking: Sequence[str]) -> RedFlag | None:
    pulses = case.values.get("pedal_pulses")
    if "ankle_brachial_index" in case or pulses in ("diminished", "absent"):
        return None  # measured, or already flagged as signs of PAD
    risks = _vascular_risks(case)
    if not risks:
        return None
    if pulses == "normal":
        message = ("Normal pedal pulses do not exclude peripheral arterial disease (seed:6): with these risk factors, "
                   "measure the ankle-brachial index before assuming benign idiopathic cramps; even asymptomatic PAD "
                   "carries significant cardiovascular mortality risk (seed:6).")
    else:
        message = ("Do not assume benign idiopathic cramps before examining pedal pulses and the ankle-brachial index: "
                   "even asymptomatic PAD carries significant cardiovascular mortality risk (seed:6).")
    return RedFlag("exclude_vascular_disease", WARNING, "Exclude peripheral arterial disease", message, tuple(risks))


def _claudication_pattern(case: Case, ranking: Sequence[str]) -> RedFlag | None:
    if case.values.get("cramp_timing") != "exertional":
        return None
    pattern = [name for fid, name in (("relieved_by_rest", "resolves with rest"),
                                      ("reproducible_walking_distance", "at a reproducible walking distance"))
               if _present(case, fid)]
    if not pattern:
        return None
    missing = [name for fid, name in (("pedal_pulses", "examine pedal pulses"),
                                      ("ankle_brachial_index", "measure the ankle-brachial index")) if fid not in case]
    advice = " and ".join(missing) if missing else "weigh the recorded pulses and ankle-brachial index against it"
    return RedFlag(
        "claudication_pattern", WARNING, "Claudication, not nocturnal cramps",
        "Exertional leg pain that " + " and ".join(pattern) + " is the pattern of claudication, not of true cramps, "
        f"which occur at rest in bed (seed:4,2): {advice} (seed:6).",
        ("exertional pain", *pattern))


def _no_quinine(case: Case, ranking: Sequence[str]) -> RedFlag | None:
    nocturnal = case.values.get("cramp_timing") == "nocturnal_at_rest"
    # an empty case ranks the most common cause first: that is no reason to warn yet
    idiopathic_high = bool(case) and "idiopathic_nocturnal" in ranking[:3]
    if not (nocturnal or idiopathic_high):
        return None
    because = ["nocturnal cramps"] if nocturnal else []
    because += ["idiopathic nocturnal cramps among the three most probable causes"] if idiopathic_high else []
    return RedFlag(
        "no_quinine", WARNING, "Do not prescribe quinine",
        "Do not prescribe quinine for nocturnal leg cramps: the FDA warns that serious hematologic reactions, "
        "including thrombocytopenia and HUS/TTP, outweigh any benefit, and quinine is contraindicated for cramp "
        "treatment (seed:9,2).",
        tuple(because))


def _medication_review(case: Case, ranking: Sequence[str]) -> RedFlag | None:
    drugs = [name for fid, name in _DRUGS.items() if _present(case, fid)]
    if drugs:
        diuretic = (" Diuretics cause electrolyte-mediated cramping: check potassium, magnesium and sodium (seed:2,3)."
                    if _present(case, "med_diuretic") else "")
        return RedFlag(
            "medication_review", ADVICE, "Review medications",
            f"{_sentence(', '.join(drugs))} {'is' if len(drugs) == 1 else 'are'} strongly associated with leg cramps "
            f"(seed:2).{diuretic}",
            tuple(drugs))
    if not case or any(fid in case for fid in _DRUGS):
        return None  # nothing entered yet, or the medications were reviewed
    return RedFlag(
        "medication_review", ADVICE, "Review medications",
        "No medications recorded: do not overlook the medication review; diuretics and other commonly prescribed "
        "drugs frequently cause electrolyte-mediated cramping (seed:2,3).",
        ("no medication entered",))


# assumption: common laboratory critical-value limits (the seed states none); values in the
# schema's units (calcium and magnesium in mg/dL)
CRITICAL_LIMITS = {
    "potassium": (2.5, 6.5),
    "sodium": (120.0, 160.0),
    "calcium": (6.5, 13.0),
    "magnesium": (1.0, 4.9),
    "glucose": (50.0, 400.0),
    "creatine_kinase": (None, 5000.0),
}


def _critical_laboratory_value(case: Case, ranking: Sequence[str]) -> RedFlag | None:
    values = []
    for fid, (low, high) in CRITICAL_LIMITS.items():
        bounds = _bounds(case, fid)
        if bounds is None:
            continue
        if low is not None and bounds[1] < low:
            values.append(f"{case.describe(fid)}, below {low:g}")
        elif high is not None and bounds[0] > high:
            values.append(f"{case.describe(fid)}, above {high:g}")
    if not values:
        return None
    return RedFlag(
        "critical_laboratory_value", URGENT, "Critical laboratory value",
        f"{'; '.join(values)}: confirm and treat urgently, whatever the differential. Electrolyte disturbances "
        "are among the causes of cramps (seed:1,3); the critical limits are common laboratory practice "
        "(an assumption: the article states none).",
        tuple(values))


def _value_needed(case: Case, ranking: Sequence[str]) -> RedFlag | None:
    """A laboratory result given only in words whose range reaches a critical limit: the
    value decides whether it is urgent, so it must be measured or looked up."""
    unknown = []
    for fid, (low, high) in CRITICAL_LIMITS.items():
        value = case.values.get(fid)
        if not isinstance(value, Interval):
            continue
        critical_below = low is not None and value.low < low <= value.high
        critical_above = high is not None and value.low <= high < value.high
        if critical_below or critical_above:
            limit = f"below {low:g}" if critical_below else f"above {high:g}"
            unknown.append(f"{case.describe(fid)}; critical {limit} {case.schema[fid].unit}")
    if not unknown:
        return None
    return RedFlag(
        "value_needed", WARNING, "Laboratory value needed",
        f"{'; '.join(unknown)}: a result known only in words may be critical; obtain the value. Electrolyte "
        "disturbances are among the causes of cramps (seed:1,3); the critical limits are common laboratory "
        "practice (an assumption: the article states none).",
        tuple(unknown))


_NEUROLOGIC_EXAM = {"pinprick": "pinprick", "vibration": "vibration", "monofilament": "monofilament",
                    "ankle_reflex": "ankle reflexes"}


def _diabetic_neuropathy(case: Case, ranking: Sequence[str]) -> RedFlag | None:
    if not _present(case, "diabetes"):
        return None
    symptoms = [name for fid, name in (("paresthesias", "tingling"), ("numbness", "numbness"),
                                       ("burning_feet", "burning feet")) if _present(case, fid)]
    missing = [name for fid, name in _NEUROLOGIC_EXAM.items() if fid not in case]
    if not symptoms and not missing:
        return None  # the neurologic examination is complete: the model weighs its results
    what = "Diabetes with sensory symptoms" if symptoms else "Diabetes"
    examine = f"examine {', '.join(missing)}" if missing else "the neurologic examination is recorded"
    return RedFlag(
        "diabetic_neuropathy", WARNING if symptoms else ADVICE, "Do not miss diabetic neuropathy",
        f"{what}: cramping may be the presenting symptom of diabetic neuropathy, which requires a comprehensive "
        f"neurologic evaluation and glycaemic control (seed:4); {examine}.",
        ("diabetes", *symptoms, *(f"{name} not examined" for name in missing)))


RULES: tuple[Callable[[Case, Sequence[str]], RedFlag | None], ...] = (
    _critical_limb_ischemia,
    _critical_laboratory_value,
    _value_needed,
    _peripheral_arterial_disease,
    _claudication_pattern,
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

    Examples
    --------
    >>> from crampdx.contract import validate_case
    >>> [flag.id for flag in red_flags(validate_case({"gangrene": "present", "med_diuretic": "yes"}))]
    ['critical_limb_ischemia', 'medication_review']
    """
    flags = [flag for rule in RULES if (flag := rule(case, ranking)) is not None]
    return sorted(flags, key=lambda flag: _ORDER[flag.severity])
