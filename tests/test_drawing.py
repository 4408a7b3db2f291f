"""Training cases drawn from a flattened mixture (crampdx.training.drawing): the rare causes
more often, everything given a cause the generator's own, the targets the generator's
posterior."""

import numpy as np
import pytest
from scipy.special import logsumexp

from crampdx.cli.main import main
from crampdx.synthetic import LABEL, generate, posterior_from_codes
from crampdx.training.defaults import DEFAULT_PRIOR_POWER
from crampdx.training.drawing import drawing_knowledge, profile_weights
from crampdx.training.train import training_rows


def test_the_pair_weights_are_raised_to_the_power_and_renormalised(kb):
    before = profile_weights(kb)
    for power in (0.3, 0.6):
        after = profile_weights(drawing_knowledge(kb, power))
        assert after == pytest.approx(before**power / (before**power).sum(), rel=1e-9)
    assert drawing_knowledge(kb, 1.0) is kb


def test_age_band_and_sex_given_a_cause_stay_the_generators(kb):
    flat = drawing_knowledge(kb, 0.4)
    for pair in range(len(kb.profiles)):
        members = kb.component_profile == pair
        own = kb.component_log_weight[members] - logsumexp(kb.component_log_weight[members])
        drawn = flat.component_log_weight[members] - logsumexp(flat.component_log_weight[members])
        assert drawn == pytest.approx(own, abs=1e-9), kb.profiles[pair]
    assert flat.tables is kb.tables and flat.panels == kb.panels


@pytest.mark.parametrize("power", [0.0, -0.5, 1.5, float("nan")])
def test_a_power_out_of_range_is_refused(kb, power):
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        drawing_knowledge(kb, power)


def test_drawn_causes_follow_the_flattened_weights(kb):
    """Class frequencies of 60,000 drawn cases against the flattened class weights: each within 5
    of its own standard errors, and the rarest class drawn clearly more often than in the generator's mix."""
    n, power = 60_000, 0.5
    expected = np.bincount([kb.profiles[p][0] for p in range(len(kb.profiles))],
                           weights=profile_weights(drawing_knowledge(kb, power)), minlength=len(kb.classes))
    seen = generate(n, seed=3, knowledge=drawing_knowledge(kb, power))[LABEL].cat.codes.to_numpy()
    observed = np.bincount(seen, minlength=len(kb.classes)) / n
    assert (np.abs(observed - expected) < 5 * np.sqrt(expected * (1 - expected) / n)).all()
    prior = np.array([c.prior for c in kb.classes])
    rarest = prior.argmin()
    assert observed[rarest] > 2 * prior[rarest]


def test_training_targets_are_the_generators_posterior_not_the_drawing_mixtures(kb):
    rows = training_rows(kb, cases=2000, seed=5, prior_power=0.5)
    assert rows.targets == pytest.approx(posterior_from_codes(rows.codes, kb), abs=1e-12)
    flat_posterior = posterior_from_codes(rows.codes, drawing_knowledge(kb, 0.5))
    assert np.abs(rows.targets - flat_posterior).max() > 0.05  # the two differ: the test can tell them apart


@pytest.mark.parametrize("text", ["0", "1.2", "-1", "lots"])
def test_the_command_line_refuses_a_power_out_of_range(text, capsys):
    assert main(["train", "--prior-power", text]) == 2
    err = capsys.readouterr().err
    assert "--prior-power" in err and "Traceback" not in err


def test_the_command_line_passes_the_power_to_training(monkeypatch, tmp_path):
    import crampdx.cli.modelling as modelling

    seen = {}
    monkeypatch.setattr(modelling, "train", lambda out, **kwargs: seen.update(kwargs) or {})
    assert main(["train", "--prior-power", "0.8", "--out", str(tmp_path / "m"), "--quiet"]) == 0
    assert seen["prior_power"] == 0.8
    assert main(["train", "--out", str(tmp_path / "m"), "--quiet"]) == 0
    assert seen["prior_power"] == DEFAULT_PRIOR_POWER


def test_labelled_cases_are_never_redrawn_and_mixed_synthetic_ones_are(kb, tmp_path):
    generate(600, seed=9, knowledge=kb).to_csv(tmp_path / "mine.csv", index=False)
    alone = training_rows(kb, data=tmp_path / "mine.csv", prior_power=0.5)
    assert not alone.synthetic.any() and "power" not in alone.source
    mixed = training_rows(kb, cases=1500, data=tmp_path / "mine.csv", mix=True, prior_power=0.5)
    assert mixed.synthetic.sum() == 1500 and "power 0.5" in mixed.source
    synthetic = mixed.synthetic
    assert mixed.targets[synthetic] == pytest.approx(posterior_from_codes(mixed.codes[synthetic], kb), abs=1e-12)
