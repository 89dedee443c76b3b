"""The notebook-regression comparison: numbers within tolerance, everything else strict."""

from __future__ import annotations

import math

import nbformat
import pytest

from ressrdiff.notebook_regression import RTOL, diff_views, numbers_agree, regression_view


def _view(text: str, glued: str, source: str = "print(x)") -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=text),
        nbformat.v4.new_output(
            "display_data",
            data={"application/papermill.record/text/plain": glued, "image/png": "AAAA"},
        ),
    ]
    nb.cells.append(cell)
    return regression_view(nb)


@pytest.mark.parametrize("x", [0.9999, 12932.663810242859, 1.750349e-09, -3.5e7])
def test_a_one_ulp_difference_passes(x):
    y = math.nextafter(x, math.inf)
    assert repr(x) != repr(y)
    ref = _view(f"PSNR {x!r} dB\n", repr(x))
    assert numbers_agree(f"PSNR {x!r} dB", f"PSNR {y!r} dB")
    assert diff_views(ref, _view(f"PSNR {y!r} dB\n", repr(y))) == ""


@pytest.mark.parametrize("x", [0.9999, 12932.663810242859, 1.750349e-09])
def test_a_real_change_fails(x):
    y = x * (1 + 1e-6)
    assert not numbers_agree(repr(x), repr(y))
    ref = _view(f"PSNR {x!r} dB\n", repr(x))
    assert diff_views(ref, _view(f"PSNR {y!r} dB\n", repr(x)))  # in the printed text
    assert diff_views(ref, _view(f"PSNR {x!r} dB\n", repr(y)))  # in a glued value


def test_the_differences_seen_between_library_versions_pass():
    # recorded with older numpy/pandas/scipy vs a fresh run (issue 14)
    assert numbers_agree("0.9999", "0.9998999999999998")
    assert numbers_agree("12932.663810242859", "12932.663810242873")
    assert numbers_agree("ratio 1.750349e-09", "ratio 1.750348e-09")  # a rounding flip


def test_tolerance_is_relative_1e_9():
    assert RTOL == 1e-9
    assert numbers_agree("1.0000000000", repr(1 + 0.5e-9))
    assert not numbers_agree("1.0000000000", repr(1 + 5e-9))


@pytest.mark.parametrize(
    ("ref", "fresh"),
    [
        ("400 steps", "401 steps"),  # integers are exact
        ("0.5", "0.6"),  # a short number gets no rounding allowance
        ("1.7503e-09", "1.7501e-09"),  # two units in the last digit
        ("1.750349e-09", "1.750349e-08"),  # exponent
        ("-0.5", "0.5"),  # sign
        ("PSNR 20.1 dB", "SSIM 20.1 dB"),  # words are strict
        ("| a | 1.0 |", "| a |  1.0 |"),  # so is layout
        ("x 1.0", "x 1.0 2.0"),  # and the count of numbers
    ],
)
def test_everything_else_stays_strict(ref, fresh):
    assert not numbers_agree(ref, fresh)


def test_sources_are_compared_strictly_even_when_only_a_number_changes():
    ref = _view("1.0\n", "1.0", source="x = 0.9999")
    fresh = _view("1.0\n", "1.0", source="x = 0.9998999999999998")
    assert diff_views(ref, fresh)


def test_diff_views_does_not_modify_its_argument():
    ref = _view("0.9999\n", "0.9999")
    fresh = _view("0.9998999999999998\n", "0.9998999999999998")
    assert diff_views(ref, fresh) == ""
    assert fresh.cells[0].outputs[0]["text"] == "0.9998999999999998\n"
