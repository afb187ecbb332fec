"""coupler: couple statushouders to Dutch municipalities.

The pipeline, one module per stage::

    io / scenario  files -> validated tables -> Instance      (load_instance)
    policy         weights, radius, rules from TOML           (Policy)
    criteria       hard criteria -> allowed pairs; soft parts
    model          Instance + Policy -> CouplingModel arrays  (build_model)
    engine         flow relaxation, repair, MIP backends       (solve)
    result         the plan with status, bound and gap        (Result)
"""

from __future__ import annotations

from coupler.engine import solve
from coupler.errors import CouplerError, InputError, PolicyError, Problem
from coupler.generate import generate_cases
from coupler.instance import Instance
from coupler.model import CouplingModel, build_model
from coupler.policy import Policy, SolveParams
from coupler.result import Result, Status
from coupler.scenario import embedded_scenario, load_instance, load_scenario

__version__ = "0.1.0"

__all__ = [
    "CouplerError",
    "CouplingModel",
    "InputError",
    "Instance",
    "Policy",
    "PolicyError",
    "Problem",
    "Result",
    "SolveParams",
    "Status",
    "build_model",
    "embedded_scenario",
    "generate_cases",
    "load_instance",
    "load_scenario",
    "solve",
]
