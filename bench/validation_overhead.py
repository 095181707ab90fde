"""Cost of validation at the boundary (GX suites + typing) on the synthetic CRM.

    .venv/bin/python bench/validation_overhead.py [--config leadscore.yaml]

Prints the time to read the sources, the time to type and validate them, and the share
of the load that validation takes. Run `leadscore generate` first.
"""

from __future__ import annotations

import argparse
import json
import time

from leadscore.features.contract import prepare_activities, prepare_leads
from leadscore.pipelines.settings import load_settings
from leadscore.pipelines.sources import id_column, onto_contract, read_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=None)
    settings = load_settings(parser.parse_args().config)
    data, features = settings.data, settings.features
    start = time.perf_counter()
    raw_leads = onto_contract(read_table(data.leads, id_column(data)), data)
    raw_acts = read_table(data.activities) if data.activities else None
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    leads = prepare_leads(raw_leads, attributes=features.attributes, validation=data.validation)
    if raw_acts is not None:
        prepare_activities(
            raw_acts,
            leads.rows,
            known_types=list(features.activity_types),
            validation=data.validation,
        )
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
