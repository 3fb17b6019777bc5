from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from client.convert import DEFAULT_CNY_RATES
from client.errors import InputFileError
from client.readers import (
    RawRecord,
    format_validation_error,
    line_problem,
    parse_record,
    read_csv,
    read_jsonl,
    reader_for,
)
from client.schemas import CustomerRef, EventLine, MessageLabels, MessageLine
from models import Channel, EventType

from .edge_factories import NOW, PHONE

HEADER = "kind,event_id,type,channel,ts,customer.phone,category,amount,currency,session_id\n"
TS = "2026-10-30T20:00:00+08:00"


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _records(path: Path) -> list[RawRecord]:
    return list(read_csv(path))


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_read_jsonl_when_bom_or_gbk_then_utf8_payloads(tmp_path: Path, encoding: str) -> None:
    path = _write(tmp_path / "in.jsonl", '{"category": "数码"}\n\n{"a": 1}\n', encoding)

    records = list(read_jsonl(path))

    assert [r.number for r in records] == [1, 3]
    assert records[0].payload == '{"category": "数码"}'.encode()


# ------------------------------------------------------------------ CSV
def test_read_csv_when_rows_then_payloads_with_customer_and_without_empty_cells(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path / "in.csv",
        HEADER
        + f"event,e1,purchase,web,{TS},{PHONE},数码,12.5,usd,s1\n"
        + f"event,e2,page_view,app,{TS},{PHONE},,,,\n",
    )

    first, second = _records(path)

    assert first.number == 2 and second.number == 3
    assert first.payload == {
        "kind": "event",
        "event_id": "e1",
        "type": "purchase",
        "channel": "web",
        "ts": TS,
        "customer": {"phone": PHONE},
        "category": "数码",
        "amount": "12.5",
        "currency": "USD",
        "session_id": "s1",
    }
    assert set(second.payload) == {"kind", "event_id", "type", "channel", "ts", "customer"}
    assert isinstance(parse_record(first), EventLine)


def test_read_csv_when_bare_identifier_columns_and_no_kind_then_kind_from_id_column(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path / "in.csv",
        "Message_ID,Channel,TS,Phone,Email,Text\n"
        f"m1,app,{TS},{PHONE},li@example.com,你好\n"
        f"m2,app,{TS},,li@example.com,在吗\n",
    )

    first, second = _records(path)

    assert first.payload["kind"] == "message"
    assert first.payload["customer"] == {"phone": PHONE, "email": "li@example.com"}
    assert second.payload["customer"] == {"email": "li@example.com"}


def test_read_csv_when_quoted_cell_spans_lines_then_number_of_first_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "in.csv",
        "kind,message_id,channel,ts,phone,text\r\n"
        f'message,m1,app,{TS},{PHONE},"第一行\r\n第二行, 还有逗号"\r\n'
        "\r\n"
        f"message,m2,app,{TS},{PHONE},ok\r\n",
    )

    first, second = _records(path)

    assert (first.number, second.number) == (2, 5)
    assert first.payload["text"] == "第一行\r\n第二行, 还有逗号"
    assert first.text is not None and first.text.startswith("message,m1")
    assert second.offset == path.stat().st_size


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (f"event,e1,page_view,web,{TS},{PHONE},,,", "row has 9 cells; the header has 10"),
        (f"event,e1,page_view,web,{TS},{PHONE},,,,,x", "row has 11 cells"),
    ],
)
def test_read_csv_when_row_has_wrong_cell_count_then_problem_without_values(
    tmp_path: Path, row: str, problem: str
) -> None:
    path = _write(tmp_path / "in.csv", HEADER + row + "\n")

    [record] = _records(path)

    assert record.problem is not None and record.problem.startswith(problem)
    assert PHONE not in record.problem
    assert record.raw == row  # the quarantine keeps the raw row


def test_read_csv_when_value_under_unnamed_column_then_problem(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "in.csv",
        f"kind,event_id,type,channel,ts,phone,\nevent,e1,login,web,{TS},{PHONE},\n"
        f"event,e2,login,web,{TS},{PHONE},{PHONE}\n",
    )

    ok, bad = _records(path)

    assert ok.problem is None
    assert bad.problem == "column 7: a value under a column without a name"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("kind,event_id,colour\n", "unknown column(s) colour"),
        (f"kind,event_id,{PHONE}\n", "unknown column(s) <column 3>"),
        ("kind,phone,customer.phone\n", "column customer.phone appears twice"),
        ("kind,customer.shoe\n", "unknown column(s) customer.shoe"),
    ],
)
def test_read_csv_when_header_unusable_then_input_file_error_without_cell_values(
    tmp_path: Path, header: str, message: str
) -> None:
    path = _write(tmp_path / "in.csv", header + "event,e1,x\n")

    with pytest.raises(InputFileError, match="line 1: ") as info:
        _records(path)

    assert message in str(info.value)
    assert PHONE not in str(info.value)


def test_read_csv_when_quote_malformed_then_problem_and_later_rows_read(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "in.csv",
        "kind,event_id,type,channel,ts,phone\n"
        f'event,e1,login,web,{TS},"{PHONE}"x\n'
        f"event,e2,login,web,{TS},{PHONE}\n",
    )

    bad, ok = _records(path)

    assert bad.number == 2 and bad.problem == "malformed CSV quoting"
    assert ok.number == 3 and ok.problem is None


def test_read_csv_when_gbk_file_then_chinese_decoded(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "in.csv", HEADER + f"event,e1,page_view,web,{TS},{PHONE},数码家电,,,\n", "gbk"
    )

    [record] = _records(path)

    assert isinstance(record.payload, dict) and record.payload["category"] == "数码家电"


def test_read_csv_when_empty_or_header_only_then_no_records(tmp_path: Path) -> None:
    assert _records(_write(tmp_path / "a.csv", "")) == []
    assert _records(_write(tmp_path / "b.csv", HEADER)) == []


def test_reader_for_when_csv_then_registered(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.CSV", HEADER)

    assert reader_for(path) is read_csv


def test_format_validation_error_when_csv_cell_holds_pii_then_not_echoed(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "in.csv",
        "kind,event_id,type,channel,ts,phone,amount,rating\n"
        f"event,e1,{PHONE},{PHONE},{PHONE},{PHONE},{PHONE}x,{PHONE}\n",
    )
    [record] = _records(path)

    with pytest.raises(ValidationError) as info:
        parse_record(record)

    text = format_validation_error(info.value, limit=10)
    assert "type:" in text and "amount:" in text
    assert PHONE not in text


# ------------------------------------------------------------------ cleaning rules
def _event(type: EventType, amount: float | None, currency: str = "CNY") -> EventLine:
    return EventLine.model_construct(
        kind="event",
        event_id="e1",
        type=type,
        channel=Channel.WEB,
        ts=NOW - timedelta(days=1),
        customer=CustomerRef(phone=PHONE),
        category=None,
        amount=amount,
        currency=currency,
        session_id=None,
        rating=None,
    )


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (_event(EventType.PURCHASE, 10.0), None),
        (_event(EventType.REFUND, -10.0), None),
        (_event(EventType.PURCHASE, -10.0), "amount: negative amounts are only allowed on refund"),
        (_event(EventType.COUPON_USE, -1.0), "amount: negative amounts are only allowed on refund"),
        (_event(EventType.PURCHASE, 10.0, "USD"), None),
        (_event(EventType.PURCHASE, 10.0, "XYZ"), "currency: no conversion rate to CNY"),
        (_event(EventType.PAGE_VIEW, None, "ZZZ"), "currency: no conversion rate to CNY"),
    ],
)
def test_line_problem_when_amounts_and_currencies_then_money_rules(
    line: EventLine, problem: str | None
) -> None:
    now = NOW.timestamp()

    found = line_problem(line, ts=now - 60, now=now, rates=DEFAULT_CNY_RATES)

    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem)
        assert "XYZ" not in found and "ZZZ" not in found  # the known codes are listed instead


def test_line_problem_when_custom_rates_then_only_those_currencies() -> None:
    now = NOW.timestamp()
    line = _event(EventType.PURCHASE, 10.0, "USD")

    assert line_problem(line, ts=now, now=now, rates={"EUR": 8.0}) is not None
    assert line_problem(_event(EventType.PURCHASE, 1.0), ts=now, now=now, rates={}) is None


def test_read_csv_when_label_columns_then_a_labels_object_in_english_or_chinese(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path / "in.csv",
        "message_id,channel,ts,phone,text,labels.intent,emotion,Urgency\n"
        f"m1,desk,{TS},{PHONE},东西坏了,投诉,negative,紧急\n"
        f"m2,desk,{TS},{PHONE},在吗,,,\n",
    )

    first, second = _records(path)
    parsed = [parse_record(r) for r in (first, second)]

    assert first.payload["labels"] == {"intent": "投诉", "emotion": "negative", "urgency": "紧急"}
    assert "labels" not in second.payload
    message = parsed[0]
    assert isinstance(message, MessageLine) and message.labels is not None
    assert message.labels.present() == {
        "intent": "complaint",
        "emotion": "negative",
        "urgency": "urgent",
    }


@pytest.mark.parametrize(
    ("labels", "accepted"),
    [
        ({"intent": "退换", "urgency": "low"}, {"intent": "return", "urgency": "low"}),
        ({"emotion": "Positive"}, {"emotion": "positive"}),
        ({"intent": "refund-please"}, None),
        ({"urgency": "asap"}, None),
    ],
)
def test_message_labels_when_known_then_canonical_else_refused_naming_the_choices(
    labels: dict[str, str], accepted: dict[str, str] | None
) -> None:
    if accepted is not None:
        assert MessageLabels(**labels).present() == accepted
        return
    with pytest.raises(ValidationError) as caught:
        MessageLabels(**labels)
    message = str(caught.value)
    assert "use one of" in message
