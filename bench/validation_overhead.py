"""Cost of validation at the boundary (GX suites + typing) on the synthetic CRM.

    .venv/bin/python bench/validation_overhead.py [--config leadscore.yaml]

Prints the time to read the sources, the time to type and validate them, and the share
of the load that validation takes. Run `leadscore generate` first.
"""

from __future__ import annotations

import argparse
import json
import time

from leadscore.pipelines.settings import load_settings
from leadscore.pipelines.sources import contract_reader, read_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=None)
    settings = load_settings(parser.parse_args().config)
    data, reader = settings.data, contract_reader(settings)
    start = time.perf_counter()
    raw_leads = read_table(data.leads, reader.id_column)
    raw_acts = read_table(data.activities) if data.activities else None
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    leads = reader.leads(raw_leads)
    if raw_acts is not None:
        reader.activities(raw_acts, leads.rows)
    validate_s = time.perf_counter() - start
    figures = {
        "leads": len(raw_leads),
        "activities": 0 if raw_acts is None else len(raw_acts),
        "read_s": round(read_s, 2),
        "validate_s": round(validate_s, 2),
        "validation_share_of_load": round(validate_s / (read_s + validate_s), 3),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
