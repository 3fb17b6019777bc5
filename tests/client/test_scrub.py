import json

import pytest
import typer
from typer.testing import CliRunner

from client.scrub import EXIT_LINES_REJECTED, ScrubLineResult, scrub_command, scrub_stream
from privacy import PIIConfig, PIIDetector

PHONE = "13812345678"
ID_NUMBER = "11010519900307451X"


@pytest.fixture(scope="module")
def detector() -> PIIDetector:
    return PIIDetector.create(PIIConfig())


@pytest.fixture
def app() -> typer.Typer:
    cli = typer.Typer()
    cli.command()(scrub_command)
    return cli


@pytest.fixture
def reuse_detector(detector: PIIDetector, monkeypatch) -> None:
    """Let the command reuse the module's detector instead of building one per invocation."""
    monkeypatch.setattr(PIIDetector, "create", classmethod(lambda cls, config=None: detector))


def _line(**fields) -> str:
    return json.dumps(fields, ensure_ascii=False)


def test_scrub_stream_masks_text_and_passes_other_keys(detector: PIIDetector) -> None:
    lines = [_line(id=7, text=f"手机{PHONE}", channel="web", nested={"a": [1, 2]})]

    (result,) = scrub_stream(lines, detector=detector, lang="zh")

    assert result.ok and result.line_no == 1
    assert result.record == {
        "id": 7,
        "text": "手机<CN_MOBILE>",
        "channel": "web",
        "nested": {"a": [1, 2]},
        "entities": [{"type": "CN_MOBILE", "start": 2, "end": 13, "score": 0.95}],
    }


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json " + PHONE, "not valid JSON"),
        ('["text"]', "not a JSON object"),
        ('{"text": 5}', "missing string field 'text'"),
        ('{"body": "手机' + PHONE + '"}', "missing string field 'text'"),
        ('{"text": "' + PHONE, "not valid JSON"),
    ],
)
def test_scrub_stream_bad_line_gives_numbered_error_without_content(
    detector: PIIDetector, line: str, reason: str
) -> None:
    results = list(scrub_stream([_line(text="ok"), line], detector=detector, lang="zh"))

    assert results[1] == ScrubLineResult(line_no=2, record=None, error=reason)
    assert PHONE not in reason


def test_scrub_stream_keeps_order_across_batches_and_skips_blank_lines(
    detector: PIIDetector,
) -> None:
    lines = [_line(text=f"第{i}条，手机{PHONE}") for i in range(7)]
    lines.insert(3, "oops")
    lines.insert(5, "   \n")

    results = list(scrub_stream(lines, detector=detector, lang="zh", batch_size=2))

    assert [r.line_no for r in results] == [1, 2, 3, 4, 5, 7, 8, 9]
    assert [r.ok for r in results] == [True, True, True, False, True, True, True, True]
    assert all(PHONE not in r.to_json() for r in results if r.ok)


def test_scrub_stream_when_batch_size_invalid_then_value_error(detector: PIIDetector) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        list(scrub_stream([], detector=detector, lang="zh", batch_size=0))


def test_to_json_of_rejected_line_raises() -> None:
    with pytest.raises(ValueError, match="line 3"):
        ScrubLineResult(line_no=3, record=None, error="not valid JSON").to_json()


def test_scrub_command_round_trip_with_a_bad_line(app: typer.Typer) -> None:
    stdin = "\n".join(
        [
            _line(id=1, text=f"我是张伟，手机{PHONE}"),
            "{broken " + ID_NUMBER,
            _line(id=3, text=f"身份证{ID_NUMBER}"),
        ]
    )

    result = CliRunner().invoke(app, ["--lang", "zh"], input=stdin)

    assert result.exit_code == EXIT_LINES_REJECTED
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == [1, 3]
    assert out[0]["text"] == "我是<PERSON>，手机<CN_MOBILE>"
    assert out[1]["text"] == "身份证<CN_ID_CARD>"
    assert result.stderr.strip() == "line 2: not valid JSON"
    assert PHONE not in result.output and ID_NUMBER not in result.output


def test_scrub_command_all_good_exits_zero_in_english(app: typer.Typer, reuse_detector) -> None:
    stdin = _line(text="call me at 212-555-0199") + "\n" + _line(text="thanks") + "\n"

    result = CliRunner().invoke(app, ["--lang", "en"], input=stdin)

    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == [
        "call me at <PHONE_NUMBER>",
        "thanks",
    ]
    assert result.stderr == ""


def test_scrub_command_json_errors(app: typer.Typer, reuse_detector) -> None:
    result = CliRunner().invoke(app, ["--json-errors"], input='{"text": "ok"}\n[1]\n')

    assert result.exit_code == EXIT_LINES_REJECTED
    assert json.loads(result.stderr) == {"line": 2, "reason": "not a JSON object"}


def test_scrub_command_when_lang_unknown_then_usage_error(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["--lang", "fr"], input="")

    assert result.exit_code == 2


def test_scrub_command_help_describes_the_contract(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["--help"])

    assert result.exit_code == 0
    assert "stdin" in result.stdout and "--json-errors" in result.stdout


def test_scrub_stream_refuses_lone_surrogates_and_huge_texts_alone(detector: PIIDetector) -> None:
    from client.scrub import MAX_TEXT_CHARS

    lines = [
        _line(id=1, text=f"手机{PHONE}"),
        '{"id": 2, "text": "a\\ud800"}',
        _line(id=3, text="x" * (MAX_TEXT_CHARS + 1)),
        _line(id=4, text="好的"),
    ]

    results = list(scrub_stream(lines, detector=detector, lang="zh"))

    assert [r.ok for r in results] == [True, False, False, True]
    assert "lone surrogate" in (results[1].error or "")
    assert "longer than" in (results[2].error or "")
    assert all(r.to_json().encode("utf-8") for r in results if r.ok)
