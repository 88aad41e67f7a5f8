"""The console (issue 13): other libraries quiet by default, one summary, -v/-q anywhere, one-line
command-line errors, and an unknown model that fails at once."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _reliability import BAD, TINY_ARGS, assert_one_line_error
from coreselect.cli.main import main


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "default"}  # warnings would show, unless coreselect quiets them
    return subprocess.run([sys.executable, "-m", "coreselect.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_other_libraries_are_quiet_by_default_and_shown_with_v_after_the_subcommand(tmp_path, tiny_dir):
    args = ["select", str(BAD / "good.jsonl"), "--n", "3", "--model", str(tiny_dir), "--work-dir", str(tmp_path / "w"),
            "--overwrite", *TINY_ARGS]
    quiet = _cli(*args, "-o", str(tmp_path / "a.jsonl"), cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "faiss" not in quiet.stderr and "ModuleNotFoundError" not in quiet.stderr, quiet.stderr
    assert "Warning" not in quiet.stderr, quiet.stderr
    assert "extracting" in quiet.stderr  # coreselect's own progress stays
    # the summary, once: on stdout, not logged again on stderr
    assert quiet.stdout.count("selected 3 of 6 examples") == 1
    assert "selected 3 of 6" not in quiet.stderr, quiet.stderr
    loud = _cli(*args, "-o", str(tmp_path / "b.jsonl"), "-v", cwd=tmp_path)  # -v after the subcommand
    assert loud.returncode == 0, loud.stderr
    assert "faiss.loader" in loud.stderr


def test_console_levels_and_restore():
    from coreselect.cli.console import configure

    lib, root = logging.getLogger("coreselect"), logging.getLogger()
    before = (lib.level, root.level, os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS"))
    restore = configure(verbose=0, quiet=False, progress=False, levels=True)
    try:
        assert lib.isEnabledFor(logging.INFO) and not logging.getLogger("faiss.loader").isEnabledFor(logging.WARNING)
        assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1" and os.environ["TQDM_DISABLE"] == "1"
    finally:
        restore()
    assert (lib.level, root.level, os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS")) == before
    restore = configure(verbose=1, quiet=False, progress=True, levels=True)
    try:
        assert logging.getLogger("faiss.loader").isEnabledFor(logging.INFO)
    finally:
        restore()
    restore = configure(verbose=0, quiet=True, progress=True, levels=True)
    try:
        assert not lib.isEnabledFor(logging.INFO) and lib.isEnabledFor(logging.WARNING)
    finally:
        restore()


def test_no_progress_silences_conversion_and_download_bars():
    pytest.importorskip("transformers")
    import huggingface_hub.utils as hub
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    from coreselect.models import hf_progress

    with hf_progress(progress=False):
        assert gguf_utils.tqdm(range(3)).disable and hub.are_progress_bars_disabled()
    hub.disable_progress_bars()  # as --no-progress does, process-wide
    try:
        with hf_progress(progress=True):
            assert gguf_utils.tqdm(range(3)).disable
    finally:
        hub.enable_progress_bars()
    with hf_progress(progress=True):
        assert not hub.are_progress_bars_disabled()


@pytest.mark.parametrize("flag", ["-v", "-q", "-vv"])
def test_console_flags_after_the_subcommand(flag, capsys):
    assert main(["methods", flag]) == 0
    assert "kcenter" in capsys.readouterr().out


def test_ratio_and_n_together_is_one_line(tmp_path, capsys):
    code = main(["select", str(BAD / "good.jsonl"), "--ratio", "0.5", "--n", "2", "-o", str(tmp_path / "c.jsonl")])
    assert_one_line_error(code, capsys.readouterr().err, r"^give only one of --ratio and --n$")


@pytest.mark.parametrize("args,pattern", [
    (["select", "--nn", "3"], r"^unrecognized argument: --nn; did you mean --n\? \(see `coreselect select --help`\)$"),
    (["extract", "x.jsonl"], r"^the following arguments are required: -o/--output \(see `coreselect extract --help`\)$"),
    (["select", "--method"], r"^argument --method: expected one argument"),
    (["cache", "lis"], r"^argument ACTION: invalid choice: 'lis'"),
])
def test_command_line_mistakes_are_one_line(args, pattern, capsys):
    assert_one_line_error(main(args), capsys.readouterr().err, pattern)


def test_unknown_model_offline_fails_at_once_naming_the_built_in_models(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import coreselect.hub

    monkeypatch.setattr(coreselect.hub, "hub_reachable", lambda timeout=1.0: False, raising=False)
    import huggingface_hub

    def no_network(*a, **k):  # the old path spent ~50 s retrying the hub: any call is a failure
        raise AssertionError("tried the hub")

    for name in ("hf_hub_download", "snapshot_download", "model_info"):
        monkeypatch.setattr(huggingface_hub, name, no_network, raising=False)
    code = main(["select", str(BAD / "good.jsonl"), "--n", "2", "--model", "smollm3", "-o", str(tmp_path / "c.jsonl"),
                 "--work-dir", str(tmp_path / "w")])
    line = assert_one_line_error(code, capsys.readouterr().err, r"^unknown model 'smollm3': not a built-in model "
                                 r"\(smollm2-135m-instruct, gemma3-270m\).*did you mean smollm2-135m-instruct\?$")
    assert line.count("(") == line.count(")")  # whole, not cut mid-parenthesis
    assert not (tmp_path / "w").exists()  # no empty store left behind


def test_load_error_message_is_whole():
    from coreselect.models import _one_line

    err = OSError("We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them\n"
                  "in the cached files.\nCheck your connection (or see the docs).")
    assert _one_line(err).endswith("(or see the docs).") and "\n" not in _one_line(err)
