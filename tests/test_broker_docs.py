"""docs/brokers.md's capabilities table is the adapters' `capabilities` records, as bench/broker_matrix.py prints them."""
import json
from pathlib import Path

from bench.broker_matrix import ROW_LABELS, adapter_classes, capabilities_table

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "brokers.md"
START, END = "<!-- capabilities:start -->", "<!-- capabilities:end -->"


def test_the_brokers_page_holds_exactly_the_table_the_adapters_capabilities_generate():
    text = PAGE.read_text()
    assert text.count(START) == 1 and text.count(END) == 1, f"{PAGE.name} needs one {START} and one {END}"
    pasted = text.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    assert pasted == capabilities_table(), (
        "docs/brokers.md is out of step with the adapters: paste the output of "
        "`.venv/bin/python bench/broker_matrix.py` between the markers")


def test_the_table_has_a_column_per_broker_kind_and_a_row_per_capability():
    header, _, *rows = capabilities_table().splitlines()
    assert header.count("|") == len(adapter_classes()) + 2 == 6
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == list(ROW_LABELS.values())


def test_the_measured_section_is_the_one_generated_from_the_last_runs_json():
    from bench.comparison.report import END as MEASURED_END, RESULTS, START as MEASURED_START, measured_section

    text = PAGE.read_text()
    assert text.count(MEASURED_START) == 1 and text.count(MEASURED_END) == 1
    pasted = text.split(MEASURED_START, 1)[1].split(MEASURED_END, 1)[0].strip("\n") + "\n"
    results = json.loads(RESULTS.read_text())
    assert pasted == measured_section(results), (
        "docs/brokers.md's Measured section is out of step with docs/brokers-comparison.json: "
        "run `.venv/bin/python manage.py brokers docs`")
    assert results["run_id"][:12] in pasted and results["started_at"] in pasted


def test_every_claim_of_the_lesson_has_a_verdict_and_no_emulator_figure_is_quoted_as_sqs():
    from bench.comparison.report import claims

    results = json.loads((ROOT / "docs" / "brokers-comparison.json").read_text())
    verdicts = claims(results)
    assert len(verdicts) == 5
    for claim, verdict, why in verdicts:
        assert verdict.split(" (")[0].split(",")[0] in {"confirmed", "contradicted", "not measurable here",
                                                        "partly confirmed"}, (claim, verdict)
        assert why
    [scaling] = [why for claim, _, why in verdicts if claim.startswith("SQS scales")]
    assert "nearly unlimited" in scaling and "300" in scaling and "3,000" in scaling
    sqs = results["brokers"].get("sqs", {})
    for figure in (sqs.get("steps", {}).get("consumers_1", {}).get("msg_s"), sqs.get("steps", {}).get("publish", {}).get("relay_msg_s")):
        if figure is not None:
            assert f"{figure:,}" not in scaling
