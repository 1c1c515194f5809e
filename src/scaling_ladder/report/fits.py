"""The report's single-recipe laws: the given fit(s) per recipe, or one fitted per recipe here,
for the curves, the bands and the hold-out diagnostic; and, only when no comparison predicts
the report's metric at its target, every recipe's prediction there with the gain over the
baseline (with a comparison, those numbers are the comparison's: see :class:`.model.AtTarget`).

Fits made here use the ``auto`` checkpoints: the final one of warmup-stable-decay runs (and of
their cooldown branches), else those after the first 10% of each run's tokens (variant c of the
Hitchhiker's Guide, Choshen et al. 2024); and they hold out the largest model size when there
are at least four, so that the report can show how well the law predicted it (a diagnostic).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..compare.joint import side_by_side
from ..errors import InputError
from ..laws.compute import flops_6nd
from ..laws.fit import LawFit
from ..laws.forms import make_law
from ..observations.table import checkpoint_mask
from .model import Analysis, RecipeFit


def fit_recipes(a: Analysis, given, *, law: str, bootstrap: int, holdout: bool,
                seed: int) -> None:
    """``a.fits``: the given fit(s) per recipe, or ``law`` fitted per recipe here."""
    if a.kind != "loss":
        a.notes.append(f"{a.metric} is an accuracy: no loss law is fitted to it")
        return
    if given is not None:
        a.fits = _given_fits(a, given)
        return
    todo = []
    for recipe in a.recipes:
        rows = a.main[a.main["recipe"] == recipe]
        sub, selection = _fit_rows(rows)
        heldout: frozenset[str] = frozenset()
        sizes = np.unique(sub["params"])
        if holdout and len(sizes) >= 4:
            top = sizes.max()
            heldout = frozenset(rows.loc[rows["params"] == top, "run_id"])
            sub = sub[sub["params"] < top]
        todo.append((recipe, sub, heldout, selection))
    form = make_law(law)

    def one(item) -> LawFit | Exception:
        try:
            return form.fit(item[1], bootstrap=bootstrap, seed=seed)
        except (InputError, ValueError) as exc:
            return exc

    # the recipes' fits are independent: side by side, each ticking as it ends
    fitted = side_by_side(one, todo, done=lambda _: a.tick(max(bootstrap, 1)))
    for (recipe, _, heldout, selection), f in zip(todo, fitted, strict=True):
        if isinstance(f, Exception):
            a.notes.append(f"recipe {recipe}: the {law} law could not be fitted ({f})")
            continue
        a.fits[recipe] = RecipeFit(f, None, heldout, selection)


def _fit_rows(rows: pd.DataFrame, per_run: int = 24) -> tuple[pd.DataFrame, str]:
    """The ``auto`` checkpoints (final ones of WSD runs; of other runs, those after the first
    10% of their tokens: Hitchhiker's Guide variant c), at most ``per_run`` log-spaced per run."""
    counts = rows.groupby("run_id")["tokens"].size()
    if counts.max() <= 1:
        return rows, "final checkpoints"
    rows = rows[checkpoint_mask(rows, "auto")]
    keep = []
    for _, run in rows.groupby("run_id", sort=False):
        run = run.sort_values("tokens")
        if len(run) > per_run:
            grid = np.geomspace(run["tokens"].iloc[0], run["tokens"].iloc[-1], per_run)
            idx = np.unique(np.searchsorted(run["tokens"].to_numpy(), grid).clip(0, len(run) - 1))
            run = run.iloc[np.unique(np.r_[idx, len(run) - 1])]
        keep.append(run)
    rows = pd.concat(keep)
    if rows.groupby("run_id")["tokens"].size().max() <= 1:
        return rows, "final checkpoints (annealed: WSD runs and their cooldown branches)"
    wsd = "schedule" in rows and (rows["schedule"] == "wsd").any()
    return rows, (f"checkpoints after the first 10% of each run's tokens"
                  f"{' (of WSD runs, the final one)' if wsd else ''}, at most {per_run} per run")


def check_given_fit(given: LawFit | Mapping[str, LawFit]) -> None:
    """The report plots and predicts at D in tokens: a fit with D in bytes would be misread,
    so it is an :class:`InputError` (naming no file: the caller knows it)."""
    if any(getattr(f, "data", "tokens") != "tokens"
           for f in (given.values() if isinstance(given, Mapping) else (given,))):
        raise InputError(None, "the fit takes D in bytes, but the report plots and predicts at "
                         "D in tokens", fix="give the report a fit made with D in tokens "
                         "(ladder fit --data tokens)")


def _given_fits(a: Analysis, given) -> dict[str, RecipeFit]:
    check_given_fit(given)
    if isinstance(given, Mapping):
        missing = [r for r in a.recipes if r not in given]
        if missing:
            a.notes.append(f"no fit given for {', '.join(missing)}: not predicted")
        fits = {r: RecipeFit(f, None, source="given") for r, f in given.items() if r in a.recipes}
    elif given.groups:
        fits = {r: RecipeFit(given, r, source="given") for r in a.recipes if r in given.groups}
        missing = [r for r in a.recipes if r not in given.groups]
        if missing:
            a.notes.append(f"the fit has no group for {', '.join(missing)}: not predicted")
    elif len(a.recipes) == 1:
        fits = {a.recipes[0]: RecipeFit(given, None, source="given")}
    else:
        raise ValueError(f"One fit was given for {len(a.recipes)} recipes: pass one fit per "
                         "recipe (a mapping), a fit made with by='recipe', or select one recipe.")
    out = {}
    for r, rf in fits.items():  # runs beyond the fit's largest model are held out
        hi = (rf.fit.ranges or {}).get("params", (0, np.inf))[1]
        rows = a.main[a.main["recipe"] == r]
        held = frozenset(rows.loc[rows["params"] > hi * (1 + 1e-9), "run_id"])
        out[r] = RecipeFit(rf.fit, rf.group, held, "as given", "given")
    return out


def law_inputs(fit: LawFit, params, tokens) -> dict[str, np.ndarray] | None:
    """The law's inputs at (N, D): ``flops`` is 6ND; None when the law reads other columns."""
    n, d = np.asarray(params, float), np.asarray(tokens, float)
    have = {"params": n, "tokens": d, "flops": flops_6nd(n, d)}
    if not set(fit.law.inputs) <= set(have):
        return None
    return {k: have[k] for k in fit.law.inputs}


def observed_at_target(a: Analysis, recipe: str) -> float | None:
    """The mean final value of ``recipe``'s runs at the target (N, D), when there are any."""
    t = a.target
    fin = a.main[a.main["final"].to_numpy(bool)]
    at = fin[(fin["recipe"] == recipe) & np.isclose(fin["params"], t["params"])
             & np.isclose(fin["tokens"], t["tokens"], rtol=0.01)]
    return float(at["value"].mean()) if len(at) else None


def predict_target(a: Analysis) -> None:
    """Per recipe: prediction at the target (CI, PI, draws); per candidate: the gain.

    Only when no comparison predicts the report's metric at its target: otherwise the
    comparison's numbers are the report's, and a second prediction would contradict them."""
    if a.compared_here:
        return
    t = a.target
    for recipe, rf in a.fits.items():
        x = law_inputs(rf.fit, t["params"], t["tokens"])
        if x is None:
            a.notes.append(f"the {rf.fit.law.name} law reads {', '.join(rf.fit.law.inputs)}: "
                           "no prediction at the target")
            continue
        p = rf.fit.predict_interval(group=rf.group, seed=0, **x)
        draws = (rf.fit.predict_draws(group=rf.group, **x) if rf.fit.draws is not None
                 else None)
        a.predictions[recipe] = {
            "mean": float(p.mean), "ci": _pair(p.ci), "pi": _pair(p.pi), "draws": draws,
            "actual": observed_at_target(a, recipe)}
    base = a.predictions.get(a.baseline)
    for recipe in a.recipes[1:]:
        cand = a.predictions.get(recipe)
        if base is None or cand is None:
            continue
        gain = a.better * (base["mean"] - cand["mean"])
        ci = None
        if base["draws"] is not None and cand["draws"] is not None:
            k = min(len(base["draws"]), len(cand["draws"]))
            g = a.better * (base["draws"][:k] - cand["draws"][:k])
            ci = tuple(float(v) for v in np.nanquantile(g, [0.025, 0.975]))
        a.gains[recipe] = {"gain": float(gain), "ci": ci,
                           "relative": float(gain / base["mean"])}


def _pair(x) -> tuple[float, float] | None:
    return None if x is None else (float(x[0]), float(x[1]))
