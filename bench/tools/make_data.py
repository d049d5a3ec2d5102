#!/usr/bin/env python3
"""bench/tools/make_data.py: writes the CSV files of bench/tools/data/
deterministically (random.Random with fixed seeds; integer and two-decimal
values only, so the files are the same bytes on every Python 3).

  bench/tools/make_data.py          write data/*.csv
  bench/tools/make_data.py --check  exit 1 if data/*.csv differ from what
                                    this script makes (run --check calls it)
"""

import datetime
import io
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")

REGIONS = ["North", "South", "East", "West", "Central"]
PRODUCTS = {"Widget": 1250, "Gadget": 3499, "Sprocket": 475, "Gizmo": 8900, "Doohickey": 1999}
CITIES = {"Oslo": (1.0, 9.0), "Lisbon": (12.0, 5.0), "Denver": (4.0, 11.0)}
DEPARTMENTS = {"Engineering": 98000, "Sales": 71000, "Support": 54000, "Finance": 83000,
               "Marketing": 67000, "Legal": 90000}
FIRST = ["Ada", "Bram", "Chen", "Dana", "Emre", "Fatou", "Goran", "Hana", "Ivo", "Jun", "Kemal",
         "Lena", "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Vera",
         "Wim", "Xu", "Yara", "Zeno"]
LAST = ["Abbot", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
        "Jansen", "Kowalski", "Larsen", "Moreau", "Novak", "Okafor", "Petrov", "Quist", "Rossi",
        "Silva", "Tanaka", "Ueda", "Vidal", "Weber", "Yilmaz", "Zhou"]


def money(cents):
    return f"{cents // 100}.{cents % 100:02d}"


def sales():
    r = random.Random(20250101)
    out = io.StringIO()
    out.write("order_id,date,region,product,units,unit_price\n")
    start = datetime.date(2025, 1, 1)
    for i in range(420):
        d = start + datetime.timedelta(days=r.randrange(181))
        product = r.choice(list(PRODUCTS))
        base = PRODUCTS[product]
        price = base + r.randrange(-base // 10, base // 10 + 1)
        out.write(f"{10001 + i},{d.isoformat()},{r.choice(REGIONS)},{product},"
                  f"{r.randint(1, 40)},{money(price)}\n")
    return out.getvalue()


def weather():
    r = random.Random(20250202)
    out = io.StringIO()
    out.write("date,city,temp_c,precip_mm\n")
    start = datetime.date(2025, 1, 1)
    for day in range(120):
        d = start + datetime.timedelta(days=day)
        for city, (mean, spread) in CITIES.items():
            # tenths of a degree; a slow warming over the four months
            t = int((mean + day * 0.05) * 10) + r.randint(-int(spread * 10), int(spread * 10))
            rain = 0 if r.random() < 0.55 else r.randint(1, 250)
            out.write(f"{d.isoformat()},{city},{t / 10:.1f},{rain / 10:.1f}\n")
    return out.getvalue()


def employees():
    r = random.Random(20250303)
    out = io.StringIO()
    out.write("employee_id,name,department,salary,hire_date\n")
    names = set()
    i = 0
    while i < 260:
        name = f"{r.choice(FIRST)} {r.choice(LAST)}"
        if name in names:
            continue
        names.add(name)
        dept = r.choice(list(DEPARTMENTS))
        salary = DEPARTMENTS[dept] + r.randrange(-15000, 15001, 250)
        hired = datetime.date(2012, 1, 1) + datetime.timedelta(days=r.randrange(13 * 365))
        out.write(f"E{1001 + i},{name},{dept},{salary},{hired.isoformat()}\n")
        i += 1
    return out.getvalue()


FILES = {"sales.csv": sales, "weather.csv": weather, "employees.csv": employees}


def main():
    check = sys.argv[1:] == ["--check"]
    if sys.argv[1:] not in ([], ["--check"]):
        print(__doc__, file=sys.stderr)
        return 2
    bad = []
    for name, make in FILES.items():
        path = os.path.join(DATA, name)
        text = make()
        if check:
            try:
                with open(path, encoding="utf-8", newline="") as f:
                    if f.read() != text:
                        bad.append(f"{path} differs from what make_data.py makes")
            except OSError as e:
                bad.append(f"{path}: {e}")
        else:
            os.makedirs(DATA, exist_ok=True)
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(text)
    for b in bad:
        print("bench/tools/make_data.py: " + b, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
