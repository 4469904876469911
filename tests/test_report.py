"""Reports: curves through the recommendation's own numbers, the backtest against real sales,
and readable files (HTML with embedded PNGs, one product's PNG)."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import polars as pl
import pytest

from flows.nightly import nightly
from pipeline import report, synth
from pipeline import warehouse as wh
from pipeline.evaluate.commands import print_evaluation
from pipeline.summary import hold_reasons
from pipeline.warehouse import connection

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_FIRST_PRODUCT = "select product_id from latest_recommendations order by product_id limit 1"


@pytest.fixture(scope="module")
def replayed_night(tmp_path_factory, prefect_harness):
    """A world whose night is replayed 14 days before its last sale: forecasts meet actuals."""
    path = tmp_path_factory.mktemp("report") / "pricing.duckdb"
    world = synth.generate_world(n_products=10, n_days=220, seed=5)
    wh.write_inputs(path, world.products, world.sales, world.truth)
    as_of = world.sales["ds"].max() - dt.timedelta(days=13)
    summary = nightly(warehouse_path=str(path), as_of=as_of, epochs=2)
    return path, summary


def test_price_curve_runs_through_the_recommended_numbers():
    rec = {
        "product_id": "P1", "reason": "raise ...", "min_price": 3.0, "max_price": 6.0,
        "current_price": 4.0, "recommended_price": 4.4,
        "elasticity": -1.8, "expected_units": 50.0, "unit_cost": 2.0,
    }  # fmt: skip
    curve = report.price_curve(rec, points=301)
    at = np.argmin(np.abs(curve.price - 4.4))
    assert curve.price[at] == pytest.approx(4.4)
    assert curve.units[at] == pytest.approx(50.0)
    assert curve.profit[at] == pytest.approx((4.4 - 2.0) * 50.0)
    # Constant elasticity: 10% above the recommended price sells 1.1 ** -1.8 as much.
    assert np.interp(4.84, curve.price, curve.units) == pytest.approx(50 * 1.1**-1.8, rel=1e-3)
    with pytest.raises(report.ReportError, match="P1 has no demand estimate: hold"):
        report.price_curve({**rec, "expected_units": None, "reason": "hold 4.00: invalid input"})


def test_hold_reasons_group_products_by_reason_without_their_figures():
    recs = pl.DataFrame(
        {
            "action": ["hold", "hold", "hold", "increase"],
            "reason": [
                "hold 4.99: cold start: 30 days of history (minimum 90); pooled ...",
                "hold 2.49: cold start: 12 days of history (minimum 90); pooled ...",
                "hold 3.99: forecast lost to seasonal-naive in the backtest (WAPE 0.4 vs 0.3)",
                "raise 1.99 -> 2.19 (+10.1%): ...",
            ],
        }
    )
    assert hold_reasons(recs).rows() == [
        ("cold start", 2),
        ("forecast lost to seasonal-naive in the backtest", 1),
    ]


@pytest.mark.slow
def test_backtest_compares_the_runs_forecasts_with_sales_at_the_price_paid(replayed_night):
    path, summary = replayed_night
    frame = report.backtest(path)
    assert set(frame["run_id"]) == {summary["run_id"]}
    assert frame["ds"].min() == dt.date.fromisoformat(summary["as_of"])
    assert frame["ds"].n_unique() == 14
    raw = wh.query_readonly(
        path,
        "select f.product_id, f.ds, f.units_mean, f.price, s.price as paid, r.elasticity "
        "from forecasts f join sales s using (product_id, ds) "
        "join recommendations r using (run_id, product_id) where not s.stockout",
    )
    joined = frame.join(raw, on=["product_id", "ds"])
    expected = joined["units_mean"] * (joined["paid"] / joined["price"]) ** joined["elasticity"]
    assert np.allclose(joined["forecast"], expected)
    assert 0 < report.wape(frame) < 1.5


@pytest.mark.slow
def test_report_is_one_html_file_with_three_embedded_plots(replayed_night):
    path, _ = replayed_night
    target = report.write_report(path)
    assert target.parent == path.parent / "reports"
    page = target.read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3
    assert "Forecast against actuals" in page and "WAPE" in page
    assert "Holds by reason" in page and "Largest expected profit changes" in page


def test_report_without_a_nightly_run_says_what_to_run(tmp_path):
    world = synth.generate_world(n_products=3, n_days=60, seed=0)
    wh.write_inputs(tmp_path / "p.duckdb", world.products, world.sales)
    with pytest.raises(report.ReportError, match="run `pricing nightly` first"):
        report.write_report(tmp_path / "p.duckdb")


@pytest.mark.slow
def test_product_plot_is_a_png(replayed_night, tmp_path):
    path, _ = replayed_night
    product = wh.query_readonly(path, "select product_id from latest_recommendations")[0, 0]
    target = report.write_product_plot(path, product, tmp_path / "one.png")
    data = target.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 20_000
    with pytest.raises(report.ReportError, match="no recommendation"):
        report.write_product_plot(path, "NOPE", tmp_path / "none.png")


@pytest.mark.slow
def test_reports_and_evaluate_read_the_snapshot_while_a_writer_holds_the_warehouse(
    replayed_night, tmp_path, write_lock_holder, monkeypatch
):
    # Another process holds the warehouse's write lock (as a nightly run does while it writes):
    # the main file cannot be opened at all, so these must read the analysts' snapshot.
    path, _ = replayed_night
    with write_lock_holder(path):
        with pytest.raises(wh.WarehouseError), wh.connect(path, True, lock_timeout_s=0.5):
            pass  # the main file is locked
        opened: list[str] = []
        real_connect = connection.duckdb.connect

        def recorded_connect(database: str, *args, **kwargs):
            opened.append(str(database))
            return real_connect(database, *args, **kwargs)

        monkeypatch.setattr(connection.duckdb, "connect", recorded_connect)
        assert report.write_report(path, tmp_path).is_file()
        product = wh.query_readonly(wh.analyst_path(path), _FIRST_PRODUCT)[0, 0]
        assert report.write_product_plot(path, product, tmp_path / "one.png").is_file()
        print_evaluation(path, None)
    # Everything read the analysts' snapshot; nothing tried (and waited for) the locked file.
    assert opened and set(opened) == {str(wh.analyst_path(path))}
