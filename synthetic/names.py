"""Word lists for fake but plausible Chinese enterprise and person names (no real people)."""

from assets.contract import EVENT_TYPES

#: (first four digits of the administrative division code, city name)
CITIES = (
    (3301, "杭州"), (3302, "宁波"), (3303, "温州"), (3205, "苏州"), (3202, "无锡"),
    (3201, "南京"), (4403, "深圳"), (4401, "广州"), (4419, "东莞"), (3101, "上海"),
    (3702, "青岛"), (3502, "厦门"), (5101, "成都"), (4201, "武汉"),
)  # fmt: skip

BRANDS = tuple(
    "恒达 鑫源 华通 宏盛 金诚 永泰 瑞丰 嘉禾 天成 安信 博远 中恒 润泽 凯越 锦程 万隆 "
    "汇丰 新世纪 东方 海川 明辉 福瑞 创拓 联众 正邦 德润 启航 盛世 同创 佳兴 立信 "
    "顺发 长青 远景 智联 鼎盛 华美 利民 众合 兴业".split()
)

INDUSTRY_WORDS = {
    "A": "农业科技", "B": "矿业", "C": "机械制造", "D": "能源", "E": "建设工程",
    "F": "商贸", "G": "物流", "H": "餐饮管理", "I": "信息技术", "J": "投资咨询",
    "K": "置业", "L": "商务服务", "M": "科技研发", "N": "环境工程", "O": "家政服务",
    "P": "教育咨询", "Q": "健康管理", "R": "文化传媒", "S": "社会服务", "T": "国际服务",
}  # fmt: skip

SURNAMES = tuple("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹")
GIVEN = tuple(
    "伟 芳 娜 敏 静 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀英 华 建国 建华 志强 海燕 "
    "丽娟 晓东 文斌 春梅 国平 玉兰 子豪 思远 俊杰 雪梅 永刚 红霞 立新 宏伟".split()
)

_EVENT_TEXT = {
    "legal_rep_change": "法定代表人变更",
    "shareholder_change": "股东变更",
    "registered_capital_change": "注册资本变更",
    "address_change": "住所变更",
    "abnormal_operation_listed": "列入经营异常名录",
    "abnormal_operation_removed": "移出经营异常名录",
    "court_judgment_defendant": "买卖合同纠纷一审判决（被告）",
    "enforcement_listed": "被列为被执行人",
    "dishonest_debtor_listed": "被列为失信被执行人",
    "admin_penalty": "行政处罚",
    "equity_pledge": "股权出质",
    "status_change": "登记状态变更",
}
#: Description per event type, in assets.contract.EVENT_TYPES order.
EVENT_TEXT = tuple(_EVENT_TEXT[e] for e in EVENT_TYPES)

#: Status-change description per status index (active, suspended, revoked, cancelled).
STATUS_TEXT = ("登记状态变更", "存续→停业", "存续→吊销营业执照", "存续→注销")
