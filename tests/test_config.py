"""Config resolution: typed parsing, layering, unknown keys with suggestions, frozen YAML."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pytest
import yaml

from cgan_core.config import TrainConfig, diff_configs, merge_layers, nest, parse_set_option, parse_value
from cgan_core.errors import UsageError
from cgan_core.session import resolve_run


@dataclass
class Inner:
    epochs: int = 3


@dataclass
class Section:
    rate: float = 0.5
    name: str = "x"
    flag: bool = False
    sizes: tuple[int, ...] = (1, 2)
    pair: tuple[float, float] = (0.1, 0.2)
    maybe: Optional[int] = None
    inner: Inner = field(default_factory=Inner)


def test_values_are_parsed_by_field_type():
    sections = merge_layers({"s": Section}, [nest({
        "s.rate": "1e-3", "s.flag": "yes", "s.sizes": "4,5,6", "s.pair": "[0.5, 0.9]", "s.maybe": "7",
        "s.inner.epochs": "12",
    })])
    s = sections["s"]
    assert s.rate == pytest.approx(1e-3) and isinstance(s.rate, float)
    assert s.flag is True
    assert s.sizes == (4, 5, 6)
    assert s.pair == (0.5, 0.9)
    assert s.maybe == 7
    assert s.inner.epochs == 12


def test_later_layers_win_and_none_parses():
    sections = merge_layers({"s": Section}, [{"s": {"rate": 0.1, "maybe": 3}}, nest({"s.rate": "0.2", "s.maybe": "none"})])
    assert sections["s"].rate == 0.2
    assert sections["s"].maybe is None


@pytest.mark.parametrize("key,value,fragment", [
    ("s.rate", "fast", "expected float"),
    ("s.flag", "maybe", "expected true or false"),
    ("s.pair", "1,2,3", "takes 2 values"),
    ("s.inner.epochs", "2.5", "expected int"),
])
def test_bad_values_name_the_key_and_expected_type(key, value, fragment):
    with pytest.raises(UsageError) as info:
        merge_layers({"s": Section}, [nest({key: value})])
    assert key in str(info.value) and fragment in str(info.value)


def test_unknown_key_suggests_the_nearest_valid_key():
    with pytest.raises(UsageError, match=r"unknown config key 's\.rte'; did you mean 's\.rate'\?"):
        merge_layers({"s": Section}, [nest({"s.rte": "1"})])
    with pytest.raises(UsageError, match="did you mean 'train'"):
        merge_layers({"train": TrainConfig}, [{"trian": {"lr_g": 1}}])


def test_set_option_needs_key_and_value():
    assert parse_set_option("train.lr_g=1e-4") == ("train.lr_g", "1e-4")
    assert parse_set_option("data.field=a=b") == ("data.field", "a=b")
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_set_option("train.lr_g")


def test_parse_value_literal_errors_list_choices():
    from typing import Literal

    assert parse_value(Literal["a", "b"], "b", "k") == "b"
    with pytest.raises(UsageError, match="valid: a, b"):
        parse_value(Literal["a", "b"], "c", "k")


def test_resolve_run_layers_model_defaults_file_set_and_flags(tmp_path):
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump({"train": {"lr_g": 0.001, "batch_size": 8}, "model": {"latent_dim": 20}}))
    resolved = resolve_run("image", "dcgan", "digits", config_file, ["train.batch_size=4"], {"train.max_steps": 7})
    config = resolved.config
    assert config.train.lr_g == 0.001           # file beats model default (2e-4)
    assert config.train.batch_size == 4         # --set beats file
    assert config.train.max_steps == 7          # flag beats everything
    assert config.train.betas == (0.5, 0.999)   # model default
    assert config.model.latent_dim == 20
    round_trip = yaml.safe_load(config.to_yaml())
    assert round_trip["train"]["batch_size"] == 4 and round_trip["plugin"] == "dcgan"


def test_resolve_run_rejects_contradicting_file_and_bad_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed")
    with pytest.raises(UsageError, match="not valid YAML"):
        resolve_run("image", "dcgan", "digits", bad)
    other = tmp_path / "other.yaml"
    other.write_text("plugin: something-else\n")
    with pytest.raises(UsageError, match="config file says plugin"):
        resolve_run("image", "dcgan", "digits", other)
    with pytest.raises(UsageError, match="does not exist"):
        resolve_run("image", "dcgan", "digits", tmp_path / "missing.yaml")


def test_unknown_dataset_name_lists_valid_names():
    with pytest.raises(UsageError, match="unknown dataset 'digitz'.*digits"):
        resolve_run("image", "dcgan", "digitz")


def test_diff_configs_lists_changed_keys():
    assert diff_configs({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}}) == ["a.c: 2 -> 3"]
