"""ltlib.params: one validated definition of LandTrendr and change-map parameters."""
import pytest

from ltlib import config, params


def test_defaults_are_the_seed_runparams_and_map_to_earth_engine():
    p = params.LandTrendrParams()
    assert p.as_dict() == config.LANDTRENDR_PARAMS
    ee = p.to_ee()
    assert ee == {"maxSegments": 6, "spikeThreshold": 0.9, "vertexCountOvershoot": 3,
                  "preventOneYearRecovery": True, "recoveryThreshold": 0.25, "pvalThreshold": 0.05,
                  "bestModelProportion": 0.75, "minObservationsNeeded": 6}
    g = params.LandTrendrParams.gee_defaults()
    assert g.pval_threshold == 0.1 and g.prevent_one_year_recovery is False and g.max_segments == 6


@pytest.mark.parametrize("kw, match", [
    ({"pval_threshold": -0.1}, "pval_threshold must be a number in \\(0, 1\\], got -0.1"),
    ({"recovery_threshold": 0}, "recovery_threshold must be a number in \\(0, 1\\]"),
    ({"spike_threshold": "high"}, "spike_threshold must be a number in \\(0, 1\\], got 'high'"),
    ({"best_model_proportion": 1.5}, "best_model_proportion"),
    ({"vertex_count_overshoot": -1}, "vertex_count_overshoot must be an integer >= 0"),
    ({"max_segments": None}, "max_segments must be an integer >= 1, got None"),
    ({"max_segments": 2.5}, "max_segments must be an integer >= 1, got 2.5"),
    ({"max_segments": "6"}, "max_segments must be an integer >= 1, got '6'"),
    ({"min_observations_needed": 0}, "min_observations_needed must be an integer >= 1"),
    ({"prevent_one_year_recovery": "yes"}, "prevent_one_year_recovery must be True or False"),
])
def test_bad_landtrendr_parameters_name_the_parameter(kw, match):
    with pytest.raises(ValueError, match=match):
        params.LandTrendrParams(**kw)


def test_integral_floats_become_ints_and_replace_revalidates():
    p = params.LandTrendrParams(max_segments=4.0)
    assert p.max_segments == 4 and isinstance(p.max_segments, int)
    assert p.replace(pval_threshold=0.2).pval_threshold == 0.2
    with pytest.raises(ValueError, match="pval_threshold"):
        p.replace(pval_threshold=2)


def test_change_map_params():
    loss, gain = params.ChangeMapParams.loss(), params.ChangeMapParams.gain()
    assert (loss.delta, loss.mag_min) == ("loss", 150.0)
    assert (gain.delta, gain.sort, gain.mag_min) == ("gain", "greatest", 300.0)
    assert params.ChangeMapParams(year_range=[1990.0, 2000]).year_range == (1990, 2000)
    for kw, match in [({"delta": "up"}, "delta must be one of"), ({"sort": "big"}, "sort must be one of"),
                      ({"year_range": (2000, 1990)}, "year_range"), ({"mmu": 0}, "mmu must be an integer >= 1"),
                      ({"dur_max": 0}, "dur_max must be a positive number"), ({"mag_min": "a"}, "mag_min")]:
        with pytest.raises(ValueError, match=match):
            params.ChangeMapParams(**kw)
