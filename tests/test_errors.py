"""cnn_jax.errors.first_line: the one line a CLI prints and a failure record keeps."""

from cnn_jax.errors import first_line


def test_first_line_is_the_first_non_blank_line_or_the_exception_type():
    assert first_line(ValueError("\n  bad value x\nmore detail")) == "bad value x"
    assert first_line("one\ntwo") == "one"
    assert first_line(ValueError()) == "ValueError"  # no message: its type
    assert first_line("") == "" and first_line(None) == ""


def test_a_config_key_is_worded_for_python_unless_the_command_line_calls():
    from cnn_jax.errors import command_line, field_name, on_command_line, setting

    assert not on_command_line()
    assert setting("data.dir", "<folder>") == "DataConfig(dir=<folder>)"
    assert setting("train.resume", False) == "TrainConfig(resume=False)"
    assert setting("data.protocol", "full") == "DataConfig(protocol='full')"
    assert setting("seed", 1) == "Config(seed=1)"
    assert field_name("data.train_limit") == "DataConfig.train_limit"
    with command_line():
        assert on_command_line()
        assert setting("data.dir", "<folder>") == "data.dir=<folder>"
        assert setting("train.resume", False) == "train.resume=false"
        assert setting("data.data_dir", None) == "data.data_dir=null"
        assert setting("data.protocol", "full") == "data.protocol=full"
        assert field_name("data.train_limit") == "data.train_limit"
    assert not on_command_line()  # left as it was


def test_the_missing_data_error_tells_each_caller_its_own_way(tmp_path):
    import pytest

    from cnn_jax.config import DataConfig
    from cnn_jax.data import DataError, load_splits
    from cnn_jax.errors import command_line

    cfg = DataConfig(dir=str(tmp_path / "none"), source="idx")
    with pytest.raises(DataError) as python:
        load_splits(cfg, cache_dir=tmp_path / "c")
    assert "set DataConfig(dir=<folder holding them>), or use DataConfig(source='auto')" in str(
        python.value) and "data.dir=" not in str(python.value)
    with command_line(), pytest.raises(DataError) as cli:
        load_splits(cfg, cache_dir=tmp_path / "c")
    assert "set data.dir=<folder holding them>, or use data.source=auto" in str(cli.value)


def test_an_unknown_dataset_and_a_small_nielsen_split_name_the_callers_setting():
    import pytest

    from cnn_jax.config import ConfigError, DataConfig
    from cnn_jax.data import DataError
    from cnn_jax.data.splits import check_nielsen_size
    from cnn_jax.errors import command_line
    from experiments.preflight import check

    with pytest.raises(ConfigError, match=r"loads by name with DataConfig\(source='tfds'\)$"):
        DataConfig(name="kmnist")
    assert check(["data.name=kmnist"]).endswith("loads by name with data=tfds")
    with pytest.raises(DataError, match=r"use DataConfig\(protocol='full'\) or "
                                        r"DataConfig\(protocol='holdout'\) \(or "
                                        r"DataConfig.train_limit "):
        check_nielsen_size(10)
    with command_line(), pytest.raises(DataError, match=r"^data.protocol=nielsen needs more "
                                                        r".* use data.protocol=full or "
                                                        r"data.protocol=holdout \(or "
                                                        r"data.train_limit "):
        check_nielsen_size(10)
