import copy
import tomllib
from importlib import resources

import pytest

from imaging.errors import ConfigurationError
from imaging.profile import parse_profile
from profiles import load_profile


def _default_data() -> dict:
    return tomllib.loads((resources.files("profiles") / "default.toml").read_text())


def test_default_profile_carries_the_seed_numbers():
    profile = load_profile("default")
    assert profile.ref == {"name": "default", "version": "2.6.0"}
    assert profile.issues.blurry_below == 100
    assert profile.issues.brightness_deviation_above == 40
    assert profile.issues.low_resolution_below == 800
    assert profile.issues.cluttered_background_above == 0.4
    assert profile.targets.short_side == 1000


@pytest.mark.parametrize("path,value,field,reason", [
    (("weights", "sharpness"), "high", "weights.sharpness", "must be a number"),
    (("tiers", "good"), 95.0, "tiers", "good <= excellent"),
    (("scores", "contrast", "high"), 10.0, "scores.contrast", "low and high must differ"),
    (("assessment", "subject_aware"), "yes", "assessment.subject_aware", "true or false"),
    (("version",), "latest", "version", "a version such as"),
    (("issues", "blury_below"), 3.0, "issues.blury_below", "unknown field"),
    (("background", "saturation_density"), 0, "background.saturation_density", "> 0"),
])
def test_malformed_profiles_name_the_field_and_reason(path, value, field, reason):
    data = copy.deepcopy(_default_data())
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ConfigurationError) as info:
        parse_profile(data, "broken.toml")
    message = str(info.value)
    assert "broken.toml" in message and field in message and reason in message


def test_missing_section_and_missing_profile():
    data = _default_data()
    del data["targets"]
    with pytest.raises(ConfigurationError, match="targets: required table is missing"):
        parse_profile(data, "x.toml")
    with pytest.raises(ConfigurationError, match="not found"):
        load_profile("no-such-profile")


def test_operator_folder_is_searched_first(tmp_path):
    text = (resources.files("profiles") / "default.toml").read_text()
    (tmp_path / "strict.toml").write_text(
        text.replace('name = "default"', 'name = "strict"')
            .replace('version = "2.6.0"', 'version = "2.7.0"'))
    assert load_profile("strict", tmp_path).ref == {"name": "strict", "version": "2.7.0"}
    (tmp_path / "bad.toml").write_text("name = [")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_profile("bad", tmp_path)
