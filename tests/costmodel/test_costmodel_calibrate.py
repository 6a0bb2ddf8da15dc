"""Profiles, validation and calibration: synthetic round trips, the shared A100 data, the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from schedlab.cli import main
from schedlab.costmodel.calibration import calibrate, predict, validate
from schedlab.costmodel.profiling import COMPUTE_OPS, GEMM_OPS, load_profile
from schedlab.costmodel.roofline import Efficiency
from schedlab.errors import DataFormatError

SHAPES = {  # (n_head, n_kv_head, n_embd, n_expanded_embd, vocab_size, use_gated_mlp)
    "org/model-a": (32, 8, 4096, 14336, 128256, True),
    "org/model-b": (40, 40, 5120, 13824, 103168, True),
}
TOKENS = (1, 2, 8, 32, 64, 128, 256, 512, 1024, 2048, 4096)


def _write_profile(root: Path) -> Path:
    """A small profile in Vidur's layout, every median 1 ms (the tests overwrite them)."""
    for model, shape in SHAPES.items():
        folder = root / "compute" / "a100" / model
        folder.mkdir(parents=True)
        cols = [f"time_stats.{op}.median" for op in COMPUTE_OPS]
        head = ["n_head", "n_kv_head", "n_embd", "n_expanded_embd", "vocab_size", "use_gated_mlp",
                "num_tokens", "num_tensor_parallel_workers"]
        lines = [",".join(cols + head)]
        for tp in (1, 2, 4):
            for t in TOKENS:
                cells = ["1.0"] * len(cols) + [str(v) for v in shape] + [str(t), str(tp)]
                lines.append(",".join(cells))
        (folder / "mlp.csv").write_text("\n".join(lines) + "\n")
    for topo, per_node in (("a100_dgx", (1, 2, 4, 8)), ("a100_pairwise_nvlink", (2, 4))):
        folder = root / "network" / topo
        folder.mkdir(parents=True)
        for op in ("all_reduce", "send_recv"):
            lines = [f",time_stats.{op}.median,rank,num_workers,size,devices_per_node"]
            i = 0
            for d in per_node:
                for workers in ((2,) if op == "send_recv" else (2, 4, 8)):
                    for size in (2048, 1 << 16, 1 << 20, 1 << 24, 1 << 26):
                        lines.append(f"{i},1.0,0,{workers},{size},{d}")
                        i += 1
            (folder / f"{op}.csv").write_text("\n".join(lines) + "\n")
    return root


TRUE = Efficiency(gemm_compute=0.62, gemm_memory=0.71, rows_half=40.0, elementwise_memory=0.9,
                  norm_bytes_per_cycle=5.0, rope_bytes_per_cycle=3.0, act_bytes_per_cycle=8.0,
                  add_bytes_per_cycle=20.0, gather_bytes_per_cycle=1.5, l2_share=0.3,
                  l2_speedup=2.0, launch_overhead_s=2e-6, collective_latency_s=35e-6,
                  p2p_latency_s=8e-6, scale_up_efficiency=0.7, host_efficiency=0.6,
                  scale_out_efficiency=0.3)


def test_profile_maps_rows_onto_operators(tmp_path: Path) -> None:
    prof = load_profile(_write_profile(tmp_path), "a100")
    n_compute = len(SHAPES) * 3 * len(TOKENS) * len(COMPUTE_OPS)
    assert int((~prof.is_network).sum()) == n_compute
    assert set(prof.role[prof.is_network]) == {"scale_up", "host", "scale_out"}
    # a pair is NVLink; 4 workers in a node of NVLink pairs cross PCIe; beyond a node, the NIC
    pair = (prof.group == "a100_pairwise_nvlink") & (prof.op == "all_reduce")
    assert set(prof.role[pair & (prof.workers == 2)]) == {"scale_up"}
    assert set(prof.role[pair & (prof.workers == 4)]) == {"host", "scale_out"}
    assert set(prof.role[pair & (prof.workers == 8)]) == {"scale_out"}
    gemm = prof.op == "attn_pre_proj"
    assert set(prof.kind[gemm]) == {"gemm"}


def test_calibration_recovers_synthetic_parameters(tmp_path: Path) -> None:
    prof = load_profile(_write_profile(tmp_path), "a100-80gb")
    synthetic = dataclasses.replace(prof, measured_s=predict(prof, TRUE))
    before = validate(synthetic)
    assert before.overall["median_ape"] > 0.05  # the defaults are not the truth
    fitted = calibrate(synthetic)
    after = validate(synthetic, calibration=fitted)
    assert after.overall["p90_ape"] < 0.01
    assert fitted.gemm_compute == pytest.approx(TRUE.gemm_compute, rel=0.05)
    assert fitted.launch_overhead_s == pytest.approx(TRUE.launch_overhead_s, rel=0.1)
    assert fitted.scale_out_efficiency == pytest.approx(TRUE.scale_out_efficiency, rel=0.05)
    for name in ("norm_bytes_per_cycle", "gather_bytes_per_cycle", "elementwise_memory",
                 "l2_speedup"):
        assert getattr(fitted, name) == pytest.approx(getattr(TRUE, name), rel=0.05), name


def test_calibration_json_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    TRUE.save(path, gpu="a100-80gb")
    assert Efficiency.load(path) == TRUE
    data = json.loads(path.read_text())
    data["efficiency"]["bogus"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="bogus"):
        Efficiency.load(path)
    data["efficiency"].pop("bogus")
    data["efficiency"]["norm_memory"] = 0.35   # a file from the older element-wise model
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="calibrate again"):
        Efficiency.load(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        Efficiency.load(path)
    with pytest.raises(FileNotFoundError):
        Efficiency.load(tmp_path / "missing.json")


def test_bad_csv_names_file_line_and_field(tmp_path: Path) -> None:
    root = _write_profile(tmp_path)
    csv = root / "compute" / "a100" / "org" / "model-a" / "mlp.csv"
    lines = csv.read_text().splitlines()
    cells = lines[3].split(",")
    cells[-2] = "many"  # num_tokens
    lines[3] = ",".join(cells)
    csv.write_text("\n".join(lines))
    with pytest.raises(DataFormatError, match=r"mlp.csv, line 4, field 'num_tokens'"):
        load_profile(root, "a100-80gb")
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(DataFormatError, match="missing column"):
        load_profile(root, "a100-80gb")


def test_missing_data_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_profile(tmp_path / "nope", "a100-80gb")
    with pytest.raises(FileNotFoundError, match="no compute"):
        load_profile(tmp_path, "a100-80gb")
    _write_profile(tmp_path)
    with pytest.raises(FileNotFoundError, match="h100-sxm"):
        load_profile(tmp_path, "h100-sxm")  # only a100 folders there


def test_cli_validate_and_calibrate_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = _write_profile(tmp_path / "prof")
    assert main(["costmodel", "validate", str(root), "--gpu", "a100-80gb", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 <= out["overall"]["median_ape"] and out["overall"]["rows"] > 0
    assert set(out["ops"]) == set(COMPUTE_OPS) | {"all_reduce", "send_recv"}
    cal = tmp_path / "cal.json"
    assert main(["costmodel", "calibrate", str(root), "--gpu", "a100-80gb", "-o", str(cal),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["after"]["median_ape"] <= out["before"]["median_ape"]
    assert main(["costmodel", "validate", str(root), "--gpu", "a100-80gb", "--calibration",
                 str(cal), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["efficiency"] == Efficiency.load(cal).to_dict()
    assert main(["costmodel", "validate", str(tmp_path / "nope"), "--gpu", "a100-80gb"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_cli_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["costmodel", "report", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "llama-2-7b" and out["gpu"] == "a100-80gb"
    assert out["decode"][0]["linear_bound"] == "memory"
    assert any(d["linear_bound"] == "compute" for d in out["decode"])
    png = tmp_path / "roofline.png"
    assert main(["costmodel", "report", "--model", "llama-3-70b", "--gpu", "h100-sxm", "--tp", "4",
                 "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "llama-3-70b on 4 x h100-sxm" in text and "M/M" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["costmodel", "report", "--model", "llama-2-70b"]) == 1
    assert "does not fit" in capsys.readouterr().err


# ------------------------------------------------------------------ the shared A100 measurements
def _a100(shared_dir: Path):
    return load_profile(shared_dir / "costmodel" / "vidur-profiling", "a100-80gb")


def test_uncalibrated_model_meets_the_a100_targets(shared_dir: Path) -> None:
    report = validate(_a100(shared_dir))
    assert report.gemm["median_ape"] < 0.15
    assert report.overall["median_ape"] < 0.25
    for op in GEMM_OPS:
        assert report.ops[op]["median_ape"] < 0.15, op
    assert report.skipped_rows == 0


@pytest.mark.slow
def test_calibrated_model_meets_the_a100_target(shared_dir: Path) -> None:
    prof = _a100(shared_dir)
    report = validate(prof, calibration=calibrate(prof))
    assert report.overall["median_ape"] < 0.10


@pytest.mark.slow
def test_calibration_carries_over_to_held_out_models(shared_dir: Path) -> None:
    prof = _a100(shared_dir)
    held_out = np.isin(prof.group, ["Meta-Llama-3-8B", "internlm-20b", "phi-2"])
    fitted = calibrate(prof.take(~held_out))
    report = validate(prof.take(held_out & ~prof.is_network), calibration=fitted)
    assert report.overall["median_ape"] < 0.10
    assert report.gemm["median_ape"] < 0.10


def test_the_fit_draws_a_progress_bar_only_when_asked(tmp_path: Path, capsys) -> None:
    from schedlab.progress import showing_progress

    prof = load_profile(_write_profile(tmp_path), "a100-80gb")
    synthetic = dataclasses.replace(prof, measured_s=predict(prof, TRUE))
    calibrate(synthetic, max_nfev=5)
    assert capsys.readouterr().err == ""
    with showing_progress():
        calibrate(synthetic, max_nfev=5)
    assert "calibrate a100-80gb: model evaluations" in capsys.readouterr().err


def test_the_package_names_the_functions_not_the_module() -> None:
    # the module was named calibrate: once imported, ``from schedlab.costmodel import calibrate``
    # gave the module, not the function
    import schedlab.costmodel.calibration  # noqa: F401
    from schedlab.costmodel import calibrate as fit
    from schedlab.costmodel import cross_validate
    from schedlab.costmodel import validate as check

    assert fit is calibrate and check is validate and callable(cross_validate)
