"""Which test backend a run uses (the containers themselves need a Docker engine)."""

import pytest

from tests.backends import choose_backend, compose_images, docker_engine_available


@pytest.mark.parametrize("requested, docker, installed, expected", [
    (None, True, True, "embedded"),
    ("embedded", True, True, "embedded"),
    ("containers", True, True, "containers"),
    ("auto", True, True, "containers"),
    ("auto", False, True, "embedded"),
    ("auto", True, False, "embedded"),
    (" Auto ", True, True, "containers"),
])
def test_the_backend_follows_the_setting_and_the_machine(requested, docker, installed,
                                                          expected):
    assert choose_backend(requested, docker, installed).name == expected


def test_asking_for_containers_without_an_engine_says_why():
    with pytest.raises(RuntimeError, match="no Docker engine answers"):
        choose_backend("containers", False, True)
    with pytest.raises(RuntimeError, match="testcontainers package is not installed"):
        choose_backend("containers", True, False)
    with pytest.raises(ValueError, match="must be one of"):
        choose_backend("kubernetes", True, True)


def test_auto_reports_why_it_fell_back():
    assert "no Docker engine" in choose_backend("auto", False, True).reason


def test_containers_use_the_images_the_compose_file_pins():
    images = compose_images()
    assert images["kafka"].startswith("apache/kafka:")
    assert images["mysql"].startswith("mysql:")
    assert images["seaweedfs"].startswith("chrislusf/seaweedfs:")


def test_no_engine_is_found_where_none_listens(tmp_path):
    assert not docker_engine_available({"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert not docker_engine_available({"DOCKER_HOST": "tcp://127.0.0.1:1"})
