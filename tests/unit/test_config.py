"""Config defaults are written once (SETTINGS) and agree wherever they are read."""

from __future__ import annotations

import pytest

from dropsvc.config import SETTINGS, Config
from dropsvc.obs.access_log import AccessLog


def test_the_dataclass_defaults_are_what_load_gives_an_empty_environment():
    assert Config() == Config.load({})


@pytest.mark.parametrize("name", [name for name, setting in SETTINGS.items() if setting.default is not None])
def test_every_default_is_a_value_its_own_check_accepts(name):
    setting = SETTINGS[name]
    assert setting.parse(setting.env, str(setting.default)) == setting.default
    assert getattr(Config(), name) == setting.default


def test_the_access_log_defaults_are_the_config_defaults():
    log = AccessLog()
    assert (log.sample, log.max_per_s) == (Config().access_log_sample, Config().access_log_max_per_s)
