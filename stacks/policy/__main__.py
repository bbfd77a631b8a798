"""Strata's policy pack (`pulumi up --policy-pack stacks/policy`; `strata up` passes it)."""

from pulumi_policy import PolicyPack

from strata.stacks.policies import build_policies

PolicyPack(name="strata", policies=build_policies())
