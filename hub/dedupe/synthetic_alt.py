"""Independently designed labelled person/customer record sets for evaluating record linkage.

Written without reference to the matching engine or to :mod:`hub.dedupe.synthetic`.  Each function returns a
DataFrame of strings (``""`` = missing): a unique opaque ``record_id``, the truth ``entity_id`` (same value = same
person) and a subset of ``source, full_name, given_name, family_name, company, email, phone, birth_date, gender,
national_id, street, city, region, postal_code, country``.  Rows are shuffled; output depends only on the arguments.

* :func:`febrl_dedup` imitates FEBRL3 (Christen's ``dsgen/generate.py dataset3.csv 2000 3000 5 4 6 zipf``): 40 %
  originals, 60 % duplicates; random originals get 1-5 duplicates with P(k) ~ ``k**-0.5`` until the budget is spent
  (~45 % get none).  Lower-case Australian records: Zipf-skewed given/surnames (Anglo, Irish, Italian, Greek,
  Vietnamese, Chinese...), street = street_number + address_1 (+ address_2, "unit 5" or a property name, ~40 %),
  suburb, postcode, state, YYYYMMDD birth date (1900-1999), 7-digit soc_sec_id; originals already miss some values.
  A duplicate first gets field swaps (given<->surname 5 %, address_1<->address_2 2 %, postcode<->suburb 1 %, two
  modifications each), then fields drawn by selection probability get 1..``max_mod_field`` operations until it holds
  exactly ``max_mod_record`` effective modifications.  Operations (per-field probabilities): insert / delete /
  transpose / substitute a character (45 % same keyboard row, 25 % same column), OCR confusions (m<->rn, l<->1,
  o<->0, cl<->d...), phonetic rewrites (ph<->f, c<->k, ie<->y...), nickname or variant spelling from a look-up,
  another value, word swap, space insert/delete, set missing, fill a missing value, date day/month swap.  Unlike
  dsgen, suburb/postcode/state are mutually consistent in originals.
* :func:`febrl_link` imitates FEBRL4 (``5000 5000 1 2 4 uniform`` split in two): source ``A`` holds originals, ``B``
  one corrupted copy of each (at most 2 modifications per field, 4 per record).
* :func:`customers_single_source`: one CRM, 1-4 records per person, half of them Chinese - simplified/traditional
  hanzi, pinyin in either order and case ("Chen Wei", "WEI CHEN", "Chen Xiao Ming", "Xiao-Ming Chen"), Cantonese
  surnames for some overseas Chinese (Chan, Wong), English first names ("Kevin Chen").  Hidden structure:
  households (2-5 people at one address sharing a surname - most Chinese wives keep theirs - often a landline and
  look-alike or shared e-mails, sometimes twins), namesakes (王伟, 李娜, 刘洋, John Smith, Maria Garcia... with own
  birth dates, ids, phones), company switchboards shared by colleagues, movers, changed mobiles and e-mails.  Noise:
  missing fields, keyboard typos, IME homophones (伟->玮), nicknames, swapped name fields, phones (+86 138-0013-8000,
  008613800138000, (415) 555-0100), dates (1985-03-07, 07/03/1985, 03/07/1985 at US addresses, 1985年3月7日,
  19850307), cities (上海/上海市/Shanghai), e-mail case, GB 11643 ids (valid check digit, birth date, sex digit;
  sometimes the legacy 15-digit form or a keying error).
* :func:`sparse_multisource`: such a population (60 % Chinese) spread over ``erp`` (rich records), ``webshop``
  (name as typed, e-mail, phone, shipping address - maybe the office or an old home), ``wechat`` (display name -
  hanzi, pinyin, English or a nickname like 小明/阿伟/Kevin_C - city, gender, sometimes an authorised phone) and
  ``callcenter`` (name as heard - 陈先生, Mrs Smith, homophones - and caller-id phone, occasionally a household
  landline or a switchboard).  1-4 sources per person (~27 % in one only); some second web accounts and tickets.

:func:`truth_of` maps ``record_id`` to ``entity_id``.
"""

from __future__ import annotations

import bisect
import math
from functools import cache
from itertools import accumulate

import numpy as np
import pandas as pd

__all__ = ["febrl_dedup", "febrl_link", "customers_single_source", "sparse_multisource", "truth_of"]
CANONICAL = ("source", "full_name", "given_name", "family_name", "company", "email", "phone", "birth_date",
             "gender", "national_id", "street", "city", "region", "postal_code", "country")


class _R:
    """Scalar draws from a buffered numpy Generator (per-call Generator methods are slow)."""

    def __init__(self, seed):
        self.g, self._b, self._i = np.random.default_rng(seed), [], 0

    def u(self) -> float:
        if self._i >= len(self._b):
            self._b, self._i = self.g.random(1 << 15).tolist(), 0
        self._i += 1
        return self._b[self._i - 1]

    def p(self, prob):
        return self.u() < prob

    def int(self, lo, hi):  # inclusive
        return lo + min(int(self.u() * (hi - lo + 1)), hi - lo)

    def pick(self, seq):
        return seq[min(int(self.u() * len(seq)), len(seq) - 1)]

    def w(self, table):
        items, cdf = table
        return items[min(bisect.bisect_right(cdf, self.u() * cdf[-1]), len(items) - 1)]

    def gauss(self, mu, sd):
        return mu + sd * math.sqrt(-2.0 * math.log(1.0 - self.u())) * math.cos(6.283185307 * self.u())

    def digits(self, n):  # n <= 15
        return str(int(self.u() * 10 ** n)).zfill(n)


def _t(items, weights=None, s=0.9):
    """Weighted table; without weights a Zipf-like skew over list order."""
    items = list(items)
    return items, list(accumulate(weights or [1.0 / (i + 2) ** s for i in range(len(items))]))


def _opts(**kw):
    return _t(list(kw), list(kw.values()))


def _cap(s):
    return s[:1].upper() + s[1:]


# ------------------------------------------------------------------------------------------ Western / AU vocabulary
F_NAMES = ("emily chloe olivia sophie jessica charlotte sarah ella emma isabella grace hannah lily mia ruby zoe amelia "
           "georgia lucy madison jasmine isabelle caitlin samantha lauren rebecca rachel amy natalie kate claire laura "
           "nicole michelle melissa stephanie jennifer elizabeth catherine katherine margaret mary patricia susan helen "
           "karen linda sandra deborah julie lisa kylie tracey leanne kerry joanne fiona alison alexandra annabel bianca "
           "brooke courtney danielle eliza gemma holly imogen jade kayla lara monique paige phoebe sienna tahlia "
           "victoria ashleigh alicia angela anna maria sofia elena giulia francesca eleni despina georgina mai linh thi "
           "lan hoa mei ling jing yan carmen ana rosa lucia heather wendy barbara dorothy joyce judith janet nancy "
           "shirley christine jacqueline kimberley abbey jodie belinda narelle kristy renee vanessa").split()
M_NAMES = ("joshua jack thomas lachlan james william benjamin daniel matthew ryan samuel nicholas liam riley jacob luke "
           "ethan dylan alexander jayden mitchell cooper jordan harrison oscar noah max blake jake callum connor hayden "
           "brodie kai tyler zachary michael david andrew christopher peter john robert mark paul stephen anthony "
           "steven richard scott jason darren craig brett shane wayne glenn gregory kevin timothy adam aaron bradley "
           "cameron declan elijah finn harry isaac jackson joel kane lincoln marcus nathan patrick rhys sean tristan "
           "xavier giuseppe antonio marco luca giovanni salvatore george konstantinos dimitrios nikolaos spiros minh "
           "tuan duc hung thanh quang wei jun hao carlos jose juan luis miguel diego brian kenneth ronald donald gary "
           "edward frank raymond dennis keith trevor graham neil colin barry ian douglas malcolm").split()
SURNAMES = [s.replace("_", " ") for s in (
    "smith jones williams brown wilson taylor johnson white martin anderson thompson nguyen thomas walker harris lee "
    "ryan robinson kelly king davis wright evans roberts green hall wood jackson clarke patel lewis james phillips "
    "mitchell turner campbell murphy hughes edwards cook morris young scott baker moore stewart miller cooper allen "
    "ward clark hill bell watson price collins bennett parker morgan cox richardson o'brien o'connor mcdonald "
    "mckenzie macdonald fraser reid ross hamilton graham murray kennedy sullivan quinn byrne doyle walsh brennan "
    "fitzgerald gallagher tran le pham huynh hoang phan vu dang bui do ho ngo duong ly wong chen zhang wang li liu "
    "chan lim tan ng lau singh kaur sharma rossi russo ferrari esposito bianchi romano colombo ricci marino greco "
    "bruno gallo conti de_luca costa giordano mancini rizzo lombardi moretti papadopoulos georgiou nikolaidis "
    "dimitriou pappas christodoulou vlahos economou muller schmidt schneider fischer weber meyer wagner becker "
    "hoffmann van_der_berg de_jong jansen garcia rodriguez martinez lopez gonzalez hernandez silva santos kowalski "
    "nowak horvat ivanov petrov cohen levy friedman ahmed ali hussain barnes fisher henderson coleman simmons foster "
    "bryant russell griffin hayes myers ford hunt black dixon burns gordon shaw holmes rice hunter lane knight "
    "elliott harper butler davidson").split()]
T_F, T_M, T_SUR = _t(F_NAMES), _t(M_NAMES), _t(SURNAMES, s=0.8)
# nicknames and variant spellings (FEBRL 'misspell' look-up, customer nicknames)
_VAR = {k: v.split(",") for k, v in (e.split(":") for e in (
    "catherine:katherine,kathryn,cathy,kate,katie;elizabeth:liz,beth,elisabeth,lizzie,betty;michael:mick,mike,micheal;"
    "william:bill,will,billy,willy;robert:bob,rob,bobby,robbie;richard:dick,rick,richie;thomas:tom,tommy;"
    "james:jim,jimmy,jamie;joshua:josh;benjamin:ben,benny;daniel:dan,danny,daniele;matthew:matt,mathew;samuel:sam;"
    "nicholas:nick,nicolas,nic,nikolas;alexander:alex,alec,xander;christopher:chris,kristopher;andrew:andy,drew;"
    "anthony:tony,antony;stephen:steve,steven;steven:steve,stephen;peter:pete;jennifer:jen,jenny;rebecca:becky,bec,"
    "rebekah;samantha:sam,sammi;jessica:jess,jessie,jesica;isabella:bella,izabella;isabelle:isabel,izzy;sarah:sara;"
    "zoe:zoey;hannah:hanna;amelia:millie;margaret:maggie,peggy,margret;patricia:pat,trish,patty;victoria:vicky,tori;"
    "alexandra:alex,sandra;caitlin:kaitlyn,katelyn;ashleigh:ashley,ashlee;jayden:jaden,jaiden;mitchell:mitch;"
    "zachary:zach,zac,zack;timothy:tim;gregory:greg;bradley:brad;cameron:cam;lachlan:lachie,lochlan;kylie:kiley;"
    "tracey:tracy;leanne:lee-anne,leeanne;giuseppe:joe,joseph,pino;konstantinos:con,costa,kon;dimitrios:jim,dimitri;"
    "nikolaos:nick,nikos;giovanni:john,gianni;antonio:tony,toni;edward:ed,eddie,ted;john:jon,johnny,jack;"
    "david:dave,davey;jacqueline:jackie;susan:sue,suzie;deborah:debbie,debra;kimberley:kim,kimberly;"
    "christine:chris,christina;jose:pepe;maria:mary,marie;kenneth:ken,kenny;donald:don;gary:garry;raymond:ray;"
    "douglas:doug;ronald:ron;frank:frankie;smith:smyth,smithe;jones:jone,joens;williams:willams,william;"
    "brown:browne;thompson:thomson,tompson;nguyen:nguyn,ngyuen,nguen;anderson:andersen,andersson;clarke:clark;"
    "clark:clarke;mcdonald:macdonald,mc donald;macdonald:mcdonald;o'brien:obrien,o brien;o'connor:oconnor,o'conner;"
    "reid:reed,read;murphy:murphey;kelly:kelley;hughes:hughs;stewart:stuart;phillips:philips;lee:leigh;chen:chenn;"
    "wong:whong;tran:tranh;huynh:huyng,hunh;papadopoulos:papadopolous,papadopoulous;georgiou:georgiu;muller:mueller;"
    "meyer:meier,mayer;rossi:rosi;esposito:exposito;de luca:deluca,di luca;rodriguez:rodrigues;gonzalez:gonzales;"
    "hernandez:hernandes;fitzgerald:fitzgerrald;gallagher:gallager;byrne:byrn,burn;walsh:welsh;johnson:johnston,"
    "jonson;wilson:willson;thomas:tomas;mckenzie:mackenzie;st kilda:saint kilda;mount druitt:mt druitt;"
    "mount gambier:mt gambier;north sydney:nth sydney;port macquarie:pt macquarie;wagga wagga:wagga;box hill:boxhill;"
    "glen waverley:glen waverly;coffs harbour:coffs harbor;parramatta:paramatta;wollongong:woollongong;"
    "melbourne:melborne;brisbane:brisbaine").split(";"))}
_SUBURBS = [(e[:-5], e[-4:], st) for st, lst in (
    ("nsw", "sydney 2000,parramatta 2150,blacktown 2148,penrith 2750,liverpool 2170,bankstown 2200,hurstville 2220,"
            "chatswood 2067,north sydney 2060,manly 2095,bondi 2026,randwick 2031,newtown 2042,cabramatta 2166,"
            "campbelltown 2560,mount druitt 2770,hornsby 2077,castle hill 2154,newcastle 2300,wollongong 2500,"
            "maitland 2320,gosford 2250,wagga wagga 2650,albury 2640,dubbo 2830,orange 2800,bathurst 2795,"
            "tamworth 2340,port macquarie 2444,coffs harbour 2450,lismore 2480,queanbeyan 2620"),
    ("vic", "melbourne 3000,st kilda 3182,richmond 3121,footscray 3011,box hill 3128,dandenong 3175,frankston 3199,"
            "geelong 3220,ballarat 3350,bendigo 3550,shepparton 3630,mildura 3500,warrnambool 3280,glen waverley 3150,"
            "springvale 3171,sunshine 3020,werribee 3030,craigieburn 3064,doncaster 3108,brunswick 3056,clayton 3168,"
            "oakleigh 3166"),
    ("qld", "brisbane 4000,toowoomba 4350,cairns 4870,townsville 4810,southport 4215,surfers paradise 4217,"
            "ipswich 4305,logan central 4114,rockhampton 4700,mackay 4740,bundaberg 4670,caloundra 4551,"
            "sunnybank 4109,chermside 4032"),
    ("wa", "perth 6000,fremantle 6160,joondalup 6027,rockingham 6168,mandurah 6210,bunbury 6230,geraldton 6530,"
           "kalgoorlie 6430,midland 6056"),
    ("sa", "adelaide 5000,glenelg 5045,elizabeth 5112,mount gambier 5290,whyalla 5600,port augusta 5700,norwood 5067"),
    ("tas", "hobart 7000,launceston 7250,devonport 7310,burnie 7320,glenorchy 7010"),
    ("act", "canberra 2600,belconnen 2617,tuggeranong 2900,gungahlin 2912,kambah 2902,woden 2606"),
    ("nt", "darwin 0800,palmerston 0830,alice springs 0870,katherine 0850")) for e in lst.split(",")]
_STATE_W = {"nsw": .33, "vic": .26, "qld": .20, "wa": .10, "sa": .07, "tas": .02, "act": .015, "nt": .01}
_rank = [sum(1 for y in _SUBURBS[:i + 1] if y[2] == x[2]) for i, x in enumerate(_SUBURBS)]
T_SUBURB = _t(_SUBURBS, [_STATE_W[x[2]] / r ** 0.8 for x, r in zip(_SUBURBS, _rank, strict=True)])  # big places listed first
_AU_STREETS = ("victoria george king queen elizabeth william albert church high main park station railway bridge hill "
               "river beach ocean forest wattle banksia acacia waratah jacaranda boronia grevillea melaleuca kurrajong "
               "currawong kookaburra lyrebird wombat macquarie bligh phillip hume hovell sturt flinders bass cook banks "
               "lachlan darling murray hawkesbury nepean pacific princes military canterbury anzac gallipoli kitchener "
               "monash chauvel bradman lawson paterson kendall gilmore mackellar wentworth blaxland oxley mitchell "
               "kennedy eyre leichhardt burke wills stuart forrest giles wylly mcgoldrick britten-jones jondol kirkwood "
               "wilkins heydon jarrah karri tuart coolabah brigalow mulga mallee hopetoun bourke belmore carrington "
               "denison fitzroy glebe").split()
T_AUTYPE = _opts(street=35, road=15, avenue=10, place=8, crescent=7, drive=6, close=5, court=4, circuit=3, parade=2,
                 way=2, lane=2, terrace=1)
_ADDR2 = ("rosedale,kinross,glenview,brentwood,woodlands,riverside,hillcrest,sunnyside,greenhill,bellevue,fairview,"
          "meadowbank,rowethorpe,the oaks,the willows,mountain view,kurrajong park,st john's village,"
          "wattle grove village,banksia lodge,avondale house").split(",")
_UNIT_WORDS = ("unit", "unit", "flat", "villa", "apartment", "lot", "suite")

# ------------------------------------------------------------------------------------------ character level errors
_ROW = dict(zip("abcdefghijklmnopqrstuvwxyz1234567890", "s vn xv sf wr dg fh gj uo hk jl k n bm ip o w et ad ry yi cb qe zc "
                "tu x 2 13 24 35 46 57 68 79 80 9".split(), strict=True))  # neighbouring keys, same row / column
_COL = dict(zip(_ROW, "qzw gh df erc d rvc tbv ybn k umn im o jk hj l p a f wxz gf j fg s sd h as".split(), strict=False))
_OCR = [tuple(x.split(">")) for x in "m>rn rn>m l>1 1>l o>0 0>o i>l l>i s>5 5>s b>6 6>b g>9 9>g z>2 2>z cl>d d>cl "
                                     "vv>w w>vv u>v e>c h>b n>h 8>b 1>7 7>1 0>8 3>8 5>6".split()]
_PHON = [tuple(x.split(">")) for x in "ph>f f>ph c>k k>c ck>k ie>y y>ie ee>ea ea>ee ou>ow ai>ay ay>ai th>t gh> x>ks "
                                      "ks>x z>s s>z tt>t ll>l nn>n mm>m ss>s ei>ie ie>ei er>a ch>k sch>sh j>g qu>kw "
                                      "wr>r kn>n oo>u ey>y".split()]
_LOW, _DIG = "abcdefghijklmnopqrstuvwxyz", "0123456789"


def _pos(R, s, off=0):  # errors cluster in the middle of a word, rarely on the first letter
    n = len(s) + off
    return max(0, min(n - 1, int(round(R.gauss(n / 2.0, max(1.0, n / 4.0))))))


def _kb(R, c, digits):
    lc, x = c.lower(), R.u()
    n = R.pick(_ROW[lc]) if x < .45 and lc in _ROW else R.pick(_COL[lc]) if x < .7 and lc in _COL and not digits \
        else R.pick(_DIG if digits or c.isdigit() else _LOW)
    return n.upper() if c.isupper() else n


def typo(R, s, op, digits=False):
    """One character-level edit (FEBRL style); returns ``s`` unchanged when the edit does not apply."""
    if not s:
        return s
    if op == "ins":
        i = _pos(R, s, 1)
        return s[:i] + R.pick(_DIG if digits else _LOW) + s[i:]
    if op == "dele" and len(s) > 1:
        i = _pos(R, s)
        return s[:i] + s[i + 1:]
    if op == "sub":
        i = _pos(R, s)
        return s if s[i] == " " else s[:i] + _kb(R, s[i], digits) + s[i + 1:]
    if op == "trans" and len(s) > 1:
        i = _pos(R, s, -1)
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    if op in ("ocr", "phon"):
        cand = [(a, b) for a, b in (_OCR if op == "ocr" else _PHON) if a in s]
        if cand:
            a, b = R.pick(cand)
            i = R.pick([k for k in range(len(s)) if s.startswith(a, k)])
            return s[:i] + b + s[i + len(a):]
    if op == "wswap" and " " in s:
        w = s.split(" ")
        i = R.int(0, len(w) - 2)
        w[i], w[i + 1] = w[i + 1], w[i]
        return " ".join(w)
    if op == "sins" and len(s) > 2:
        i = R.int(1, len(s) - 1)
        return s if " " in s[i - 1:i + 1] else s[:i] + " " + s[i:]
    if op == "sdel" and " " in s:
        i = R.pick([k for k, c in enumerate(s) if c == " "])
        return s[:i] + s[i + 1:]
    return s


_KB_OPS = _opts(sub=45, dele=20, ins=15, trans=15, phon=5)


def kb_typo(R, s):
    return typo(R, s, R.w(_KB_OPS))


# ------------------------------------------------------------------------------------------ FEBRL3 / FEBRL4
# field: (selection probability, digits?, missing in originals, operation probabilities)
_FEBRL = {
    "given_name": (.14, False, .02, _opts(misspell=30, ins=5, dele=13, sub=28, trans=5, ocr=4, phon=6, vswap=2,
                                          wswap=1, sins=1, sdel=1, miss=2, new=2)),
    "surname": (.16, False, .01, _opts(misspell=25, ins=8, dele=10, sub=30, trans=5, ocr=4, phon=8, vswap=2, wswap=1,
                                       sins=2, sdel=2, miss=2, new=1)),
    "street_number": (.10, True, .03, _opts(ins=10, dele=15, sub=50, trans=8, ocr=4, vswap=6, miss=5, new=2)),
    "address_1": (.12, False, .02, _opts(ins=8, dele=15, sub=45, trans=5, ocr=4, phon=5, vswap=3, wswap=3, sins=3,
                                         sdel=3, miss=4, new=2)),
    "address_2": (.10, False, .60, _opts(ins=4, dele=5, sub=12, trans=2, ocr=2, vswap=4, wswap=4, sins=2, sdel=2,
                                         miss=53, new=10)),
    "suburb": (.12, False, .01, _opts(misspell=35, ins=8, dele=14, sub=22, trans=4, ocr=3, phon=5, vswap=1, wswap=2,
                                      sins=2, sdel=2, miss=1, new=1)),
    "postcode": (.06, True, .01, _opts(sub=35, trans=55, vswap=5, miss=3, new=2)),
    "state": (.05, False, .08, _opts(ins=8, dele=10, sub=50, trans=2, vswap=5, miss=15, new=10)),
    "date_of_birth": (.10, True, .08, _opts(sub=45, trans=28, dmswap=5, ocr=2, vswap=5, miss=12, new=3)),
    "soc_sec_id": (.05, True, 0.0, _opts(sub=50, trans=38, ocr=2, vswap=10)),
}
T_FEBRL_FIELD = _t(list(_FEBRL), [v[0] for v in _FEBRL.values()])
_FIELD_SWAPS = ((("given_name", "surname"), .05), (("address_1", "address_2"), .02), (("postcode", "suburb"), .01))
_ABBR = (("mount ", "mt "), ("saint ", "st "), ("north ", "nth "), ("port ", "pt "), ("st ", "saint "))


def _febrl_value(R, field):
    if field in ("suburb", "postcode", "state"):
        return R.w(T_SUBURB)[("suburb", "postcode", "state").index(field)]
    if field == "address_2":
        return f"{R.pick(_UNIT_WORDS)} {1 + int(40 * R.u() ** 2)}" if R.p(.45) else R.pick(_ADDR2)
    if field == "date_of_birth":
        return (pd.Timestamp("1900-01-01") + pd.Timedelta(days=R.int(0, 36523))).strftime("%Y%m%d")
    return {"given_name": lambda: R.w(T_F if R.p(.5) else T_M), "surname": lambda: R.w(T_SUR),
            "street_number": lambda: str(1 + int(400 * R.u() ** 3)),
            "address_1": lambda: R.pick(_AU_STREETS) + " " + R.w(T_AUTYPE),
            "soc_sec_id": lambda: str(R.int(1000000, 9999999))}[field]()


def _febrl_original(R):
    rec = {f: ("" if R.p(spec[2]) else _febrl_value(R, f)) for f, spec in _FEBRL.items()}
    for f, v in zip(("suburb", "postcode", "state"), R.w(T_SUBURB), strict=True):  # one consistent locality
        rec[f] = v if rec[f] else ""
    return rec


def _febrl_op(R, field, val, op):
    if op == "new" or not val:
        return _febrl_value(R, field) if op == "new" and not val else val
    if op in ("miss", "vswap"):
        return "" if op == "miss" else _febrl_value(R, field)
    if op == "misspell":
        alts = _VAR.get(val) or [b + val[len(a):] for a, b in _ABBR if field == "suburb" and val.startswith(a)]
        return R.pick(alts) if alts else val
    if op == "dmswap":
        return val[:4] + val[6:8] + val[4:6] if len(val) == 8 and val[6:8] <= "12" else val
    return typo(R, val, op, _FEBRL[field][1])


def _febrl_duplicate(R, org, max_field, max_rec):
    dup, count, n = dict(org), dict.fromkeys(org, 0), 0
    for (a, b), prob in _FIELD_SWAPS if max_rec > 1 else ():
        if R.p(prob) and dup[a] and dup[b] and dup[a] != dup[b] and n <= max_rec - 2:
            dup[a], dup[b] = dup[b], dup[a]
            count[a], count[b], n = count[a] + 1, count[b] + 1, n + 2
    for _ in range(500):  # like dsgen: keep going until the record holds max_rec effective modifications
        if n >= max_rec:
            break
        field = R.w(T_FEBRL_FIELD)
        for _ in range(min(R.int(1, max_field), max_field - count[field], max_rec - n)):
            new = _febrl_op(R, field, dup[field], R.w(_FEBRL[field][3]))
            if new != dup[field]:
                dup[field], count[field], n = new, count[field] + 1, n + 1
    return dup


def _febrl_row(eid, rec, src=None):
    num = " ".join(x for x in (rec["street_number"], rec["address_1"]) if x)
    a2 = rec["address_2"]
    street = (f"{a2}, {num}" if num else a2) if a2.split(" ")[0] in _UNIT_WORDS else ", ".join(x for x in (num, a2) if x)
    row = {"given_name": rec["given_name"], "family_name": rec["surname"], "street": street, "city": rec["suburb"],
           "region": rec["state"], "postal_code": rec["postcode"], "birth_date": rec["date_of_birth"],
           "national_id": rec["soc_sec_id"], "entity_id": eid}
    return dict(row, source=src) if src else row


def febrl_dedup(n_records: int = 5000, seed: int = 3, *, n_originals: int | None = None, max_dups: int = 5,
                max_mod_field: int = 4, max_mod_record: int = 6) -> pd.DataFrame:
    """FEBRL3-like deduplication set (defaults: 2,000 originals + 3,000 duplicates, Zipf number of duplicates)."""
    R = _R(seed)
    n_org = round(0.4 * n_records) if n_originals is None else n_originals
    orgs = [_febrl_original(R) for _ in range(n_org)]
    eids = [f"F{i:06d}" for i in R.g.permutation(n_org)]
    rows, left = [_febrl_row(e, o) for e, o in zip(eids, orgs, strict=True)], n_records - n_org
    table = _t(range(1, max_dups + 1), [k ** -0.5 for k in range(1, max_dups + 1)])
    for i in R.g.permutation(n_org).tolist():
        k = min(R.w(table), left)
        rows += [_febrl_row(eids[i], _febrl_duplicate(R, orgs[i], max_mod_field, max_mod_record)) for _ in range(k)]
        left -= k
    if left:
        raise ValueError("too few originals for the requested number of duplicates")
    return _finish(R, rows, lambda df: "f3-" + df.index.map("{:06d}".format))


def febrl_link(n_per_file: int = 5000, seed: int = 4, *, max_mod_field: int = 2, max_mod_record: int = 4) -> pd.DataFrame:
    """FEBRL4-like linkage set: source A (originals), source B (exactly one corrupted copy of each)."""
    R, rows = _R(seed), []
    for e in (f"L{i:06d}" for i in R.g.permutation(n_per_file)):
        o = _febrl_original(R)
        rows += [_febrl_row(e, o, "A"), _febrl_row(e, _febrl_duplicate(R, o, max_mod_field, max_mod_record), "B")]
    return _finish(R, rows, lambda df: df["source"] + "-" + df.groupby("source").cumcount().map("{:05d}".format))


def _finish(R, rows, make_ids):
    df = pd.DataFrame(rows)
    df = df.iloc[R.g.permutation(len(df))].reset_index(drop=True)
    df = df[[c for c in CANONICAL if c in df.columns] + ["entity_id"]].fillna("").astype(str)
    df.insert(0, "record_id", make_ids(df))
    return df


def truth_of(frame: pd.DataFrame) -> pd.Series:
    """Ground truth as a Series record_id -> entity_id."""
    return pd.Series(frame["entity_id"].to_numpy(), index=frame["record_id"].to_numpy(), name="entity_id")


# ------------------------------------------------------------------------------------------ Chinese vocabulary
_CN_SUR = [tuple(x.split(":")) for x in (
    "王:wang:wong:71 李:li:lee:79 张:zhang:cheung:68 刘:liu:lau:54 陈:chen:chan:45 杨:yang:yeung:31 黄:huang:wong:22 "
    "赵:zhao:chiu:21 吴:wu:ng:20 周:zhou:chow:19 徐:xu:tsui:16 孙:sun:suen:15 马:ma:ma:14 朱:zhu:chu:13 胡:hu:wu:13 "
    "郭:guo:kwok:12 何:he:ho:12 高:gao:ko:11 林:lin:lam:11 罗:luo:law:10 郑:zheng:cheng:10 梁:liang:leung:9 "
    "谢:xie:tse:8 宋:song:sung:8 唐:tang:tong:8 许:xu:hui:7 韩:han:hon:7 冯:feng:fung:7 邓:deng:tang:7 曹:cao:tso:7 "
    "彭:peng:pang:6 曾:zeng:tsang:6 肖:xiao:siu:6 田:tian:tin:5 董:dong:tung:5 袁:yuan:yuen:5 潘:pan:poon:5 "
    "蔡:cai:tsai:5 蒋:jiang:chiang:5 余:yu:yue:5 于:yu:yu:5 杜:du:to:5 叶:ye:yip:5 程:cheng:ching:5 魏:wei:ngai:4 "
    "苏:su:so:4 吕:lu:lui:4 丁:ding:ting:4 沈:shen:shum:4 任:ren:yam:4 姚:yao:yiu:4 卢:lu:lo:4 钟:zhong:chung:4 "
    "姜:jiang:keung:4 崔:cui:tsui:3 谭:tan:tam:3 陆:lu:luk:3 范:fan:fan:3 汪:wang:wong:3 廖:liao:liu:3 石:shi:shek:3 "
    "金:jin:kam:3 贾:jia:ka:3 韦:wei:wai:3 夏:xia:ha:3 方:fang:fong:3 邹:zou:chau:3 熊:xiong:hung:3 白:bai:pak:3 "
    "孟:meng:mang:3 秦:qin:chun:3 邱:qiu:yau:3 侯:hou:hau:3 江:jiang:kong:3 尹:yin:wan:2 薛:xue:sit:2 段:duan:tuen:2 "
    "雷:lei:lui:2 黎:li:lai:2 史:shi:sze:2 龙:long:lung:2 欧阳:ouyang:auyeung:1 司马:sima:szeto:1").split()]
T_CN_SUR = _t(_CN_SUR, [float(x[3]) for x in _CN_SUR])
_SUR_PY, _SUR_HK = {x[0]: x[1] for x in _CN_SUR}, {x[0]: x[2] for x in _CN_SUR}
_TRAD_KEEP = {"余": "余", "于": "于", "范": "范", "艳": "艷"}  # opencc would map these surnames to 餘/於/範
_CN_GIV = {"M": ("伟 强 磊 军 洋 勇 杰 涛 明 超 刚 平 辉 鹏 华 飞 鑫 波 斌 宇 浩 凯 健 俊 帆 旭 宁 龙 林 阳".split(),
                 "建华 建国 志强 志明 晓明 文杰 俊杰 浩然 子轩 宇轩 家豪 国强 海涛 永刚 立新 建军 晓东 文博 一鸣 天宇 振华 德明 "
                 "嘉伟 博文 承志 景行".split(),
                 "志建国文海晓俊子宇浩天家嘉明永立德振博一承景思", "伟强华明军杰涛平辉鹏飞斌宇轩然豪博鸣成龙东峰刚诚"),
           "F": ("芳 娜 敏 静 丽 艳 娟 霞 燕 玲 婷 雪 琳 颖 倩 洁 欣 慧 萍 红 梅 莉 丹 璐".split(),
                 "秀英 桂英 秀兰 玉兰 桂兰 丽娟 晓红 海燕 春梅 雅婷 欣怡 梓涵 诗涵 思雨 佳怡 雨涵 晓燕 美玲 淑芬 文静 婷婷 丽华 "
                 "秀珍 慧敏 晓丽 雪梅".split(),
                 "秀丽晓雅欣佳思诗雨梓美淑文春玉海慧婉若静", "英兰娟红燕婷怡涵琪静芳玲萍霞珍华梅雪洁颖琳")}
_NAMESAKE_CN = [x.split(":") for x in "王:伟:M 张:伟:M 李:娜:F 刘:洋:M 刘:洋:F 王:芳:F 李:伟:M 张:敏:F 王:静:F 李:静:F "
                                     "刘:伟:M 张:丽:F 王:磊:M 陈:静:F 李:强:M".split()]
_NAMESAKE_W = [x.split(":") for x in "john:smith:M maria:garcia:F david:smith:M michael:johnson:M james:brown:M "
                                    "mary:smith:F robert:jones:M jennifer:lee:F david:lee:M".split()]
_HOMO = dict(x.split(":") for x in (  # same-sound characters: IME slips and characters misheard on the phone
    "伟:玮炜韦威 明:铭鸣 丽:莉俪立 静:婧靖敬 娜:纳 芳:方芬 军:君俊 洋:阳扬 华:桦骅 红:宏虹 杰:洁捷 涛:韬滔 敏:民闵 磊:蕾 "
    "婷:亭庭 琳:林霖 颖:莹影 玲:铃凌 燕:艳雁 晓:小筱 建:健剑 志:智 文:雯 俊:峻骏 宇:雨羽 浩:皓昊 鹏:朋 飞:菲 斌:彬 梅:玫 "
    "英:瑛莹 兰:岚蓝 欣:鑫昕 怡:仪宜 涵:晗 平:萍 辉:晖 刚:钢 凯:恺 东:冬 峰:锋 龙:隆 佳:嘉家 思:斯 雨:宇语 诗:师 天:添 "
    "家:佳嘉 陈:程成 张:章 王:汪黄 刘:柳牛 李:黎 黄:王 杨:阳 周:邹 徐:许 郑:曾 林:凌").split())
_ENG = {"M": "Kevin David Jason Eric Tony Michael Jack Leo Tom Peter Andy Frank Vincent Jerry Allen Steven Sam Alex Ben "
             "Ryan Daniel Henry".split(),
        "F": "Amy Jenny Lily Grace Vivian Cindy Linda Emma Sophia Cherry Helen Coco Joyce Tina Wendy Sunny Ivy Alice "
             "Emily Rachel Angela Crystal".split()}
# hanzi | pinyin | province | province pinyin | phone area | postal prefix | id area codes | districts | weight
_CN_CITY = [(c[0], c[1], c[2], c[3], c[4], c[5], c[6].split(","), c[7].split(","), float(c[8])) for c in (x.split("|") for x in (
    "上海|Shanghai|||21|200|310101,310104,310105,310106,310107,310112,310115|黄浦区,徐汇区,长宁区,静安区,普陀区,闵行区,浦东新区|20",
    "北京|Beijing|||10|100|110101,110102,110105,110106,110108|东城区,西城区,朝阳区,丰台区,海淀区|16",
    "广州|Guangzhou|广东省|Guangdong|20|510|440103,440104,440105,440106,440111|荔湾区,越秀区,海珠区,天河区,白云区|10",
    "深圳|Shenzhen|广东省|Guangdong|755|518|440303,440304,440305,440306,440307|罗湖区,福田区,南山区,宝安区,龙岗区|12",
    "杭州|Hangzhou|浙江省|Zhejiang|571|310|330102,330105,330106,330108|上城区,拱墅区,西湖区,滨江区|8",
    "南京|Nanjing|江苏省|Jiangsu|25|210|320102,320104,320105,320106|玄武区,秦淮区,建邺区,鼓楼区|6",
    "苏州|Suzhou|江苏省|Jiangsu|512|215|320505,320506,320507,320508|虎丘区,吴中区,相城区,姑苏区|5",
    "成都|Chengdu|四川省|Sichuan|28|610|510104,510105,510106,510107|锦江区,青羊区,金牛区,武侯区|7",
    "武汉|Wuhan|湖北省|Hubei|27|430|420102,420103,420106,420111|江岸区,江汉区,武昌区,洪山区|6",
    "天津|Tianjin|||22|300|120101,120102,120103,120104|和平区,河东区,河西区,南开区|4",
    "重庆|Chongqing|||23|400|500103,500105,500106,500107|渝中区,江北区,沙坪坝区,九龙坡区|4",
    "西安|Xi'an|陕西省|Shaanxi|29|710|610102,610103,610104,610113|新城区,碑林区,莲湖区,雁塔区|2"))]
T_CN_CITY = _t(_CN_CITY, [c[8] for c in _CN_CITY])
_CN_ROADS = ("中山路 人民路 解放路 建设路 长江路 南京路 淮海路 延安路 和平路 新华路 胜利路 文化路 东风路 朝阳路 青年路 黄河路 "
             "科技路 创业路 学院路 迎宾路 张江路 天府大道 深南大道 滨江大道 光明路 幸福路 东方路").split()
_MOBILE_PFX = ("134 135 136 137 138 139 150 151 152 157 158 159 182 183 187 188 130 131 132 155 156 185 186 133 153 "
               "180 181 189 177 199 166 191 173 176 178").split()
# country | city | region | postal prefixes | phone areas | weight
_W_CITY = [(c[0], c[1], c[2], c[3].split(","), c[4].split(","), float(c[5])) for c in (x.split("|") for x in (
    "US|New York|NY|100|212,646,917|6;US|Los Angeles|CA|900|213,310,323|5;US|San Francisco|CA|941|415,628|4;"
    "US|San Jose|CA|951|408,669|3;US|Seattle|WA|981|206,425|3;US|Chicago|IL|606|312,773|3;US|Houston|TX|770|713,832|2;"
    "US|Boston|MA|021|617,857|3;US|Austin|TX|787|512,737|2;US|Miami|FL|331|305,786|2;US|Irvine|CA|926|949|2;"
    "US|Flushing|NY|113|718,347|2;US|Fremont|CA|945|510|1;US|Dallas|TX|752|214,972|2;US|Atlanta|GA|303|404,678|1;"
    "GB|London|Greater London|SW1A,E14,N1,W2,SE1,NW3,EC1V|20|7;GB|Manchester|Greater Manchester|M1,M14,M20|161|2;"
    "GB|Birmingham|West Midlands|B1,B15,B29|121|2;GB|Edinburgh|Scotland|EH1,EH3,EH9|131|1;"
    "GB|Leeds|West Yorkshire|LS1,LS6|113|1;GB|Bristol|Bristol|BS1,BS8|117|1;AU|Sydney|NSW|2000,2060,2150,2067|2|3;"
    "AU|Melbourne|VIC|3000,3121,3182,3128|3|3;AU|Brisbane|QLD|4000,4109|7|1").split(";"))]
T_W_CITY = _t(_W_CITY, [c[5] for c in _W_CITY])
_W_STREET = ("Oak Maple Pine Cedar Elm Washington Lincoln Park Main Lake Hill Sunset Highland Madison Jefferson Franklin "
             "Church Mill River Spring Willow Ridge Valley Forest Chestnut Walnut Victoria King Queen Station High Albert "
             "George Market Grove Orchard Meadow Cherry").split()
_W_STYPE = {"US": "Street:St Avenue:Ave Road:Rd Drive:Dr Lane:Ln Boulevard:Blvd Court:Ct Way:Way".split(),
            "GB": "Road:Rd Street:St Lane:Ln Avenue:Ave Close:Cl Gardens:Gdns Crescent:Cres".split(),
            "AU": "Street:St Road:Rd Avenue:Ave Parade:Pde Crescent:Cres Place:Pl".split()}
_CO_BRAND = "华信 恒通 中科 金石 鼎盛 宏达 天宇 博远 瑞丰 东方 联创 众诚 海纳 云帆 星辰 智远 德泰 安泰 永盛 嘉禾 明德 华腾 蓝海 汇通".split()
_CO_IND = dict(x.split(":") for x in "科技:Technology 贸易:Trading 电子:Electronics 物流:Logistics 投资:Investment "
                                     "咨询:Consulting 医药:Pharmaceutical 信息技术:IT 文化传媒:Media 食品:Foods".split())
_W_BRAND = ("Acme Northwind Summit Harbor Pinnacle Redwood Granite Evergreen Atlas Beacon Crescent Liberty Meridian "
            "Bluewater Ironbark Keystone Silverline Oakridge").split()
_W_IND = "Logistics Consulting Software Foods Dental Realty Insurance Engineering Media Analytics Partners".split()
_s2t = []


def _trad(h: str) -> str:
    if not _s2t:
        import opencc
        _s2t.append(opencc.OpenCC("s2t"))
    return "".join(_TRAD_KEEP.get(c) or _s2t[0].convert(c) for c in h)


@cache
def _py(h: str) -> tuple:
    if h in _SUR_PY:
        return (_SUR_PY[h],)
    from pypinyin import Style, lazy_pinyin
    return tuple(x.replace("v", "u") for x in lazy_pinyin(h, style=Style.NORMAL))


def _gb11643(body17: str) -> str:
    s = sum(int(c) * w for c, w in zip(body17, (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    return body17 + "10X98765432"[s % 11]


def _is_hz(s):
    return any("\u4e00" <= ch <= "\u9fff" for ch in s)


# ------------------------------------------------------------------------------------------ population
class _World:
    """Builds people with hidden household / namesake / employer structure; keeps phones and e-mails unique."""

    def __init__(self, R, n_people):
        self.R, self.phones, self.emails = R, set(), set()
        jobs = [self.company() for _ in range(max(8, n_people // 40))]
        self.T_job = {c: _t([j for j in jobs if j["addr"]["country"] == c] or jobs, s=0.7)  # some big employers
                      for c in ("CN", "US", "GB", "AU")}

    def phone(self, ctry, kind, area):  # -> (country, kind, area, local)
        R = self.R
        while True:
            if kind == "mobile":
                area, local = {"CN": ("", R.pick(_MOBILE_PFX) + R.digits(8)), "US": (area, str(R.int(2, 9)) + R.digits(6)),
                               "GB": ("7" + R.digits(3), R.digits(6)), "AU": ("4" + R.digits(2), R.digits(6))}[ctry]
            else:
                local = str(R.int(2, 9)) + R.digits(6 if ctry == "US" or (ctry == "GB" and area != "20") else 7)
            if area + local not in self.phones:
                self.phones.add(area + local)
                return (ctry, kind, area, local)

    def email(self, local, domain):
        cand = f"{local}@{domain}"
        while cand in self.emails:
            cand = f"{local}{self.R.int(1, 999)}@{domain}"
        self.emails.add(cand)
        return cand

    def company(self):
        R = self.R
        if R.p(.6):
            c, brand, ind = R.w(T_CN_CITY), R.pick(_CO_BRAND), R.pick(list(_CO_IND))
            names = (f"{c[0]}{brand}{ind}有限公司", f"{brand}{ind}",
                     f"{c[1]} {''.join(_py(brand)).capitalize()} {_CO_IND[ind]} Co., Ltd.")
            addr = self.address("CN", c)
        else:
            c, b, ind = R.w(T_W_CITY), R.pick(_W_BRAND), R.pick(_W_IND)
            suf = {"US": R.pick(("Inc.", "LLC", "Corp.")), "GB": "Ltd", "AU": "Pty Ltd"}[c[0]]
            names, addr = (f"{b} {ind} {suf}", f"{b} {ind}", f"{b} {ind}".upper()), self.address(c[0], c)
        return {"names": names, "addr": addr, "phone": self.phone(addr["country"], "land", addr["area"])}

    def address(self, ctry, c=None):
        R = self.R
        if ctry == "CN":
            c = c or R.w(T_CN_CITY)
            return {"country": "CN", "city": c, "district": R.pick(c[7]), "road": R.pick(_CN_ROADS), "area": c[4],
                    "no": str(1 + int(900 * R.u() ** 2)), "bldg": str(R.int(1, 30)) if R.p(.6) else "",
                    "room": f"{R.int(1, 32)}{R.int(1, 4):02d}" if R.p(.8) else "", "postal": c[5] + R.digits(3)}
        while c is None or (ctry and c[0] != ctry):
            c = R.w(T_W_CITY)
        pre = R.pick(c[3])
        postal = pre + R.digits(2) if c[0] == "US" else pre if c[0] == "AU" else \
            f"{pre} {R.int(1, 9)}{R.pick('ABDEFGHJLNPQRSTUWXYZ')}{R.pick('ABDEFGHJLNPQRSTUWXYZ')}"
        return {"country": c[0], "city": c, "no": str(1 + int(3000 * R.u() ** 3)), "street": R.pick(_W_STREET),
                "stype": R.pick(_W_STYPE[c[0]]), "unit": str(R.int(1, 40)) if R.p(.35) else "", "postal": postal,
                "area": R.pick(c[4])}

    def person(self, cn, g, fam=None, ln=None, dob=None, home=None, ctry=None):
        R = self.R
        p = {"cn": cn, "g": g, "dob": dob or _dob(R), "eng": "", "hk": False}
        p["addrs"] = [home or self.address(ctry)]
        c = p["country"] = p["addrs"][0]["country"]
        if cn:
            p.update(fh=fam or R.w(T_CN_SUR)[0], gh=_cn_given(R, g), eng=R.pick(_ENG[g]) if R.p(.25) else "",
                     hk=R.p(.45 if c != "CN" else .03))
            p["ln"] = ln or (_SUR_HK[p["fh"]] if p["hk"] and R.p(.7) else _py(p["fh"])[0])
        else:
            p.update(first=R.w(T_F if g == "F" else T_M), last=fam or R.w(T_SUR))
            p["mid"] = R.w(T_F if g == "F" else T_M) if R.p(.35) else ""
        if R.p(.15):  # moved: second address, often in the same city
            a = p["addrs"][0]
            p["addrs"].append(self.address(c, a["city"] if R.p(.6) else None))
        p["mobiles"] = [self.phone(c, "mobile", p["addrs"][0]["area"]) for _ in range(2 if R.p(.15) else 1)]
        p["land"], p["nid"] = None, ""
        p["job"] = R.w(self.T_job[c]) if R.p(.2) else None
        if cn and (c == "CN" or R.p(.3)):
            self.set_nid(p)
        p["emails"] = [self.mail(p) for _ in range(2 if R.p(.15) else 1)]
        return p

    def set_nid(self, p):
        R, (y, m, d) = self.R, p["dob"]
        home = p["addrs"][0]
        area = R.pick(home["city"][6] if home["country"] == "CN" and R.p(.5) else R.w(T_CN_CITY)[6])
        p["nid"] = _gb11643(f"{area}{y:04d}{m:02d}{d:02d}{R.int(0, 99):02d}{R.pick(_SEX_DIGITS[p['g']])}")

    def mail(self, p, template=None, domain=None):
        R = self.R
        last, first = (p["ln"], "".join(_py(p["gh"]))) if p["cn"] else (p["last"].replace("'", "").replace(" ", ""),
                                                                         p["first"])
        if p["cn"] and p["country"] == "CN":
            domain = domain or R.w(_CN_MAIL)
            if domain == "qq.com" and template is None and R.p(.6):
                return self.email(str(R.int(10000, 3999999999)), domain)
        else:
            domain = domain or R.w(_W_MAIL[p["country"]])
        yy, t = f"{p['dob'][0] % 100:02d}", R.int(0, 8) if template is None else template
        local = (f"{first}.{last}", f"{last}{first}", f"{first[0]}{last}", f"{last}{first}{yy}",
                 f"{first}_{last}{p['dob'][0]}", f"{last}.{first}", f"{(p['eng'].lower() or first)}.{last}",
                 f"{first[0]}{last}{R.int(1, 99)}", f"{last}{first[0]}{yy}")[t]
        return self.email(local, domain)


_CN_MAIL = _opts(**{"qq.com": 30, "163.com": 20, "126.com": 8, "sina.com": 5, "gmail.com": 6, "hotmail.com": 5,
                    "foxmail.com": 4, "139.com": 3, "outlook.com": 4})
_W_MAIL = {c: _opts(**{"gmail.com": 35, "yahoo.com": 12, "hotmail.com": 12, "outlook.com": 10, "icloud.com": 8, isp: 6})
           for c, isp in (("US", "comcast.net"), ("GB", "btinternet.com"), ("AU", "bigpond.com"), ("CN", "aol.com"))}
_SEX_DIGITS = {"M": (1, 3, 5, 7, 9), "F": (0, 2, 4, 6, 8)}


def _dob(R, lo=1945, hi=2004):
    y, m = R.int(lo, hi), R.int(1, 12)
    return (y, m, R.int(1, 28 if m == 2 else 30 if m in (4, 6, 9, 11) else 31))


def _cn_given(R, g):
    single, double, a, b = _CN_GIV[g]
    x = R.u()
    return R.pick(single) if x < .35 else R.pick(double) if x < .6 else R.pick(a) + R.pick(b)


def _population(R, n_people, cn_share):
    W, people = _World(R, n_people), []
    while len(people) < n_people:
        cn = R.p(cn_share)
        ctry = ("CN" if R.p(.85) else None) if cn else ("CN" if R.p(.12) else None)
        if not R.p(.22):  # single person, sometimes a namesake of a very common name
            p = W.person(cn, R.pick("MF"), ctry=ctry)
            if R.p(.05):
                if cn:
                    p["fh"], p["gh"], p["g"] = R.pick(_NAMESAKE_CN)
                    p["ln"], p["eng"] = _py(p["fh"])[0], R.pick(_ENG[p["g"]]) if R.p(.25) else ""
                    if p["nid"]:
                        W.set_nid(p)
                else:
                    p["first"], p["last"], p["g"] = R.pick(_NAMESAKE_W)
                p["emails"] = [W.mail(p)]
            p["land"] = W.phone(p["country"], "land", p["addrs"][0]["area"]) if R.p(.25) else None
            people.append(p)
            continue
        head = W.person(cn, "M" if R.p(.7) else "F", dob=_dob(R, 1950, 1985), ctry=ctry)  # household of 2-5
        head["land"] = W.phone(head["country"], "land", head["addrs"][0]["area"]) if R.p(.7) else None
        fam, tmpl, dom = head["fh"] if cn else head["last"], R.int(0, 8), head["emails"][0].split("@")[1]
        hh, twin, y0 = [head], None, head["dob"][0]
        for k in range(R.w(_t([1, 2, 3, 4], [45, 30, 17, 8]))):
            spouse = k == 0
            g = ("F" if head["g"] == "M" else "M") if spouse else R.pick("MF")
            dob = _dob(R, y0 - 4, min(y0 + 6, 2004)) if spouse else twin if twin and R.p(.5) else \
                _dob(R, min(y0 + 22, 2004), min(y0 + 36, 2006))
            twin = None if spouse or dob == twin else dob if R.p(.08) else None
            own = spouse and R.p(.8 if cn else .15)  # most Chinese wives keep their surname
            m = W.person(cn, g, fam=None if own else fam, ln=None if own or not cn else head["ln"], dob=dob,
                         home=head["addrs"][0])
            m["land"] = head["land"]
            if R.p(.6):  # look-alike address on the family's provider
                m["emails"][0] = W.mail(m, template=tmpl, domain=dom)
            if spouse and R.p(.2):
                m["emails"].append(head["emails"][0])  # shared family mailbox
            hh.append(m)
        people += hh
    people = people[:n_people]
    for p, e in zip(people, R.g.permutation(len(people)).tolist(), strict=True):
        p["eid"] = f"P{e:07d}"
    return W, people


# ------------------------------------------------------------------------------------------ rendering
@cache
def _title(s):
    out = "-".join(_cap(w) for w in " ".join(_cap(w) for w in s.split(" ")).split("-"))
    i = out.find("'")
    out = out if i < 0 else out[:i + 1] + out[i + 1:i + 2].upper() + out[i + 2:]
    return "Mc" + _cap(out[2:]) if out.startswith("Mc") else out


def _homophone(R, h):
    idx = [i for i, c in enumerate(h) if c in _HOMO]
    return h if not idx else (lambda i: h[:i] + R.pick(_HOMO[h[i]]) + h[i + 1:])(R.pick(idx))


_CN_HOME = _opts(hz=45, hzt=4, hzs=3, pyff=10, pygf=8, pyup=8, pylow=3, eng=12, engfull=4, pyjoin=3)
_CN_ABROAD = _opts(hz=10, hzt=10, hzs=1, pyff=10, pygf=33, pyup=12, pylow=5, eng=22, engfull=5, pyjoin=2)
_W_STYLE = _opts(fl=50, fml=8, fmml=3, lcf=8, up=8, low=4, nick=8, init=5, lf=2)


def _name(R, p, table=None, typo_p=0.05):
    """(full_name, given_name, family_name) the way a person or a clerk writes it."""
    if p["cn"]:
        st = R.w(table or (_CN_HOME if p["country"] == "CN" else _CN_ABROAD))
        st = st if p["eng"] or st not in ("eng", "engfull") else ("hz" if p["country"] == "CN" else "pygf")
        if st.startswith("hz"):
            fh, gh = (_trad(p["fh"]), _trad(p["gh"])) if st == "hzt" or (p["hk"] and R.p(.7)) else (p["fh"], p["gh"])
            gh = _homophone(R, gh) if R.p(typo_p) else gh
            return fh + (" " if st == "hzs" else "") + gh, gh, fh
        syl, x = [_cap(s) for s in _py(p["gh"])], R.u()
        giv = "-".join(syl) if p["hk"] and x < .6 else " ".join(syl) if x < .15 or (p["hk"] and x < .75) else \
            "".join(syl).capitalize()
        fam = _cap(p["ln"])
        if R.p(typo_p):
            giv, fam = (kb_typo(R, giv), fam) if R.p(.5) else (giv, kb_typo(R, fam))
        if st in ("pyup", "pylow"):
            f = str.upper if st == "pyup" else str.lower
            return f(f"{fam} {giv}" if R.p(.5) else f"{giv} {fam}"), f(giv), f(fam)
        if st == "engfull":
            return (f"{p['eng']} {fam} {giv}" if R.p(.6) else f"{fam} {giv} {p['eng']}"), p["eng"], fam
        return {"pyff": f"{fam} {giv}", "pygf": f"{giv} {fam}", "pyjoin": f"{fam}{giv}",
                "eng": f"{p['eng']} {fam}"}[st], p["eng"] if st == "eng" else giv, fam
    st = R.w(table or _W_STYLE)
    first, last, mid = _title(p["first"]), _title(p["last"]), _title(p["mid"])
    if R.p(typo_p):
        if R.p(.5):
            first = kb_typo(R, first)
        else:
            last = _title(R.pick(_VAR[p["last"]])) if p["last"] in _VAR and R.p(.4) else kb_typo(R, last)
    if st == "nick" and p["first"] in _VAR:
        first = _title(R.pick(_VAR[p["first"]]))
    if st in ("fml", "fmml") and mid:
        return (f"{first} {mid[0]}. {last}" if st == "fml" else f"{first} {mid} {last}"), f"{first} {mid}", last
    if st in ("lcf", "up", "low"):
        full = f"{last}, {first}" if st == "lcf" else f"{first} {last}"
        f = str.lower if st == "low" else str.upper if st == "up" or R.p(.5) else str
        return f(full), f(first), f(last)
    return {"init": f"{first[0]}. {last}", "lf": f"{last} {first}"}.get(st, f"{first} {last}"), \
        f"{first[0]}." if st == "init" else first, last


_PHONE_FMT = {  # {a} area, {l} local number, {x} {y} {z} its digit groups
    ("CN", "mobile"): "{l}|{l}|{l}|{x} {y} {z}|{x}-{y}-{z}|+86 {x}-{y}-{z}|+86 {l}|+86{l}|0086 {l}|0086-{x}-{y}-{z}|86-{l}",
    ("CN", "land"): "0{a}-{l}|0{a}-{l}|(0{a}){x} {y}|+86 {a} {x} {y}|0{a} {x} {y}|{l}|86-{a}-{l}|0{a}{l}",
    ("US", "mobile"): "({a}) {x}-{y}|{a}-{x}-{y}|{a}.{x}.{y}|+1 {a} {x} {y}|{a}{l}|1-{a}-{x}-{y}|+1 ({a}) {x}-{y}|+1{a}{l}",
    ("GB", "mobile"): "0{a} {l}|+44 {a} {l}|0{a}{l}|+44{a}{l}",
    ("GB", "land"): "0{a} {x} {y}|+44 {a} {x} {y}|(0{a}) {l}|0{a}{l}",
    ("AU", "mobile"): "0{a} {x} {y}|+61 {a} {x} {y}|0{a}{l}|+61{a}{l}",
    ("AU", "land"): "(0{a}) {x} {y}|+61 {a} {x} {y}|0{a} {l}|0{a}{l}"}
_PHONE_FMT[("US", "land")] = _PHONE_FMT[("US", "mobile")]
_PHONE_FMT = {k: v.split("|") for k, v in _PHONE_FMT.items()}
_GROUPS = {11: (3, 7), 8: (4, 8), 7: (3, 7), 6: (3, 6)}
_CC = {"CN": "86", "US": "1", "GB": "44", "AU": "61"}


def _phone(R, ph, ext="", raw=False):
    ctry, kind, a, n = ph
    if R.p(.015):  # keying error
        n = typo(R, n, "trans" if R.p(.5) else "sub", digits=True)
    if raw:  # caller id as the telephony system logs it
        return (("0" if R.p(.4) else "") + n if kind == "mobile" else "0" + a + n) if ctry == "CN" else _CC[ctry] + a + n
    i, j = _GROUPS[len(n)]
    out = R.pick(_PHONE_FMT[ctry, kind]).format(a=a, l=n, x=n[:i], y=n[i:j], z=n[j:])
    return out + R.pick((f" ext {ext}", f" x{ext}") + ((f"-{ext}", f" 转{ext}") if ctry == "CN" else ())) if ext else out


_MON = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
_DATE_FMT = {"CN": _t(("{y}-{m:02d}-{d:02d}", "{y}年{m}月{d}日", "{y}{m:02d}{d:02d}", "{y}/{m}/{d}", "{y}/{m:02d}/{d:02d}",
                       "{y}.{m}.{d}"), [35, 20, 15, 15, 10, 5]),
             "US": _t(("{m:02d}/{d:02d}/{y}", "{y}-{m:02d}-{d:02d}", "{m}/{d}/{y}", "{mon} {d}, {y}"), [45, 30, 15, 10]),
             "GB": _t(("{d:02d}/{m:02d}/{y}", "{y}-{m:02d}-{d:02d}", "{d} {mon} {y}", "{d:02d}.{m:02d}.{y}",
                       "{d}/{m}/{yy:02d}"), [45, 30, 10, 5, 10])}


def _date(R, dob, ctry, iso=0.0):
    y, m, d = dob
    if R.p(.02):  # typo: neighbouring day, wrong year digit, or day and month swapped
        x = R.u()
        y, m, d = (y, m, max(1, min(28, d + R.pick((-1, 1))))) if x < .4 else \
            (y + R.pick((-10, -1, 1, 10)), m, d) if x < .7 else ((y, d, m) if d <= 12 else (y, m, d))
    fmt = "{y}-{m:02d}-{d:02d}" if R.p(iso) else R.w(_DATE_FMT.get(ctry, _DATE_FMT["GB"]))
    return fmt.format(y=y, m=m, d=d, yy=y % 100, mon=_MON[m - 1])


_COUNTRY = {"CN": _t(("中国", "CN", "China", "PRC", "中华人民共和国"), [40, 25, 25, 5, 5]),
            "US": _t(("US", "USA", "United States", "U.S.", "美国"), [35, 30, 25, 5, 5]),
            "GB": _t(("GB", "UK", "United Kingdom", "England", "英国"), [25, 35, 25, 10, 5]),
            "AU": _t(("AU", "Australia", "AUS", "澳大利亚"), [40, 45, 10, 5])}


def _address(R, a, hanzi=True, keep=0.93):
    """street, city, region, postal_code, country as one system renders them (each kept with prob ``keep``)."""
    c = a["city"]
    if a["country"] == "CN" and hanzi:
        st = (a["district"] if R.p(.6) else "") + a["road"] + a["no"] + "号"
        st += a["bldg"] + R.pick(("号楼", "栋", "幢")) if a["bldg"] and R.p(.85) else ""
        st += a["room"] + R.pick(("室", "室", "")) if a["room"] and R.p(.85) else ""
        out = {"street": st, "city": R.w(_t((c[0], c[0] + "市", c[1]), [55, 35, 10])),
               "region": (c[2] if R.p(.6) else c[2][:-1]) if c[2] else R.pick((c[0], c[0] + "市", ""))}
    elif a["country"] == "CN":
        rd = a["road"]
        road = "".join(_py(rd[:-1] if rd[-1] == "路" else rd[:-2])).capitalize() + \
            R.pick((" Road", " Rd", " Lu", " Rd.") if rd[-1] == "路" else (" Avenue", " Dadao", " Street"))
        st = R.pick((f"No. {a['no']} {road}", f"{a['no']} {road}", f"No.{a['no']}, {road}"))
        st = (R.pick(("Room ", "Rm ", "")) + a["room"] + ", " if a["room"] and R.p(.8) else "") + st
        st += ", " + "".join(_py(a["district"][:-1])).capitalize() + R.pick((" District", "")) if R.p(.4) else ""
        out = {"street": st, "city": R.w(_t((c[1], c[1].upper(), c[1] + " City", c[0]), [70, 15, 10, 5])),
               "region": R.pick((c[3], c[3], "")) if c[3] else R.pick((c[1], ""))}
    else:
        full, ab = a["stype"].split(":")
        st, u = f"{a['no']} {a['street']} {ab if R.p(.5) else full}", a["unit"]
        if u:
            st = st + R.pick((f" Apt {u}", f", Apt. {u}", f" #{u}", f" Unit {u}")) if a["country"] == "US" else \
                R.pick((f"Flat {u}, ", f"Flat {u} ", f"{u} ") if a["country"] == "GB" else (f"{u}/", f"Unit {u}, ")) + st
        out = {"street": st.upper() if R.p(.05) else st, "city": c[1] if R.p(.9) else c[1].upper(),
               "region": c[2] if R.p(.85) else ""}
    out.update(postal_code=a["postal"] if R.p(.75) else "", country=R.w(_COUNTRY[a["country"]]) if R.p(.65) else "")
    return {k: v for k, v in out.items() if R.p(keep)}


def _email_fmt(R, e, case=True):
    if R.p(.02):
        loc, dom = e.split("@")
        e = kb_typo(R, loc) + "@" + dom
    x = R.u() if case else 1
    return e.upper() if x < .07 else "@".join(map(_cap, e.split("@"))) if x < .11 else e


def _gender(R, g, hanzi=False):
    g = ("F" if g == "M" else "M") if R.p(.01) else g
    return ("男" if g == "M" else "女") if hanzi else R.pick((g, g, g, ("Male" if g == "M" else "Female"), g.lower()))


def _nid(R, nid, dob):
    if R.p(.04) and dob[0] < 1985:  # legacy 15-digit id (no century, no check digit)
        return nid[:6] + nid[8:17]
    if R.p(.03):
        return typo(R, nid[:17], "trans" if R.p(.6) else "sub", digits=True) + nid[17]
    return nid.lower() if nid.endswith("X") and R.p(.2) else nid


def _home(R, p, j, k, office=.08):
    if p["job"] and R.p(office):
        return p["job"]["addr"]
    a = p["addrs"]  # movers: earlier records tend to carry the old address
    return a[0] if len(a) == 1 else a[min(1, (2 * j) // max(k, 1))] if R.p(.85) else R.pick(a)


def _split(R, rec, full, giv, fam, w_full=45, w_split=30):
    x = R.u() * 100
    if x < w_full or x >= w_full + w_split:
        rec["full_name"] = full
    if x >= w_full:
        rec["given_name"], rec["family_name"] = (fam, giv) if R.p(.03) else (giv, fam)


# ------------------------------------------------------------------------------------------ record builders
def _contact(R, p, j, k, job=.25, land=.3, ext=.4):
    if p["job"] and R.p(job):
        return _phone(R, p["job"]["phone"], str(R.int(100, 899)) if R.p(ext) else "")
    if p["land"] and R.p(land):
        return _phone(R, p["land"])
    m = p["mobiles"]  # changed number: earlier records tend to carry the old one
    return _phone(R, m[0] if len(m) == 1 or (j < k / 2 and R.p(.8)) else m[-1])


def _master_record(R, p, j, k, src, erp=False):
    """CRM / ERP customer-master record."""
    rec = {"source": src}
    full, giv, fam = _name(R, p, typo_p=.03 if erp else .05)
    _split(R, rec, full, giv, fam, *((30, 30) if erp else (45, 30)))
    hz = _is_hz(full)
    if p["job"] and R.p(.3 if erp else .25):
        rec["company"] = R.w(_t(p["job"]["names"], [50, 35, 15]))
    if R.p(.9 if erp else .85):
        rec["phone"] = _contact(R, p, j, k, job=.15 if erp else .25)
    if R.p(.75 if erp else .7):
        e = p["emails"]
        rec["email"] = _email_fmt(R, e[0] if len(e) == 1 or R.p(.5) else R.pick(e[1:]))
    if R.p(.75 if erp else .55):
        rec["birth_date"] = _date(R, p["dob"], p["country"], iso=.75 if erp else 0)
    if R.p(.7 if erp else .5):
        rec["gender"] = _gender(R, p["g"], hz and not erp and R.p(.7))
    if p["nid"] and R.p(.35):
        rec["national_id"] = _nid(R, p["nid"], p["dob"])
    if R.p(.95 if erp else .75):
        a = _address(R, _home(R, p, j, k), hanzi=hz or (p["cn"] and R.p(.5)), keep=.97 if erp else .93)
        if "street" in a and R.p(.04):
            a["street"] = kb_typo(R, a["street"])
        rec.update(a)
    return rec


_SHOP_CN = _opts(hz=50, pylow=15, pygf=10, eng=15, pyff=5, hzt=3, pyjoin=2)


def _shop_record(R, W, p, j, k):
    full = _name(R, p, _SHOP_CN if p["cn"] else None, typo_p=.06)[0]
    rec = {"source": "webshop", "full_name": full.lower() if R.p(.25) else full}
    e = (p["emails"][0] if R.p(.8) else R.pick(p["emails"])) if j == 0 else \
        (p["emails"][-1] if len(p["emails"]) > 1 else W.mail(p))  # second account, another mailbox
    rec["email"] = _email_fmt(R, e, case=R.p(.2))
    if R.p(.8):
        rec["phone"] = _phone(R, R.pick(p["mobiles"]))
    if R.p(.9):
        a = _home(R, p, j + 1, k + 1, office=.2)
        rec.update(_address(R, a, hanzi=p["cn"] and a["country"] == "CN" and R.p(.8)))
        if p["job"] and a is p["job"]["addr"] and R.p(.6):
            rec["company"] = R.w(_t(p["job"]["names"], [50, 35, 15]))
    return rec


_CN_NICK_FREE = "追风少年 快乐每一天 阳光 简单 小太阳 Sunshine 云淡风轻 静待花开 平安是福 A.木子 随缘 Lucky".split()


def _wechat_name(R, p):
    x = R.u()
    if not p["cn"]:
        first, last = _title(p["first"]), _title(p["last"])
        nick = _title(R.pick(_VAR[p["first"]])) if p["first"] in _VAR else first
        return R.pick((f"{first} {last}", f"{first} {last}", nick, f"{first} {last[0]}.", f"{nick} {last}", first,
                       f"{first[0]}{last}".lower()))
    fh, gh, py = p["fh"], p["gh"], "".join(_py(p["gh"]))
    if x < .45 or (x < .8 and not p["eng"] and x >= .68):
        return fh + gh
    if x < .56:  # nickname built on the given name
        return R.pick(("小" + gh[-1], "阿" + gh[-1], gh[-1] * 2, gh, "老" + fh, fh + gh[-1] + R.pick(("哥", "姐", "儿")),
                       gh + R.pick(("_", "", "~")) + f"{p['dob'][0] % 100:02d}"))
    if x < .68:
        return R.pick((p["ln"] + py, py + p["ln"], f"{p['ln']} {py}".title(), py.capitalize()))
    if x < .8:
        return R.pick((p["eng"], f"{p['eng']} {_cap(p['ln'])}", f"{p['eng']}_{p['ln'][0].upper()}", p["eng"] + fh,
                       p["eng"].lower()))
    return _trad(fh + gh) if x < .88 else R.pick(_CN_NICK_FREE) if x < .94 else fh + gh


def _wechat_record(R, p):
    rec, a = {"source": "wechat", "full_name": _wechat_name(R, p)}, p["addrs"][-1 if R.p(.85) else 0]
    c, cn = a["city"], a["country"] == "CN"
    if R.p(.8):
        rec["city"] = c[0] if cn and R.p(.75) else c[1]
    if R.p(.4):
        rec["region"] = (c[2][:-1] or c[0]) if cn else c[2]
    if R.p(.5):
        rec["country"] = {"CN": "中国", "US": "美国", "GB": "英国", "AU": "澳大利亚"}[a["country"]] if R.p(.6) else a["country"]
    if R.p(.8):
        rec["gender"] = _gender(R, p["g"], hanzi=R.p(.6))
    if R.p(.35):  # phone number authorised in a mini-program
        rec["phone"] = _phone(R, R.pick(p["mobiles"]))
    return rec


def _call_name(R, p):
    x = R.u()
    en = "Mr" if p["g"] == "M" else R.pick(("Ms", "Mrs", "Miss"))
    if p["cn"]:
        title = "先生" if p["g"] == "M" else "小姐" if p["dob"][0] >= 1990 and R.p(.6) else "女士"
        full = p["fh"] + p["gh"]
        for cut, out in ((.35, ((_homophone(R, p["fh"]) if R.p(.1) else p["fh"]) + title, title)),
                         (.62, (_homophone(R, full) if R.p(.3) else full, "")),
                         (.72, (f"{p['ln']} {''.join(_py(p['gh']))}", "")), (.82, (f"{en} {_cap(p['ln'])}", en)),
                         (.87, (p["fh"], "")), (.92, (p["eng"], ""))):
            if x < cut:
                return out
        return "", ""
    first, last = _title(p["first"]), _title(p["last"])
    for cut, out in ((.3, (f"{en}{R.pick(('', '.'))} {last}", en)),
                     (.65, (typo(R, f"{first} {last}", "phon") if R.p(.3) else f"{first} {last}", "")),
                     (.75, (first, "")), (.82, (last, "")), (.9, (f"{last} {first}".lower(), "")),
                     (.95, (f"{first} {typo(R, last, 'phon') if R.p(.5) else kb_typo(R, last)}", ""))):
        if x < cut:
            return out
    return "", ""


def _call_record(R, p):
    name, title = _call_name(R, p)
    rec = {"source": "callcenter", "full_name": name}
    if title and R.p(.5):
        rec["gender"] = "M" if title in ("先生", "Mr") else "F"
    if R.p(.95):
        x = R.u()
        ph = p["land"] if p["land"] and x < .1 else p["job"]["phone"] if p["job"] and x < .2 else R.pick(p["mobiles"])
        rec["phone"] = _phone(R, ph, raw=R.p(.5))
    if R.p(.25):
        a = p["addrs"][-1]
        rec["city"] = a["city"][0] if a["country"] == "CN" and R.p(.7) else a["city"][1]
    return rec


def customers_single_source(n_people: int = 20000, seed: int = 11) -> pd.DataFrame:
    """One CRM holding 1-4 records per person (~1.9 on average); half the people are Chinese."""
    R = _R(seed)
    _, people = _population(R, n_people, 0.5)
    rows, n_tab = [], _t([1, 2, 3, 4], [45, 30, 15, 10])
    for p in people:
        k = R.w(n_tab)
        rows += [dict(_master_record(R, p, j, k, "crm"), entity_id=p["eid"]) for j in range(k)]
    return _finish(R, rows, lambda df: "c-" + df.index.map("{:07d}".format))


def sparse_multisource(n_people: int = 20000, seed: int = 12) -> pd.DataFrame:
    """erp / webshop / wechat / callcenter records of one mixed population (60 % Chinese), 1-4 sources a person."""
    R = _R(seed)
    W, people = _population(R, n_people, 0.6)
    rows, k_tab = [], _t([1, 2, 3, 4], [30, 35, 22, 13])
    for p in people:
        wts = {"erp": 1.0, "webshop": .9, "callcenter": .6, "wechat": .9 if p["cn"] or p["country"] == "CN" else .08}
        for _ in range(R.w(k_tab)):
            src = R.w(_t(list(wts), list(wts.values())))
            del wts[src]
            n = 1 + R.p({"erp": .05, "webshop": .12, "wechat": 0, "callcenter": .2}[src])
            for j in range(n):
                r = _master_record(R, p, j, n, "erp", erp=True) if src == "erp" else _shop_record(R, W, p, j, n) \
                    if src == "webshop" else _wechat_record(R, p) if src == "wechat" else _call_record(R, p)
                rows.append(dict(r, entity_id=p["eid"]))
    ids = {"erp": "erp-", "webshop": "web-", "wechat": "wx-", "callcenter": "cc-"}
    return _finish(R, rows, lambda df: df["source"].map(ids) + df.index.map("{:07d}".format))
