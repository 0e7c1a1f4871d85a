"""``evalkit experiment PLAN.yaml``: which of the book's exercises helps?

A plan (:mod:`evalkit.experiment.plan`) names a base model, data, evaluations and variants
(fine-tuning options: prompt style, instruction masking, LoRA, DPO, data, seeds). The runner
(:mod:`evalkit.experiment.runner`) trains and evaluates every variant through the same library
functions as the CLI, skipping finished steps; :mod:`evalkit.experiment.comparison` then
compares every variant with the baseline in every mode, Holm-adjusted across all of them.
"""

from evalkit.experiment.comparison import compare_variants
from evalkit.experiment.plan import Plan, load_plan
from evalkit.experiment.runner import ExperimentResult, plan_steps, run_experiment

__all__ = ["ExperimentResult", "Plan", "compare_variants", "load_plan", "plan_steps", "run_experiment"]
