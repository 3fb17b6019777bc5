"""The console's message catalogue: every label in Chinese and English.

Templates call ``t("key")``; the language comes from ``?lang=zh|en``, else the ``console_lang``
cookie, else the browser's ``Accept-Language`` (Chinese when it prefers ``zh``), else English.
Both languages must define every key (a test checks it); a missing key raises ``KeyError``
rather than showing a raw key to an officer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

Lang = Literal["en", "zh"]
#: Languages the console speaks, in the order the switch shows them.
LANGUAGES: tuple[Lang, ...] = get_args(Lang)
#: Name of the cookie that remembers the chosen language.
LANG_COOKIE = "console_lang"

MESSAGES: dict[Lang, dict[str, str]] = {
    "en": {
        "app.title": "fedprofile compliance console",
        "nav.overview": "Overview",
        "nav.consent": "Consent",
        "nav.requests": "Requests",
        "nav.audit": "Audit",
        "nav.budget": "Privacy budget",
        "nav.identity": "Identity",
        "nav.models": "Models",
        "models.title": "Model versions",
        "models.hint": (
            "Each aggregated round publishes the global model as the next version of its "
            "model; new runs warm-start from the newest version of the same architecture. "
            "ε is the largest cumulative ε an edge reported for the round (the central ε "
            "in central-DP runs)."
        ),
        "models.model": "Model",
        "models.version": "Version",
        "models.run": "Training run",
        "models.round": "Round",
        "models.metrics": "Evaluation",
        "models.created": "Published",
        "models.filter": "Model",
        "models.all": "all models",
        "models.no_guarantee": "no finite guarantee",
        "models.none": "No model version has been published yet.",
        "identity.title": "Persons across channels",
        "identity.persons": "Persons",
        "identity.person": "Person",
        "identity.members": "Pseudonyms",
        "identity.linked": "Linked pseudonyms",
        "identity.reviews": "Pairs to review",
        "identity.reviews.hint": (
            "Probabilistic pairs (keyed encodings of name, birth date, address) the model is "
            "unsure of. Accept: one person; reject: two."
        ),
        "identity.score": "P(match)",
        "identity.accept": "Accept",
        "identity.reject": "Reject",
        "identity.hubs": "Hub tokens",
        "identity.hubs.hint": (
            "Keyed tokens shared by more pseudonyms than the hub limit: they link nobody."
        ),
        "identity.kind": "Identifier kind",
        "identity.token": "Token prefix",
        "identity.shared_by": "Shared by",
        "identity.lookup": "Look up a pseudonym",
        "identity.decisions": "Officers' decisions",
        "identity.decision": "Decision",
        "identity.reason": "Reason",
        "identity.undo": "Undo",
        "identity.undone": "undone",
        "identity.detach": "Split off (detach)",
        "identity.none": "Nothing here yet.",
        "identity.alone": "This pseudonym stands alone.",
        "identity.done": "Done.",
        "nav.logout": "Log out",
        "nav.signed_in_as": "Signed in as",
        "login.title": "Sign in",
        "login.token": "Officer token",
        "login.submit": "Sign in",
        "login.failed": "That token is not valid.",
        "login.hint": "Use the named token your administrator issued to you.",
        "error.forbidden": "Your role may not use the compliance console.",
        "error.forbidden.title": "Access refused",
        "error.csrf": "The form expired; reload the page and try again.",
        "error.not_found": "Not found.",
        "error.bad_input": "The input is not valid.",
        "error.conflict": "That action is not allowed in the request's current state.",
        "overview.title": "Overview",
        "overview.edges": "Edges",
        "overview.edge": "Edge",
        "overview.channel": "Channel",
        "overview.last_seen": "Last seen",
        "overview.quality": "Data quality",
        "overview.quality.ok": "reporting",
        "overview.quality.stale": "stale (> 24 h)",
        "overview.quality.never": "never seen",
        "overview.subjects": "Subjects",
        "overview.coverage": "Consent coverage per purpose",
        "overview.purpose": "Purpose",
        "overview.granted": "Granted",
        "overview.withdrawn": "Withdrawn",
        "overview.renewal": "Pending renewal",
        "overview.open_dsr": "Open data-subject requests",
        "overview.audit": "Audit log integrity",
        "overview.budget": "Privacy budget per edge and model",
        "overview.coverage.computing": (
            "Counting consents in the background; this page refreshes itself."
        ),
        "overview.coverage.as_of": "as of",
        "audit.status.never": "not verified since the server started",
        "audit.status.running": "verification running",
        "audit.status.ok": "intact",
        "audit.status.broken": "BROKEN",
        "audit.status.checked": "entries checked",
        "audit.status.first_bad": "first bad entry",
        "audit.status.at": "verified at",
        "consent.title": "Consent",
        "consent.purposes": "Purposes",
        "consent.dpv": "DPV term",
        "consent.notices": "Notice versions",
        "consent.version": "Version",
        "consent.published_at": "Published",
        "consent.material": "Material change",
        "consent.language": "Language",
        "consent.publish": "Publish a new notice version",
        "consent.publish.submit": "Publish",
        "consent.content_hash": "SHA-256 of the notice text",
        "consent.url": "Notice URL",
        "consent.notice_text": "or paste the notice text (hashed here, not stored)",
        "consent.published": "Notice version published.",
        "consent.needs_renewal": "Consents needing renewal",
        "consent.lookup": "Look up a subject by pseudonym",
        "consent.lookup.submit": "Look up",
        "consent.history": "Consent history",
        "consent.receipts": "Receipts",
        "consent.receipt": "Receipt",
        "consent.status": "Status",
        "consent.occurred_at": "When",
        "consent.unknown_subject": "No consent records for that pseudonym.",
        "consent.separate": "Separate consent",
        "consent.none": "None yet.",
        "requests.title": "Requests queue",
        "requests.filter": "Filter",
        "requests.state": "State",
        "requests.any": "any",
        "requests.due_before": "Due before",
        "requests.type": "Type",
        "requests.received": "Received",
        "requests.due": "Due",
        "requests.overdue": "overdue",
        "requests.open": "Open",
        "requests.approvals": "Approvals",
        "requests.approve": "Approve",
        "requests.reject": "Reject",
        "requests.reason": "Reason",
        "requests.verify": "Start verification",
        "requests.execute": "Carry out",
        "requests.download_export": "Download export",
        "requests.download_receipt": "Download erasure receipt",
        "requests.done": "Done.",
        "requests.detail": "Request",
        "requests.rejection_reason": "Rejection reason",
        "requests.readonly": "Actions on requests are not available on this server.",
        "requests.next": "Next page",
        "audit.title": "Audit log",
        "audit.seq": "#",
        "audit.at": "Time",
        "audit.actor": "Actor",
        "audit.role": "Role",
        "audit.action": "Action",
        "audit.outcome": "Outcome",
        "audit.purpose": "Purpose",
        "audit.detail": "Detail",
        "audit.verify": "Run verification",
        "audit.verify.started": "Verification started; refresh to see the result.",
        "audit.export": "Export a range as signed JSON",
        "audit.from": "From #",
        "audit.to": "To #",
        "audit.export.submit": "Export",
        "audit.older": "Older entries",
        "audit.newest": "Newest",
        "audit.empty": "No entries match.",
        "budget.title": "Privacy budget",
        "budget.epsilon": "ε (cumulative)",
        "budget.round": "Release",
        "budget.limit": "budget",
        "budget.exhausted": "exhausted",
        "budget.runs": "training runs",
        "budget.none": "No edge has reported a privacy ledger yet.",
        "common.apply": "Apply",
        "common.yes": "yes",
        "common.no": "no",
        "common.language": "Language",
        "budget.model": "Model",
        "status.granted": "granted",
        "status.withdrawn": "withdrawn",
        "status.revoked": "revoked by the business",
        "status.expired": "expired",
        "state.received": "received",
        "state.verifying": "verifying",
        "state.approved": "approved",
        "state.in_progress": "in progress",
        "state.completed": "completed",
        "state.rejected": "rejected",
        "type.access": "access / export",
        "type.rectify": "rectify",
        "type.erase": "erase",
        "type.restrict": "restrict processing",
        "type.lift_restriction": "lift restriction",
    },
    "zh": {
        "app.title": "fedprofile 合规控制台",
        "nav.overview": "总览",
        "nav.consent": "同意管理",
        "nav.requests": "请求队列",
        "nav.audit": "审计",
        "nav.budget": "隐私预算",
        "nav.identity": "身份关联",
        "nav.models": "模型版本",
        "models.title": "模型版本",
        "models.hint": (
            "每轮聚合后的全局模型都会发布为该模型的下一个版本；新的训练任务会从架构相同的"
            "最新版本热启动。ε 为该轮各节点上报的最大累计 ε（中心化差分隐私训练时为中心 ε）。"
        ),
        "models.model": "模型",
        "models.version": "版本",
        "models.run": "训练任务",
        "models.round": "轮次",
        "models.metrics": "评估指标",
        "models.created": "发布时间",
        "models.filter": "模型",
        "models.all": "全部模型",
        "models.no_guarantee": "无有限隐私保证",
        "models.none": "尚未发布任何模型版本。",
        "identity.title": "跨渠道身份关联",
        "identity.persons": "人员",
        "identity.person": "人员",
        "identity.members": "假名",
        "identity.linked": "已关联的假名",
        "identity.reviews": "待复核的配对",
        "identity.reviews.hint": (
            "模型无法确定的概率配对（姓名、出生日期、地址的加密布隆过滤器编码）。"
            "接受：同一人；拒绝：不同的人。"
        ),
        "identity.score": "匹配概率",
        "identity.accept": "接受",
        "identity.reject": "拒绝",
        "identity.hubs": "枢纽令牌",
        "identity.hubs.hint": "被超过上限数量的假名共享的加密令牌：不用于关联任何人。",
        "identity.kind": "标识类型",
        "identity.token": "令牌前缀",
        "identity.shared_by": "共享假名数",
        "identity.lookup": "查询假名",
        "identity.decisions": "专员决定",
        "identity.decision": "决定",
        "identity.reason": "理由",
        "identity.undo": "撤销",
        "identity.undone": "已撤销",
        "identity.detach": "拆分（解除自动关联）",
        "identity.none": "暂无。",
        "identity.alone": "该假名未与其他假名关联。",
        "identity.done": "已完成。",
        "nav.logout": "退出登录",
        "nav.signed_in_as": "当前用户",
        "login.title": "登录",
        "login.token": "合规专员令牌",
        "login.submit": "登录",
        "login.failed": "令牌无效。",
        "login.hint": "请使用管理员为您签发的实名令牌。",
        "error.forbidden": "您的角色无权使用合规控制台。",
        "error.forbidden.title": "拒绝访问",
        "error.csrf": "表单已过期，请刷新页面后重试。",
        "error.not_found": "未找到。",
        "error.bad_input": "输入无效。",
        "error.conflict": "该请求当前状态下不允许此操作。",
        "overview.title": "总览",
        "overview.edges": "边缘节点",
        "overview.edge": "节点",
        "overview.channel": "渠道",
        "overview.last_seen": "最近上报",
        "overview.quality": "数据质量",
        "overview.quality.ok": "正常上报",
        "overview.quality.stale": "超过 24 小时未上报",
        "overview.quality.never": "从未上报",
        "overview.subjects": "数据主体数",
        "overview.coverage": "各处理目的的同意覆盖",
        "overview.purpose": "处理目的",
        "overview.granted": "已同意",
        "overview.withdrawn": "已撤回",
        "overview.renewal": "待重新同意",
        "overview.open_dsr": "未结的个人权利请求",
        "overview.audit": "审计日志完整性",
        "overview.budget": "各节点与模型的隐私预算",
        "overview.coverage.computing": "正在后台统计同意情况，页面将自动刷新。",
        "overview.coverage.as_of": "统计时间",
        "audit.status.never": "服务启动以来尚未校验",
        "audit.status.running": "正在校验",
        "audit.status.ok": "完整",
        "audit.status.broken": "已损坏",
        "audit.status.checked": "已校验条目",
        "audit.status.first_bad": "第一条异常条目",
        "audit.status.at": "校验时间",
        "consent.title": "同意管理",
        "consent.purposes": "处理目的",
        "consent.dpv": "DPV 术语",
        "consent.notices": "告知书版本",
        "consent.version": "版本",
        "consent.published_at": "发布时间",
        "consent.material": "重大变更",
        "consent.language": "语言",
        "consent.publish": "发布新的告知书版本",
        "consent.publish.submit": "发布",
        "consent.content_hash": "告知书文本的 SHA-256",
        "consent.url": "告知书链接",
        "consent.notice_text": "或粘贴告知书文本（仅在此计算哈希，不保存）",
        "consent.published": "告知书版本已发布。",
        "consent.needs_renewal": "需重新取得同意的记录",
        "consent.lookup": "按假名查询数据主体",
        "consent.lookup.submit": "查询",
        "consent.history": "同意历史",
        "consent.receipts": "同意凭证",
        "consent.receipt": "凭证",
        "consent.status": "状态",
        "consent.occurred_at": "时间",
        "consent.unknown_subject": "该假名没有同意记录。",
        "consent.separate": "单独同意",
        "consent.none": "暂无。",
        "requests.title": "请求队列",
        "requests.filter": "筛选",
        "requests.state": "状态",
        "requests.any": "全部",
        "requests.due_before": "截止日期早于",
        "requests.type": "类型",
        "requests.received": "收到时间",
        "requests.due": "截止日期",
        "requests.overdue": "已逾期",
        "requests.open": "打开",
        "requests.approvals": "审批",
        "requests.approve": "批准",
        "requests.reject": "驳回",
        "requests.reason": "理由",
        "requests.verify": "开始核验",
        "requests.execute": "执行",
        "requests.download_export": "下载导出文件",
        "requests.download_receipt": "下载删除凭证",
        "requests.done": "已完成。",
        "requests.detail": "请求",
        "requests.rejection_reason": "驳回理由",
        "requests.readonly": "本服务器暂不支持对请求进行操作。",
        "requests.next": "下一页",
        "audit.title": "审计日志",
        "audit.seq": "序号",
        "audit.at": "时间",
        "audit.actor": "操作人",
        "audit.role": "角色",
        "audit.action": "操作",
        "audit.outcome": "结果",
        "audit.purpose": "处理目的",
        "audit.detail": "详情",
        "audit.verify": "运行校验",
        "audit.verify.started": "校验已开始，请刷新查看结果。",
        "audit.export": "导出签名的 JSON 区间",
        "audit.from": "起始序号",
        "audit.to": "结束序号",
        "audit.export.submit": "导出",
        "audit.older": "更早的条目",
        "audit.newest": "最新",
        "audit.empty": "没有匹配的条目。",
        "budget.title": "隐私预算",
        "budget.epsilon": "ε（累计）",
        "budget.round": "发布次数",
        "budget.limit": "预算上限",
        "budget.exhausted": "已耗尽",
        "budget.runs": "次训练",
        "budget.none": "尚无节点上报隐私账本。",
        "common.apply": "应用",
        "common.yes": "是",
        "common.no": "否",
        "common.language": "语言",
        "budget.model": "模型",
        "status.granted": "已同意",
        "status.withdrawn": "已撤回",
        "status.revoked": "被业务方撤销",
        "status.expired": "已过期",
        "state.received": "已接收",
        "state.verifying": "核验中",
        "state.approved": "已批准",
        "state.in_progress": "执行中",
        "state.completed": "已完成",
        "state.rejected": "已驳回",
        "type.access": "查阅 / 导出",
        "type.rectify": "更正",
        "type.erase": "删除",
        "type.restrict": "限制处理",
        "type.lift_restriction": "解除限制",
    },
}


def parse_lang(value: str | None) -> Lang | None:
    """Return ``value`` as a console language, or ``None`` if it is not one.

    Parameters
    ----------
    value : str or None
        A ``lang`` query value or cookie.

    Returns
    -------
    Lang or None
        ``"en"`` or ``"zh"``.
    """
    if value == "en":
        return "en"
    if value == "zh":
        return "zh"
    return None


def choose_lang(*, query: str | None, cookie: str | None, accept_language: str | None) -> Lang:
    """Pick the page language: query, then cookie, then ``Accept-Language``, then English.

    Parameters
    ----------
    query : str or None
        The ``lang`` query parameter.
    cookie : str or None
        The ``console_lang`` cookie.
    accept_language : str or None
        The browser's ``Accept-Language`` header.

    Returns
    -------
    Lang
        The language to render in.
    """
    for candidate in (query, cookie):
        lang = parse_lang(candidate)
        if lang is not None:
            return lang
    if accept_language and accept_language.strip().lower().startswith("zh"):
        return "zh"
    return "en"


def translator(lang: Lang) -> Callable[[str], str]:
    """Return ``t(key)`` for ``lang``.

    Parameters
    ----------
    lang : Lang
        The page language.

    Returns
    -------
    Callable[[str], str]
        Looks a key up; raises ``KeyError`` naming the key when the catalogue lacks it.
    """
    table = MESSAGES[lang]

    def t(key: str) -> str:
        try:
            return table[key]
        except KeyError:
            raise KeyError(f"console message {key!r} is missing for language {lang!r}") from None

    return t
