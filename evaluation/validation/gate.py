"""The GX gate: an ephemeral Great Expectations context holding the suites, one checkpoint per suite,
optionally writing Data Docs; it travels to other processes (Dask workers) without its context."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from pathlib import Path

import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

_lock = threading.Lock()
_spare_lock = threading.Lock()  # the spare context only (Gate.ctx may be reached with _lock held)
_travelled: dict = {}  # docs folder -> the gate unpickled first in this process


class Gate:
    """A GX ephemeral context holding the suites; optionally writing Data Docs to a folder."""

    def __init__(self, docs_dir: Path | None = None, *, docs_each_run: bool = False):
        """docs_each_run: update the Data Docs site after every validation (about 0.25 s each, growing
        with the site). Otherwise they are written once by `build_docs()`, after the last one; a
        gate that travelled to another process (a Dask worker) updates them itself, as nobody
        else holds its results."""
        self.docs_dir = Path(docs_dir).resolve() if docs_dir else None
        self.docs_each_run = docs_each_run
        self.validated = 0
        self._ctx = None
        self._definitions: dict[tuple[str, str], object] = {}
        self._checkpoints: dict[tuple[str, bool], object] = {}

    @property
    def ctx(self):
        """The GX context, created on first use (about 1.5 s), so a run whose checks all hit the cache never pays for it."""
        if self._ctx is None:
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            global _spare
            with _spare_lock:
                ctx, _spare = (_spare or gx.get_context(mode="ephemeral")), None
            ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
            self.source = ctx.data_sources.add_pandas("submissions")
            if self.docs_dir:
                self.docs_dir.mkdir(parents=True, exist_ok=True)
                ctx.add_data_docs_site(site_name="run", site_config={
                    "class_name": "SiteBuilder", "show_how_to_buttons": False,
                    "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(self.docs_dir)},
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                })
            self._ctx = ctx
        return self._ctx

    def __getstate__(self):
        # A gate travels with task parameters; the GX context stays behind and is rebuilt on demand
        # (once per process: see __setstate__).
        return {"docs_dir": self.docs_dir, "docs_each_run": True, "validated": 0, "_ctx": None,
                "_definitions": {}, "_checkpoints": {}}

    def __setstate__(self, state):
        self.__dict__.update(state)
        with _lock:  # one context per process and docs folder, not one per task
            home = _travelled.setdefault(self.docs_dir, self)
        if home is not self:
            self.__dict__ = home.__dict__

    def build_docs(self) -> Path | None:
        """Write the Data Docs site for the validations run here; returns its index (None when none ran)."""
        if self.docs_dir is None or self._ctx is None or not self.validated or self.docs_each_run:
            return self.docs_index if self.docs_index and self.docs_index.exists() else None
        with _lock:
            self._ctx.build_data_docs(site_names=["run"])
        return self.docs_index

    @property
    def docs_index(self) -> Path | None:
        return self.docs_dir / "index.html" if self.docs_dir else None

    def _definition(self, suite: dict):
        """The suite's GX validation definition (its asset, batch and suite), made once per gate."""
        import great_expectations as gx

        # A gate may meet two suites of the same name (two catalogues in one process): key on content too.
        digest = hashlib.sha256(json.dumps(suite["expectations"], sort_keys=True, default=str).encode()).hexdigest()[:10]
        key = (suite["name"], digest)
        if key not in self._definitions:
            self.ctx  # noqa: B018 - creates the context and its pandas source
            taken = any(k[0] == suite["name"] for k in self._definitions)
            name = f"{suite['name']}_{digest}" if taken else suite["name"]
            batch = self.source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole")
            gx_suite = self.ctx.suites.add(gx.ExpectationSuite(
                name=name, expectations=suite["expectations"], meta=suite.get("meta")))
            self._definitions[key] = self.ctx.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=batch, suite=gx_suite))
        return self._definitions[key]

    def _checkpoint(self, suite: dict, detail: bool):
        """The suite's checkpoint: with every failing row and value (detail), or pass/fail only."""
        import great_expectations as gx

        definition = self._definition(suite)
        key = (definition.name, detail)
        if key not in self._checkpoints:
            each = self.docs_dir and self.docs_each_run
            actions = [gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["run"])] if each else []
            self._checkpoints[key] = self.ctx.checkpoints.add(gx.Checkpoint(
                name=f"{definition.name}_checkpoint" if detail else f"{definition.name}_pass_fail_checkpoint",
                validation_definitions=[definition], actions=actions,
                result_format={"result_format": "COMPLETE" if detail else "BOOLEAN_ONLY"}))
        return self._checkpoints[key]

    def run(self, frame: pd.DataFrame, suite: dict) -> list[dict]:
        """Run a suite against a DataFrame; return each expectation's outcome as plain data.

        Most tables pass: they are checked pass/fail only (GX computes no failing rows, about a quarter
        less work). A table that fails anything is checked again with every failing row and value, which
        the rejection report needs (its Data Docs then hold both validations)."""
        def check(detail: bool):
            if self.docs_dir and self.docs_each_run:  # a checkpoint, for its action that updates the Data Docs
                (done,) = self._checkpoint(suite, detail).run(batch_parameters={"dataframe": frame}).run_results.values()
                return done
            # Otherwise the validation definition is run directly: its results are stored for the Data Docs all
            # the same, without a checkpoint's own freshness checks (about a sixth of each validation's time).
            return self._definition(suite).run(
                batch_parameters={"dataframe": frame},
                result_format={"result_format": "COMPLETE" if detail else "BOOLEAN_ONLY"})

        with _lock, _configurations_memoized():  # GX contexts are not thread-safe
            validation = check(detail=False)
            if not all(r.success for r in validation.results):
                validation = check(detail=True)
            self.validated += 1
        outcomes = []
        for r in validation.results:
            cfg = r.expectation_config
            details = r.result or {}
            outcomes.append({
                "type": cfg.type,
                "kwargs": dict(cfg.kwargs),
                "meta": dict(cfg.meta or {}),
                "severity": str(getattr(cfg, "severity", "critical")).split(".")[-1].lower(),
                "success": bool(r.success),
                "index": list(details.get("unexpected_index_list") or []),
                "values": list(details.get("unexpected_list") or []),
                "missing": list(((details.get("details") or {}).get("mismatched") or {}).get("missing") or []),
                "exception": bool((r.exception_info or {}).get("raised_exception", False)),
            })
        return outcomes


# GX rebuilds an expectation's configuration (a pydantic .dict() and a new ExpectationConfiguration) each
# time it reads one of its arguments: about 80 times per expectation and validation, 40 % of a Longnan
# table's check. While one validation runs (under _lock), each expectation object's configuration is built
# once; GX makes fresh expectation objects for every validation and does not change them while it runs.
_memo: dict | None = None  # id(expectation) -> (expectation, configuration), only while a validation runs


def _memoize_configuration() -> None:
    """Route GX's Expectation.configuration through the memo (once per process; a plain property otherwise)."""
    from great_expectations.expectations.expectation import Expectation

    built = Expectation.__dict__["configuration"]
    if getattr(built.fget, "memoized", False):
        return

    def configuration(self):
        memo = _memo
        if memo is None:
            return built.fget(self)
        hit = memo.get(id(self))
        if hit is None or hit[0] is not self:
            hit = memo[id(self)] = (self, built.fget(self))
        return hit[1]

    configuration.memoized = True
    configuration.__doc__ = built.__doc__
    Expectation.configuration = property(configuration)


@contextlib.contextmanager
def _configurations_memoized():
    global _memo
    _memoize_configuration()
    _memo = {}
    try:
        yield
    finally:
        _memo = None


_default_gate: Gate | None = None
_spare = None  # a GX context made ahead of time by warm_up(), taken by the next gate that needs one


def warm_up() -> None:
    """Import GX and make a context ahead of time (about 3 s here), for the next gate of this process to
    take: the command line does this while Prefect's local server starts, so a run's first check does not."""
    global _spare
    import great_expectations as gx

    with _spare_lock:
        if _spare is None:
            _spare = gx.get_context(mode="ephemeral")


def default_gate() -> Gate:
    global _default_gate
    with _lock:
        if _default_gate is None:
            _default_gate = Gate()
    return _default_gate
