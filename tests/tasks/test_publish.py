"""The run artifact's metric tables: percent, and the header says so (the catalog keeps fractions)."""

from __future__ import annotations

from tasks.publish import metrics_markdown


def test_metric_tables_show_percent_and_say_so() -> None:
    md = metrics_markdown([{"label": "MOT17/train", "preset": "mot17", "run_id": "r1",
                            "rows": [{"sequence": "COMBINED", "HOTA": 0.51234, "MOTA": 0.6, "IDF1": 0.7049,
                                      "IDSW": 3, "FP": 10, "FN": 20}]}])
    lines = md.splitlines()
    assert lines[0] == "### MOT17/train (mot17) — catalog run `r1`"
    assert "| sequence | HOTA % | MOTA % | IDF1 % | IDSW | FP | FN |" in lines
    assert "| COMBINED | 51.2 | 60.0 | 70.5 | 3 | 10 | 20 |" in lines
