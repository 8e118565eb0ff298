"""Config layering and validation: every bad value is one line naming key, value and what is allowed."""

import math

import pytest

from pipeline.config import StyleConfig, build_config, preset_names
from pipeline.errors import BadInput
from pipeline.methods.dream import DreamConfig
from pipeline.methods.texture import TextureConfig


@pytest.mark.parametrize("setting,message", [
    ("content_weight=abc", "content_weight must be a finite number >= 0, got 'abc' (--set)"),
    ("seed=abc", "seed must be an integer >= 0, got 'abc' (--set)"),
    ("tv_weight=nan", "tv_weight must be a finite number >= 0, got 'nan' (--set)"),
    ("tv_weight=.inf", "tv_weight must be a finite number >= 0, got inf (--set)"),
    ("content_weight=1e400", "content_weight must be a finite number >= 0, got '1e400' (--set)"),
    ("preserve_colors=maybe", "preserve_colors must be true or false, got 'maybe' (--set)"),
    ("size=[64,32]", "size must be a positive integer, got [64, 32] (--set)"),
    ("size=1.5", "size must be a positive integer, got 1.5 (--set)"),
    ("iterations=true", "iterations must be a positive integer, got True (--set)"),
    ("content_weight=true", "content_weight must be a finite number >= 0, got True (--set)"),
    ("batch_size=many", "batch_size must be a positive integer or 'auto', got 'many' (--set)"),
    ("init=zeros", "init must be one of noise, content, style, got 'zeros' (--set)"),
    ("coarse_stages=[[0.5,1]]", "coarse_stages must be a list of [scale, share] pairs, coarsest first, "
                                "each scale > 0 and < 1, each share > 0, the shares summing to less than 1, "
                                "got [[0.5, 1]] (--set)"),
    ("loss_reduction=median", "loss_reduction must be one of sum, mean, got 'median' (--set)"),
    ("style_weights=[1,-2,3,4,5]", "style_weights must be a finite number >= 0 or a list of finite numbers >= 0"),
    ("contnet_weight=3", "unknown config key 'contnet_weight' (did you mean 'content_weight'?)"),
    ("content_weight", "--set expects key=value, got 'content_weight'"),
])
def test_bad_set_values_name_key_value_and_what_is_allowed(setting, message):
    with pytest.raises(BadInput) as err:
        build_config(sets=[setting])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_good_values_are_parsed_by_yaml_rules():
    cfg = build_config(sets=["content_weight=1e-3", "preserve_colors=yes", "style_layers=relu1_1,pool2",
                             "style_weights=2", "batch_size=3", "style_scale=null"])
    assert cfg.content_weight == 0.001 and isinstance(cfg.content_weight, float)
    assert cfg.preserve_colors is True and cfg.batch_size == 3 and cfg.style_scale is None
    assert cfg.style_layers == ["block1_conv1", "block2_pool"] and cfg.style_weights == [2.0, 2.0]


def test_method_keys_have_their_ranges():
    with pytest.raises(BadInput, match=r"octave_scale must be a finite number > 1, got 1 \(--set\)"):
        build_config(DreamConfig, preset="dream", sets=["octave_scale=1"])
    with pytest.raises(BadInput, match=r"width must be an integer >= 16 or null, got 8"):
        build_config(TextureConfig, preset="texture", overrides={"width": 8})
    with pytest.raises(BadInput, match=r"channel must be an integer in 0..511 for block4_conv2"):
        build_config(DreamConfig, preset="dream", sets=["channel=512"])


def test_user_yaml_layers_on_the_commands_preset(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("content_weight: 42\n")
    cfg = build_config(preset=str(mine))
    default = build_config()
    assert cfg.content_weight == 42.0
    assert {k: v for k, v in cfg.to_dict().items() if k != "content_weight"} == \
        {k: v for k, v in default.to_dict().items() if k != "content_weight"}
    assert (cfg.init, cfg.pooling, cfg.precision, cfg.batch_size, cfg.compile) == ("content", "max", "auto", "auto",
                                                                                  "auto")
    texture = build_config(TextureConfig, preset=str(mine))  # a texture run layers on the texture preset
    assert texture.content_weight == 42.0 and texture.style_layers[1] == "block1_pool"


def test_base_names_a_preset_or_another_file(tmp_path):
    (tmp_path / "wave.yaml").write_text("base: seed-wave-chicago\ntv_weight: 7\n")
    (tmp_path / "small.yaml").write_text("base: wave.yaml\nsize: 64\ndescription: small waves\n")
    cfg = build_config(preset=str(tmp_path / "small.yaml"))
    assert (cfg.size, cfg.tv_weight, cfg.init, cfg.lbfgs_history) == (64, 7.0, "noise", 100)
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(BadInput, match="goes round in a circle"):
        build_config(preset=str(tmp_path / "loop.yaml"))
    (tmp_path / "typo.yaml").write_text("styl_weights: [1, 2, 3, 4, 5]\n")
    with pytest.raises(BadInput, match=r"unknown config key 'styl_weights' \(did you mean 'style_weights'\?\)"):
        build_config(preset=str(tmp_path / "typo.yaml"))
    (tmp_path / "nan.yaml").write_text("tv_weight: .nan\n")
    with pytest.raises(BadInput, match=r"tv_weight must be a finite number >= 0, got nan \(in .*nan.yaml\)"):
        build_config(preset=str(tmp_path / "nan.yaml"))


def test_bundled_presets_validate_and_describe_themselves():
    from pipeline.config import describe_preset

    names = preset_names()
    assert {"default", "texture", "invert", "dream", "visualize", "seed-wave-chicago"} <= set(names)
    for name in names:
        assert describe_preset(name), name
    assert math.isclose(build_config(StyleConfig, preset="seed-defaults").content_weight, 0.03)
