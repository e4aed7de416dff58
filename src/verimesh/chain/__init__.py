"""The chain layer: typed clients of the verimesh contracts over an in-process EVM or JSON-RPC.

Start with ``Network.connect(deployment_json, signer)``; see docs/chain.md.
"""

from verimesh.chain.accounts import Signer, dev_signer
from verimesh.chain.client import Network
from verimesh.chain.contract import Tx
from verimesh.chain.deployment import Deployment
from verimesh.chain.errors import ChainError, ContractRevert, DeploymentError, DevnetError
from verimesh.chain.job_market import Job, JobMarketClient, JobState, Mode, commitment
from verimesh.chain.registry import Member, RegistryClient, Role
from verimesh.chain.token import TokenClient

__all__ = [
    "ChainError",
    "ContractRevert",
    "Deployment",
    "DeploymentError",
    "DevnetError",
    "Job",
    "JobMarketClient",
    "JobState",
    "Member",
    "Mode",
    "Network",
    "RegistryClient",
    "Role",
    "Signer",
    "TokenClient",
    "Tx",
    "commitment",
    "dev_signer",
]
