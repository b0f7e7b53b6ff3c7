"""Generate the bundled sample dataset: a trading business, GLOBAL_MARKETS.

    python pnldb/data/generate_sample.py [OUTDIR]      (default: this directory)

writes
    hierarchy.csv   node_id,parent_node_id,node_name: firm -> region -> desk -> book
    facts.csv       the P&L export layout (blank use_case_id), ACTUAL and PRIOR, COB 2025-12-23 and 2025-12-24;
                    London books in GBP, Frankfurt books in EUR (the currency column), the rest in USD
    fx.csv          the rates of both dates into USD
    rules.json      the rules of "Adjusted v1"
    rules_v2.json   the same rules with one widened ("Adjusted v2")

Deterministic: a fixed seed, and only `random.Random.random()` (the one method whose sequence Python
guarantees across versions); normal draws are Box-Muller on top of it. Amounts are whole cents,
written with two decimals, never through a float format. The CSVs are committed; regenerate with this
script after changing it (tests/test_sample_data.py checks the committed files are its output).

The story the numbers tell, so the rules have something to bite on:
- WTD and YTD are consistent across the two dates: the ISO week starts on Monday 2025-12-22, so
  WTD(23rd) = daily(22nd) + daily(23rd), WTD(24th) = WTD(23rd) + daily(24th), and YTD likewise on top of
  the year's P&L up to Friday 2025-12-19. Christmas Eve is a half day: smaller moves.
- PRIOR is the earlier (flash) version of the same COB date: mostly the same positions with small
  differences, a few materially amended, a few booked late (ACTUAL only) or cancelled (PRIOR only).
- EMEA still books some positions in a run-off entity (GM_IRELAND_DAC); a few positions firm-wide have
  no risk officer (UNASSIGNED); a few positions sit in books the hierarchy does not know yet (unmapped);
  a few desk-level valuation adjustments sit on desk nodes; NYK Credit High Yield has large losses.
"""
from __future__ import annotations

import csv
import json
import math
import random
import sys
from pathlib import Path

SEED = 20251224
DATES = ("2025-12-23", "2025-12-24")
WEEK_DAYS = ("2025-12-22", "2025-12-23", "2025-12-24")  # Monday .. Wednesday of the ISO week
DAY_SCALE = {"2025-12-22": 1.0, "2025-12-23": 1.0, "2025-12-24": 0.45}
TRADING_DAYS_BEFORE_WEEK = 245  # 2025 up to Friday 2025-12-19

ROOT = ("GLOBAL_MARKETS", "Global Markets")
REGIONS = {
    "EMEA": "Europe, Middle East & Africa",
    "AMER": "Americas",
    "APAC": "Asia Pacific",
}
DESK_NAMES = {
    "RATES": "Rates", "CREDIT": "Credit", "FX": "FX", "EQUITIES": "Equities", "COMMODITIES": "Commodities",
}
DESK_SCALE = {"RATES": 120_000, "CREDIT": 80_000, "FX": 60_000, "EQUITIES": 90_000, "COMMODITIES": 70_000}
CITIES = {
    "LDN": ("London", "GM_UK_LTD"), "FRA": ("Frankfurt", "GM_EUROPE_SE"),
    "NYK": ("New York", "GM_SECURITIES_LLC"), "CHI": ("Chicago", "GM_BANK_NA"), "SAO": ("São Paulo", "GM_BRASIL_DTVM"),
    "HKG": ("Hong Kong", "GM_ASIA_LTD"), "TKY": ("Tokyo", "GM_JAPAN_KK"), "SGP": ("Singapore", "GM_SINGAPORE_PTE"),
}
DESK_CODES = {"RATES": "RT", "CREDIT": "CR", "FX": "FX", "EQUITIES": "EQ", "COMMODITIES": "CM"}
# product code (the last part of a book id) -> name
PRODUCTS = {
    "GOVT": "Government Bonds", "SWAPS": "Interest Rate Swaps", "OPT": "Options", "INFL": "Inflation",
    "REPO": "Repo & Funding", "IG": "Investment Grade", "HY": "High Yield", "CDX": "CDS Index",
    "DIST": "Distressed Debt", "SPOT": "Spot", "FWD": "Forwards", "EM": "Emerging Markets",
    "CASH": "Cash", "D1": "Delta One", "DRV": "Derivatives", "CONV": "Convertibles",
    "ENERGY": "Energy", "METALS": "Metals", "AGS": "Agriculturals", "JGB": "JGBs", "NDF": "NDFs",
}
# region -> desk -> books as (city, product)
# region -> desk -> books as (city, product); a book's node_id is CITY_DESKCODE_PRODUCT, e.g. LDN_RT_GOVT
BOOKS = {
    "EMEA": {
        "RATES": [("LDN", "GOVT"), ("LDN", "SWAPS"), ("LDN", "OPT"), ("LDN", "INFL"), ("FRA", "REPO")],
        "CREDIT": [("LDN", "IG"), ("LDN", "HY"), ("LDN", "CDX"), ("FRA", "DIST")],
        "FX": [("LDN", "SPOT"), ("LDN", "FWD"), ("LDN", "OPT"), ("LDN", "EM")],
        "EQUITIES": [("LDN", "CASH"), ("LDN", "D1"), ("FRA", "DRV"), ("LDN", "CONV")],
        "COMMODITIES": [("LDN", "ENERGY"), ("LDN", "METALS"), ("FRA", "AGS")],
    },
    "AMER": {
        "RATES": [("NYK", "GOVT"), ("NYK", "SWAPS"), ("NYK", "OPT"), ("NYK", "INFL"), ("NYK", "REPO")],
        "CREDIT": [("NYK", "IG"), ("NYK", "HY"), ("NYK", "CDX"), ("NYK", "DIST")],
        "FX": [("NYK", "SPOT"), ("NYK", "OPT"), ("SAO", "EM")],
        "EQUITIES": [("NYK", "CASH"), ("NYK", "D1"), ("CHI", "DRV"), ("NYK", "CONV")],
        "COMMODITIES": [("NYK", "ENERGY"), ("CHI", "METALS"), ("CHI", "AGS")],
    },
    "APAC": {
        "RATES": [("TKY", "JGB"), ("HKG", "SWAPS"), ("SGP", "REPO")],
        "FX": [("SGP", "SPOT"), ("HKG", "FWD"), ("SGP", "OPT"), ("SGP", "NDF")],
        "EQUITIES": [("HKG", "CASH"), ("TKY", "D1"), ("HKG", "DRV")],
        "CREDIT": [("HKG", "IG"), ("SGP", "HY")],
    },
}
RUN_OFF_ENTITY = "GM_IRELAND_DAC"
RISK_OFFICERS = {
    "EMEA": ("A. Lindqvist", "F. Okafor"), "AMER": ("M. Alvarez", "R. Chen"), "APAC": ("H. Sato", "P. Iyer"),
}
UNASSIGNED = "UNASSIGNED"
STRATEGIES = ("FLOW", "MARKET_MAKING", "RELATIVE_VALUE", "MACRO", "HEDGE", "NON_CORE")
STRATEGY_WEIGHTS = (30, 25, 18, 12, 10, 5)
# books the hierarchy does not know (yet): their facts go to __UNMAPPED__
UNMAPPED = {
    "LDN_RT_XCCY": ("EMEA", "GM_UK_LTD"), "SGP_FX_CNH": ("APAC", "GM_SINGAPORE_PTE"),
    "NYK_EQ_LEGACY": ("AMER", "GM_SECURITIES_LLC"), "SUSPENSE_GM": ("EMEA", "GM_UK_LTD"),
}
# desk-level valuation adjustments (facts on inner nodes)
DESK_ADJUSTMENTS = ("EMEA_CREDIT", "AMER_RATES", "APAC_EQUITIES", "AMER_COMMODITIES")
BIG_LOSS_BOOK = "NYK_CR_HY"
# The London books are booked in GBP and the Frankfurt books in EUR (the rest, and desk-level adjustments,
# in USD, the reporting currency): their amounts are drawn in USD as everyone's, then booked at about
# BOOKING_USD_PER_UNIT, so the draws stay the same; fx.csv has the rates of both dates into USD.
CITY_CURRENCIES = {"LDN": "GBP", "FRA": "EUR"}
BOOKING_USD_PER_UNIT = {"GBP": 1.26, "EUR": 1.04}
FX_RATES = {"2025-12-23": {"EUR": "1.0441", "GBP": "1.2652"}, "2025-12-24": {"EUR": "1.0405", "GBP": "1.2618"}}

FACT_COLUMNS = ("use_case_id", "pnl_date", "category_code", "daily_amount", "wtd_amount", "ytd_amount", "scenario",
                "legal_entity", "region", "strategy", "risk_officer", "book", "currency")

RULES = [
    {"node_id": "GLOBAL_MARKETS",
     "predicate_json": {"conditions": [{"field": "risk_officer", "operator": "not_equals", "value": UNASSIGNED}]},
     "logic_en": "Firm: exclude positions with no risk officer assigned (risk_officer UNASSIGNED)"},
    {"node_id": "EMEA",
     "predicate_json": {"conditions": [{"field": "legal_entity", "operator": "not_equals", "value": RUN_OFF_ENTITY}]},
     "logic_en": f"EMEA: exclude the run-off legal entity {RUN_OFF_ENTITY}"},
    {"node_id": "EMEA_RATES",
     "predicate_json": {"conjunction": "AND", "conditions": [
         {"field": "strategy", "operator": "in", "value": ["FLOW", "MARKET_MAKING", "RELATIVE_VALUE", "HEDGE"]},
         {"field": "legal_entity", "operator": "not_equals", "value": RUN_OFF_ENTITY}]},
     "logic_en": f"EMEA Rates: only FLOW, MARKET_MAKING, RELATIVE_VALUE and HEDGE strategies, "
                 f"and not the run-off entity {RUN_OFF_ENTITY}"},
    {"node_id": "APAC_FX",
     "predicate_json": {"conjunction": "OR", "conditions": [
         {"field": "legal_entity", "operator": "equals", "value": "GM_SINGAPORE_PTE"},
         {"field": "strategy", "operator": "in", "value": ["FLOW", "MARKET_MAKING"]}]},
     "logic_en": "APAC FX: everything booked in GM_SINGAPORE_PTE, elsewhere only FLOW and MARKET_MAKING"},
    {"node_id": BIG_LOSS_BOOK,
     "predicate_json": {"conditions": [{"field": "daily_amount", "operator": "greater_than", "value": -1000000}]},
     "logic_en": "NYK Credit High Yield: exclude positions with a daily loss of 1,000,000 or more"},
]
# "Adjusted v2": EMEA Rates also keeps its MACRO strategy.
RULES_V2_CHANGE = "EMEA_RATES"


def rules_v2() -> list[dict]:
    rules = json.loads(json.dumps(RULES))
    for rule in rules:
        if rule["node_id"] == RULES_V2_CHANGE:
            rule["predicate_json"]["conditions"][0]["value"].append("MACRO")
            rule["logic_en"] = (f"EMEA Rates: only FLOW, MARKET_MAKING, RELATIVE_VALUE, HEDGE and MACRO strategies, "
                                f"and not the run-off entity {RUN_OFF_ENTITY}")
    return rules


class Draws:
    """Random draws built on random() only, so the sequence is the same on every Python version."""

    def __init__(self, seed: int):
        self._rng = random.Random(seed)

    def uniform(self, low: float = 0.0, high: float = 1.0) -> float:
        return low + (high - low) * self._rng.random()

    def normal(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        u1 = 1.0 - self._rng.random()  # (0, 1]
        u2 = self._rng.random()
        return mu + sigma * math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)

    def chance(self, p: float) -> bool:
        return self._rng.random() < p

    def integer(self, low: int, high: int) -> int:
        """low..high inclusive."""
        return low + int(self._rng.random() * (high - low + 1))

    def pick(self, items, weights=None):
        items = list(items)
        if weights is None:
            return items[int(self._rng.random() * len(items))]
        target = self._rng.random() * sum(weights)
        for item, weight in zip(items, weights):
            target -= weight
            if target < 0:
                return item
        return items[-1]


def cents(value: float) -> int:
    return round(value * 100)


def money(c: int) -> str:
    sign = "-" if c < 0 else ""
    return f"{sign}{abs(c) // 100}.{abs(c) % 100:02d}"


def hierarchy_rows() -> list[tuple[str, str, str]]:
    rows = [(ROOT[0], "", ROOT[1])]
    for region, region_name in REGIONS.items():
        rows.append((region, ROOT[0], region_name))
        for desk, books in BOOKS[region].items():
            desk_id = f"{region}_{desk}"
            rows.append((desk_id, region, f"{region} {DESK_NAMES[desk]}"))
            for city, product in books:
                book_name = f"{CITIES[city][0]} {DESK_NAMES[desk]} {PRODUCTS[product]}"
                rows.append((f"{city}_{DESK_CODES[desk]}_{product}", desk_id, book_name))
    return rows


def _positions(d: Draws) -> list[dict]:
    """Every position: its book (category_code), attributes, daily moves in the week and YTD before it."""
    positions = []

    def position(code, region, entity, strategy, officer, sigma, days=WEEK_DAYS):
        currency = CITY_CURRENCIES.get(code.split("_")[0])
        per_unit = BOOKING_USD_PER_UNIT.get(currency, 1)
        drift = sigma * d.uniform(-0.02, 0.08)
        moves = {}
        for day in WEEK_DAYS:
            if day not in days:
                moves[day] = 0
                continue
            move = d.normal(drift, sigma) * DAY_SCALE[day]
            if d.chance(0.02):  # a fat tail
                move *= d.uniform(4, 9)
            moves[day] = cents(move / per_unit)
        ytd_before = cents(d.normal(drift * TRADING_DAYS_BEFORE_WEEK, sigma * math.sqrt(TRADING_DAYS_BEFORE_WEEK))
                           / per_unit)
        if days != WEEK_DAYS:  # opened this week
            ytd_before = 0
        positions.append({"code": code, "legal_entity": entity, "region": region, "strategy": strategy,
                          "risk_officer": officer, "moves": moves, "ytd_before": ytd_before, "currency": currency,
                          "dates": tuple(day for day in DATES if day in days)})

    for region in REGIONS:
        for desk, books in BOOKS[region].items():
            for city, product in books:
                code = f"{city}_{DESK_CODES[desk]}_{product}"
                home_entity = CITIES[city][1]
                book_scale = DESK_SCALE[desk] * d.uniform(0.4, 1.8)
                officer = d.pick(RISK_OFFICERS[region])
                for _ in range(d.integer(16, 38)):
                    entity = home_entity
                    if region == "EMEA" and d.chance(0.08):
                        entity = RUN_OFF_ENTITY
                    elif desk == "FX" and region == "APAC" and d.chance(0.3):
                        entity = d.pick(("GM_ASIA_LTD", "GM_SINGAPORE_PTE", "GM_JAPAN_KK"))
                    strategy = d.pick(STRATEGIES, STRATEGY_WEIGHTS)
                    if d.chance(0.015):
                        who = UNASSIGNED
                    else:
                        who = officer if d.chance(0.85) else d.pick(RISK_OFFICERS[region])
                    sigma = book_scale * d.uniform(0.3, 1.5)
                    roll = d.uniform()
                    days = WEEK_DAYS if roll < 0.95 else (("2025-12-24",) if roll < 0.98 else WEEK_DAYS[:2])
                    position(code, region, entity, strategy, who, sigma, days)
                if code == BIG_LOSS_BOOK:  # two large losing positions
                    for loss in (-1_850_000, -1_240_000):
                        position(code, region, home_entity, "NON_CORE", officer, 150_000)
                        p = positions[-1]
                        p["moves"]["2025-12-24"] = cents(loss * d.uniform(0.95, 1.1))
                        p["moves"]["2025-12-23"] = cents(loss * d.uniform(0.6, 1.0))
    for code, (region, entity) in UNMAPPED.items():
        for _ in range(d.integer(2, 4)):
            officer = UNASSIGNED if code == "SUSPENSE_GM" or d.chance(0.3) else d.pick(RISK_OFFICERS[region])
            position(code, region, entity, d.pick(("FLOW", "HEDGE", "NON_CORE")), officer, 40_000)
    for desk_id in DESK_ADJUSTMENTS:
        region = desk_id.split("_")[0]
        entity = {"EMEA": "GM_UK_LTD", "AMER": "GM_SECURITIES_LLC", "APAC": "GM_ASIA_LTD"}[region]
        position(desk_id, region, entity, "HEDGE", d.pick(RISK_OFFICERS[region]), 200_000)
    return positions


def fact_rows(d: Draws) -> list[list[str]]:
    positions = _positions(d)
    rows = []
    for date in DATES:
        week_so_far = WEEK_DAYS[:WEEK_DAYS.index(date) + 1]
        versions = {"ACTUAL": [], "PRIOR": []}
        for p in positions:
            if date not in p["dates"]:
                continue
            daily = p["moves"][date]
            prior = round(daily * (1 + d.normal(0, 0.03)))
            roll = d.uniform()
            in_actual = in_prior = True
            if p["code"] == BIG_LOSS_BOOK and abs(daily) >= 100_000_000:
                prior = daily  # the large losses were in the flash already
            elif roll < 0.03:
                in_prior = False  # booked late: ACTUAL only
            elif roll < 0.05:
                in_actual = False  # cancelled since the flash: PRIOR only
            elif roll < 0.10:
                prior = daily + cents(d.normal(0, max(abs(daily) / 100, 20_000) * 0.6))  # amended since the flash
            wtd_before = sum(p["moves"][day] for day in week_so_far[:-1])
            for scenario, present, amount in (("ACTUAL", in_actual, daily), ("PRIOR", in_prior, prior)):
                if present:
                    wtd = wtd_before + amount
                    versions[scenario].append(
                        ["", date, p["code"], money(amount), money(wtd), money(p["ytd_before"] + wtd), scenario,
                         p["legal_entity"], p["region"], p["strategy"], p["risk_officer"], p["code"],
                         p["currency"] or ""])
        rows += versions["ACTUAL"] + versions["PRIOR"]
    return rows


def write(outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    d = Draws(SEED)
    with open(outdir / "hierarchy.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("node_id", "parent_node_id", "node_name"))
        writer.writerows(hierarchy_rows())
    with open(outdir / "facts.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(FACT_COLUMNS)
        writer.writerows(fact_rows(d))
    with open(outdir / "fx.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("pnl_date", "currency", "reporting_currency", "rate"))
        writer.writerows((date, currency, "USD", rate) for date, rates in FX_RATES.items()
                         for currency, rate in rates.items())
    for name, rules in (("rules.json", RULES), ("rules_v2.json", rules_v2())):
        (outdir / name).write_text(json.dumps(rules, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
