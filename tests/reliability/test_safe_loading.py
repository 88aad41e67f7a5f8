"""Safe loading: no pickle anywhere, model code only with --trust-remote-code, and a feature
store whose manifest cannot make it read or write outside its directory."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from _reliability import BAD, TINY_ARGS, save_tiny_model
from coreselect.errors import ModelError, StoreError
from coreselect.store import ROW_STATS, FeatureStore

SRC = Path(__file__).resolve().parents[2] / "src" / "coreselect"
SOURCES = sorted(SRC.rglob("*.py"))


def _calls(text: str, name: str) -> list[str]:
    """Source of each ``name(...)`` call (balanced parentheses, may span lines)."""
    out = []
    for m in re.finditer(re.escape(name) + r"\(", text):
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        out.append(text[m.start():i])
    return out


BANNED = (r"^\s*import pickle", r"^\s*from pickle", r"pickle\.loads?\(", r"torch\.load\(", r"joblib\.load\(",
          r"\bdill\b", r"yaml\.load\(", r"yaml\.unsafe_load", r"(?<![\w.])eval\(", r"(?<![\w.])exec\(",
          r"weights_only\s*=\s*False", r"allow_pickle\s*=\s*True")


def test_source_never_unpickles_or_runs_code():
    assert len(SOURCES) > 20
    found = []
    for path in SOURCES:
        text = path.read_text()
        found += [f"{path.name}: {b}" for b in BANNED if re.search(b, text, re.M)]
        found += [f"{path.name}: {c}" for c in _calls(text, "np.load") + _calls(text, "numpy.load")
                  if "allow_pickle=False" not in c]
    assert not found


def test_trust_remote_code_only_passes_the_flag_through():
    found = []
    for path in SOURCES:
        for m in re.finditer(r"trust_remote_code\s*(?::\s*bool\s*)?=\s*([^,)\n]+)", path.read_text()):
            value = m.group(1).strip().removeprefix("option(")  # an option set's field: option(False, ...)
            if value != "False" and not value.endswith("trust_remote_code"):
                found.append(f"{path.name}: {m.group(0)}")
    assert not found


def test_load_model_asks_for_no_remote_code_unless_told(monkeypatch):
    import transformers

    from coreselect.models import ModelSpec, load_model

    seen = []

    def record(*args, **kwargs):
        seen.append(kwargs.get("trust_remote_code"))
        raise OSError("stop here")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", record)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", record)
    spec = ModelSpec("m", "/nonexistent", "x")
    with pytest.raises(ModelError):
        load_model(spec)
    with pytest.raises(ModelError):
        load_model(spec, trust_remote_code=True)
    assert seen == [False, True]


@pytest.mark.parametrize("flag,expected", [([], False), (["--trust-remote-code"], True)])
def test_cli_passes_trust_remote_code_only_with_the_flag(flag, expected, tmp_path, tokenizer, monkeypatch,
                                                         capsys):
    import transformers

    from coreselect.cli.main import main

    tiny = save_tiny_model(tmp_path / "model", tokenizer)
    seen = []
    real = transformers.AutoModelForCausalLM.from_pretrained

    def record(*args, **kwargs):
        seen.append(kwargs.get("trust_remote_code"))
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", record)
    argv = ["-q", "select", str(BAD / "good.jsonl"), "--n", "2", "-o", str(tmp_path / "core.jsonl"),
            "--work-dir", str(tmp_path / "w"), "--model", str(tiny), *TINY_ARGS, *flag]
    assert main(argv) == 0, capsys.readouterr()[1]
    assert seen == [expected]


# -- the feature store ---------------------------------------------------------------------------
def _store(root: Path) -> FeatureStore:
    st = FeatureStore.create(root, {"key": "k", "n_rows": 10, "shard_rows": 4})
    for p in st.plan():
        rows = np.arange(p.start, p.end, dtype=np.float32)[:, None]
        stats = {k: np.full(p.end - p.start, 5) for k in ROW_STATS}
        st.write_shard(p, {"mlp.1": np.repeat(rows, 3, axis=1), **stats})
    st.finalize()
    return st


def _tamper(store_dir: Path, **fields) -> None:
    m = json.loads((store_dir / "manifest.json").read_text())
    m.update(fields)
    (store_dir / "manifest.json").write_text(json.dumps(m))


def test_paths_in_the_manifest_are_never_used(tmp_path, monkeypatch):
    import safetensors

    root = tmp_path / "store"
    _store(root)
    decoy = _store(tmp_path / "decoy")  # a valid store outside, with other values
    (tmp_path / "decoy" / "shard-00000.safetensors").write_bytes(b"")
    _tamper(root, shards=["../decoy/shard-00000.safetensors"], files={"0": "/etc/passwd"},
            root=str(decoy.root), data={"path": "../../etc/passwd", "fingerprint": "x"})
    opened = []
    real = safetensors.safe_open

    def spy(path, *args, **kwargs):
        opened.append(Path(path).resolve())
        return real(path, *args, **kwargs)

    monkeypatch.setattr(safetensors, "safe_open", spy)
    loaded = FeatureStore.open(root).load()
    assert loaded["mlp.1"][:, 0].tolist() == list(range(10))
    assert opened and all(p.parent == root.resolve() and re.fullmatch(r"shard-\d{5}\.safetensors", p.name)
                          for p in opened)


@pytest.mark.parametrize("field,value,pattern", [
    ("shard_rows", "../x", r'field "shard_rows": must be a positive integer'),
    ("shard_rows", -4, r'field "shard_rows": must be a positive integer'),
    ("n_rows", 10.5, r'field "n_rows": must be a positive integer'),
    ("n_rows", None, r'field "n_rows": must be a positive integer'),
    ("key", ["../x"], r'field "key": must be a string'),
    ("dims", {"mlp.1": "../x"}, r'field "dims": must map group names to integers'),
    ("n_rows", 11, r"1 of 3 shards|has 2 rows, expected 3"),
    ("n_rows", 10**15, r"249999999999997 of 250000000000000 shards are missing"),
])
def test_tampered_manifest_is_refused(field, value, pattern, tmp_path, monkeypatch):
    root = tmp_path / "store"
    _store(root)
    _tamper(root, **{field: value})
    import coreselect.store as store_mod

    def no_full_plan(n_rows: int, shard_rows: int):
        # a list of 10**15 / 4 shard plans would never finish: the store must not build one
        assert n_rows // shard_rows < 10**6, "built a full shard plan of a tampered manifest"
        return real_plan(n_rows, shard_rows)

    real_plan = store_mod.plan_shards
    monkeypatch.setattr(store_mod, "plan_shards", no_full_plan)
    with pytest.raises(StoreError, match=pattern):
        FeatureStore.open(root).load()


def test_a_group_name_is_a_tensor_name_not_a_path(tmp_path):
    root = tmp_path / "store"
    _store(root)
    _tamper(root, dims={"../../outside": 3})
    with pytest.raises(StoreError, match=r"corrupted shard \(.*outside"):
        FeatureStore.open(root).load()


def test_a_pickle_disguised_as_a_shard_is_never_unpickled(tmp_path):
    root = tmp_path / "store"
    _store(root)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (root / "shard-00001.safetensors").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(StoreError, match=r"shard-00001\.safetensors: corrupted shard"):
        FeatureStore.open(root).load()
    assert not marker.exists()
