"""VOC XML parsing, image-set lists and numeric COCO ids."""

from __future__ import annotations

import pytest

from human_saliency.errors import DataError
from human_saliency.sources.voc import VOC_CLASSES, VocCue, numeric_id, parse_annotation, read_image_set, read_twins

GOOD_XML = """<annotation>
  <folder>VOC2012</folder>
  <filename>2008_000123.jpg</filename>
  <size><width>500</width><height>375</height><depth>3</depth></size>
  <segmented>0</segmented>
  <object>
    <name>dog</name><pose>Left</pose><truncated>1</truncated><difficult>0</difficult>
    <bndbox><xmin>48</xmin><ymin>240</ymin><xmax>195</xmax><ymax>371</ymax></bndbox>
  </object>
  <object>
    <name>person</name><pose>Unspecified</pose><difficult>1</difficult>
    <bndbox><xmin>8</xmin><ymin>12.4</ymin><xmax>352</xmax><ymax>273.6</ymax></bndbox>
    <part><name>head</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></part>
  </object>
</annotation>
"""


def _write(tmp_path, text, name="a.xml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_voc_classes_are_the_twenty_in_devkit_order():
    assert len(VOC_CLASSES) == 20 == len(set(VOC_CLASSES))
    assert VOC_CLASSES[:3] == ("aeroplane", "bicycle", "bird")
    assert VOC_CLASSES.index("person") == 14 and VOC_CLASSES[-1] == "tvmonitor"


def test_parse_annotation_reads_size_objects_and_flags(tmp_path):
    ann = parse_annotation(_write(tmp_path, GOOD_XML))
    assert (ann.width, ann.height) == (500, 375)
    assert [obj.name for obj in ann.objects] == ["dog", "person"]  # parts are not objects
    dog, person = ann.objects
    assert (dog.xmin, dog.ymin, dog.xmax, dog.ymax) == (48, 240, 195, 371)
    assert dog.truncated and not dog.difficult
    assert person.difficult and not person.truncated  # an absent flag means 0
    assert (person.ymin, person.ymax) == (12, 274)  # fractional coordinates rounded to pixels


def test_planted_cue_is_read_and_absent_means_none(tmp_path):
    cue = "<cue><name>cat</name><bndbox><xmin>60</xmin><ymin>240</ymin><xmax>80</xmax><ymax>260</ymax></bndbox></cue>"
    text = GOOD_XML.replace("<difficult>0</difficult>", f"<difficult>0</difficult>{cue}", 1)
    dog, person = parse_annotation(_write(tmp_path, text)).objects
    assert dog.cue == VocCue("cat", 60, 240, 80, 260)
    assert (dog.xmin, dog.ymin, dog.xmax, dog.ymax) == (48, 240, 195, 371)  # the cue's box is not the object's
    assert person.cue is None
    bad = text.replace("<xmax>80</xmax>", "<xmax>50</xmax>")
    with pytest.raises(DataError, match="cue of dog"):
        parse_annotation(_write(tmp_path, bad, "b.xml"))


def test_read_twins_reads_two_columns_and_rejects_malformed_lines(tmp_path):
    path = _write(tmp_path, "2101_000002 2100_000002\n\n2101_000001 2100_000001\n", "shifted.txt")
    assert read_twins(path) == {"2101_000002": "2100_000002", "2101_000001": "2100_000001"}
    assert read_image_set(path) == ["2101_000001", "2101_000002"]  # the first column is the id, as everywhere
    for text in ("2101_000001\n", "2101_000001 2100_000001\n2101_000001 2100_000003\n"):
        with pytest.raises(DataError, match="shifted.txt:"):
            read_twins(_write(tmp_path, text, "shifted.txt"))


def test_annotation_without_objects_is_valid(tmp_path):
    text = "<annotation><size><width>4</width><height>3</height></size></annotation>"
    assert parse_annotation(_write(tmp_path, text)).objects == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<annotation><size><width>5", "malformed XML"),
        (GOOD_XML.replace("<xmax>195</xmax>", ""), "missing <xmax> in <bndbox>"),
        (GOOD_XML.replace("<name>dog</name>", ""), "missing <name> in <object>"),
        (GOOD_XML.replace("<name>dog</name>", "<name> </name>"), "empty <name>"),
        (GOOD_XML.replace("<xmin>48</xmin>", "<xmin>a48</xmin>"), "<xmin> is not a number"),
        (GOOD_XML.replace("<xmin>48</xmin>", "<xmin>400</xmin>"), "inverted box"),
        (GOOD_XML.replace("<difficult>0<", "<difficult>yes<"), "<difficult> must be 0, 1, true or false"),
        (GOOD_XML.replace("<width>500</width>", "<width>-500</width>"), "size must not be negative"),
        (GOOD_XML.replace("<width>500</width>", "<width>wide</width>"), "<width> is not a number"),
    ],
)
def test_malformed_annotations_are_data_errors_naming_the_file(tmp_path, text, message):
    path = _write(tmp_path, text, name="2008_000999.xml")
    with pytest.raises(DataError, match="2008_000999.xml: ") as info:
        parse_annotation(path)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "size",
    ["", "<size><width>500</width></size>", "<size><width>0</width><height>0</height><depth>3</depth></size>"],
    ids=["no-size", "no-height", "zero-by-zero"],
)
def test_missing_or_zero_size_is_unknown_not_an_error(tmp_path, size):
    text = GOOD_XML.replace("<size><width>500</width><height>375</height><depth>3</depth></size>", size)
    ann = parse_annotation(_write(tmp_path, text))
    assert (ann.width, ann.height) == (None, None)  # the caller takes the decoded image's size
    assert [obj.name for obj in ann.objects] == ["dog", "person"]


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("False", False), ("TRUE", True), (" 1 ", True)])
def test_flags_accept_true_and_false_in_any_case(tmp_path, text, expected):
    ann = parse_annotation(_write(tmp_path, GOOD_XML.replace("<difficult>0<", f"<difficult>{text}<")))
    assert ann.objects[0].difficult is expected


def test_object_without_bndbox_is_set_aside_not_an_error(tmp_path):
    boxless = "<object><name>cat</name><difficult>0</difficult></object>"
    ann = parse_annotation(_write(tmp_path, GOOD_XML.replace("</annotation>", boxless + "</annotation>")))
    assert [obj.name for obj in ann.objects] == ["dog", "person"]
    assert ann.objects_without_box == ("cat",)


def test_missing_annotation_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="nope.xml"):
        parse_annotation(tmp_path / "nope.xml")


def test_read_image_set_dedupes_sorts_and_reads_per_class_lists(tmp_path):
    path = _write(tmp_path, "2009_000002\n2008_000001\n\n2009_000002\n", "trainval.txt")
    assert read_image_set(path) == ["2008_000001", "2009_000002"]
    per_class = _write(tmp_path, "2008_000005  1\n2008_000004 -1\n", "dog_trainval.txt")
    assert read_image_set(per_class) == ["2008_000004", "2008_000005"]
    with pytest.raises(DataError, match="missing.txt: image-set file not found"):
        read_image_set(tmp_path / "missing.txt")


def test_numeric_id_joins_the_digits():
    assert numeric_id("2008_000123") == 2008000123
    assert numeric_id("2100_000007") == 2100000007
    with pytest.raises(DataError, match="'abc' has no digits"):
        numeric_id("abc")
