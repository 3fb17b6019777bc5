"""Benchmark and evaluation of the edge PII scrubber (run: ``python benchmarks/scrub.py``).

Prints, in one run on one CPU core:

1. detector start-up time (imports, ``PIIDetector.create``);
2. messages/s of ``scrub_many`` on 1,000 generated Chinese messages, next to Presidio's
   plain configuration with the same recognizers on the same messages (spaCy blank ``zh``
   pipeline with jieba's segmenter and a lemma component, the default lemma context
   enhancer, no pre-filter, masking with presidio-anonymizer's ``replace`` operator);
3. span-level precision/recall per entity type (exact span match, plus "overlap" recall:
   any predicted span of the type touching the gold span) on the development set used by
   the tests (A), on set B (other templates; it served one round of name-rule fixes) and
   on set C (templates and fillers written after the rules were frozen).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HELDOUT_ZH_TEMPLATES = {
    "CN_MOBILE": ("麻烦打我手机，{v}", "号码：{v}，白天都在", "加我微信{v}", "你们联系{v}就行"),
    "CN_LANDLINE": ("公司电话{v}转人事", "家里座机是{v}"),
    "CN_ID_CARD": ("实名认证用的是{v}", "身份证号码{v}，核对一下"),
    "CN_BANK_CARD": ("钱退回{v}这张卡", "我的工行卡号码{v}"),
    "EMAIL_ADDRESS": ("回复到我邮箱{v}", "{v}是我的工作邮箱"),
    "IP_ADDRESS": ("异地登录，IP是{v}", "服务器{v}连不上"),
    "PERSON": (
        "{v}的订单一直没发",
        "帮{v}查一下物流",
        "客户{v}反映衣服偏小",
        "请{v}本人签收",
        "{v}说东西坏了",
        "我老公{v}下的单",
        "经办人是{v}",
        "您好，{v}在吗",
    ),
    "CN_ADDRESS": ("新地址{v}", "我家在{v}，麻烦改一下", "包裹放{v}门口就好", "发货地是{v}"),
}
#: Written after the rules were frozen and never used to change them: the fair held-out set.
FRESH_ZH_TEMPLATES = {
    "CN_MOBILE": ("有事发短信到{v}", "紧急联系电话{v}", "手机尾号不对，是{v}", "{v}（本人）"),
    "CN_LANDLINE": ("前台电话{v}", "白天打{v}"),
    "CN_ID_CARD": ("开发票要身份证：{v}", "{v}这个证件号"),
    "CN_BANK_CARD": ("工资卡{v}", "打到{v}这张储蓄卡上"),
    "EMAIL_ADDRESS": ("抄送{v}", "账号绑定的是{v}"),
    "IP_ADDRESS": ("登录记录显示{v}", "来源地址{v}"),
    "PERSON": (
        "{v}的快递到了吗",
        "替{v}问一下",
        "麻烦让{v}回个电话",
        "{v}上周来退过货",
        "下单人：{v}",
        "收款人{v}",
        "我朋友{v}推荐的",
        "是{v}本人",
        "给{v}的包裹",
        "{v}女士的订单",
    ),
    "CN_ADDRESS": ("寄往{v}", "现住址：{v}", "我在{v}上班", "退货寄回{v}", "{v}那边能送吗"),
}
FRESH_ZH_FILLERS = (
    "拆开发现少了配件",
    "颜色和图片不一样",
    "说好的赠品没有",
    "能不能晚两天再送",
    "快递放驿站了",
    "客服态度还可以",
    "我已经申请售后了",
    "尺码偏大一号",
    "618活动的价格",
    "下单时间是晚上11点",
    "商品编号A1029",
    "第一次在你们家买",
    "已经评价过了",
    "能保价吗",
    "请核实后答复",
)

HELDOUT_ZH_FILLERS = (
    "这家店的东西真不错",
    "屏幕有划痕",
    "物流太慢了",
    "我买的是黑色XL码",
    "退款还没收到",
    "能开增值税发票吗",
    "昨天晚上8点下的单",
    "总共花了3560块",
    "你们的售后电话打不通",
    "想换成大一号的",
    "请尽快回复",
    "运单号SF1234567890123",
    "客服小王说会处理",
    "第二次买了",
    "包装破了",
)


def _pin_one_core() -> None:
    """Run on a single CPU core (Linux), as the edge budget assumes."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _plain_presidio(languages: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """Presidio's plain configuration with the same recognizers (see module docstring)."""
    import spacy
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_anonymizer import AnonymizerEngine
    from spacy.language import Language

    from privacy.pii.registry import DEFAULT_RECOGNIZERS, create_recognizer

    if "text_as_lemma" not in Language.factories:

        @Language.component("text_as_lemma")
        def text_as_lemma(doc):  # type: ignore[no-untyped-def]
            for token in doc:
                token.lemma_ = token.lower_
            return doc

    class BlankSpacyNlpEngine(SpacyNlpEngine):  # type: ignore[misc]
        def load(self) -> None:
            self.nlp = {}
            for lang in languages:
                cfg = {"nlp": {"tokenizer": {"segmenter": "jieba"}}} if lang == "zh" else {}
                pipeline = spacy.blank(lang, config=cfg)
                pipeline.add_pipe("text_as_lemma")
                self.nlp[lang] = pipeline

    engine = BlankSpacyNlpEngine(
        models=[{"lang_code": lang, "model_name": f"blank_{lang}"} for lang in languages]
    )
    engine.load()
    recognizers = [
        create_recognizer(name) for lang in languages for name in DEFAULT_RECOGNIZERS[lang]
    ]
    analyzer = AnalyzerEngine(
        registry=RecognizerRegistry(recognizers=recognizers, supported_languages=list(languages)),
        nlp_engine=engine,
        supported_languages=list(languages),
        default_score_threshold=0.35,
    )
    return analyzer, AnonymizerEngine()


def _throughput(texts: list[str], scrub, repeats: int) -> float:  # type: ignore[no-untyped-def]
    """Best messages/s over a few runs."""
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        scrub(texts)
        best = min(best, time.perf_counter() - began)
    return len(texts) / best


def _evaluate(detector, samples, lang: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Span-level figures per entity type."""
    gold_n: Counter[str] = Counter()
    pred_n: Counter[str] = Counter()
    exact: Counter[str] = Counter()
    touched: Counter[str] = Counter()
    for sample in samples:
        predicted = detector.analyze(sample.text, lang=lang)
        pred_set = {(e.type, e.start, e.end) for e in predicted}
        gold_set = {(g.type, g.start, g.end) for g in sample.gold}
        for entity in predicted:
            pred_n[entity.type] += 1
        for g in sample.gold:
            gold_n[g.type] += 1
            exact[g.type] += (g.type, g.start, g.end) in pred_set
            touched[g.type] += any(
                e.type == g.type and e.start < g.end and g.start < e.end for e in predicted
            )
        for key in pred_set & gold_set:
            del key  # counted through ``exact``
    rows = []
    for kind in sorted(set(gold_n) | set(pred_n)):
        recall = exact[kind] / gold_n[kind] if gold_n[kind] else float("nan")
        precision = exact[kind] / pred_n[kind] if pred_n[kind] else float("nan")
        overlap = touched[kind] / gold_n[kind] if gold_n[kind] else float("nan")
        rows.append(
            f"  {kind:17s} gold={gold_n[kind]:4d} pred={pred_n[kind]:4d} "
            f"P={precision:.3f} R={recall:.3f} overlap-R={overlap:.3f}"
        )
    return rows


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    _pin_one_core()

    began = time.perf_counter()
    from privacy import PIIConfig, PIIDetector
    from tests.privacy.pii.factories import ZH_FILLERS, en_samples, zh_samples

    imported = time.perf_counter()
    detector = PIIDetector.create(PIIConfig(languages=("zh", "en")))
    created = time.perf_counter()
    zh_only_began = time.perf_counter()
    PIIDetector.create(PIIConfig(languages=("zh",)))
    zh_only = time.perf_counter() - zh_only_began
    print(
        f"imports {imported - began:.2f} s; PIIDetector.create(zh+en) {created - imported:.2f} s;"
        f" again (zh only, jieba cache warm) {zh_only:.2f} s"
    )

    texts = [s.text for s in zh_samples(args.messages, seed=20260701)]
    mean_len = sum(map(len, texts)) / len(texts)
    detector.scrub_many(texts[:50], lang="zh")
    ours = _throughput(texts, lambda batch: detector.scrub_many(batch, lang="zh"), args.repeats)
    print(f"\n{len(texts)} zh messages (mean {mean_len:.0f} chars), one core:")
    print(f"  fedprofile PIIDetector.scrub_many : {ours:7.0f} msg/s ({1000 / ours:.2f} ms/msg)")

    if not args.no_baseline:
        from presidio_anonymizer.entities import OperatorConfig

        analyzer, anonymizer = _plain_presidio(("zh",))

        def plain(batch: list[str]) -> list[str]:
            out = []
            for text in batch:
                results = analyzer.analyze(text, language="zh", score_threshold=0.35)
                operators = {
                    r.entity_type: OperatorConfig("replace", {"new_value": f"<{r.entity_type}>"})
                    for r in results
                }
                out.append(anonymizer.anonymize(text, results, operators).text)
            return out

        plain(texts[:50])
        baseline = _throughput(texts, plain, args.repeats)
        print(f"  Presidio plain config, same recs  : {baseline:7.0f} msg/s")
        print(f"  speed-up                          : {ours / baseline:7.2f}x")

        # Typical traffic: most customer messages hold no identifier at all.
        rng = random.Random(5)
        pool = ZH_FILLERS + HELDOUT_ZH_FILLERS + FRESH_ZH_FILLERS
        chat = ["，".join(rng.sample(pool, rng.randint(1, 3))) + "。" for _ in texts]
        no_digit = sum(not any(c.isdigit() for c in t) for t in chat)
        ours_chat = _throughput(chat, lambda b: detector.scrub_many(b, lang="zh"), args.repeats)
        plain_chat = _throughput(chat, plain, args.repeats)
        print(f"\n{len(chat)} zh messages without PII ({no_digit} without any digit):")
        print(f"  fedprofile PIIDetector.scrub_many : {ours_chat:7.0f} msg/s")
        print(f"  Presidio plain config, same recs  : {plain_chat:7.0f} msg/s")

    print("\nevaluation, development set (templates the recognizers were tuned on):")
    print("\n".join(_evaluate(detector, zh_samples(600, seed=7), "zh")))
    print("\nevaluation, zh set B (other templates; used for one round of name-rule fixes):")
    heldout = zh_samples(600, seed=4242, templates=HELDOUT_ZH_TEMPLATES, fillers=HELDOUT_ZH_FILLERS)
    print("\n".join(_evaluate(detector, heldout, "zh")))
    print("\nevaluation, zh set C (fresh templates and fillers, never used for tuning):")
    fresh = zh_samples(600, seed=9090, templates=FRESH_ZH_TEMPLATES, fillers=FRESH_ZH_FILLERS)
    print("\n".join(_evaluate(detector, fresh, "zh")))
    print("\nevaluation, en set:")
    print("\n".join(_evaluate(detector, en_samples(600, seed=8), "en")))


if __name__ == "__main__":
    main()
