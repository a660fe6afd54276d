"""Weights files: round trip, and every kind of bad file refused with one line, nothing executed or lost."""

from __future__ import annotations

import os
import pickle
import random
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import run_cli

from lenet5.checkpoint import FORMAT_VERSION, load_model, read_checkpoint, save_checkpoint
from lenet5.config import ModelConfig
from lenet5.errors import CheckpointError
from lenet5.model import LeNet5


def test_round_trip_keeps_weights_and_config(tmp_path):
    model = LeNet5(ModelConfig(c3_table="full"))
    save_checkpoint(tmp_path / "w.pt", model, note="hello")
    loaded = load_model(tmp_path / "w.pt")
    assert loaded.config.c3_table == "full" and not loaded.training
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(loaded(x), model.eval()(x))
    assert read_checkpoint(tmp_path / "w.pt")["note"] == "hello"


def test_truncated_and_corrupt_files_are_refused(tmp_path):
    save_checkpoint(tmp_path / "w.pt", LeNet5())
    raw = (tmp_path / "w.pt").read_bytes()
    (tmp_path / "half.pt").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "noise.pt").write_bytes(os.urandom(5000))
    (tmp_path / "empty.pt").write_bytes(b"")
    for name in ("half.pt", "noise.pt", "empty.pt"):
        with pytest.raises(CheckpointError) as info:
            load_model(tmp_path / name)
        assert "\n" not in str(info.value) and name in str(info.value)


def test_weights_of_another_architecture_are_refused(tmp_path):
    conv = torch.nn.Conv2d(1, 6, 5)
    torch.save({"format_version": 1, "model_config": {}, "state_dict": conv.state_dict()}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(tmp_path / "other.pt")
    torch.save(conv.state_dict(), tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="not a lenet5 weights file"):
        load_model(tmp_path / "bare.pt")
    full = LeNet5(ModelConfig(c3_table="full"))
    torch.save({"format_version": 1, "model_config": {}, "state_dict": full.state_dict()}, tmp_path / "full.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(tmp_path / "full.pt")  # full C3 weights under the paper's config


def test_newer_format_is_refused(tmp_path):
    save_checkpoint(tmp_path / "w.pt", LeNet5())
    payload = torch.load(tmp_path / "w.pt", weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="newer"):
        load_model(tmp_path / "new.pt")


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    exploit = _Exploit()
    exploit.marker = marker
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"format_version": 1, "state_dict": exploit}, f)
    torch.save({"format_version": 1, "state_dict": {}, "x": exploit}, tmp_path / "evil2.pt")
    for name in ("evil.pt", "evil2.pt"):
        with pytest.raises(CheckpointError, match="refused|corrupt"):
            load_model(tmp_path / name)
    assert not marker.exists()


def test_cli_reports_a_bad_weights_file_in_one_line(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    result = run_cli("evaluate", "--weights", str(tmp_path / "bad.pt"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "bad.pt" in result.stderr


def test_disk_full_while_saving_keeps_the_previous_checkpoint(tmp_path):
    """A child process whose file-size limit (RLIMIT_FSIZE) is smaller than a checkpoint tries to overwrite one."""
    target = tmp_path / "checkpoint.pt"
    save_checkpoint(target, LeNet5())
    before = target.read_bytes()
    script = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
        from lenet5.checkpoint import save_checkpoint
        from lenet5.errors import CheckpointError
        from lenet5.model import LeNet5
        try:
            save_checkpoint({str(target)!r}, LeNet5())
        except CheckpointError as e:
            print(e)
            sys.exit(3)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "could not write" in result.stdout and "unchanged" in result.stdout
    assert target.read_bytes() == before  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # and no temp file is left behind
    read_checkpoint(target)


def test_random_bytes_are_always_refused_in_one_line(tmp_path):
    """Random bytes can read as a legacy pickle that breaks torch's unpickler in odd ways (IndexError seen)."""
    rng = random.Random(1)
    path = tmp_path / "noise.pt"
    for _ in range(300):
        path.write_bytes(rng.randbytes(rng.randrange(1, 6000)))
        with pytest.raises(CheckpointError) as info:
            read_checkpoint(path)
        assert "\n" not in str(info.value)
