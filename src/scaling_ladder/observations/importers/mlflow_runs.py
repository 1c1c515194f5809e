"""MLflow tracking folders (``mlruns/``) -> observations, read through ``mlflow``'s own client.

Every run of every experiment is a run (named by its run name, the experiment by its MLflow
experiment); each mapped metric's full history (``get_metric_history``) gives one row per
logged step::

    --map train=train_loss,val/c4=val_loss          (without --map: metrics named like
                                                     train/loss, loss, val/<slice>, ds/<task>)

A run's params and tags are its config (:mod:`.meta`): N with ``--params-from config``
(``n_params``, or counted from ``n_layer``, ``d_model``, ``vocab_size``), tokens per step
(``tokens_per_step``, or ``batch_size`` x ``seq_len``), ``seed``, ``lr`` and ``recipe``;
``params=`` in the mapping may name a param, tag or metric, ``tokens=`` a metric logged at the
same steps. The file store is read as it is (MLflow 3 asks for ``MLFLOW_ALLOW_FILE_STORE``:
set while reading); a tracking URI (``sqlite:///mlflow.db``) goes to the client unchanged.

>>> obs = read_mlflow("mlruns", mapping="train=train_loss", params_from="config")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ...errors import InputError
from ..table import Observations
from .common import MissingExtraError, check_args, default_mapping, finish, kind_of, listing
from .meta import Meta, with_meta

_FIX = "name an MLflow tracking folder (mlruns/, one folder per experiment with meta.yaml)"


def read_mlflow(path: str | Path, *, mapping: Mapping[str, str] | str | None = None,
                params=None, params_from: str | None = None, same_size: bool = False,
                experiment: str | None = None, recipe=None, tokens_per_step=None, seed=None,
                lr=None, kind: str | Mapping[str, str] = "loss") -> Observations:
    """Read the runs of an MLflow tracking folder (or URI) as observations.

    ``experiment`` keeps one MLflow experiment; ``params``, ``tokens_per_step``, ``recipe``,
    ``seed`` and ``lr`` as in :mod:`.meta` (one value, or per run).
    """
    client_cls = _mlflow()
    uri, where = _tracking_uri(path)
    meta = Meta.from_args(params=params, params_from=params_from, same_size=same_size,
                          tokens_per_step=tokens_per_step, seed=seed, lr=lr, recipe=recipe)
    with _file_store_allowed():
        client = client_cls(tracking_uri=uri)
        runs = _runs(client, where, experiment)
        logged = sorted({m for _, _, r in runs for m in r.data.metrics})
        if mapping is None:
            mapping = default_mapping(logged, where)
        mapping, metrics = check_args(mapping, where, kind=kind, meta=meta)
        for key, src in metrics.items():
            if src not in logged:
                raise InputError(where, f'no run logs the metric "{src}" (mapped to {key})',
                                 fix=f"map {key}= one of {listing(logged, src)}")
        parts = []
        for name, exp_name, run in runs:
            run_where = (str(Path(where) / run.info.experiment_id / run.info.run_id)
                         if uri.startswith("file:") else f"{where} run {name}")
            config = {**{k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
                      **run.data.params}
            m = meta.of(name, config, run_where, mapping)
            raw = _run_rows(client, run, name, run_where, mapping, metrics, m, kind)
            if raw is not None:
                parts.append((run_where, exp_name, with_meta(raw, m)))
        meta.check_shared(where, [name for name, _, _ in runs])
    frames, aside = [], Counter()
    for run_where, exp_name, raw in parts:
        obs = finish(raw, run_where, "step", exp_name)
        frames.append(obs.frame)
        aside.update(dict(obs.set_aside))
    return Observations(pd.concat(frames, ignore_index=True), tuple(aside.items()), (where,))


def _mlflow():
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise MissingExtraError('reading MLflow runs needs mlflow: pip install '
                                '"scaling-ladder[mlflow]"') from None
    return MlflowClient


def _tracking_uri(path: str | Path) -> tuple[str, str]:
    """(tracking URI, name for errors); a folder is checked first, since MLflow's file store
    would create a missing one."""
    text = str(path)
    if "://" in text or text.startswith("sqlite:"):
        return text, text
    root = Path(path)
    if root.is_dir() and not any(root.glob("*/meta.yaml")) and (root / "mlruns").is_dir():
        root = root / "mlruns"
    if not root.is_dir():
        raise InputError(str(root), "folder not found", fix=_FIX)
    if not any(root.glob("*/meta.yaml")):
        raise InputError(str(root), "holds no MLflow experiments (*/meta.yaml)", fix=_FIX)
    return root.resolve().as_uri(), str(root)


@contextmanager
def _file_store_allowed():
    old = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = old


def _runs(client, where: str, experiment: str | None) -> list[tuple[str, str, object]]:
    """(run name, experiment name, run) of every active run; a run name repeated within an
    experiment gets its run id's first 8 characters."""
    exps = [e for e in client.search_experiments() if experiment in (None, e.name)]
    if experiment is not None and not exps:
        names = [e.name for e in client.search_experiments()]
        raise InputError(where, f'no MLflow experiment "{experiment}"',
                         fix=f"choose one of {listing(names, experiment)}")
    out = []
    for exp in exps:
        runs, token = [], None
        while True:
            page = client.search_runs([exp.experiment_id], page_token=token)
            runs += list(page)
            token = page.token
            if not token:
                break
        counts = Counter(r.info.run_name for r in runs)
        for r in sorted(runs, key=lambda r: (r.info.run_name or "", r.info.start_time or 0)):
            name = r.info.run_name or r.info.run_id
            if counts[r.info.run_name] > 1:
                name = f"{name}-{r.info.run_id[:8]}"
            out.append((name, exp.name, r))
    if not out:
        raise InputError(where, "holds no runs", fix=_FIX)
    return out


def _lookup(run, src: str, where: str) -> float:
    """N from a run param, tag or (last) metric value named ``src``."""
    data = run.data
    for found in (data.params, data.tags, data.metrics):
        if src in found:
            try:
                return float(found[src])
            except ValueError:
                raise InputError(where, f'"{src}" is "{found[src]}", not a number (mapped to '
                                 "params)", fix="map params= a numeric param or tag") from None
    names = [n for n in (*data.params, *data.tags, *data.metrics) if not n.startswith("mlflow.")]
    raise InputError(where, f'no run param, tag or metric "{src}" (mapped to params)',
                     fix=f"map params= one of {listing(names, src)}")


def _run_rows(client, run, name, where, mapping, metrics, m, kind):
    """One run's rows (None when it logs no mapped metric)."""
    params = _lookup(run, mapping["params"], where) if "params" in mapping else m["params"]
    tokens = None
    if "tokens" in mapping:
        tokens = {x.step: x.value for x in client.get_metric_history(run.info.run_id,
                                                                     mapping["tokens"])}
    rows = []
    for metric, src in metrics.items():
        if src not in run.data.metrics:  # this run did not log it
            continue
        history = sorted(client.get_metric_history(run.info.run_id, src),
                         key=lambda x: x.timestamp)
        for step, value in sorted({x.step: x.value for x in history}.items()):  # last wins
            if tokens is not None and step not in tokens:
                raise InputError(where, f'metric "{mapping["tokens"]}" has no value at step '
                                 f'{step}, where "{src}" has one',
                                 fix="log tokens at every step, or give --tokens-per-step")
            seen = tokens[step] if tokens is not None else step * m["tokens_per_step"]
            rows.append((name, params, seen, metric, kind_of(metric, kind), value, step, step))
    if not rows:
        return None
    return pd.DataFrame(rows, columns=["run", "params", "tokens", "metric", "kind", "value",
                                       "step", "_line"])
