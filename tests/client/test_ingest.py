from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from client import readers
from client.convert import consent_evidence_hash
from client.errors import InputFileError
from client.ingest import IngestReport, ingest_file
from client.readers import RawRecord, format_validation_error, register_reader
from client.schemas import ConsentLine, InputLine
from client.store import EdgeStore
from consent import ConsentStatus, Purpose
from privacy import IdentifierKind, Pseudonymizer

from .edge_factories import (
    ID_NUMBER,
    KEY,
    NOW,
    PHONE,
    PHONE_2,
    FakeScrubber,
    consent_line,
    event_line,
    message_line,
    write_jsonl,
)


@pytest.fixture()
def store(tmp_path: Path) -> EdgeStore:
    with EdgeStore.for_edge_dir(tmp_path / "edge") as s:
        yield s


def _ingest(store: EdgeStore, path: Path, scrubber: FakeScrubber | None = None) -> IngestReport:
    return ingest_file(
        store=store,
        path=path,
        pseudonymizer=Pseudonymizer(KEY),
        detector=scrubber or FakeScrubber(),
        now=NOW,
    )


def _subject(phone: str = PHONE) -> str:
    return Pseudonymizer(KEY).pseudonym(IdentifierKind.PHONE, phone)


def test_ingest_when_good_lines_then_all_kinds_stored(store: EdgeStore, tmp_path: Path) -> None:
    # Prepare
    ts = datetime(2026, 10, 30, 20, 0, tzinfo=UTC)
    path = write_jsonl(
        tmp_path / "in.jsonl",
        [
            event_line("e1", ts=ts.astimezone(datetime.now().astimezone().tzinfo), category="数码"),
            event_line("e2", type="purchase", amount=99.5, category="女装"),
            message_line("m1", text="请帮我查一下订单"),
            consent_line("c1"),
        ],
    )

    # Execute
    report = _ingest(store, path)

    # Assert
    assert report.accepted == {"event": 2, "message": 1, "consent": 1}
    assert report.total_rejected == 0 and report.errors == []
    events = {e.event_id: e for e in store.iter_events()}
    assert events["e1"].ts == ts.timestamp()
    assert events["e1"].subject == _subject()
    assert (events["e1"].category, events["e2"].category) == ("electronics", "apparel")
    [consent] = store.consent_events()
    assert consent.event.purpose is Purpose.PERSONALIZED_SERVICE
    assert consent.event.status is ConsentStatus.GRANTED
    assert consent.event.occurred_at.tzinfo is not None


def test_ingest_when_bad_lines_then_reported_by_number_without_values(
    store: EdgeStore, tmp_path: Path
) -> None:
    # Prepare: each bad line carries a phone number in the offending place
    rows = [
        event_line("ok1"),
        event_line("bad2", phone="12ab"),  # phone not normalisable
        {**event_line("bad3"), "type": "bought_13812345678"},  # enum, value echoed by pydantic
        {"kind": "event_13812345678"},  # unknown kind
        {**event_line("bad5"), "customer": {"phone": PHONE, "13812345678": 1}},  # odd extra key
        "{not json 13812345678",  # broken JSON
        event_line("bad7", type="purchase"),  # purchase without amount
        event_line("ok8"),
        {**event_line("bad9"), "ts": "13812345678"},  # bad timestamp
        event_line("bad10", ts=NOW + timedelta(days=3)),  # in the future
        consent_line("bad11", purpose="sell_13812345678"),  # unknown purpose
    ]
    path = write_jsonl(tmp_path / "in.jsonl", rows)

    # Execute
    report = _ingest(store, path)

    # Assert
    assert report.accepted["event"] == 2
    assert report.total_rejected == 9
    numbers = [int(e.split(":")[0].removeprefix("line ")) for e in report.errors]
    assert numbers == [2, 3, 4, 5, 6, 7, 9, 10, 11]
    for error in report.errors:
        assert "13812345678" not in error
    assert report.errors[0].startswith("line 2: customer.phone:")
    assert "type:" in report.errors[1]
    assert "unknown kind" in report.errors[2]
    assert "customer.<key>: unexpected field" in report.errors[3]
    assert "invalid JSON" in report.errors[4]
    assert "amount: required" in report.errors[5]
    assert "ts:" in report.errors[6]
    assert "future" in report.errors[7]
    assert report.errors[8].startswith("line 11: purpose: not a registered purpose")


def test_ingest_when_rejected_then_quarantined_with_raw_line_mode_0600(
    store: EdgeStore, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [event_line("ok"), event_line("bad", phone="12ab")])

    report = _ingest(store, path)

    quarantine = Path(report.quarantine or "")
    assert quarantine == store.path.parent / "quarantine.jsonl"
    assert stat.S_IMODE(quarantine.stat().st_mode) == 0o600
    [record] = [json.loads(line) for line in quarantine.read_text(encoding="utf-8").splitlines()]
    assert record["line"] == 2 and record["reason"].startswith("customer.phone")
    assert json.loads(record["raw"])["event_id"] == "bad"


def test_ingest_when_blank_lines_then_skipped_and_numbers_kept(
    store: EdgeStore, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", ["", event_line("a"), "   ", "{bad"])

    report = _ingest(store, path)

    assert report.lines == 2 and report.accepted["event"] == 1
    assert report.errors[0].startswith("line 4:")
    assert report.rejected["unknown"] == 1


def test_ingest_when_same_file_twice_then_duplicates_counted(
    store: EdgeStore, tmp_path: Path
) -> None:
    rows = [event_line("e1"), event_line("e1"), message_line("m1"), consent_line("c1")]
    path = write_jsonl(tmp_path / "in.jsonl", rows)

    first = _ingest(store, path)
    second = _ingest(store, path)

    assert first.accepted == {"event": 1, "message": 1, "consent": 1}
    assert first.duplicates == {"event": 1, "message": 0, "consent": 0}
    assert second.accepted == {"event": 0, "message": 0, "consent": 0}
    assert second.duplicates == {"event": 2, "message": 1, "consent": 1}
    assert store.count("events") == 1


def test_ingest_when_messages_hold_pii_then_store_holds_only_masked_text(
    store: EdgeStore, tmp_path: Path
) -> None:
    # Prepare
    texts = [f"我的手机号是{PHONE_2}，身份证{ID_NUMBER}", "my mail is wang.fang@example.org", "无"]
    rows = [
        message_line(f"m{i}", text=t, lang="en" if "mail" in t else "zh")
        for i, t in enumerate(texts)
    ]
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    scrubber = FakeScrubber()

    # Execute
    report = _ingest(store, path, scrubber)

    # Assert
    assert report.entities_masked == {"CN_ID_CARD": 1, "CN_MOBILE": 1, "EMAIL_ADDRESS": 1}
    assert sorted(lang for _, lang in scrubber.calls) == ["en", "zh"]
    stored = list(store.iter_messages())
    assert len(stored) == 3
    raw_db = store.path.read_bytes() + Path(str(store.path) + "-wal").read_bytes()
    for secret in (PHONE_2, ID_NUMBER, "wang.fang@example.org"):
        assert all(secret not in m.masked_text for m in stored)
        assert secret.encode() not in raw_db
        assert PHONE.encode() not in raw_db  # the customer's identifier is never stored either
    assert stored[0].entity_counts == {"CN_ID_CARD": 1, "CN_MOBILE": 1}


def test_ingest_when_consent_line_then_evidence_hash_from_pseudonymous_canonical_form(
    store: EdgeStore, tmp_path: Path
) -> None:
    row = consent_line("c9", purpose="marketing", status="withdrawn", ts=NOW - timedelta(hours=3))
    path = write_jsonl(tmp_path / "in.jsonl", [row])

    _ingest(store, path)

    [stored] = store.consent_events()
    line = TypeAdapter(InputLine).validate_python(row)
    assert isinstance(line, ConsentLine)
    assert stored.consent_id == "c9"
    assert stored.event.evidence_hash == consent_evidence_hash(line, _subject())
    assert stored.event.status is ConsentStatus.WITHDRAWN
    other = consent_evidence_hash(line, _subject(PHONE_2))
    assert other != stored.event.evidence_hash


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("events.txt", "unsupported file type"),
        ("events.xlsx", "unsupported file type"),
        ("missing.jsonl", "no such file"),
    ],
)
def test_ingest_when_file_unusable_then_input_file_error(
    store: EdgeStore, tmp_path: Path, name: str, message: str
) -> None:
    path = tmp_path / name
    if not name.startswith("missing"):
        path.write_text("x\n", encoding="utf-8")

    with pytest.raises(InputFileError, match=message):
        _ingest(store, path)


def test_ingest_when_progress_given_then_reaches_total(store: EdgeStore, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [event_line(f"e{i}") for i in range(10)])
    seen: list[tuple[int, int]] = []

    ingest_file(
        store=store,
        path=path,
        pseudonymizer=Pseudonymizer(KEY),
        detector=FakeScrubber(),
        progress=lambda done, total: seen.append((done, total)),
        now=NOW,
    )

    size = path.stat().st_size
    assert seen[-1] == (size, size)


@pytest.mark.parametrize(
    "payload",
    [
        {"kind": "x13812345678"},
        {**event_line(), "channel": "13812345678"},
        {**event_line(), "rating": "13812345678"},
        {**event_line(), "amount": 13812345678.0},
        {**event_line(), "currency": "13812345678"},
        {**event_line(), "event_id": ""},
        {**event_line(), "customer": "13812345678"},
        {**message_line(), "lang": "x13812345678"},
    ],
)
def test_format_validation_error_when_value_holds_pii_then_not_echoed(payload: dict) -> None:
    with pytest.raises(ValidationError) as info:
        TypeAdapter(InputLine).validate_python(payload)

    text = format_validation_error(info.value)

    assert text and "13812345678" not in text


def test_report_merge_when_two_files_then_counts_add() -> None:
    a = IngestReport(files=["a"], lines=2, errors=["line 1: x"])
    a.accepted["event"] = 2
    b = IngestReport(files=["b"], lines=3, entities_masked={"CN_MOBILE": 2})
    b.rejected["message"] = 1

    a.merge(b)

    assert a.files == ["a", "b"] and a.lines == 5
    assert a.total_accepted == 2 and a.total_rejected == 1
    assert a.to_dict()["entities_masked"] == {"CN_MOBILE": 2}


def test_ingest_with_real_detector_when_available_then_pii_masked(
    store: EdgeStore, tmp_path: Path
) -> None:
    detector_module = pytest.importorskip("privacy.pii.detector")
    from privacy import PIIConfig

    detector = detector_module.PIIDetector.create(PIIConfig())
    path = write_jsonl(
        tmp_path / "in.jsonl", [message_line("m1", text=f"我的手机号是{PHONE_2}，请回电")]
    )

    report = ingest_file(
        store=store, path=path, pseudonymizer=Pseudonymizer(KEY), detector=detector, now=NOW
    )

    [message] = list(store.iter_messages())
    assert report.accepted["message"] == 1
    assert PHONE_2 not in message.masked_text
    assert sum(message.entity_counts.values()) >= 1


def test_ingest_when_scrubber_fails_then_no_message_stored_and_rest_kept(
    store: EdgeStore, tmp_path: Path
) -> None:
    from client.errors import ScrubberUnavailableError

    class BrokenScrubber:
        def scrub_many(self, texts, *, lang):
            raise ScrubberUnavailableError("detector missing")

    path = write_jsonl(
        tmp_path / "in.jsonl",
        [
            event_line("e1"),
            message_line("m1", text=f"call {PHONE_2}"),
            event_line("bad", phone="12ab"),
            consent_line("c1"),
        ],
    )

    with pytest.raises(ScrubberUnavailableError):
        ingest_file(
            store=store,
            path=path,
            pseudonymizer=Pseudonymizer(KEY),
            detector=BrokenScrubber(),
            now=NOW,
        )

    assert store.count("messages") == 0
    assert store.count("events") == 1 and store.count("consents") == 1
    assert (store.path.parent / "quarantine.jsonl").exists()


def test_ingest_when_debug_logging_then_no_raw_pii_in_logs(
    store: EdgeStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [
        event_line("e1"),
        event_line("bad", phone="12ab" + PHONE_2),
        message_line("m1", text=f"身份证{ID_NUMBER} 手机{PHONE_2}"),
        consent_line("c1"),
    ]
    path = write_jsonl(tmp_path / "in.jsonl", rows)

    with caplog.at_level("DEBUG"):
        report = _ingest(store, path)

    assert report.total_accepted == 3
    for secret in (PHONE, PHONE_2, ID_NUMBER):
        assert secret not in caplog.text
        assert all(secret not in e for e in report.errors)


def test_ingest_when_reader_registered_for_suffix_then_mapping_records_ingested(
    store: EdgeStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: a toy "id|phone" reader yielding mapping payloads, as a CSV reader would
    monkeypatch.setattr(readers, "_READERS", dict(readers._READERS))

    def read_pipe(path: Path) -> Iterator[RawRecord]:
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            event_id, phone = text.split("|")
            yield RawRecord(number, event_line(event_id, phone=phone), offset=0, text=text)

    register_reader(".pipe", read_pipe)
    path = tmp_path / "in.pipe"
    path.write_text(f"e1|{PHONE}\ne2|{PHONE_2}\ne3|12ab\n", encoding="utf-8")

    # Execute
    report = _ingest(store, path)

    # Assert
    assert report.accepted["event"] == 2 and report.rejected["event"] == 1
    quarantined = json.loads((store.path.parent / "quarantine.jsonl").read_text().splitlines()[0])
    assert quarantined["line"] == 3 and quarantined["raw"] == "e3|12ab"


@pytest.mark.parametrize(
    ("suffix", "force", "message"),
    [
        (".jsonl", False, "already registered"),
        ("csv", False, "must look like"),
        (".", True, "must"),
    ],
)
def test_register_reader_when_misused_then_value_error(
    monkeypatch: pytest.MonkeyPatch, suffix: str, force: bool, message: str
) -> None:
    monkeypatch.setattr(readers, "_READERS", dict(readers._READERS))

    with pytest.raises(ValueError, match=message):
        register_reader(suffix, readers.read_jsonl, force=force)


# ------------------------------------------------------------------ CSV input
def _csv(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes("\n".join(lines).encode(encoding) + b"\n")
    return path


TS = "2026-10-30T20:00:00+08:00"


def test_ingest_when_csv_then_counts_quarantine_and_numbers_like_jsonl(
    store: EdgeStore, tmp_path: Path
) -> None:
    # Prepare: one header, good rows of two kinds, a duplicate, bad rows holding a phone
    path = _csv(
        tmp_path / "in.csv",
        [
            "kind,event_id,message_id,type,channel,ts,phone,category,amount,text",
            f"event,e1,,page_view,web,{TS},{PHONE},数码,,",
            f"event,e2,,purchase,web,{TS},{PHONE},女装,99.5,",
            f"message,,m1,,app,{TS},{PHONE},,,你好 {PHONE_2}",
            f"event,e1,,page_view,web,{TS},{PHONE},数码,,",  # duplicate id
            f"event,e3,,purchase,web,{TS},{PHONE},,,",  # purchase without amount
            f"event,e4,,page_view,web,{TS},12ab{PHONE_2},,,",  # malformed phone
            f"event,e5,,page_view,web,{TS},{PHONE}",  # too few cells
        ],
    )

    # Execute
    report = _ingest(store, path)

    # Assert
    assert report.lines == 7
    assert report.accepted == {"event": 2, "message": 1, "consent": 0}
    assert report.duplicates["event"] == 1
    assert report.rejected == {"event": 3, "message": 0, "consent": 0}
    assert [e.split(":")[0] for e in report.errors] == ["line 6", "line 7", "line 8"]
    assert report.errors[0] == "line 6: amount: required for purchase and refund events"
    assert report.errors[2] == "line 8: row has 7 cells; the header has 10"
    for secret in (PHONE, PHONE_2):
        assert all(secret not in e for e in report.errors)
    events = {e.event_id: e for e in store.iter_events()}
    assert (events["e1"].category, events["e2"].category) == ("electronics", "apparel")
    assert events["e2"].subject == _subject()
    [message] = store.iter_messages()
    assert PHONE_2 not in message.masked_text
    quarantined = [json.loads(x) for x in Path(report.quarantine or "").read_text().splitlines()]
    assert [q["line"] for q in quarantined] == [6, 7, 8]
    assert quarantined[0]["raw"] == f"event,e3,,purchase,web,{TS},{PHONE},,,"


def test_ingest_when_csv_in_gbk_then_decoded_and_noted(store: EdgeStore, tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "gbk.csv",
        ["event_id,type,channel,ts,phone,category", f"e1,page_view,web,{TS},{PHONE},数码家电"],
        encoding="gbk",
    )

    report = _ingest(store, path)

    assert report.accepted["event"] == 1
    assert [e.category for e in store.iter_events()] == ["electronics"]
    assert len(report.notes) == 1 and "GB18030" in report.notes[0]
    assert report.to_dict()["notes"] == report.notes


def test_ingest_when_csv_header_unknown_then_input_file_error_and_nothing_stored(
    store: EdgeStore, tmp_path: Path
) -> None:
    path = _csv(tmp_path / "in.csv", ["event_id,mobile", f"e1,{PHONE}"])

    with pytest.raises(InputFileError, match="line 1: unknown column"):
        _ingest(store, path)

    assert store.count("events") == 0


# ------------------------------------------------------------------ money
def test_ingest_when_foreign_currency_then_cny_two_decimals_and_original_kept(
    store: EdgeStore, tmp_path: Path
) -> None:
    rows = [
        event_line("e1", type="purchase", amount=10.005, currency="USD"),
        event_line("e2", type="purchase", amount=19.999),
        event_line("e3", type="refund", amount=100, currency="JPY"),
        event_line("e4", type="purchase", amount=5, currency="XYZ"),
    ]
    path = write_jsonl(tmp_path / "in.jsonl", rows)

    report = _ingest(store, path)

    events = {e.event_id: e for e in store.iter_events()}
    assert events["e1"].amount == 71.64  # 10.005 * 7.16 = 71.6358 -> 71.64
    assert (events["e1"].currency, events["e1"].original_amount) == ("CNY", 10.005)
    assert events["e1"].original_currency == "USD"
    assert events["e2"].amount == 20.0
    assert events["e3"].amount == 4.96 and events["e3"].original_currency == "JPY"
    assert report.rejected["event"] == 1
    assert report.errors[0].startswith("line 4: currency: no conversion rate to CNY")


def test_ingest_when_rates_given_then_used_instead_of_packaged_table(
    store: EdgeStore, tmp_path: Path
) -> None:
    rows = [
        event_line("e1", type="purchase", amount=10, currency="EUR"),
        event_line("e2", type="purchase", amount=10, currency="USD"),
    ]
    path = write_jsonl(tmp_path / "in.jsonl", rows)

    report = ingest_file(
        store=store,
        path=path,
        pseudonymizer=Pseudonymizer(KEY),
        detector=FakeScrubber(),
        now=NOW,
        rates={"EUR": 7.5},
    )

    assert [e.amount for e in store.iter_events()] == [75.0]
    assert report.rejected["event"] == 1


@pytest.mark.parametrize(
    ("rates", "message"), [({"usd": 7.0}, "three capital letters"), ({"USD": 0.0}, "positive")]
)
def test_ingest_when_rates_malformed_then_value_error(
    store: EdgeStore, tmp_path: Path, rates: dict[str, float], message: str
) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [event_line("e1")])

    with pytest.raises(ValueError, match=message):
        ingest_file(
            store=store,
            path=path,
            pseudonymizer=Pseudonymizer(KEY),
            detector=FakeScrubber(),
            now=NOW,
            rates=rates,
        )


def test_ingest_when_negative_amount_not_a_refund_then_rejected(
    store: EdgeStore, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [event_line("e1", type="purchase", amount=-5)])

    report = _ingest(store, path)

    assert report.rejected["event"] == 1 and store.count("events") == 0
    assert report.errors[0].startswith("line 1: amount:")


def test_ingest_when_negative_refund_then_stored_as_size_with_original_sign(
    store: EdgeStore, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [event_line("e1", type="refund", amount=-12.5)])

    _ingest(store, path)

    [event] = store.iter_events()
    assert (event.amount, event.original_amount) == (12.5, -12.5)


def test_ingest_when_placeholder_identifiers_then_rejected_with_reason_and_no_pseudonym(
    store: EdgeStore, tmp_path: Path
) -> None:
    # Prepare: 50 customers who all typed 11111111111, one who gave 10086, one real number
    rows = [event_line("service", phone="10086")]
    rows += [event_line(f"dummy{i}", phone="11111111111") for i in range(50)]
    rows += [event_line("real")]
    path = write_jsonl(tmp_path / "in.jsonl", rows)

    # Execute
    report = _ingest(store, path)

    # Assert: only the real customer is stored; the placeholders merge nobody
    assert report.accepted["event"] == 1
    assert report.total_rejected == 51
    assert report.errors[0].startswith("line 1: customer.phone:")
    assert "short or service number" in report.errors[0]
    assert "placeholder phone number (one digit repeated)" in report.errors[1]
    assert all("11111111111" not in e and "10086" not in e for e in report.errors)
    assert len(store.subjects()) == 1


def test_ingest_when_times_at_the_ends_of_the_range_then_only_those_lines_are_quarantined(
    store: EdgeStore, tmp_path: Path
) -> None:
    # Prepare: good lines around a consent expiring in year 9999 (-12:00) and an event in
    # year 0001 (+14:00): converting either to UTC overflows.
    early = datetime.fromisoformat("0001-01-01T00:00:00+14:00")
    path = write_jsonl(tmp_path / "in.jsonl", [
        event_line("e1"),
        consent_line("c1", expires_at="9999-12-31T23:59:59-12:00"),
        event_line("e2", ts=early),
        consent_line("c2"),
    ])  # fmt: skip

    # Execute
    report = _ingest(store, path)

    # Assert: the whole file is not lost; the two bad lines are reported by number.
    assert report.accepted["event"] == 1 and report.accepted["consent"] == 1
    assert [e.split(":")[0] for e in report.errors] == ["line 2", "line 3"]
    assert all("time out of range" in e for e in report.errors)


def test_ingest_when_a_line_nests_past_the_parsers_limit_then_only_it_is_quarantined(
    store: EdgeStore, tmp_path: Path
) -> None:
    deep = '{"kind": "event", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = write_jsonl(tmp_path / "in.jsonl", [event_line("e1"), deep, event_line("e2")])

    report = _ingest(store, path)

    assert report.accepted["event"] == 2 and report.total_rejected == 1
    assert report.errors[0].startswith("line 2:")
    quarantined = (store.path.parent / "quarantine.jsonl").read_text(encoding="utf-8")
    assert quarantined.count("\n") == 1


def test_ingest_when_one_gbk_line_in_a_utf8_file_then_no_line_turns_to_mojibake(
    store: EdgeStore, tmp_path: Path
) -> None:
    # A UTF-8 export with one line appended by a GBK system (both Chinese).
    utf8 = json.dumps(event_line("e1", category="女装"), ensure_ascii=False).encode("utf-8")
    gbk = json.dumps(event_line("e2", category="数码家电"), ensure_ascii=False).encode("gbk")
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(utf8 + b"\n" + gbk + b"\n" + utf8.replace(b'"e1"', b'"e3"') + b"\n")

    report = _ingest(store, path)

    assert report.accepted["event"] == 3 and report.total_rejected == 0
    categories = {e.event_id: e.category for e in store.iter_events()}
    assert categories == {"e1": "apparel", "e2": "electronics", "e3": "apparel"}
    assert "the others as UTF-8" in report.notes[0]
