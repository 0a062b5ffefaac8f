"""Static vocabularies for the sandbox people generator (names, places, carriers, products).

Kept as plain tuples so generation needs no external look-ups and stays deterministic.
Chinese entries are ``simplified:pinyin``; traditional script is derived with OpenCC at import.
"""

from __future__ import annotations

# (simplified, pinyin, weight) — weights roughly follow the 2020 census surname ranking.
CN_SURNAMES: tuple[tuple[str, str, int], ...] = (
    ("王", "wang", 70), ("李", "li", 70), ("张", "zhang", 65), ("刘", "liu", 55), ("陈", "chen", 45),
    ("杨", "yang", 35), ("黄", "huang", 25), ("赵", "zhao", 22), ("吴", "wu", 20), ("周", "zhou", 20),
    ("徐", "xu", 16), ("孙", "sun", 15), ("马", "ma", 15), ("朱", "zhu", 13), ("胡", "hu", 13),
    ("郭", "guo", 12), ("何", "he", 11), ("林", "lin", 11), ("罗", "luo", 10), ("高", "gao", 10),
    ("郑", "zheng", 9), ("梁", "liang", 9), ("谢", "xie", 8), ("宋", "song", 7), ("唐", "tang", 7),
    ("许", "xu", 7), ("韩", "han", 6), ("冯", "feng", 6), ("邓", "deng", 6), ("曹", "cao", 5),
    ("欧阳", "ouyang", 1), ("司马", "sima", 1),
)

CN_GIVEN_MALE: tuple[tuple[str, str], ...] = tuple(
    tuple(p.split(":")) for p in (  # type: ignore[misc]
        "伟:wei 强:qiang 磊:lei 军:jun 洋:yang 勇:yong 杰:jie 涛:tao 明:ming 超:chao 浩:hao 鹏:peng "
        "斌:bin 辉:hui 刚:gang 建:jian 国:guo 华:hua 平:ping 宇:yu 俊:jun 志:zhi 文:wen 龙:long 峰:feng "
        "海:hai 东:dong 波:bo 晨:chen 博:bo"
    ).split()
)
CN_GIVEN_FEMALE: tuple[tuple[str, str], ...] = tuple(
    tuple(p.split(":")) for p in (  # type: ignore[misc]
        "芳:fang 娜:na 敏:min 静:jing 丽:li 艳:yan 婷:ting 秀:xiu 英:ying 玲:ling 霞:xia 燕:yan 红:hong "
        "梅:mei 琳:lin 雪:xue 佳:jia 慧:hui 欣:xin 颖:ying 倩:qian 晶:jing 丹:dan 萍:ping 月:yue 露:lu"
    ).split()
)

# English names Chinese people adopt (kept in Person.nicknames)
CN_ENGLISH_NAMES = {"M": ("Kevin", "Jason", "Eric", "Tony", "Jack", "Leo", "Frank", "Vincent"),
                    "F": ("Lily", "Grace", "Cherry", "Vivian", "Amy", "Coco", "Jessica", "Sunny")}

# Same-pinyin characters a pinyin IME offers first: the typical "typo" in Chinese data entry (陈伟 -> 陈玮)
CN_HOMOPHONES: dict[str, str] = {c: group for group in (
    "伟玮炜巍", "丽莉俐", "静婧", "敏珉闽", "强蔷", "军君", "娜纳", "芳方", "杰洁", "明铭", "涛滔", "辉晖",
    "华桦", "磊蕾", "燕艳雁", "婷亭", "霞夏", "玲琳铃", "平萍", "宇雨羽", "峰锋枫", "斌彬", "鹏朋", "浩昊皓",
    "超潮", "刚钢", "建健剑", "文雯", "龙隆", "东冬", "波博", "晨辰", "佳嘉", "欣馨", "颖莹", "倩茜", "月悦",
    "张章", "刘留", "陈晨", "杨阳", "黄皇", "吴伍", "周舟", "徐许", "林琳") for c in group}

# Very common full names: the matcher must not merge two different people who share these.
CN_NAMESAKES: tuple[tuple[str, str, str, str, str], ...] = (
    # surname, surname pinyin, given, given pinyin, gender
    ("王", "wang", "伟", "wei", "M"), ("张", "zhang", "伟", "wei", "M"), ("李", "li", "娜", "na", "F"),
    ("王", "wang", "芳", "fang", "F"), ("刘", "liu", "伟", "wei", "M"), ("李", "li", "强", "qiang", "M"),
    ("张", "zhang", "敏", "min", "F"), ("陈", "chen", "伟", "wei", "M"),
)
WEST_NAMESAKES: tuple[tuple[str, str, str], ...] = (
    ("John", "Smith", "M"), ("Mary", "Johnson", "F"), ("David", "Brown", "M"), ("Thomas", "Müller", "M"),
    ("James", "Wilson", "M"),
)

# first name, gender, nicknames (the first nickname is the most common one)
WEST_FIRST: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Robert", "M", ("Bob", "Rob", "Bobby")), ("William", "M", ("Bill", "Will")),
    ("Michael", "M", ("Mike",)), ("James", "M", ("Jim", "Jimmy")), ("Richard", "M", ("Rick", "Dick")),
    ("Thomas", "M", ("Tom",)), ("Christopher", "M", ("Chris",)), ("Daniel", "M", ("Dan", "Danny")),
    ("Joseph", "M", ("Joe",)), ("Anthony", "M", ("Tony",)), ("Alexander", "M", ("Alex",)),
    ("Andrew", "M", ("Andy", "Drew")), ("John", "M", ("Johnny", "Jack")), ("David", "M", ("Dave",)),
    ("Lukas", "M", ()), ("Jonas", "M", ()), ("Oliver", "M", ("Olli",)), ("Matthias", "M", ("Matze",)),
    ("Elizabeth", "F", ("Liz", "Beth", "Betty")), ("Katherine", "F", ("Kate", "Kathy")),
    ("Jennifer", "F", ("Jen", "Jenny")), ("Margaret", "F", ("Maggie", "Peggy")), ("Susan", "F", ("Sue",)),
    ("Patricia", "F", ("Pat", "Patty")), ("Stephanie", "F", ("Steph",)), ("Sarah", "F", ()),
    ("Emma", "F", ()), ("Hannah", "F", ()), ("Anna", "F", ()), ("Sophie", "F", ()), ("Mary", "F", ("Molly",)),
    ("Rebecca", "F", ("Becky",)), ("Charlotte", "F", ("Lotte", "Charlie")),
)
WEST_SURNAMES: dict[str, tuple[str, ...]] = {
    "US": ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Clark",
           "Lewis", "Walker", "Young", "Allen", "O'Brien", "McDonald"),
    "GB": ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Thomas", "Roberts", "Walker",
           "Wright", "Hughes", "O'Connor", "Clarke"),
    "DE": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
           "Hoffmann", "Schäfer", "Koch", "Groß"),
}

# CN places: province, province pinyin, WooCommerce state code, city, city pinyin, landline area code,
# [(district, district pinyin, postcode, GB/T 2260 division code)]
CN_PLACES: tuple[tuple[str, str, str, str, str, str, tuple[tuple[str, str, str, str], ...]], ...] = (
    ("北京市", "Beijing", "CN2", "北京市", "Beijing", "010",
     (("朝阳区", "Chaoyang", "100020", "110105"), ("海淀区", "Haidian", "100080", "110108"),
      ("东城区", "Dongcheng", "100010", "110101"))),
    ("上海市", "Shanghai", "CN10", "上海市", "Shanghai", "021",
     (("浦东新区", "Pudong", "200120", "310115"), ("徐汇区", "Xuhui", "200030", "310104"),
      ("静安区", "Jing'an", "200040", "310106"))),
    ("广东省", "Guangdong", "CN20", "广州市", "Guangzhou", "020",
     (("天河区", "Tianhe", "510620", "440106"), ("越秀区", "Yuexiu", "510030", "440104"))),
    ("广东省", "Guangdong", "CN20", "深圳市", "Shenzhen", "0755",
     (("南山区", "Nanshan", "518052", "440305"), ("福田区", "Futian", "518048", "440304"))),
    ("浙江省", "Zhejiang", "CN12", "杭州市", "Hangzhou", "0571",
     (("西湖区", "Xihu", "310012", "330106"), ("上城区", "Shangcheng", "310002", "330102"))),
    ("江苏省", "Jiangsu", "CN11", "南京市", "Nanjing", "025",
     (("鼓楼区", "Gulou", "210008", "320106"), ("玄武区", "Xuanwu", "210018", "320102"))),
    ("四川省", "Sichuan", "CN24", "成都市", "Chengdu", "028",
     (("武侯区", "Wuhou", "610041", "510107"), ("锦江区", "Jinjiang", "610021", "510104"))),
    ("湖北省", "Hubei", "CN18", "武汉市", "Wuhan", "027",
     (("江汉区", "Jianghan", "430015", "420103"), ("武昌区", "Wuchang", "430060", "420106"))),
    ("山东省", "Shandong", "CN16", "青岛市", "Qingdao", "0532",
     (("市南区", "Shinan", "266001", "370202"),)),
    ("福建省", "Fujian", "CN14", "福州市", "Fuzhou", "0591",
     (("鼓楼区", "Gulou", "350001", "350102"),)),
)
# Divisions created after 1949: an ID of someone born earlier carries the city-level code (xxxx00) instead,
# which keeps the numbers valid for checkers that look the code up per birth year (python-stdnum cn/loc).
CN_DIVISION_SINCE = {"310115": 1992, "440106": 1985, "440104": 1983, "440305": 1990, "440304": 1990,
                     "330106": 1983, "330102": 1983, "320106": 1983, "320102": 1983, "510107": 1990,
                     "510104": 1990, "420103": 1983, "420106": 1983, "370202": 1983, "350102": 1983}

CN_STREETS: tuple[tuple[str, str], ...] = (
    ("中山路", "Zhongshan Road"), ("人民路", "Renmin Road"), ("解放路", "Jiefang Road"),
    ("建国路", "Jianguo Road"), ("南京西路", "Nanjing West Road"), ("天河路", "Tianhe Road"),
    ("深南大道", "Shennan Avenue"), ("文三路", "Wensan Road"), ("科技园路", "Kejiyuan Road"),
    ("长江路", "Changjiang Road"), ("和平街", "Heping Street"), ("新华路", "Xinhua Road"),
)

# Western places: country, city, state/region (code for US), postcode, landline prefix (national)
WEST_PLACES: dict[str, tuple[tuple[str, str, str, tuple[str, ...]], ...]] = {
    "US": (("New York", "NY", "212", ("10001", "10011", "10025")), ("San Francisco", "CA", "415", ("94103", "94110")),
           ("Chicago", "IL", "312", ("60601", "60614")), ("Boston", "MA", "617", ("02108", "02116")),
           ("Seattle", "WA", "206", ("98101", "98109")), ("Austin", "TX", "512", ("78701", "78704"))),
    "GB": (("London", "", "20", ("EC1A 1BB", "N1 9GU", "SE1 7PB", "SW1A 2AA")), ("Manchester", "", "161", ("M1 1AE", "M4 5JD")),
           ("Edinburgh", "", "131", ("EH1 1YZ", "EH3 9DR")), ("Bristol", "", "117", ("BS1 4ST", "BS8 1TH"))),
    "DE": (("Berlin", "", "30", ("10115", "10437", "12043")), ("München", "", "89", ("80331", "80469")),
           ("Hamburg", "", "40", ("20095", "22767")), ("Köln", "", "221", ("50667", "50733")),
           ("Frankfurt am Main", "", "69", ("60311", "60594"))),
}
WEST_STREETS: dict[str, tuple[str, ...]] = {
    "US": ("Market Street", "Main Street", "Oak Avenue", "Maple Avenue", "Washington Street", "Park Avenue",
           "Chestnut Street", "Lake Shore Drive"),
    "GB": ("High Street", "Station Road", "Church Lane", "Victoria Road", "King's Road", "Mill Lane"),
    "DE": ("Hauptstraße", "Bahnhofstraße", "Schillerstraße", "Gartenweg", "Lindenallee", "Goethestraße"),
}
COUNTRY_NAMES = {"CN": "China", "US": "United States", "GB": "United Kingdom", "DE": "Germany"}

CN_EMAIL_DOMAINS = ("qq.com", "163.com", "126.com", "sina.com", "foxmail.com", "139.com")
WEST_EMAIL_DOMAINS = {"US": ("gmail.com", "outlook.com", "yahoo.com", "icloud.com"),
                      "GB": ("gmail.com", "outlook.com", "btinternet.com", "yahoo.co.uk"),
                      "DE": ("gmx.de", "web.de", "gmail.com", "t-online.de")}

CN_MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
                      "155", "158", "159", "176", "177", "180", "182", "186", "187", "188", "189", "198")

# code, name, list price (CNY), carrier-friendly weight class
PRODUCTS: tuple[tuple[str, str, str], ...] = (
    ("TEA-LJ-250", "龙井茶 250g / Longjing tea 250g", "168.00"),
    ("TEA-PU-357", "普洱茶饼 357g / Pu'er cake", "288.00"),
    ("CUP-CER-01", "Ceramic tea cup", "39.90"),
    ("POT-YX-02", "宜兴紫砂壶 / Yixing teapot", "699.00"),
    ("SET-GIFT-5", "Gift set (5 teas)", "399.00"),
    ("KTL-EL-1L", "Electric kettle 1L", "229.00"),
    ("HNY-ACA-500", "Acacia honey 500g", "89.00"),
    ("BAG-JUTE", "Jute shopping bag", "25.00"),
    ("TEA-OOL-100", "乌龙茶 100g / Oolong tea", "128.00"),
    ("CUP-GLS-02", "Double-wall glass cup", "59.00"),
)
CARRIERS = ("SF Express", "顺丰速运", "JD Logistics", "ZTO Express", "YTO Express", "China Post EMS",
            "DHL Express", "UPS", "DPD", "Royal Mail")
CARRIER_PREFIX = {"SF Express": "SF", "顺丰速运": "SF", "JD Logistics": "JDV", "ZTO Express": "7", "YTO Express": "YT",
                  "China Post EMS": "E", "DHL Express": "JD0", "UPS": "1Z", "DPD": "0", "Royal Mail": "RM"}

WECHAT_NICK_DECOR = ("🌸", "🌟", "~", "_", "🍀", "😊", "🐼", "")
WECHAT_NICK_WORDS = ("小", "阿", "老", "大")
WECHAT_CHAT_OPENERS = ("你好，我想查一下我的订单", "请问什么时候发货？", "快递到哪里了？", "我要退货", "你好在吗",
                      "Hi, where is my parcel?", "发票怎么开？", "茶叶有优惠吗")
WECHAT_CHAT_PHONE = ("我的手机号是{phone}", "下单留的电话 {phone}", "电话：{phone}", "my phone is {phone}")
WECHAT_CHAT_REPLIES = ("您好，客服为您服务，请稍等", "已为您查询，包裹已发出", "好的，已登记，会尽快处理",
                       "Hello, your order has been shipped.", "请提供一下订单号")
WECHAT_SCENES = ("ADD_SCENE_SEARCH", "ADD_SCENE_QR_CODE", "ADD_SCENE_PROFILE_CARD", "ADD_SCENE_ACCOUNT_MIGRATION",
                 "ADD_SCENE_PAID", "ADD_SCENE_OTHERS")
