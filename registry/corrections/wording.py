"""The Chinese of the correction procedure's codes, in the Provisions' wording (Art. 9, 11, 12),
for the public pages and printable documents. JSON keeps the codes."""

from __future__ import annotations

GROUNDS: dict[str, str] = {
    "wrongly_listed": "不应被纳入失信被执行人名单",
    "inaccurate_information": "记载和公布的失信信息不准确",
    "should_be_deleted": "失信信息应予删除",
}
STATUSES: dict[str, str] = {
    "under_review": "执行法院审查中",
    "upheld": "申请理由成立，执行法院已决定纠正",
    "dismissed": "申请理由不成立，执行法院已决定驳回",
    "under_reconsideration": "上一级人民法院复议中",
    "upheld_on_reconsideration": "复议理由成立，上一级人民法院已决定纠正",
    "dismissed_on_reconsideration": "复议理由不成立，上一级人民法院已决定驳回",
    "found_by_court": "执行法院发现纳入错误，依职权纠正",
}
OUTCOMES: dict[str, str] = {"upheld": "理由成立，予以纠正", "dismissed": "理由不成立，予以驳回"}
STAGES: dict[str, str] = {"review": "审查", "reconsideration": "复议", "finding": "依职权纠正"}
ACTIONS: dict[str, str] = {
    "removal": "删除（撤销）失信信息",
    "amendment": "更正失信信息",
    "to_follow": "三个工作日内纠正",
    "ordered": "责令执行法院三个工作日内纠正",
    "none": "—",
}
