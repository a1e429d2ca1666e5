"""Deterministic fake data for demos and load tests: courts, debtors, listings.

Everything is driven by one `random.Random(seed)`, so a seed always yields the same
stream. Identifiers are valid, not merely well formed: resident ID numbers use GB/T 2260
division codes drawn from every code in use today in python-stdnum's table, whatever the
birth year (1950-2007): a code is the county where the number was assigned, often created
long after the birth, so a validator that ties the two cannot pass this data. Credit codes
carry correct GB 11714 and GB 32100 check characters. With `identity_mix` (the default)
some debtors hold every other identity type (travel permits, permanent residence cards,
passports, old 15-digit numbers; organisation codes and foreign registrations).
"""

from __future__ import annotations

import math
import random
from bisect import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from itertools import accumulate
from typing import Any

from stdnum import numdb

from registry.identity.identifiers import COURT_ABBREVIATIONS

__all__ = ["GROUNDS", "DemoCourt", "DemoGenerator", "demo_courts"]

GROUNDS: tuple[str, ...] = (
    "able_but_refuses",
    "obstructs_enforcement",
    "evades_enforcement",
    "breaches_property_reporting",
    "breaches_consumption_restriction",
    "breaches_settlement",
)


@dataclass(frozen=True)
class DemoCourt:
    code: str
    name: str
    province_code: str


# Short province names as they appear at the front of company names ("广东XX有限公司").
_PROVINCE_SHORT: dict[str, str] = {
    "11": "北京",
    "12": "天津",
    "13": "河北",
    "14": "山西",
    "15": "内蒙古",
    "21": "辽宁",
    "22": "吉林",
    "23": "黑龙江",
    "31": "上海",
    "32": "江苏",
    "33": "浙江",
    "34": "安徽",
    "35": "福建",
    "36": "江西",
    "37": "山东",
    "41": "河南",
    "42": "湖北",
    "43": "湖南",
    "44": "广东",
    "45": "广西",
    "46": "海南",
    "50": "重庆",
    "51": "四川",
    "52": "贵州",
    "53": "云南",
    "54": "西藏",
    "61": "陕西",
    "62": "甘肃",
    "63": "青海",
    "64": "宁夏",
    "65": "新疆",
}

_MUNICIPALITIES = frozenset({"11", "12", "31", "50"})

# (code, name, city of the court's seat). Basic-court codes were checked against the
# county names in stdnum's GB/T 2260 table; the city picks the local arbitration body.
_COURTS: tuple[tuple[str, str, str], ...] = (
    ("京0105", "北京市朝阳区人民法院", "北京"),
    ("京0108", "北京市海淀区人民法院", "北京"),
    ("京0102", "北京市西城区人民法院", "北京"),
    ("津0101", "天津市和平区人民法院", "天津"),
    ("冀0102", "石家庄市长安区人民法院", "石家庄"),
    ("晋0105", "太原市小店区人民法院", "太原"),
    ("内0102", "呼和浩特市新城区人民法院", "呼和浩特"),
    ("辽0102", "沈阳市和平区人民法院", "沈阳"),
    ("辽0202", "大连市中山区人民法院", "大连"),
    ("吉0104", "长春市朝阳区人民法院", "长春"),
    ("黑0103", "哈尔滨市南岗区人民法院", "哈尔滨"),
    ("沪0115", "上海市浦东新区人民法院", "上海"),
    ("沪0104", "上海市徐汇区人民法院", "上海"),
    ("苏0106", "南京市鼓楼区人民法院", "南京"),
    ("苏0583", "昆山市人民法院", "苏州"),
    ("浙0106", "杭州市西湖区人民法院", "杭州"),
    ("浙0212", "宁波市鄞州区人民法院", "宁波"),
    ("浙0782", "义乌市人民法院", "金华"),
    ("皖0104", "合肥市蜀山区人民法院", "合肥"),
    ("闽0102", "福州市鼓楼区人民法院", "福州"),
    ("闽0203", "厦门市思明区人民法院", "厦门"),
    ("赣0102", "南昌市东湖区人民法院", "南昌"),
    ("鲁0102", "济南市历下区人民法院", "济南"),
    ("鲁0202", "青岛市市南区人民法院", "青岛"),
    ("豫0105", "郑州市金水区人民法院", "郑州"),
    ("鄂0103", "武汉市江汉区人民法院", "武汉"),
    ("湘0104", "长沙市岳麓区人民法院", "长沙"),
    ("粤0106", "广州市天河区人民法院", "广州"),
    ("粤0304", "深圳市福田区人民法院", "深圳"),
    ("粤0305", "深圳市南山区人民法院", "深圳"),
    ("桂0103", "南宁市青秀区人民法院", "南宁"),
    ("琼0106", "海口市龙华区人民法院", "海口"),
    ("渝0103", "重庆市渝中区人民法院", "重庆"),
    ("川0107", "成都市武侯区人民法院", "成都"),
    ("黔0103", "贵阳市云岩区人民法院", "贵阳"),
    ("云0102", "昆明市五华区人民法院", "昆明"),
    ("藏0102", "拉萨市城关区人民法院", "拉萨"),
    ("陕0113", "西安市雁塔区人民法院", "西安"),
    ("甘0102", "兰州市城关区人民法院", "兰州"),
    ("青0103", "西宁市城中区人民法院", "西宁"),
    ("宁0104", "银川市兴庆区人民法院", "银川"),
    ("新0102", "乌鲁木齐市天山区人民法院", "乌鲁木齐"),
    ("京01", "北京市第一中级人民法院", "北京"),
    ("京03", "北京市第三中级人民法院", "北京"),
    ("沪01", "上海市第一中级人民法院", "上海"),
    ("粤01", "广州市中级人民法院", "广州"),
    ("粤03", "深圳市中级人民法院", "深圳"),
    ("浙01", "杭州市中级人民法院", "杭州"),
    ("川01", "成都市中级人民法院", "成都"),
    ("京", "北京市高级人民法院", "北京"),
)

# Appeal courts only where the jurisdiction is certain; elsewhere no 民终 basis is drawn.
_APPEAL_COURT: dict[str, str] = {
    "京0105": "京03",
    "京0108": "京01",
    "粤0106": "粤01",
    "粤0304": "粤03",
    "粤0305": "粤03",
    "浙0106": "浙01",
    "川0107": "川01",
}

_COURT_CITY: dict[str, str] = {code: city for code, _name, city in _COURTS}
_COURT_NAME: dict[str, str] = {code: name for code, name, _city in _COURTS}

# Arbitration bodies whose name is not simply city + 仲裁委员会, and award-number styles.
_ARBITRATION_NAME: dict[str, str] = {"深圳": "深圳国际仲裁院", "海口": "海南国际仲裁院"}
_AWARD_WORD: dict[str, str] = {"北京": "京仲裁字", "上海": "沪仲案字", "广州": "穗仲案字", "重庆": "渝仲字"}


def demo_courts() -> list[DemoCourt]:
    """Real courts: 42 basic courts in all 31 provinces, 7 intermediate, 1 high court."""
    return [DemoCourt(code, name, _province_of(code)) for code, name, _city in _COURTS]


def _weighted(pairs: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Parse "王710 李700 ..." into items and cumulative weights for bisect sampling."""
    items: list[str] = []
    weights: list[float] = []
    for token in pairs.split():
        split = next(i for i, ch in enumerate(token) if ch.isdigit())
        items.append(token[:split])
        weights.append(float(token[split:]))
    return tuple(items), tuple(accumulate(weights))


def _unique(chars: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(chars))


# Surname shares per 10,000 people, roughly the 2020 census ranking; compound surnames rare.
_SURNAMES = _weighted(
    "王710 李700 张670 刘540 陈460 杨310 黄220 赵200 吴180 周170 徐140 孙130 马120 朱110 "
    "胡100 郭97 何92 高87 林84 罗80 郑75 梁70 谢60 宋57 唐53 许52 韩50 冯48 邓47 曹46 "
    "彭45 曾44 肖43 田42 董41 袁40 潘39 于38 蒋37 蔡36 余35 杜34 叶33 程32 苏31 魏30 "
    "吕29 丁28 任27 沈26 姚25 卢24 姜23 崔22 钟21 谭20 陆20 汪19 范18 金18 石17 廖17 "
    "贾16 夏16 韦15 付15 方14 白14 邹13 孟13 熊13 秦12 邱12 江12 尹11 薛11 闫11 段10 "
    "雷10 侯10 龙10 史10 陶9 黎9 贺9 顾9 毛8 郝8 龚8 邵8 万7 钱7 严7 覃7 武7 戴7 莫6 "
    "孔6 向6 汤6 欧阳2 诸葛0.5 司马0.3 上官0.3"
)

# Given-name characters. The first character of a two-character given name is often a
# generational or neutral one; the last one carries most of the sex signal.
_GIVEN_MALE = _unique(
    "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林阳建国峰亮成东文志海晨博宏"
    "立兵永庆春林彬锋刚毅翔晖斌坤鹏程森轩然瑞哲睿涛昊栋"
)
_GIVEN_FEMALE = _unique(
    "芳娜敏静丽艳娟霞秀英玲燕萍红婷雪琳慧莉倩洁颖琴云梅兰凤晶丹蕾薇月欣怡佳悦璐琪瑶婧璇涵萱晓妍茜菲蓉珊"
)
_FIRST_MALE = _unique("建国志晓海文春永俊子宇天一明立新德振少学浩梓家嘉思晨宏金长卫")
_FIRST_FEMALE = _unique("晓秀玉春丽美淑雪梦欣若佳嘉思子雨一文海红桂凤静慧诗紫")

_BRAND = _unique(
    "华信恒通鑫达宏盛泰隆兴源瑞祥博远润丰嘉德中天金安建辉康永鼎汇聚创腾凯誉晟锦诚铭海佳"
    "优联合正和力宇昌茂发顺星光荣亿"
)
_INDUSTRY = _weighted(
    "建筑工程12 贸易10 商贸8 房地产开发7 科技8 网络科技5 信息技术4 投资管理4 建材4 物流4 "
    "餐饮管理3 装饰工程5 实业6 机械设备3 电子3 农业发展3 文化传媒3 劳务3 置业3 汽车销售2 "
    "医药2 化工2 纺织2 食品2 供应链管理3 新能源科技2 环保科技2 市政工程2"
)

_OTHER_GROUNDS = _weighted(
    "breaches_property_reporting40 breaches_consumption_restriction25 evades_enforcement15 "
    "breaches_settlement12 obstructs_enforcement8"
)

# Claim kinds and the share of each; wages are only drawn for smaller amounts.
_OBLIGATION_TEMPLATES: dict[str, tuple[str, ...]] = {
    "loan": (
        "被执行人应于{when}向申请执行人偿还借款本金人民币{amount}元及利息。",
        "被执行人应于{when}向申请执行人偿还借款本金人民币{amount}元，并支付自逾期之日起至实际清偿之日止的利息。",
        "被执行人应于{when}偿还申请执行人借款人民币{amount}元及逾期利息（按全国银行间同业拆借中心公布的一年期贷款市场报价利率计算）。",
    ),
    "wages": (
        "被执行人应于{when}支付申请执行人拖欠的工资人民币{amount}元。",
        "被执行人应于{when}支付申请执行人劳动报酬及经济补偿金共计人民币{amount}元。",
    ),
    "contract": (
        "被执行人应于{when}向申请执行人支付货款人民币{amount}元及逾期付款违约金。",
        "被执行人应于{when}向申请执行人返还合同价款人民币{amount}元并赔偿损失。",
        "被执行人应于{when}向申请执行人支付拖欠的租金人民币{amount}元及违约金。",
    ),
    "construction": (
        "被执行人应于{when}向申请执行人支付工程款人民币{amount}元及利息。",
        "被执行人应于{when}向申请执行人支付工程进度款及质保金共计人民币{amount}元。",
    ),
}
_DEADLINES = {
    "judgment": ("判决生效之日起十日内", "本判决生效之日起十日内", "判决生效之日起十五日内"),
    "mediation": ("调解书生效之日起十日内", "调解书送达之日起三十日内"),
    "award": ("本裁决书送达之日起十日内", "本裁决作出之日起十五日内"),
}

# Court fee schedule (诉讼费用交纳办法 art. 13), progressive: (upper bound yuan, rate).
_FEE_BANDS: tuple[tuple[int, float], ...] = (
    (100_000, 0.025),
    (200_000, 0.02),
    (500_000, 0.015),
    (1_000_000, 0.01),
    (2_000_000, 0.009),
    (5_000_000, 0.008),
    (10_000_000, 0.007),
    (20_000_000, 0.006),
)

_MIN_AMOUNT_CENTS = 10_000_00
_MAX_AMOUNT_CENTS = 50_000_000_00
_LOG_MIN = math.log(_MIN_AMOUNT_CENTS)
_LOG_MAX = math.log(_MAX_AMOUNT_CENTS)

_RIC_CHECK = "10X98765432"
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {ch: i for i, ch in enumerate(_USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# GB 11714 body characters must also be legal in a credit code (no I, O, S, V, Z).
_ORG_BODY = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_ORG_VALUE = {ch: int(ch, 36) for ch in _ORG_BODY}
_ORG_PAIRS = tuple(a + b for a in _ORG_BODY for b in _ORG_BODY)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


# --- GB/T 2260 division codes from stdnum's table -------------------------------------


@dataclass(frozen=True)
class _Division:
    code: str
    # (first year or None, last year or None, name), in stdnum's order: stdnum takes the
    # first period that contains the birth year, so a code is only valid within them.
    periods: tuple[tuple[int | None, int | None, str], ...]

    def name_in(self, year: int) -> str | None:
        for start, end, name in self.periods:
            if (start is None or year >= start) and (end is None or year <= end):
                return name
        return None

    @property
    def current_name(self) -> str | None:
        for _start, end, name in self.periods:
            if end is None:
                return name
        return None


def _parse_periods(county: str) -> tuple[tuple[int | None, int | None, str], ...]:
    periods: list[tuple[int | None, int | None, str]] = []
    for part in county.split(","):
        if not part.startswith("["):
            # stdnum accepts an undated entry for any year.
            periods.append((None, None, part))
            continue
        span, name = part[1:].split("]")
        start, end = span.split("-")
        periods.append((int(start) if start else None, int(end) if end else None, name))
    return tuple(periods)


@cache
def _divisions() -> dict[str, _Division]:
    """Every six-digit code in stdnum's cn/loc table, loaded once.

    numdb.get caches the parsed file, the same object `ric.get_birth_place` consults, so
    the codes here are exactly the ones validation accepts.
    """
    result: dict[str, _Division] = {}
    for _len, low, high, _props, children in numdb.get("cn/loc").prefixes:
        if low != high:  # the table lists single provinces, never ranges
            continue
        for _clen, clow, chigh, cprops, _sub in children:
            if clow != chigh or "county" not in cprops:
                continue
            code = low + clow
            result[code] = _Division(code, _parse_periods(cprops["county"]))
    return result


_NOT_PLACES = frozenset({"市辖区", "县", "郊区"})


@cache
def _counties_by_province() -> dict[str | None, tuple[_Division, ...]]:
    """County-level codes grouped by province (key None: all), so per-year filtering is cheap."""
    # xx0000 is a province and xxxx00 a prefecture; Taiwan, Hong Kong and Macao have no
    # county codes in the table.
    groups: dict[str | None, list[_Division]] = {None: []}
    for code, division in _divisions().items():
        if code.endswith("00") or code[:2] not in _PROVINCE_SHORT:
            continue
        groups.setdefault(code[:2], []).append(division)
        groups[None].append(division)
    return {key: tuple(value) for key, value in groups.items()}


def _usable(name: str | None) -> bool:
    # 市辖区 and the like are bookkeeping codes, not places anyone is registered in.
    return name is not None and name not in _NOT_PLACES


@cache
def _current_codes(province: str | None) -> tuple[str, ...]:
    """County codes still in use (an open-ended period), for company registrations.

    Taken from the table rather than today's date so output never depends on the clock.
    """
    divisions = _counties_by_province().get(province, ())
    return tuple(d.code for d in divisions if _usable(d.current_name))


@cache
def _place_names(code: str) -> tuple[str, str]:
    """(province short name, city with 市) as used at the front of company names."""
    divisions = _divisions()
    province = _PROVINCE_SHORT.get(code[:2], "")
    county_div = divisions.get(code)
    county = (county_div.current_name if county_div else None) or ""
    prefecture_div = divisions.get(code[:4] + "00")
    prefecture = (prefecture_div.current_name if prefecture_div else None) or ""
    if code[:2] in _MUNICIPALITIES:
        city = province + "市"
    elif prefecture.endswith("市"):
        city = prefecture
    elif county.endswith("市"):  # county-level city under a 州/地区/盟 or governed by the province
        city = county
    else:
        city = province
    return province, city


# --- check characters ------------------------------------------------------------------


def _ric_check(body: str) -> str:
    # The GB 11643 weights are 2**(17 - i) mod 11 (i = 0..16) and 13 = 2 (mod 11), so
    # reading the body in base 13 gives the weighted sum in one C call (stdnum's trick).
    return _RIC_CHECK[(2 * int(body, 13)) % 11]


def _org_check(body: str) -> str:
    # GB 11714: digits keep their value, letters count from A = 10.
    total = sum(_ORG_VALUE[ch] * w for ch, w in zip(body, _ORG_WEIGHTS, strict=True))
    value = 11 - total % 11
    return "X" if value == 10 else "0" if value == 11 else str(value)


@cache
def _uscc_prefix_sum(prefix: str) -> int:
    # Few distinct authority+type+division prefixes recur, so their share is cached.
    return sum(_USCC_VALUE[ch] * w for ch, w in zip(prefix, _USCC_WEIGHTS[:8], strict=True))


def _uscc_check(prefix: str, org_code: str) -> str:
    """Check character of the 17 characters prefix (8) + organisation code (9)."""
    total = _uscc_prefix_sum(prefix) + sum(
        _USCC_VALUE[ch] * w for ch, w in zip(org_code, _USCC_WEIGHTS[8:], strict=True)
    )
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def _yuan(cents: int) -> str:
    return f"{cents // 100:,}.{cents % 100:02d}"


def _court_fee_cents(amount_cents: int) -> int:
    """Acceptance fee for a property claim of this size, to the cent."""
    yuan = amount_cents / 100
    if yuan <= 10_000:
        return 50_00
    fee = 50.0
    lower = 10_000
    for upper, rate in _FEE_BANDS:
        fee += (min(yuan, upper) - lower) * rate
        if yuan <= upper:
            return round(fee * 100)
        lower = upper
    return round((fee + (yuan - lower) * 0.005) * 100)


_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)


def _uuid4(bits: int) -> str:
    """str(uuid.UUID(int=bits, version=4)) without building the object (twice as fast)."""
    h = f"{bits & _UUID_CLEAR | _UUID_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# Birth years of the demo's persons (DOMAIN.md: older debtors hold codes created after birth).
_FIRST_BIRTH_ORD = date(1950, 1, 1).toordinal()
_LAST_BIRTH_ORD = date(2007, 12, 31).toordinal()
# (ISO 3166-1 alpha-3, numeric) of foreign debtors' nationalities.
_FOREIGN = (("USA", "840"), ("KOR", "410"), ("JPN", "392"), ("GBR", "826"), ("CAN", "124"), ("DEU", "276"))


class DemoGenerator:
    """Seeded generator; every method draws from the one RNG, so call order matters."""

    def __init__(self, seed: int = 0, *, identity_mix: bool = True) -> None:
        # Demo data, not secrets: a reproducible PRNG is the point.
        self._rng = random.Random(seed)
        # Every identity type, a few percent each; off: resident IDs and credit codes only.
        self.identity_mix = identity_mix

    # --- small helpers ------------------------------------------------------------------

    def _pick(self, table: tuple[tuple[str, ...], tuple[float, ...]]) -> str:
        items, cumulative = table
        return items[bisect(cumulative, self._rng.random() * cumulative[-1])]

    def _choice(self, items: tuple[str, ...]) -> str:
        return items[int(self._rng.random() * len(items))]

    def _int(self, low: int, high: int) -> int:
        """Like randint (both ends included) at a fraction of its cost."""
        return low + int(self._rng.random() * (high - low + 1))

    # --- people -------------------------------------------------------------------------

    def person_name(self, sex: str | None = None) -> str:
        """A Chinese name of 2-4 characters; `sex` ("M"/"F") steers the given name."""
        rnd = self._rng.random
        if sex is None:
            sex = "M" if rnd() < 0.5 else "F"
        first, last = (_FIRST_MALE, _GIVEN_MALE) if sex == "M" else (_FIRST_FEMALE, _GIVEN_FEMALE)
        surnames, cumulative = _SURNAMES
        surname = surnames[bisect(cumulative, rnd() * cumulative[-1])]
        final = last[int(rnd() * len(last))]
        if rnd() < 0.45:
            return surname + final
        return surname + first[int(rnd() * len(first))] + final

    def id_number(self, birth_from: date, birth_to: date, sex: str | None = None) -> str:
        """A valid GB 11643 number born in [birth_from, birth_to]; `sex` "M" or "F"."""
        if birth_from > birth_to:
            raise ValueError("birth_from is after birth_to")
        birth = date.fromordinal(self._int(birth_from.toordinal(), birth_to.toordinal()))
        return self._id_for(birth, sex, None)

    def _id_for(self, birth: date, sex: str | None, province: str | None) -> str:
        rng = self._rng
        # Any code in use today, never tied to the birth year (DOMAIN.md, Identifiers).
        codes = _current_codes(province) if province else ()
        if not codes:
            codes = _current_codes(None)
        if sex is None:
            sex = "M" if rng.random() < 0.5 else "F"
        # Odd sequence for men, even for women; 000 is never issued.
        sequence = self._int(0, 499) * 2 + 1 if sex == "M" else self._int(1, 499) * 2
        iso = birth.isoformat()  # much cheaper than strftime
        body = f"{codes[int(rng.random() * len(codes))]}{iso[:4]}{iso[5:7]}{iso[8:10]}{sequence:03d}"
        return body + _ric_check(body)

    def _other_person_identity(self, birth: date, resident: str) -> dict[str, object]:
        """Mostly nothing (the resident ID stands); a few percent each of the other types."""
        rnd = self._rng.random
        draw = rnd()
        digits = "".join(str(int(rnd() * 10)) for _ in range(10))
        if draw < 0.02:
            return {
                "id_type": "hk_macao_travel_permit",
                "id_number": ("H" if rnd() < 0.7 else "M") + digits[:8],
            }
        if draw < 0.04:
            return {"id_type": "taiwan_travel_permit", "id_number": digits[:8]}
        if draw < 0.05:
            iso = birth.isoformat().replace("-", "")
            country = _FOREIGN[int(rnd() * len(_FOREIGN))]
            if rnd() < 0.5:  # 2023 format: 9, province, nationality (numeric), birth, sequence, check
                body = f"9{resident[:2]}{country[1]}{iso}{digits[:3]}"
                return {"id_type": "foreign_permanent_residence", "id_number": body + _ric_check(body)}
            return {
                "id_type": "foreign_permanent_residence",
                "id_number": f"{country[0]}{digits[:2]}{iso[2:]}{digits[2:6]}",
            }
        if draw < 0.06:
            country = _FOREIGN[int(rnd() * len(_FOREIGN))]
            return {"id_type": "passport", "id_number": "E" + digits[:8], "nationality": country[0]}
        if draw < 0.07 and resident[6:8] == "19":
            return {"id_number": resident[:6] + resident[8:17]}  # an old 15-digit number
        return {}

    def _other_organization_identity(self, debtor: dict[str, object]) -> dict[str, object]:
        rnd = self._rng.random
        draw = rnd()
        if draw < 0.03:  # the legacy organisation code, as the credit code embeds it
            code = str(debtor.pop("credit_code"))[8:17]
            return debtor | {"organization_code": f"{code[:8]}-{code[8]}"}
        if draw < 0.05:
            debtor.pop("credit_code")
            country = _FOREIGN[int(rnd() * len(_FOREIGN))]
            number = "".join(str(int(rnd() * 10)) for _ in range(8))
            return debtor | {"registration": {"country": country[0], "number": number}}
        return debtor

    # --- organisations ------------------------------------------------------------------

    def company_name(self, province_code: str | None = None) -> str:
        """E.g. "深圳市鑫达贸易有限公司": place + brand + industry + legal form."""
        return self._company_name_at(self._choice(_current_codes(province_code)))

    def _company_name_at(self, division_code: str) -> str:
        rng = self._rng
        province, city = _place_names(division_code)
        roll = rng.random()
        if roll < 0.15:
            place = province
        elif roll < 0.55 and city.endswith("市"):
            place = city[:-1]  # "北京华信…" as often as "北京市华信…"
        else:
            place = city
        brand = self._choice(_BRAND) + self._choice(_BRAND)
        if rng.random() < 0.25:
            brand += self._choice(_BRAND) + self._choice(_BRAND)
        form = "股份有限公司" if rng.random() < 0.08 else "有限公司"
        return place + brand + self._pick(_INDUSTRY) + form

    def credit_code(self, division_code: str | None = None) -> str:
        """A valid GB 32100 code; registration authority 9 (market regulation)."""
        rng = self._rng
        # 91 enterprise; 92 individual business and 93 farmers' co-operative now and then.
        roll = rng.random()
        entity = "1" if roll < 0.95 else "2" if roll < 0.98 else "3"
        return self._credit_code(division_code, entity)

    def _credit_code(self, division_code: str | None, entity: str) -> str:
        rng = self._rng
        if division_code is None:
            division_code = self._choice(_current_codes(None))
            # Big cities register many firms at prefecture level (91440300…, 91110000…).
            if rng.random() < 0.2:
                division_code = division_code[:4] + "00"
        elif len(division_code) != 6 or not division_code.isdigit():
            raise ValueError("a division code is six digits")
        pairs = _ORG_PAIRS
        if rng.random() < 0.7:
            # Codes issued since 2015 start with MA; older ones are the legacy 8 digits.
            n = len(pairs)
            org_body = (
                "MA"
                + pairs[int(rng.random() * n)]
                + pairs[int(rng.random() * n)]
                + pairs[int(rng.random() * n)]
            )
        else:
            org_body = f"{self._int(10_000_000, 99_999_999)}"
        org_code = org_body + _org_check(org_body)
        prefix = f"9{entity}{division_code}"
        return prefix + org_code + _uscc_check(prefix, org_code)

    # --- cases --------------------------------------------------------------------------

    def case_number(self, court_code: str, year: int, kind: str = "执") -> str:
        """E.g. "（2024）京0105执1234号"; busier (lower) courts draw larger sequences."""
        return f"（{year}）{court_code}{kind}{self._sequence(court_code, 30_000)}号"

    def _sequence(self, court_code: str, basic_cap: int) -> int:
        """A yearly sequence number; intermediate and high courts see far fewer cases."""
        digits = len(court_code) - 1
        cap = basic_cap if digits == 4 else basic_cap // 10 if digits == 2 else basic_cap // 100
        # Skewed low: the cap is a busy court's year-end count; most courts stop short.
        return 1 + int(self._rng.random() ** 1.5 * min(cap, 99_999))

    def basis_document(self, court: DemoCourt, year: int) -> tuple[str, str]:
        """(document number, issuer) of the enforcement basis (执行依据)."""
        number, issuer, _kind = self._basis(court, year)
        return number, issuer

    def _basis(self, court: DemoCourt, year: int) -> tuple[str, str, str]:
        rng = self._rng
        roll = rng.random()
        appeal = _APPEAL_COURT.get(court.code)
        if roll < 0.2 or (len(court.code) == 3 and roll < 0.4):
            return (*self._award(court, year), "award")
        if appeal is not None and roll < 0.3:
            number = f"（{year}）{appeal}民终{self._sequence(appeal, 200_000)}号"
            return number, _COURT_NAME[appeal], "judgment"
        number = f"（{year}）{court.code}民初{self._sequence(court.code, 60_000)}号"
        return number, court.name, "mediation" if rng.random() < 0.25 else "judgment"

    def _award(self, court: DemoCourt, year: int) -> tuple[str, str]:
        rng = self._rng
        sequence = self._int(1, 6_000)
        if rng.random() < 0.05:
            return f"〔{year}〕中国贸仲京裁字第{sequence:04d}号", "中国国际经济贸易仲裁委员会"
        city = _COURT_CITY.get(court.code, _PROVINCE_SHORT.get(court.province_code, "北京"))
        issuer = _ARBITRATION_NAME.get(city, city + "仲裁委员会")
        word = _AWARD_WORD.get(city, city[0] + "仲裁字")
        return f"（{year}）{word}第{sequence}号", issuer

    def obligations(self, amount_cents: int) -> str:
        """Main text of a judgment ordering payment of `amount_cents`."""
        return self._obligations(amount_cents, "judgment")

    def _obligations(self, amount_cents: int, basis_kind: str) -> str:
        rng = self._rng
        roll = rng.random()
        if amount_cents <= 300_000_00 and roll < 0.15:
            kind = "wages"
        elif roll < 0.5:
            kind = "loan"
        elif roll < 0.8 or amount_cents < 200_000_00:
            kind = "contract"
        else:
            kind = "construction"
        template = self._choice(_OBLIGATION_TEMPLATES[kind])
        text = template.format(when=self._choice(_DEADLINES[basis_kind]), amount=_yuan(amount_cents))
        if basis_kind != "award" and kind != "wages" and rng.random() < 0.3:
            fee = _court_fee_cents(amount_cents)
            if basis_kind == "mediation":
                fee //= 2  # a mediated case pays half the fee
            text += f"案件受理费{_yuan(fee)}元由被执行人负担。"
        return text

    def _amount_cents(self) -> int:
        rng = self._rng
        cents = int(math.exp(_LOG_MIN + (_LOG_MAX - _LOG_MIN) * rng.random()))
        roll = rng.random()
        if roll < 0.4:
            cents = cents // 100_000 * 100_000  # whole thousands of yuan
        elif roll < 0.7:
            cents = cents // 100 * 100
        return max(_MIN_AMOUNT_CENTS, min(_MAX_AMOUNT_CENTS, cents))

    def _grounds(self) -> list[str]:
        rng = self._rng
        if rng.random() < 0.5:
            return ["able_but_refuses"]
        roll = rng.random()
        count = 1 if roll < 0.6 else 2 if roll < 0.9 else 3
        chosen: set[str] = set()
        while len(chosen) < count:
            chosen.add(self._pick(_OTHER_GROUNDS))
        if rng.random() < 0.5:
            chosen.add("able_but_refuses")
        return sorted(chosen)

    def listing(self, court: DemoCourt, today: date) -> dict[str, object]:
        """One submission as a court would send it (JSON-compatible)."""
        # Hot path (a million calls per load test): ordinals instead of timedelta, and
        # the bound random() instead of randint, which costs ten times as much.
        rng = self._rng
        rnd = rng.random
        today_ord = today.toordinal()
        filed_ord = today_ord - 30 - int(rnd() * (3 * 365 - 29))
        # Most debtors are listed within months of filing, a few years later.
        listed_ord = filed_ord + 30 + int((today_ord - filed_ord - 30) * rnd() ** 2)
        filed_on = date.fromordinal(filed_ord)

        basis_year = filed_on.year - (0 if filed_on.month > 4 and rnd() < 0.4 else 1 + int(rnd() * 2))
        document_number, issuer, basis_kind = self._basis(court, basis_year)

        debtor: dict[str, object]
        if rnd() < 0.75:
            sex = "M" if rnd() < 0.76 else "F"
            # Born 1950-2007, and of age (past the 18th birthday, with a year to spare) on
            # listed_on: 19 years never exceed 6,940 days.
            latest = min(_LAST_BIRTH_ORD, listed_ord - 6_940)
            birth = date.fromordinal(_FIRST_BIRTH_ORD + int(rnd() * (latest - _FIRST_BIRTH_ORD + 1)))
            # Debtors mostly live where the court sits.
            home = court.province_code if rnd() < 0.7 else None
            debtor = {
                "kind": "person",
                "name": self.person_name(sex),
                "id_number": self._id_for(birth, sex, home),
            }
            if self.identity_mix:
                debtor |= self._other_person_identity(birth, str(debtor["id_number"]))
        else:
            codes = _current_codes(court.province_code if rnd() < 0.85 else None)
            division = codes[int(rnd() * len(codes))]
            debtor = {
                "kind": "organization",
                "name": self._company_name_at(division),
                "credit_code": self._credit_code(division, "1"),
                "legal_representative": self.person_name("M" if rnd() < 0.8 else "F"),
            }
            if self.identity_mix:
                debtor = self._other_organization_identity(debtor)

        amount = self._amount_cents()
        performance: dict[str, object]
        if rnd() < 0.3:
            performed = max(100, int(amount * (0.02 + 0.88 * rnd())) // 100 * 100)
            performance = {
                "status": "partial",
                "performed_cents": performed,
                "unperformed_cents": amount - performed,
            }
        else:
            performance = {"status": "none"}

        grounds = self._grounds()
        term_years: int | None
        if grounds == ["able_but_refuses"]:
            term_years = None  # ground 1 has no fixed term (Provisions art. 2)
        elif len(grounds) >= 2 and rnd() < 0.2:
            term_years = 3 + int(rnd() * 3)  # extended by 1-3 years for several dishonest acts
        else:
            term_years = 2
        if term_years is not None and listed_ord < today_ord - 365 * term_years + 2:
            # A fixed term that has already ended is never published (SPC Art. 2).
            listed_ord = today_ord - int(rnd() * (365 * term_years - 2))

        case_number = self.case_number(court.code, filed_on.year)
        body: dict[str, object] = {
            "court_code": court.code,
            "case_number": case_number,
            "filed_on": filed_on.isoformat(),
            "basis": {"document_number": document_number, "issuer": issuer},
            "debtor": debtor,
            "obligations": self._obligations(amount, basis_kind),
            "amount_cents": amount,
            "performance": performance,
            "grounds": grounds,
            "term_years": term_years,
            "listed_on": date.fromordinal(listed_ord).isoformat(),
            "submission_id": _uuid4(rng.getrandbits(128)),
        }
        # SPC Art. 5: most listings are decided on the creditor's application.
        applied = rnd() < 0.6
        body["decision"] = {
            "document_number": case_number,
            "decided_on": date.fromordinal(listed_ord).isoformat(),
            "initiated_by": "creditor_application" if applied else "court_initiative",
        }
        extension = extension_for(body)
        if extension is not None:
            body["extension"] = extension
        if applied:
            body["creditor"] = (
                self.person_name() if rnd() < 0.4 else {"name": self.company_name(court.province_code)}
            )
        return body


def extension_for(body: Mapping[str, Any]) -> dict[str, str] | None:
    """SPC Art. 2: a term beyond two years is an extension, here decided with the listing
    (its decision's number and date) for several dishonest acts; None for a shorter term."""
    term = body.get("term_years")
    if not isinstance(term, int) or term <= 2:
        return None
    return {
        "document_number": str(body["case_number"]),
        "decided_on": str(body["decision"]["decided_on"]),
        "reason": "multiple_dishonest_acts",
    }


def _province_of(court_code: str) -> str:
    """The demo courts are provincial courts: each abbreviation names one province."""
    province = COURT_ABBREVIATIONS[court_code[0]]
    assert province is not None, court_code
    return province
