import pytest

from services.common.config import ConfigError, load_config, load_service_config, substitute


def test_variables_take_the_environment_then_the_default():
    env = {"HOST": "db.internal"}
    assert substitute("${HOST:localhost}:${PORT:5432}", env) == "db.internal:5432"
    assert substitute("${EMPTY:}", {}) == ""


def test_a_variable_without_default_must_be_set():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        substitute("key: ${SECRET_KEY}", {})


def test_substitution_happens_before_yaml_parsing(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("PORT: ${PORT:9101}\nNAME: ${NAME:polls}\n")
    assert load_config(path, {"PORT": "9200"}) == {"PORT": 9200, "NAME": "polls"}


def test_every_service_config_loads_with_defaults_and_names_its_essentials():
    config = load_service_config("polls", {})
    assert config["AMQP_URI"].startswith("amqp://")
    assert config["DATABASE_URL"].endswith("/buurtpeil_polls")
    assert load_service_config("polls", {"POLLS_METRICS_PORT": "9999"})["METRICS_PORT"] == 9999
