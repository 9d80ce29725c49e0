"""docs/brokers.md's capabilities table is the adapters' `capabilities` records, as bench/broker_matrix.py prints them."""
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
