import pytest

from privacy import PIIConfig, PIIDetector
from privacy.pii.recognizers.cn_person import CnPersonRecognizer
from tests.privacy.pii.conftest import SpansOf


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("您好，我是张伟，想问一下订单", ["张伟"]),
        ("我叫石丹丹，上周买的耳机坏了", ["石丹丹"]),
        ("开户人李秀英，麻烦退款", ["李秀英"]),
        ("联系人马云", ["马云"]),  # jieba segments 联系/人马/云
        ("收件人欧阳娜娜，请尽快发货", ["欧阳娜娜"]),  # compound surname
        ("姚玉兰先生您好，快递已签收", ["姚玉兰"]),
        ("您好杨先生", ["杨"]),  # surname before an honorific
        ("麻烦转告王玉兰，发票开好了", ["王玉兰"]),
        ("联系人：王想。", ["王想"]),
        ("帮陈洋查一下物流", ["陈洋"]),  # jieba glues the name to the verb: 陈洋查
        ("帮韩建军查一下物流", ["韩建军"]),  # split: 韩/建军
        ("陈红梅说东西坏了", ["陈红梅"]),  # split, and 红梅 alone is a dictionary name
        ("张平的订单一直没发", ["张平"]),  # jieba glues the particle: 张平的
        ("您好，欧阳瑞在吗", ["欧阳瑞"]),
        # negative rows
        ("华为荣耀手机屏幕坏了", []),  # brands tagged nr by jieba
        ("银行卡退款多久到账", []),
        ("谢谢，我想问一下什么时候发货", []),
        ("张江路的门店几点关门", []),
        ("我是从北京来的", []),  # 从 is a surname, 北京 is not a given name
        ("黄金首饰怎么保养", []),
        ("项目经理说明天发货", []),
        ("钱退回这张卡", []),
        ("江小白一箱", []),  # starts inside a deny-listed brand
        ("这是全国统一价", []),  # 全 is a surname but an everyday word first
        ("向东走两百米就到", []),
    ],
)
def test_cn_person_table(zh_spans: SpansOf, text: str, expected: list[str]) -> None:
    assert zh_spans(text, "PERSON") == expected


def test_cn_person_when_allow_and_deny_names_configured_then_applied() -> None:
    detector = PIIDetector.create(
        PIIConfig(languages=("zh",), allow_names=("欧阳娜娜", "小米"), deny_names=("张伟",))
    )
    text = "我是张伟，小米的朋友，收件人欧阳娜娜"

    spans = [
        (text[e.start : e.end], e.score)
        for e in detector.analyze(text, lang="zh")
        if e.type == "PERSON"
    ]

    assert ("欧阳娜娜", 1.0) in spans
    assert ("小米", 1.0) in spans  # allow wins over the packaged deny list
    assert all(name != "张伟" for name, _ in spans)


def test_cn_person_without_tokens_still_uses_cues() -> None:
    recognizer = CnPersonRecognizer()

    results = recognizer.analyze("收件人李秀英，您好王先生", ["PERSON"], nlp_artifacts=None)

    assert sorted((r.start, r.end) for r in results) == [(3, 6), (9, 10)]


def test_cn_person_scores_grade_the_evidence(detector) -> None:
    def score(text: str) -> float:
        (entity,) = [e for e in detector.analyze(text, lang="zh") if e.type == "PERSON"]
        return entity.score

    assert score("收件人李秀英") > score("我是张伟") >= 0.5
