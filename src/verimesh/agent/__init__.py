"""Autonomous economic agents: a wallet whose policy the chain enforces, a goal, a ledger.

    from verimesh.agent import Agent, WorkItem, VMT
    agent = Agent.provision("~/.verimesh/devnet/deployment.json", owner="dev1", budget=20 * VMT, home="agent")
    records = agent.run_jobs([WorkItem(task="embed", model="minilm", input="hello", value=VMT)])

See docs/agents.md: buying (``Agent``), selling (``agent.service``), and the ledger.
"""

from verimesh.agent.agent import Agent
from verimesh.agent.ledger import Ledger, LedgerRow
from verimesh.agent.offers import ProviderOffer, ServiceInfo, discover_providers, discover_service
from verimesh.agent.planner import Plan, Purchase, Skipped, plan_purchases
from verimesh.agent.policy import MarketTerms, ModeChoice, ModeRule, choose_mode
from verimesh.agent.wallet import BudgetRefused, SessionPolicy
from verimesh.agent.work import VMT, JobRecord, WorkItem, demo_work, parse_goal

__all__ = [
    "VMT",
    "Agent",
    "BudgetRefused",
    "JobRecord",
    "Ledger",
    "LedgerRow",
    "MarketTerms",
    "ModeChoice",
    "ModeRule",
    "Plan",
    "ProviderOffer",
    "Purchase",
    "ServiceInfo",
    "SessionPolicy",
    "Skipped",
    "WorkItem",
    "choose_mode",
    "demo_work",
    "discover_providers",
    "discover_service",
    "parse_goal",
    "plan_purchases",
]
