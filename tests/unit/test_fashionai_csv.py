import pytest

from fashiontag.model.datasets.fashionai_csv import FashionAICsvError, read_label_csv
from fashiontag.taxonomy import DEFAULT_TAXONOMY


def _write(tmp_path, text):
    path = tmp_path / "Annotations" / "label.csv"
    path.parent.mkdir()
    path.write_text(text)
    return path


def test_reads_fashionai_rows_with_values_in_taxonomy_order(tmp_path):
    csv = _write(tmp_path, "Images/collar_design_labels/a.jpg,collar_design_labels,nnynm\n"
                           "Images/sleeve_length_labels/b.jpg,sleeve_length_labels,nnnnnnnny\n")
    records = read_label_csv(csv)
    assert [r.attribute for r in records] == ["collar_design", "sleeve_length"]
    assert DEFAULT_TAXONOMY["collar_design"].values[records[0].value_index] == "Peter Pan"
    assert records[0].maybe == (4,)
    assert records[0].path == tmp_path / "Images/collar_design_labels/a.jpg"
    assert DEFAULT_TAXONOMY["sleeve_length"].values[records[1].value_index] == "Extra Long Sleeves"


@pytest.mark.parametrize("row, message", [
    ("a.jpg,hat_labels,ny", "no attribute maps"),
    ("a.jpg,collar_design_labels,nny", "must be 5 characters"),
    ("a.jpg,collar_design_labels,nyynn", "exactly one 'y'"),
    ("a.jpg,collar_design_labels", "expected 3 columns"),
])
def test_bad_rows_name_file_line_and_problem(tmp_path, row, message):
    csv = _write(tmp_path, row + "\n")
    with pytest.raises(FashionAICsvError, match=message) as info:
        read_label_csv(csv)
    assert "label.csv:1" in str(info.value)
