"""Municipal coupling agreements as TOML overlays that compose with a policy (DOMAIN.md section 7).

An agreement changes the problem in three layers, none of which edits the engine:

1. **policy** - a ``[policy]`` table merged key by key into the base policy (e.g. a 30 km radius);
2. **inputs** - ``[[ban_outside]]`` adds *ban* locks, so matching households can only be coupled
   inside an area (the model's ordinary ``forbidden`` mask);
3. **model arrays** - ``[[pool]]`` and ``[[weight_multiplier]]`` rewrite the built model's
   ``cap``, ``target``, ``bands`` and ``value`` arrays with :func:`dataclasses.replace` (a new,
   read-only :class:`~coupler.model.CouplingModel`; the base model is untouched).

Format (every table optional, every unknown key an error)::

    [agreement]
    name = "Eindhoven: job-holders keep their job"
    description = "free text"

    [policy.hard]                 # any policy table/key; merged into the base policy
    radius_km = 30

    [[ban_outside]]               # matching households stay inside the area
    azc = ["Eindhoven"]           # current azc is one of these (names or codes); optional
    criterion = "work"            # has a criterion of this kind; optional
    qualifying_only = false       # only criteria that count as hard under the policy
    criterion_inside = true       # only when that criterion's municipality lies in the area
    labour_market_region = "Zuidoost-Brabant"   # the area: exactly one of
                                  # labour_market_region / province / municipalities, or
                                  # criterion_region = true: the labour-market region(s) of
                                  # the household's own matching criterion (e.g. its job)

    [[pool]]                      # the area's municipalities pool their quota
    province = "Utrecht"
    member_cap = 2.0              # each member may take up to 2 x its own remaining quota,
                                  # or "pool": up to the pool's total
    min_fill = 1.0                # hard band on the pool total, as a fraction of the pool's
    max_fill = 1.1                # fair share of this batch (sum of members' fill targets)

    [[weight_multiplier]]         # soft parts weigh more (or less) in some municipalities
    municipalities = ["Eindhoven", "Helmond"]
    parts = ["labour", "work_soft"]
    factor = 2.0
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from coupler.criteria import SOFT_PARTS, qualifies_as_hard, soft_parts
from coupler.errors import InputError, PolicyError, Problem
from coupler.instance import Instance
from coupler.io import Places, read_toml
from coupler.io.cells import normalise_name, short, suggest
from coupler.model import BandRows, CouplingModel, build_model
from coupler.policy import Policy
from coupler.schema import CRITERION_KINDS

AREA_KEYS = ("labour_market_region", "province", "municipalities")
#: An area that is not a fixed place: the labour-market region of each household's own criterion.
CRITERION_REGION = "criterion_region"
_TOP = ("agreement", "policy", "ban_outside", "pool", "weight_multiplier")


@dataclass(frozen=True)
class Area:
    """A set of municipalities: a labour-market region, a province, or a list of names/codes."""

    level: str
    names: tuple[str, ...]

    def label(self) -> str:
        return f"{self.level} {', '.join(self.names)}"

    def mask(self, municipalities: pd.DataFrame, source: str, where: str) -> np.ndarray:
        """Bool over ``municipalities``; unknown names raise with a suggestion.

        A ``criterion_region`` area depends on the household; its mask here is all True.
        """
        if self.level == CRITERION_REGION:
            return np.ones(len(municipalities), dtype=bool)
        problems: list[Problem] = []
        if self.level == "municipalities":
            codes = resolve_names(self.names, municipalities, source, where, problems)
            mask = municipalities["code"].astype(str).isin(codes).to_numpy()
        else:
            col = municipalities[self.level].astype(str)
            keys = col.map(normalise_name)
            known = {normalise_name(v): v for v in col.unique()}
            mask = np.zeros(len(municipalities), dtype=bool)
            for name in self.names:
                if normalise_name(name) not in known:
                    problems.append(
                        Problem(source, f"{where}: {_unknown(self.level, name, known)}")
                    )
                else:
                    mask |= (keys == normalise_name(name)).to_numpy()
        if problems:
            raise InputError(problems)
        return mask


@dataclass(frozen=True)
class BanOutside:
    """Households matching ``azc`` / ``criterion`` may only be coupled inside ``area``."""

    area: Area
    azc: tuple[str, ...] = ()
    criterion: str | None = None
    qualifying_only: bool = False
    criterion_inside: bool = True


@dataclass(frozen=True)
class Pool:
    """Municipalities that pool their quota: one band on the total, relaxed member caps."""

    area: Area
    member_cap: float | str = 2.0
    min_fill: float = 1.0
    max_fill: float = 1.1


@dataclass(frozen=True)
class WeightMultiplier:
    """Soft ``parts`` count ``factor`` times in the area's municipalities."""

    area: Area
    parts: tuple[str, ...] = ("labour", "work_soft")
    factor: float = 2.0


@dataclass(frozen=True, eq=False)
class Agreement:
    """A parsed agreement overlay; see the module docstring for the TOML format."""

    name: str
    description: str = ""
    policy: dict[str, dict[str, Any]] = field(default_factory=dict)
    bans: tuple[BanOutside, ...] = ()
    pools: tuple[Pool, ...] = ()
    multipliers: tuple[WeightMultiplier, ...] = ()
    source: str = "<agreement>"
    text: str = ""  # the TOML it was read from (stored with a ledger batch)

    # -- reading ------------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> Agreement:
        """Read an agreement TOML file; every problem is reported at once."""
        path = Path(path)
        agreement = cls.from_dict(read_toml(path), source=path.name, default_name=path.stem)
        return dataclasses.replace(agreement, text=path.read_text(encoding="utf-8"))

    @classmethod
    def from_text(cls, text: str, source: str, default_name: str = "agreement") -> Agreement:
        """Read an agreement from TOML text (as a ledger batch stores it)."""
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(Problem(source, f"is not valid TOML: {exc}")) from None
        agreement = cls.from_dict(raw, source=source, default_name=default_name)
        return dataclasses.replace(agreement, text=text)

    @classmethod
    def from_dict(
        cls, raw: dict[str, Any], source: str = "<agreement>", default_name: str = "agreement"
    ) -> Agreement:
        p: list[Problem] = []
        for key in raw:
            if key not in _TOP:
                p.append(
                    Problem(
                        source, f"unknown table [{key}]{_hint(key, _TOP)}; known: {', '.join(_TOP)}"
                    )
                )
        head = _table(raw.get("agreement", {}), "[agreement]", source, p)
        _only(head, ("name", "description"), "[agreement]", source, p)
        name = str(head.get("name", default_name))
        description = str(head.get("description", ""))
        pol = _table(raw.get("policy", {}), "[policy]", source, p)
        for k, v in pol.items():
            if not isinstance(v, dict):
                p.append(Problem(source, f"[policy] {k} must be a table, e.g. [policy.{k}]"))
        bans = tuple(
            b
            for i, t in enumerate(_array(raw, "ban_outside", source, p))
            if (b := _ban(t, f"[[ban_outside]] #{i + 1}", source, p)) is not None
        )
        pools = tuple(
            q
            for i, t in enumerate(_array(raw, "pool", source, p))
            if (q := _pool(t, f"[[pool]] #{i + 1}", source, p)) is not None
        )
        mults = tuple(
            w
            for i, t in enumerate(_array(raw, "weight_multiplier", source, p))
            if (w := _mult(t, f"[[weight_multiplier]] #{i + 1}", source, p)) is not None
        )
        agreement = cls(
            name,
            description,
            {k: dict(v) for k, v in pol.items() if isinstance(v, dict)},
            bans,
            pools,
            mults,
            source,
        )
        if not p:
            try:
                agreement.apply_policy(Policy())
            except PolicyError as exc:
                p.extend(exc.problems)
        if p:
            raise PolicyError(p)
        return agreement

    # -- applying -----------------------------------------------------------------------------
    def check(self, municipalities: pd.DataFrame) -> None:
        """Resolve every municipality, province and region name against a scenario."""
        problems: list[Problem] = []
        groups: tuple[tuple[str, tuple[BanOutside | Pool | WeightMultiplier, ...]], ...] = (
            ("ban_outside", self.bans),
            ("pool", self.pools),
            ("weight_multiplier", self.multipliers),
        )
        for kind, items in groups:
            for i, item in enumerate(items):
                where = f"[[{kind}]] #{i + 1}"
                try:
                    item.area.mask(municipalities, self.source, where)
                except InputError as exc:
                    problems.extend(exc.problems)
                if isinstance(item, BanOutside) and item.azc:
                    resolve_names(item.azc, municipalities, self.source, f"{where} azc", problems)
        if problems:
            raise InputError(problems)

    def apply_policy(self, policy: Policy) -> Policy:
        """The base policy with this agreement's ``[policy]`` keys merged in."""
        if not self.policy:
            return policy
        raw = policy.to_dict()
        for section, values in self.policy.items():
            raw.setdefault(section, {}).update(values)
        return Policy.from_dict(raw, source=self.source)

    def apply_instance(self, instance: Instance, policy: Policy) -> Instance:
        """The instance with ban locks added for every ``[[ban_outside]]`` (existing locks kept)."""
        if not self.bans:
            return instance
        self.check(instance.municipalities)
        m = instance.municipalities
        hh = instance.households
        crit = instance.criteria
        rows: list[pd.DataFrame] = []
        for i, ban in enumerate(self.bans):
            where = f"[[ban_outside]] #{i + 1}"
            inside = ban.area.mask(m, self.source, where)
            match = np.ones(len(hh), dtype=bool)
            if ban.azc:
                codes = resolve_names(ban.azc, m, self.source, f"{where} azc", [])
                in_azc = (
                    hh["azc"].astype("string").isin(codes).fillna(False) if "azc" in hh else False
                )
                match &= np.array(in_azc, dtype=bool)
            if ban.criterion is not None:
                sel = np.array(crit["kind"].astype(str) == ban.criterion, dtype=bool)
                if ban.qualifying_only and len(crit):
                    sel &= qualifies_as_hard(crit, policy)
                if ban.criterion_inside and len(crit):
                    where_idx = (
                        crit["municipality"].map(instance.code_index).to_numpy(dtype=np.int64)
                    )
                    sel &= inside[where_idx]
                ids = set(crit.loc[sel, "household_id"].astype(str))
                match &= hh["household_id"].astype(str).isin(ids).to_numpy()
            if ban.area.level == CRITERION_REGION:
                rows.append(self._ban_outside_own_region(instance, policy, ban, match))
                continue
            hids = instance.household_ids[match]
            outside = instance.codes[~inside]
            if len(hids) and len(outside):
                rows.append(
                    pd.DataFrame(
                        {
                            "household_id": np.repeat(hids, len(outside)),
                            "municipality": np.tile(outside, len(hids)),
                            "action": "ban",
                        }
                    )
                )
        if not rows:
            return instance
        new = pd.concat(rows, ignore_index=True)
        if instance.locks is not None and len(instance.locks):
            new = pd.concat(
                [instance.locks[["household_id", "municipality", "action"]], new], ignore_index=True
            )
        new = new.drop_duplicates(["household_id", "municipality"], keep="first")
        for col in ("household_id", "municipality", "action"):
            new[col] = new[col].astype("string")
        return instance.replace(locks=new.reset_index(drop=True))

    @staticmethod
    def _ban_outside_own_region(
        instance: Instance, policy: Policy, ban: BanOutside, match: np.ndarray
    ) -> pd.DataFrame:
        """Ban locks keeping each matching household inside the labour-market region(s) of its
        own ``ban.criterion`` criteria (a job in the Drechtsteden: the seven Drechtsteden
        municipalities)."""
        crit = instance.criteria
        m = instance.municipalities
        regions = m["labour_market_region"].astype(str).to_numpy()
        names, region_of = np.unique(regions, return_inverse=True)
        sel = np.array(crit["kind"].astype(str) == ban.criterion, dtype=bool)
        if ban.qualifying_only and len(crit):
            sel &= qualifies_as_hard(crit, policy)
        h = crit.loc[sel, "household_id"].map(instance.household_index).to_numpy(dtype=np.int64)
        r = region_of[crit.loc[sel, "municipality"].map(instance.code_index).to_numpy(np.int64)]
        keep = match[h]
        own = np.zeros((instance.n_households, len(names)), dtype=bool)
        own[h[keep], r[keep]] = True
        bound = np.asarray(own.any(axis=1), dtype=bool)
        outside = ~own[:, region_of] & bound[:, None]  # households x municipalities
        hi, mi = np.nonzero(outside)
        return pd.DataFrame(
            {
                "household_id": instance.household_ids[hi],
                "municipality": instance.codes[mi],
                "action": "ban",
            }
        )

    def apply_model(self, model: CouplingModel) -> CouplingModel:
        """A new model with pools and weight multipliers applied to its arrays."""
        if not (self.pools or self.multipliers):
            return model
        inst = model.instance
        self.check(inst.municipalities)
        value, cap, target = model.value, model.cap, model.target
        bands = list(model.bands)
        if self.multipliers:
            parts = soft_parts(inst, model.policy)
            value = value.copy()
            for i, wm in enumerate(self.multipliers):
                cols = wm.area.mask(
                    inst.municipalities, self.source, f"[[weight_multiplier]] #{i + 1}"
                )
                extra = sum(getattr(model.policy.weights, p) * parts[p][:, cols] for p in wm.parts)
                value[:, cols] += (wm.factor - 1.0) * extra
        if self.pools:
            cap, target = cap.copy(), target.copy()
            for i, pool in enumerate(self.pools):
                members = pool.area.mask(inst.municipalities, self.source, f"[[pool]] #{i + 1}")
                share = float(target[members].sum())
                total_cap = int(cap[members].sum())
                if pool.member_cap == "pool":
                    cap[members] = total_cap
                else:
                    cap[members] = np.floor(cap[members] * float(pool.member_cap) + 1e-9).astype(
                        np.int64
                    )
                lo = min(math.floor(pool.min_fill * share + 1e-9), total_cap)
                hi = (
                    total_cap
                    if math.isinf(pool.max_fill)
                    else min(math.ceil(pool.max_fill * share - 1e-9), total_cap)
                )
                # The band on the total replaces the members' own fill targets.
                target[members] = 0.0
                bands.append(BandRows(f"pool:{pool.area.label()}", members, lo, max(lo, hi)))
        for a in (value, cap, target):
            a.flags.writeable = False
        return dataclasses.replace(model, value=value, cap=cap, target=target, bands=tuple(bands))

    def build(self, instance: Instance, policy: Policy) -> CouplingModel:
        """Policy, inputs and model arrays under this agreement, in one call."""
        pol = self.apply_policy(policy)
        return self.apply_model(build_model(self.apply_instance(instance, pol), pol))


def build_variant(
    instance: Instance, policy: Policy, agreements: tuple[Agreement, ...] = ()
) -> CouplingModel:
    """Compose several agreements on a base policy (applied in order) and build the model."""
    for a in agreements:
        policy = a.apply_policy(policy)
    for a in agreements:
        instance = a.apply_instance(instance, policy)
    model = build_model(instance, policy)
    for a in agreements:
        model = a.apply_model(model)
    return model


def is_agreement_file(path: str | Path) -> bool:
    """True when a TOML file is an agreement overlay rather than a plain policy."""
    raw = read_toml(Path(path))
    return bool(set(raw) & {"agreement", "policy", "ban_outside", "pool", "weight_multiplier"})


def resolve_names(
    names: tuple[str, ...] | list[str],
    municipalities: pd.DataFrame,
    source: str,
    where: str,
    problems: list[Problem],
) -> list[str]:
    """Municipality names or codes -> codes (:class:`coupler.io.Places`); unknown ones become
    problems with a suggestion."""
    places = Places(municipalities)
    out = []
    for name in names:
        code = places.code(str(name))
        if code is None:
            problems.append(Problem(source, f"{where}: {places.unknown_municipality(str(name))}"))
        else:
            out.append(code)
    return out


# -- parsing helpers ------------------------------------------------------------------------------
def _unknown(what: str, text: str, candidates: dict[str, str]) -> str:
    close = suggest(text, candidates)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown {what} '{short(text)}'{hint}"


def _hint(key: str, known: tuple[str, ...]) -> str:
    close = suggest(key, {normalise_name(k): k for k in known})
    return f" (did you mean '{close[0]}'?)" if close else ""


def _table(value: Any, where: str, source: str, p: list[Problem]) -> dict[str, Any]:
    if not isinstance(value, dict):
        p.append(Problem(source, f"{where} must be a table"))
        return {}
    return value


def _array(raw: dict[str, Any], key: str, source: str, p: list[Problem]) -> list[dict[str, Any]]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        p.append(Problem(source, f"[[{key}]] must be an array of tables (write [[{key}]])"))
        return []
    return value


def _only(
    t: dict[str, Any], known: tuple[str, ...], where: str, source: str, p: list[Problem]
) -> None:
    for key in t:
        if key not in known:
            p.append(
                Problem(
                    source,
                    f"{where}: unknown key '{key}'{_hint(key, known)}; known: {', '.join(known)}",
                )
            )


def _strings(v: Any, where: str, key: str, source: str, p: list[Problem]) -> tuple[str, ...]:
    if isinstance(v, str):
        return (v,)
    if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        return tuple(v)
    p.append(
        Problem(source, f"{where}: {key} must be a name or a non-empty list of names; got {v!r}")
    )
    return ()


def _area(
    t: dict[str, Any], where: str, source: str, p: list[Problem], own_region: bool = False
) -> Area | None:
    keys = (*AREA_KEYS, CRITERION_REGION) if own_region else AREA_KEYS
    given = [k for k in keys if k in t]
    if len(given) != 1:
        p.append(
            Problem(
                source,
                f"{where}: give exactly one of {', '.join(keys)}; got {given or 'none'}",
            )
        )
        return None
    if given[0] == CRITERION_REGION:
        if t[CRITERION_REGION] is not True:
            p.append(Problem(source, f"{where}: {CRITERION_REGION} must be true when given"))
            return None
        if t.get("criterion") is None:
            p.append(Problem(source, f"{where}: {CRITERION_REGION} needs a criterion kind"))
            return None
        return Area(CRITERION_REGION, (str(t["criterion"]),))
    names = _strings(t[given[0]], where, given[0], source, p)
    return Area(given[0], names) if names else None


def _number(
    t: dict[str, Any],
    key: str,
    default: float,
    where: str,
    source: str,
    p: list[Problem],
    minimum: float = 0.0,
) -> float:
    v = t.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not v >= minimum:
        p.append(Problem(source, f"{where}: {key} must be a number >= {minimum:g}; got {v!r}"))
        return default
    return float(v)


def _flag(
    t: dict[str, Any], key: str, default: bool, where: str, source: str, p: list[Problem]
) -> bool:
    v = t.get(key, default)
    if not isinstance(v, bool):
        p.append(Problem(source, f"{where}: {key} must be true or false; got {v!r}"))
        return default
    return v


def _ban(t: dict[str, Any], where: str, source: str, p: list[Problem]) -> BanOutside | None:
    _only(
        t,
        (*AREA_KEYS, CRITERION_REGION, "azc", "criterion", "qualifying_only", "criterion_inside"),
        where,
        source,
        p,
    )
    area = _area(t, where, source, p, own_region=True)
    azc = _strings(t["azc"], where, "azc", source, p) if "azc" in t else ()
    crit = t.get("criterion")
    if crit is not None and crit not in CRITERION_KINDS:
        p.append(
            Problem(
                source, f"{where}: criterion must be one of {list(CRITERION_KINDS)}; got {crit!r}"
            )
        )
        crit = None
    if not azc and crit is None and "criterion" not in t:
        p.append(
            Problem(source, f"{where}: give azc and/or criterion to say which households it binds")
        )
    q = _flag(t, "qualifying_only", False, where, source, p)
    inside = _flag(t, "criterion_inside", True, where, source, p)
    return BanOutside(area, azc, crit, q, inside) if area else None


def _pool(t: dict[str, Any], where: str, source: str, p: list[Problem]) -> Pool | None:
    _only(t, (*AREA_KEYS, "member_cap", "min_fill", "max_fill"), where, source, p)
    area = _area(t, where, source, p)
    mc = t.get("member_cap", 2.0)
    if mc != "pool":
        mc = _number(t, "member_cap", 2.0, where, source, p, minimum=1.0)
    lo = _number(t, "min_fill", 1.0, where, source, p)
    hi = _number(t, "max_fill", 1.1, where, source, p)
    if hi < lo:
        p.append(Problem(source, f"{where}: max_fill must be >= min_fill; got {hi} < {lo}"))
    return Pool(area, mc, lo, hi) if area else None


def _mult(t: dict[str, Any], where: str, source: str, p: list[Problem]) -> WeightMultiplier | None:
    _only(t, (*AREA_KEYS, "parts", "factor"), where, source, p)
    area = _area(t, where, source, p)
    parts = _strings(t.get("parts", ["labour", "work_soft"]), where, "parts", source, p)
    bad = [x for x in parts if x not in SOFT_PARTS]
    if bad:
        p.append(
            Problem(source, f"{where}: unknown soft part(s) {bad}; known: {', '.join(SOFT_PARTS)}")
        )
    factor = _number(t, "factor", 2.0, where, source, p)
    return WeightMultiplier(area, parts, factor) if area and not bad else None


__all__ = [
    "Agreement",
    "Area",
    "BanOutside",
    "Pool",
    "WeightMultiplier",
    "build_variant",
    "is_agreement_file",
    "resolve_names",
]
