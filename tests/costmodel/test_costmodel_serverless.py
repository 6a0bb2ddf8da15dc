"""The sandbox cost model: Fig. 14's steps, CXL never slower than RDMA on a start (invariant
7), a template start never slower than CRIU's when attach is cheaper than the copy (invariant
4), memory of a read-only function (invariant 8), and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.costmodel.serverless import SandboxCosts, cost_tables, step_breakdown
from schedlab.datasets.serverless import FUNCTION_TABLE, trenv_functions
from schedlab.testing import sandbox_views

FIG14 = {"IR": (1846, 626, 410, 361, 180, 117), "JS": (489, 399, 179, 166, 123, 109)}


@pytest.mark.parametrize("name", sorted(FIG14))
def test_steps_match_fig14_within_5_percent(name: str) -> None:
    steps = step_breakdown(SandboxCosts(), trenv_functions(), name)
    got = np.array(list(steps.values())) * 1e3
    assert list(steps) == ["faasd", "CRIU", "+Reconfig", "+Cgroup", "T-RDMA", "T-CXL"]
    np.testing.assert_allclose(got, FIG14[name], rtol=0.05)
    assert (np.diff(got) < 0).all()  # every step of the paper saves time


@settings(max_examples=60, deadline=None)
@given(sandbox_views())
def test_cxl_start_and_run_never_slower_than_rdma(view) -> None:
    c = SandboxCosts()
    t = cost_tables(c, view.functions)
    # invariant 7: with CXL's per-MB cost below RDMA's faults, a first run on CXL is faster
    assert c.cxl_s_per_mb <= c.rdma_fault_s * 256
    assert (t.exec_s[("template", "cxl")] <= t.exec_s[("template", "rdma")] + 1e-12).all()
    for path in ("create", "repurpose"):
        np.testing.assert_array_equal(t.start_s[(path, "template", "cxl")],
                                      t.start_s[(path, "template", "rdma")])


@settings(max_examples=60, deadline=None)
@given(sandbox_views())
def test_template_start_never_slower_than_criu(view) -> None:
    c = SandboxCosts()
    assert c.attach_s <= c.copy_base_s and c.reconfig_s <= c.rootfs_s  # invariant 4's premise
    t = cost_tables(c, view.functions)
    assert (t.start_s[("repurpose", "template", "cxl")]
            <= t.start_s[("create", "criu", "local")]).all()
    assert (t.start_s[("create", "template", "cxl")]
            <= t.start_s[("create", "criu", "local")]).all()


def test_read_only_function_holds_no_private_pages() -> None:
    row = list(FUNCTION_TABLE["JS"])
    fns = trenv_functions(("JS",))
    from schedlab.contract.serverless import Functions

    ro = Functions(names=("ro",), image_mb=[row[0]], limit_mb=[row[1]], threads=[row[2]],
                   cpus=[row[3]], exec_s=[row[4]], touched_mb=[row[5]], ro_frac=[1.0])
    c = SandboxCosts()
    private = cost_tables(c, ro).private_mb[("template", "cxl")]
    assert private[0] == pytest.approx(c.sandbox_mb)  # the sandbox only: no page of its own
    assert cost_tables(c, fns).private_mb[("criu", "local")][0] > private[0]


def test_netns_slows_with_concurrent_starts() -> None:
    c = SandboxCosts()
    assert c.netns_at(0) == pytest.approx(0.080)
    assert c.netns_at(14) == pytest.approx(0.40, rel=0.02)  # Table 1: 15 at once, ~400 ms


@pytest.mark.parametrize(("field", "value"), [("netns_s", -0.1), ("max_starts", 0),
                                              ("cxl_s_per_mb", float("nan")),
                                              ("reap_backoff_stages", -1)])
def test_bad_costs_name_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        SandboxCosts(**{field: value})


def test_unknown_function_in_breakdown() -> None:
    with pytest.raises(ValueError, match="Unknown function 'XX'"):
        step_breakdown(SandboxCosts(), trenv_functions(), "XX")


@given(st.sampled_from(sorted(FUNCTION_TABLE)))
def test_cold_start_is_the_slowest_path(name: str) -> None:
    steps = step_breakdown(SandboxCosts(), trenv_functions(), name)
    assert steps["faasd"] == max(steps.values())


def test_catalog_devices_keep_cxl_ahead_of_rdma() -> None:
    fns = trenv_functions()
    paper = cost_tables(SandboxCosts(), fns)
    for cxl in ("cxl-memory", "ddr5-host"):
        for link in ("rdma-200g", "rdma-400g", "ethernet-100g"):
            c = SandboxCosts.with_devices(cxl, link)
            t = cost_tables(c, fns)
            assert (t.exec_s[("template", "cxl")] <= t.exec_s[("template", "rdma")]).all()
            assert c.cxl_s_per_mb < SandboxCosts().cxl_s_per_mb  # faster than the testbed's
    dram = SandboxCosts.with_devices("ddr5-host")
    np.testing.assert_allclose(cost_tables(dram, fns).exec_s[("template", "cxl")],
                               fns.exec_s)  # local-DRAM latency: no penalty at all
    assert (paper.exec_s[("template", "cxl")] > fns.exec_s).all()
    with pytest.raises(ValueError, match="Unknown"):
        SandboxCosts.with_devices("cxl-9000")
