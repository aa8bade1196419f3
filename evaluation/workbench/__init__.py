"""The analysts' workbench: what the web app shows of an issued year, as plain data.

    issued      an issued version read back: its scores, the engine's record, the ranking and the map
    whatif      re-score an issued version with other weights, methods or indicators (nothing is issued)
    diff        what changed between two versions: scores, ranks and the figures behind them
    provenance  where each figure of a county's report came from (bureau, file, sheet, row, sha256)
    delivery    each report's delivery to each recipient (delivered, pending, failed, uncertain)

Nothing here writes to `reports/` or a ledger (a test holds it to that), and nothing imports Prefect or
the web framework. None of it shapes a report, so it is outside the code hash of the manifests.
"""
