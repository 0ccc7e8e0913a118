"""Every `uv run python -m experiments.train|summary ...` command in README.md and docs/*.md
composes with Hydra and validates (each value of a sweep's comma lists), so the docs cannot rot;
and every command is written in the one form the README's set-up gives."""

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from cnn_jax.config import from_dictconfig
from experiments.overrides import CONF_DIR
from experiments.plugins import load_cli_plugins

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ENTRY_POINTS = ("experiments.train", "experiments.summary")


def shell_lines(path: Path) -> list[str]:
    """The lines of the ```bash blocks of `path`, backslash continuations joined, comments cut."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def inline_commands(path: Path) -> list[str]:
    """Commands quoted inline in prose: `uv run python -m ...` between backticks."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S).replace("\n", " ")
    return re.findall(r"`((?:\w+=\S+ )*(?:uv run )?python (?:-m [\w.]+|\S+\.py)[^`]*)`", text)


def commands() -> list[tuple[str, str, list[str]]]:
    """(doc, entry point, overrides) of every experiments.train / summary command in the docs."""
    found = []
    for path in DOCS:
        for line in shell_lines(path) + inline_commands(path):
            words = shlex.split(line)
            for entry in ENTRY_POINTS:
                if entry in words:
                    args = words[words.index(entry) + 1:]
                    found.append((path.name, entry, [a for a in args if a not in ("-m", "...")]))
    return found


def expand(overrides: list[str]) -> list[list[str]]:
    """Each combination of a sweep's values (`a=1,2 b=x,y` -> four lists of plain overrides)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    choices = []
    for override in parsed:
        key = override.get_key_element()
        if override.is_sweep_override():
            choices.append([f"{key}={v}" for v in override.sweep_string_iterator()])
        else:
            choices.append([f"{key}={override.get_value_element_as_str()}"])
    return [list(c) for c in itertools.product(*choices)]


def test_the_docs_hold_commands_to_check():
    entries = {(doc, entry) for doc, entry, _ in commands()}
    assert {("README.md", "experiments.train"), ("README.md", "experiments.summary")} <= entries


@pytest.mark.parametrize(("doc", "entry", "overrides"), commands(),
                         ids=lambda v: " ".join(v) if isinstance(v, list) else str(v))
def test_command_composes_and_validates(doc, entry, overrides, forget_plugin_models):
    if any(o.startswith("[") or o.isupper() for o in overrides):
        pytest.skip("a placeholder")
    if not any("my_lab." in o for o in overrides):
        load_cli_plugins(overrides)  # a plugin's models are options of the model group
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for combination in expand(overrides):
            cfg = compose("config", overrides=combination, return_hydra_config=True)
            OmegaConf.set_struct(cfg, False)
            cfg.pop("hydra")  # composed (so hydra/launcher=... is checked), not resolved here
            if not any("my_lab." in o for o in overrides):  # docs/api.md's made-up plugin
                from_dictconfig(cfg)


def test_every_command_has_the_set_up_form():
    bare = []
    for path in DOCS:
        for line in shell_lines(path) + inline_commands(path):
            words = shlex.split(line)
            if "python" in words and words[max(words.index("python") - 2, 0):][:2] != ["uv", "run"]:
                bare.append(f"{path.name}: {line}")
            if "pytest" in words and words[0] not in ("uv", "flock"):
                bare.append(f"{path.name}: {line}")
    assert not bare, "\n".join(bare)


def _prose() -> str:
    return " ".join(" ".join(p.read_text().split()) for p in DOCS)


def test_option_lists_quoted_in_the_docs_are_current():
    from experiments.overrides import bad_group_choice, group_options

    quoted = re.findall(r"`error: (\w+)='foo' is not one of ([\w, ]+)`", _prose())
    assert quoted
    for group, listed in quoted:
        assert f"{group}='foo' is not one of {listed}" == bad_group_choice([f"{group}=foo"])
    readme = " ".join((ROOT / "README.md").read_text().split())
    for group in ("model", "pooling", "activation", "optimizer", "data"):
        listed = re.search(rf"`{group}` \(([^)]*)\)", readme).group(1)
        names = set(re.findall(r"`(\w+)`", listed))
        assert names <= set(group_options(group)), group
        assert "..." in listed or names == set(group_options(group)), group


def test_docs_inspect_names_every_option_of_the_command(capsys):
    from experiments.inspect_run import main

    with pytest.raises(SystemExit):
        main(["--help"])
    options = re.findall(r"(--[\w-]+)", capsys.readouterr().out)
    text = (ROOT / "docs" / "inspect.md").read_text()
    assert {o for o in options if o != "--help"} <= set(re.findall(r"`(--[\w-]+)", text))


@pytest.mark.parametrize("readme", sorted((ROOT / "docs" / "results").glob("*/README.md")),
                         ids=lambda p: p.parent.name)
def test_results_readme_runs_line_is_what_reproduce_runs(readme):
    """A results README whose command block runs `reproduce` says, in its `# runs:` comment,
    the training command that runs today."""
    from experiments import reproduce

    headline = [line for line in shell_lines(readme) if "experiments.reproduce" in line]
    if not headline:  # a table published from an older, hand-run command
        assert "experiments.reproduce" not in "".join(re.findall(r"```bash\n.*?```",
                                                                 readme.read_text(), re.S))
        return
    target, extra = re.search(r"experiments\.reproduce (\S+) --runs RUNS(.*)$",
                              headline[0]).groups()
    ((_, (step,)),) = reproduce.steps_of(target)
    runs_line = re.search(r"^# runs: (.*)$", readme.read_text(), flags=re.M)
    assert runs_line, f"{readme}: no `# runs:` line under its reproduce command"
    expected = reproduce.train_command(step, Path("RUNS"), tuple(extra.split()))
    assert runs_line.group(1) == " ".join(expected)


def test_nielsen_commands_are_what_reproduce_runs():
    """nielsen_ch6.md's command block: each row's command as `reproduce nielsen` runs it
    (`train.resume=auto` aside), then the table."""
    from experiments import reproduce

    lines = shell_lines(ROOT / "docs" / "results" / "nielsen_ch6.md")
    documented = []
    for line in lines[:-1]:
        rows = range(1, 6) if "rowN" in line else [None]
        documented += [line.replace("rowN", f"row{n}") if n else line for n in rows]
    ((_, steps),) = reproduce.steps_of("nielsen")
    expected = [" ".join(["uv run", *[a for a in reproduce.train_command(s, Path("RUNS"), ())
                                      if a != "train.resume=auto"]]) for s in steps]
    assert documented == expected
    assert lines[-1] == ("uv run python -m experiments.nielsen_table RUNS/nielsen "
                         "--out docs/results/nielsen_ch6.md")
