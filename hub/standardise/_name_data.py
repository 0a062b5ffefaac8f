"""Reference data for names and companies (kept apart from the logic so it can grow without noise)."""

from __future__ import annotations

# Single-character Chinese surnames, simplified, roughly by frequency (most common first). The rank is
# used to pick the family name in romanised names where both tokens are surnames ("Chen Wei": 陈 is far
# more common as a surname than 魏, so chen is the family name).
SINGLE_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温"
    "康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成"
    "苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费"
    "卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠"
    "惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支卿国"
    "狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那宿鲜印逯隆茹诸战慕危玉银亢"
    "嵇公哈湛宾戎勾茅利於呼居揭干但尉斯元束檀衣信展阴昝智幸奉植衡富尧闭由逄"
)

# Two-character (compound) surnames. Checked before the single-character split.
COMPOUND_SURNAMES = frozenset({
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "令狐", "慕容", "夏侯", "尉迟", "公孙", "长孙", "宇文",
    "司徒", "端木", "申屠", "轩辕", "独孤", "南宫", "西门", "百里", "呼延", "闻人", "太史", "澹台", "公冶",
    "宗政", "濮阳", "淳于", "单于", "太叔", "仲孙", "钟离", "宰父", "谷梁", "闾丘", "子车", "亓官", "司寇",
    "巫马", "公西", "颛孙", "壤驷", "公良", "漆雕", "乐正", "拓跋", "夹谷", "赫连", "东郭", "第五", "梁丘",
    "左丘", "公羊", "羊舌", "微生", "鲜于", "万俟", "司空", "常孙", "段干", "东门", "公户", "公玉",
    "公仪", "公仲", "公上", "公门", "公山", "公坚", "左人", "东宫",
})

# Readings of characters *as surnames*, where the everyday reading differs (pypinyin would give the
# common one: 单 → dan, 曾 → ceng, 区 → qu …).
SURNAME_READINGS = {
    "单": "shan", "曾": "zeng", "区": "ou", "解": "xie", "仇": "qiu", "朴": "piao", "查": "zha", "盖": "ge",
    "乐": "yue", "覃": "qin", "翟": "zhai", "缪": "miao", "繁": "po", "召": "shao", "秘": "bi", "种": "chong",
    "员": "yun", "句": "gou", "宓": "mi", "过": "guo", "华": "hua", "任": "ren", "纪": "ji", "冼": "xian",
    "洗": "xian", "折": "she", "朝": "chao", "沈": "shen", "柏": "bai", "祭": "zhai", "阚": "kan",
    "逄": "pang", "曲": "qu", "莘": "shen", "陆": "lu", "能": "nai", "薄": "bo", "贲": "ben", "郇": "huan",
    "藏": "zang", "尉": "yu", "相": "xiang", "长": "zhang", "都": "du", "那": "na", "隗": "wei",
    "黑": "he", "谌": "chen", "重": "chong", "养": "yang", "车": "che", "居": "ju", "蕃": "pi", "万": "wan",
    "尉迟": "yuchi", "万俟": "moqi", "长孙": "zhangsun", "单于": "chanyu", "澹台": "tantai", "亓官": "qiguan",
    "乐正": "yuezheng", "令狐": "linghu", "皇甫": "huangfu", "夹谷": "jiagu",
}

# Common non-Mandarin romanisations of Chinese surnames (Cantonese, Hokkien, Wade–Giles) — used only to
# recognise the family-name token in a romanised name; they are not converted to pinyin.
ROMANISED_SURNAMES = frozenset({
    "chiang", "chau", "yiu", "hsiao", "tsao", "tseng", "tseung", "teoh", "chew", "choy", "pun", "soo", "keung",
    "chan", "wong", "cheung", "chang", "lee", "lau", "ng", "ho", "tsang", "leung", "lam", "cheng", "yip",
    "tang", "kwok", "chow", "chu", "lo", "fung", "yeung", "tse", "kwan", "mak", "choi", "hui", "szeto",
    "au", "ip", "tam", "tong", "tsui", "wan", "yau", "yuen", "siu", "ko", "kong", "koo", "law", "lai",
    "lui", "man", "mok", "pang", "poon", "shum", "so", "sze", "to", "tsoi", "wai", "woo", "wu", "yam",
    "yu", "chiu", "chung", "hung", "kam", "kwong", "leong", "loh", "lim", "tan", "teo", "goh",
    "ong", "koh", "chua", "ang", "khoo", "quek", "yeo", "hsu", "chou", "tsai", "hsieh", "kuo", "chien",
    "chao", "chen", "huang", "liao", "lin", "yang", "kao", "cheong", "leow", "toh", "neo", "sim", "low",
})

# Cantonese, Hokkien/Teochew and Wade-Giles spellings of Chinese surnames -> the Mandarin pinyin they can stand
# for (Wong is 王 or 黄, Chan is 陈, Chiang is 蒋, Yiu is 姚): a Hong Kong or Singapore record and a mainland
# one of the same person spell the surname differently.
ROMANISED_SURNAME_PINYIN: dict[str, tuple[str, ...]] = {
    "chan": ("chen",), "wong": ("wang", "huang"), "cheung": ("zhang",), "chang": ("zhang", "chang"),
    "lee": ("li",), "lau": ("liu",), "ng": ("wu", "huang"), "ho": ("he",), "tsang": ("zeng",), "tseng": ("zeng",),
    "leung": ("liang",), "leong": ("liang",), "lam": ("lin",), "lim": ("lin",), "cheng": ("zheng", "cheng"),
    "yip": ("ye",), "yeh": ("ye",), "ip": ("ye",), "tang": ("deng", "tang"), "kwok": ("guo",), "kuo": ("guo",),
    "quek": ("guo",), "chow": ("zhou",), "chou": ("zhou",), "chau": ("zhou",), "chew": ("zhou",),
    "chu": ("zhu",), "lo": ("luo", "lu"), "loh": ("luo",), "law": ("luo", "liu"), "fung": ("feng",),
    "yeung": ("yang",), "yeo": ("yang",), "yong": ("yang", "weng"), "tse": ("xie",), "hsieh": ("xie",),
    "chia": ("xie",), "kwan": ("guan",), "mak": ("mai",), "choi": ("cai",), "tsoi": ("cai",), "tsai": ("cai",),
    "chua": ("cai",), "choy": ("cai",), "hui": ("xu",), "hsu": ("xu",), "koh": ("xu",), "tsui": ("xu", "cui"),
    "tam": ("tan",), "tan": ("chen", "tan"), "tong": ("tang",), "yau": ("qiu", "you"), "yuen": ("yuan",),
    "siu": ("xiao",), "hsiao": ("xiao",), "ko": ("gao",), "kao": ("gao",), "kong": ("jiang", "kong"),
    "lai": ("li", "lai"), "lui": ("lei", "lu"), "mok": ("mo",), "pang": ("peng", "pang"), "poon": ("pan",),
    "pun": ("pan",), "so": ("su",), "soo": ("su",), "to": ("du", "tao"), "chiu": ("zhao", "qiu"),
    "chao": ("zhao",), "chung": ("zhong",), "hung": ("hong", "xiong"), "kwong": ("kuang",), "teo": ("zhang",),
    "teoh": ("zhang",), "goh": ("wu",), "ong": ("wang",), "ang": ("hong",), "khoo": ("qiu",), "chien": ("qian",),
    "chiang": ("jiang",), "tseung": ("jiang",), "keung": ("jiang",), "yiu": ("yao",), "tsao": ("cao",),
    "cho": ("cao",), "szeto": ("situ",), "au": ("ou",), "woo": ("hu", "wu"), "sze": ("shi",), "wai": ("wei",),
    "yam": ("ren",), "kam": ("jin", "gan"), "shum": ("shen", "cen"), "man": ("wen",), "wan": ("wen", "yin"),
}

# The everyday reading that a naive transliteration (pypinyin without surname readings, many ERP and shop
# exports) writes for a surname character: 曾伟 exported as "Ceng Wei" is Zeng Wei, 单 as "Dan" is Shan.
# Only readings that are not themselves a common surname (召 → zhao, 种 → zhong stay out).
EVERYDAY_SURNAME_READINGS: dict[str, tuple[str, ...]] = {
    "ceng": ("zeng",), "dan": ("shan",), "qu": ("ou",), "jie": ("xie",), "chou": ("qiu",), "pu": ("piao",),
    "cha": ("zha",), "gai": ("ge",), "le": ("yue",), "mou": ("miao",), "di": ("zhai",),
}
for _everyday, _readings in EVERYDAY_SURNAME_READINGS.items():
    ROMANISED_SURNAME_PINYIN[_everyday] = ROMANISED_SURNAME_PINYIN.get(_everyday, ()) + _readings

# Titles/honorifics before a Latin-script name (lower-case, without the trailing dot).
TITLES = frozenset({
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "dame", "lord", "lady", "rev",
    "reverend", "fr", "father", "madam", "madame", "mme", "mlle", "herr", "frau", "hr", "fru", "sr", "sra",
    "srta", "dott", "ing", "mag", "capt", "col", "gen", "hon", "messrs", "mister",
})
# Suffixes after a Latin-script name.
SUFFIXES = frozenset({
    "jr", "jnr", "sr", "snr", "ii", "iii", "iv", "phd", "md", "esq", "dds", "mba", "cpa", "jd", "dvm", "rn",
    "obe", "mbe", "cbe", "frs", "qc", "kc",
})
# Lower-case particles that belong to the family name (Ludwig van Beethoven → family 'van Beethoven').
PARTICLES = frozenset({
    "van", "von", "de", "da", "di", "del", "della", "der", "den", "la", "le", "du", "dos", "das", "do",
    "ten", "ter", "bin", "binti", "al", "el", "af", "zu", "vom", "mac", "st",
})
# Chinese honorifics written after a family name: 陈先生, 王女士, 李总.
CN_HONORIFICS = ("先生", "女士", "小姐", "太太", "夫人", "老师", "经理", "老板", "师傅", "同学", "总")

# Nickname / variant spelling → canonical given name (lower-case ASCII).
_NICKS = {
    "robert": "bob bobby rob robbie robby bert",
    "william": "bill billy will willy willie liam",
    "elizabeth": "liz lizzie lizzy beth betty betsy eliza libby elsie bess bessie lisbeth",
    "james": "jim jimmy jimmie jamie",
    "michael": "mike mikey mick mickey",
    "david": "dave davy davie",
    "richard": "dick rick ricky rich richie",
    "thomas": "tom tommy thom",
    "joseph": "joe joey jos",
    "charles": "chuck charlie chas",
    "anthony": "tony antony",
    "stephen": "steve stevie steven",
    "edward": "ed eddie eddy ted teddy ned",
    "daniel": "dan danny",
    "matthew": "matt matty",
    "christopher": "chris kit topher",
    "nicholas": "nick nicky nico nicolas",
    "samuel": "sam sammy",
    "benjamin": "ben benny benji",
    "alexander": "alex alec sasha xander",
    "andrew": "andy drew",
    "peter": "pete",
    "gregory": "greg",
    "jeffrey": "jeff geoff geoffrey",
    "gerald": "gerry jerry",
    "lawrence": "larry laurence",
    "henry": "harry hank hal",
    "john": "jack johnny jon",
    "jonathan": "jonny",
    "kenneth": "ken kenny",
    "ronald": "ron ronnie",
    "donald": "don donny",
    "douglas": "doug",
    "frederick": "fred freddie freddy",
    "francis": "frank frankie",
    "eugene": "gene",
    "jacob": "jake",
    "joshua": "josh",
    "katherine": "kate katie kathy cathy kat kitty catherine kathryn katharine kathleen",
    "margaret": "peggy maggie meg madge margie greta",
    "patricia": "patty patsy trish tricia",
    "patrick": "pat paddy",
    "susan": "sue susie suzy",
    "jennifer": "jenny jen jenn",
    "rebecca": "becky becca",
    "victoria": "vicky vickie tori",
    "deborah": "debbie deb debra",
    "abigail": "abby abbie",
    "amanda": "mandy",
    "sandra": "sandy",
    "cynthia": "cindy",
    "barbara": "barb babs",
    "dorothy": "dot dottie dolly",
    "mary": "polly molly mollie mae",
    "judith": "judy",
    "jessica": "jess jessie",
    "natalie": "nat natty",
    "valerie": "val",
    "christina": "tina",
    "christine": "chrissy",
    "mildred": "millie",
    "eleanor": "ellie nora",
    "helen": "nell nellie",
    "manuel": "manny",
    "timothy": "tim timmy",
    "philip": "phil phillip",
    "raymond": "ray",
    "walter": "walt wally",
    "vincent": "vince vinny",
    "zachary": "zach zack zac",
    "nathan": "nate",
    "nathaniel": "nat",
    "gabriel": "gabe",
    "leonard": "len lenny leo",
    "louis": "lou louie",
    "martin": "marty",
    "mitchell": "mitch",
    "oliver": "ollie",
    "russell": "russ",
    "stanley": "stan",
    "theodore": "theo",
    "tobias": "toby",
    "victor": "vic",
    "wesley": "wes",
    "albert": "al albie",
    "alfred": "alf alfie",
    "arthur": "art artie",
    "bradley": "brad",
    "cameron": "cam",
    "clifford": "cliff",
    "dennis": "denny",
    "frances": "fran",
    "gwendolyn": "gwen",
    "harold": "harry",
    "isabella": "bella izzy",
    "isaac": "ike",
    "jacqueline": "jackie",
    "joanne": "jo",
    "kimberly": "kim",
    "lucille": "lucy",
    "maximilian": "max",
    "penelope": "penny",
    "randolph": "randy",
    "roger": "rog",
    "ruth": "ruthie",
    "samantha": "sammie",
    "sebastian": "seb",
    "terence": "terry",
    "theresa": "tess tessa terri",
    "virginia": "ginny",
    "winifred": "winnie",
    "allison": "ally allie",
    "angela": "angie",
    "anne": "annie ann anna nan",
    "caroline": "carrie",
    "cassandra": "cassie",
    "daphne": "daph",
    "evelyn": "evie",
    "gertrude": "gertie trudy",
    "josephine": "josie",
    "leslie": "les",
    "madeline": "maddie madeleine",
    "pamela": "pam",
    "rosemary": "rosie",
    "stephanie": "steph",
    "veronica": "ronnie",
    # feminine counterparts of ambiguous short forms (pat, alex, sam, chris …)
    "charlotte": "charlie lotte lottie",
    "alexandra": "alex sandy sasha lexi",
    "nicole": "nicky nikki",
    "antonia": "toni",
    "andrea": "andy",
    "danielle": "dani danny",
    "melissa": "mel missy",
    "melanie": "mel",
    "roberta": "bobbie robbie",
    "frederica": "freddie",
    "eugenia": "gene",
    "maxine": "max",
    "florence": "flo",
    # German / continental forms common in the hub's Western sources
    "matthias": "matze matti",
    "stefanie": "steffi",
    "florian": "flo",
    "andreas": "andi",
    "ulrich": "uli",
    "johannes": "hannes jo",
    "josef": "sepp seppi",
    "franziska": "franzi",
    "katharina": "kathi kati",
    "susanne": "susi",
    "gabriele": "gabi",
    "anton": "toni",
    "jose": "pepe",
    "francisco": "paco pancho",
    "ignacio": "nacho",
    "guadalupe": "lupe",
}
_NICKS["oliver"] += " olli oli"
_NICKS["samantha"] += " sam"
_NICKS["sebastian"] += " basti"
_NICKS["tobias"] += " tobi"
_NICKS["christina"] += " chris"
_NICKS["christine"] += " chris"
_NICKS["frances"] += " frankie"
_NICKS["theresa"] += " terry"
_NICKS["patricia"] += " pat"
_NICKS["jacqueline"] += " jacky"

# Canonical given names that are feminine: an ambiguous short form (pat, alex, chris) resolves to one of
# these when the record says the person is female.
FEMININE = frozenset({
    "elizabeth", "katherine", "margaret", "patricia", "susan", "jennifer", "rebecca", "victoria", "deborah",
    "abigail", "amanda", "sandra", "cynthia", "barbara", "dorothy", "mary", "judith", "jessica", "natalie",
    "valerie", "christina", "christine", "mildred", "eleanor", "helen", "frances", "gwendolyn", "isabella",
    "jacqueline", "joanne", "kimberly", "lucille", "penelope", "ruth", "samantha", "theresa", "virginia",
    "winifred", "allison", "angela", "anne", "caroline", "cassandra", "daphne", "evelyn", "florence",
    "gertrude", "josephine", "madeline", "pamela", "rosemary", "stephanie", "veronica", "charlotte",
    "alexandra", "nicole", "antonia", "andrea", "danielle", "melissa", "melanie", "roberta", "frederica",
    "eugenia", "maxine", "stefanie", "franziska", "katharina", "susanne", "gabriele", "guadalupe",
})

# nickname → every canonical it may stand for, in table order (the first is the default).
NICKNAME_VARIANTS: dict[str, tuple[str, ...]] = {}
for _canon, _nicks in _NICKS.items():
    for _n in _nicks.split():
        if _canon not in NICKNAME_VARIANTS.get(_n, ()):
            NICKNAME_VARIANTS[_n] = (*NICKNAME_VARIANTS.get(_n, ()), _canon)
# Ambiguous nicknames default to the first canonical (harry → henry, pat → patrick) unless the caller
# passes the gender. The canonical is a blocking/comparison aid, not a truth claim.
NICKNAMES: dict[str, str] = {n: v[0] for n, v in NICKNAME_VARIANTS.items()}
del _canon, _nicks, _n

# Company legal-form suffixes. Chinese forms are matched on the simplified text; Latin forms on
# lower-case tokens with dots removed. Value = canonical display of the legal form.
CN_LEGAL_SUFFIXES = (
    "集团股份有限公司", "集团有限责任公司", "集团有限公司", "股份有限公司", "有限责任公司", "有限合伙企业",
    "股份合作公司", "有限公司", "有限合伙", "合伙企业", "个人独资企业", "分公司", "总公司", "公司",
    "集团", "股份", "工作室", "商行", "厂",
)
# Latin legal forms that are also name syllables or words (Wang Se, Li Ab, "co"): they make a party an
# organisation only when written as a legal form is (AG, S.A., Co.), not as a name part is (Se, Ab).
AMBIGUOUS_LEGAL_FORMS = frozenset({
    "as", "ab", "se", "sl", "oy", "ag", "co", "kk", "nv", "lp", "sa", "ug", "ev", "kg", "bv", "sas", "spa", "group",
    "company", "holdings",
})

# Notes that ERPs keep in the name field: "Ines Khan #00999", "John Smith (old account)", "Maria Rossi - do not
# use", "Anna Dubois DUPLICATE", "王伟 测试". Words (lower case) that make a trailing part a note, by kind.
NAME_NOTE_WORDS = {
    "duplicate": ("duplicate", "dup", "dupe", "dupl", "double", "重复", "重複"),
    "test": ("test", "testing", "dummy", "sample", "demo", "测试", "測試", "样本"),
    "inactive": ("old", "account", "acct", "do", "not", "dont", "don't", "use", "dnu", "inactive", "closed",
                 "deleted", "delete", "obsolete", "archived", "archive", "merged", "blocked", "former", "legacy",
                 "see", "use", "new", "moved", "deceased", "停用", "作废", "作廢", "勿用", "删除", "刪除", "旧", "舊",
                 "旧账户", "不要用", "已注销", "注销", "已删除"),
}
LATIN_LEGAL_FORMS = {
    "co": "Co", "company": "Co", "ltd": "Ltd", "limited": "Ltd", "inc": "Inc", "incorporated": "Inc",
    "corp": "Corp", "corporation": "Corp", "llc": "LLC", "llp": "LLP", "lp": "LP", "gmbh": "GmbH",
    "ag": "AG", "kg": "KG", "ohg": "OHG", "ug": "UG", "se": "SE", "sa": "SA", "sarl": "SARL",
    "sas": "SAS", "spa": "SpA", "srl": "SRL", "bv": "BV", "nv": "NV", "plc": "PLC", "pty": "Pty",
    "pte": "Pte", "kk": "KK", "oy": "Oy", "ab": "AB", "as": "AS", "aps": "ApS", "sl": "SL", "sdn": "Sdn",
    "bhd": "Bhd", "group": "Group", "holdings": "Holdings", "gbr": "GbR", "ev": "eV", "mbh": "mbH",
}
